"""Sharded corpora: packing (lossless, atomic), the streamed loader's order (per rank, per loader
process, exact seek), and pase-train on shards resuming mid-epoch exactly."""
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from conftest import TINY_FE, make_data_dir, tiny_workers
from pase.bin.compute_stats import main as stats_main
from pase.bin.make_shards import main as shards_main
from pase.bin.train import main as train_main
from pase.data import make_loader
from pase.data.shards import ShardError, ShardStream, read_index
from pase.io import DataDir, read_audio
from pase.train.trainer import Trainer


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_data_dir(tmp_path_factory.mktemp("shard_corpus"), speakers=4, utts=6, seconds=(0.8, 1.6), seed=3)


@pytest.fixture(scope="module")
def shard_dir(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards") / "train"
    shards_main([str(corpus), str(out), "--shard_size", "3", "--seed", "1"])
    return out


def test_packing_is_lossless_and_indexed(corpus, shard_dir):
    import webdataset as wds
    shards = read_index(shard_dir)
    data = DataDir.load(corpus)
    assert len(shards) == 8 and sum(s.utts for s in shards) == len(data.utterances) == 24
    seen = {}
    for s in shards:
        got = list(wds.WebDataset([str(shard_dir / s.file)], shardshuffle=False, nodesplitter=None,
                                  workersplitter=None, empty_check=False))
        assert len(got) == s.utts
        for sample in got:
            meta = json.loads(sample["json"])
            import io
            wav, sr = sf.read(io.BytesIO(sample["flac"]), dtype="float32")
            seen[meta["utt"]] = (meta["spk"], wav, sr)
        assert s.samples == sum(len(seen[json.loads(x["json"])["utt"]][1]) for x in got)
    for utt in data.utterances:  # the sources are 16-bit WAV: FLAC keeps every sample
        spk, wav, sr = seen[utt.utt_id]
        ref = read_audio(utt.source)
        assert spk == utt.speaker and sr == 16000 and np.abs(wav - np.round(ref * 32768) / 32768).max() == 0
    order = [json.loads(x["json"])["utt"] for x in wds.WebDataset([str(shard_dir / shards[0].file)],
                                                                   shardshuffle=False, nodesplitter=None,
                                                                   workersplitter=None, empty_check=False)]
    assert order != sorted(order) or len({u.split("-")[0] for u in order}) > 1  # packed in shuffled order


def test_packing_errors_leave_nothing(corpus, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("utt2spk", "spk2utt"):
        (bad / name).write_text((corpus / name).read_text())
    lines = (corpus / "wav.scp").read_text().splitlines()
    lines[5] = lines[5].split()[0] + " " + str(tmp_path / "missing.wav")
    (bad / "wav.scp").write_text("\n".join(lines) + "\n")
    with pytest.raises(Exception, match="missing.wav"):
        shards_main([str(bad), str(tmp_path / "out"), "--shard_size", "4"])
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    with pytest.raises(ShardError, match="exists"):
        shards_main([str(corpus), str(tmp_path / "bad")])
    with pytest.raises(ShardError, match="not a shard index"):
        read_index(tmp_path / "bad")


def epoch_items(shard_dir, workers, epoch, start=0, rank=0, world=1, bpe=6, batch=2):
    ds = ShardStream(shard_dir, chunk_size=4000, batch_size=batch, batches_per_epoch=bpe, group_shards=2, seed=5,
                     rank=rank, world_size=world, num_workers=workers)
    loader = make_loader(ds, None, batch, workers)
    ds.set_position(epoch, start)
    return [(u, c) for b in loader for u, c in zip(b["utt"], b["chunk"])]


def test_stream_seeks_exactly_and_splits_ranks(shard_dir):
    for workers in (0, 2):
        full = epoch_items(shard_dir, workers, 1)
        assert len(full) == 12
        tail = epoch_items(shard_dir, workers, 1, start=4)
        assert [u for u, _ in tail] == [u for u, _ in full[8:]]
        assert all(torch.equal(a, b) for (_, a), (_, b) in zip(tail, full[8:]))
        assert [u for u, _ in epoch_items(shard_dir, workers, 1)] == [u for u, _ in full]  # deterministic
    # Epochs continue the stream: epoch 1 is not epoch 0 again.
    assert [u for u, _ in epoch_items(shard_dir, 0, 0)] != [u for u, _ in epoch_items(shard_dir, 0, 1)]
    # Two ranks read disjoint shards within a pass (4 groups of 1 shard each, 3 items per shard).
    r0 = {u for u, _ in epoch_items(shard_dir, 0, 0, rank=0, world=2, bpe=3, batch=2)}
    r1 = {u for u, _ in epoch_items(shard_dir, 0, 0, rank=1, world=2, bpe=3, batch=2)}
    assert r0 and r1 and not r0 & r1
    with pytest.raises(ShardError, match="loader process"):
        ShardStream(shard_dir, chunk_size=4000, batch_size=2, batches_per_epoch=2, group_shards=4,
                    world_size=2, num_workers=2)
    with pytest.raises(ShardError, match="--group_shards 0: must be >= 1"):
        ShardStream(shard_dir, chunk_size=4000, batch_size=2, batches_per_epoch=2, group_shards=0)


def test_context_chunk_is_the_same_speaker(shard_dir):
    ds = ShardStream(shard_dir, chunk_size=4000, batch_size=1, batches_per_epoch=8, group_shards=4, seed=2)
    records = ds._read_group([0, 1, 2, 3])
    by_chunk = {}
    for rec in records:  # every possible chunk start is a multiple of nothing: match by content
        with sf.SoundFile(__import__("io").BytesIO(rec["flac"])) as f:
            by_chunk[rec["utt"]] = (rec["spk"], f.read(dtype="float32"))
    for item in ds._items(0, 0, records):
        ctxt = item["chunk_ctxt"][0].numpy()
        rand = item["chunk_rand"][0].numpy()
        spk = next(s for u, (s, _) in by_chunk.items() if u == item["utt"])

        def owner(x):
            for u, (s, wav) in by_chunk.items():
                peak = np.abs(x).max()
                for off in range(0, max(len(wav) - len(x), 0) + 1, 1):
                    seg = wav[off:off + len(x)]
                    if len(seg) == len(x) and peak > 0 and np.allclose(seg / np.abs(seg).max(), x / peak, atol=1e-5):
                        return s
            return None
        assert owner(ctxt) == spk and owner(rand) not in (None, spk)
        break


def test_train_on_shards_resumes_mid_epoch_exactly(corpus, shard_dir, tmp_path, monkeypatch):
    (tmp_path / "fe.yaml").write_text(yaml.safe_dump(TINY_FE))
    (tmp_path / "w.cfg").write_text(json.dumps(tiny_workers()))
    stats_main(["--train_data", str(corpus), "--net_cfg", str(tmp_path / "w.cfg"), "--out_file",
                str(tmp_path / "stats.json"), "--chunk_size", "4000", "--batch_size", "4", "--max_batches", "2",
                "--num_workers", "0"])

    def args(save):
        return ["--train_data", str(shard_dir), "--fe_cfg", str(tmp_path / "fe.yaml"), "--net_cfg",
                str(tmp_path / "w.cfg"), "--stats", str(tmp_path / "stats.json"), "--save_path", str(save),
                "--chunk_size", "4000", "--batch_size", "2", "--batches_per_epoch", "4", "--epoch", "2",
                "--num_workers", "2", "--group_shards", "2", "--no_progress", "--tensorboard", "False",
                "--save_every_steps", "1"]

    train_main(args(tmp_path / "straight"))
    save_state = Trainer.save_state

    def die_at_step_6(self):
        path = save_state(self)
        if self.step == 6:
            raise KeyboardInterrupt  # as a kill right after the state was written
        return path

    monkeypatch.setattr(Trainer, "save_state", die_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        train_main(args(tmp_path / "resumed"))
    monkeypatch.undo()
    assert (tmp_path / "resumed" / "states" / "state_s6.pt").exists()
    trainer = train_main(args(tmp_path / "resumed"))
    assert trainer.step == 8
    a = torch.load(tmp_path / "straight" / "FE_e1.ckpt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "FE_e1.ckpt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    from pase.config import ConfigError
    with pytest.raises(ConfigError, match="shards changed"):
        train_main(args(tmp_path / "resumed")[:-1] + ["1", "--num_workers", "1", "--epoch", "3"])
