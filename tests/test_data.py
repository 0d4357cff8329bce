"""Pretraining data: chunk sampling, seeding, epoch sampler, durations and speaker splits.

Every utterance is a ramp of 24-bit sample codes ``k * STRIDE + 1 + t`` (exact in
float32), so a chunk tells which utterance ``k`` it came from and at which offset.
"""

import logging
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

import pase.data.durations as durations_mod
from pase.data import (
    ChunkDataset,
    EpochSampler,
    batches_per_epoch_from_duration,
    collate_chunks,
    make_loader,
    split_by_speaker,
    utterance_durations,
)
from pase.io import (AudioError, DataDir, DataDirError, PaseInputError, read_audio, read_kaldi_map,
                     split_data_dir, utt2spk_to_spk2utt)

SR = 16000
SCALE = 2.0**23
STRIDE = 100_000
CHUNK = 4000


def ramp(k: int, n: int) -> np.ndarray:
    return (k * STRIDE + 1 + np.arange(n)) / SCALE


def decode(x: torch.Tensor) -> tuple[int, int]:
    """(utterance number, offset) of an unscaled chunk, checking it is one contiguous slice."""
    code = np.round(x.numpy().astype(np.float64).ravel() * SCALE).astype(np.int64)
    assert np.all(np.diff(code) == 1), "chunk is not a contiguous slice of one utterance"
    k, offset = divmod(int(code[0]) - 1, STRIDE)
    return k, offset


def write_wav(path, data, sr=SR) -> str:
    fmt = {"subtype": "PCM_24"} if str(path).endswith(".flac") else {"subtype": "FLOAT"}
    sf.write(str(path), data, sr, **fmt)
    return str(path)


def make_corpus(root, speakers: dict[str, list[int]]) -> tuple[DataDir, dict[str, tuple[int, int]]]:
    """Data dir with one ramp file per utterance; returns it and utt -> (k, samples)."""
    root.mkdir(parents=True, exist_ok=True)
    info, wav_scp, utt2spk = {}, [], []
    for spk, lengths in speakers.items():
        for j, n in enumerate(lengths):
            utt, k = f"{spk}-u{j}", len(info)
            path = write_wav(root / f"{utt}.{'flac' if k % 2 else 'wav'}", ramp(k, n))
            info[utt] = (k, n)
            wav_scp.append(f"{utt} {path}\n")
            utt2spk.append(f"{utt} {spk}\n")
    (root / "wav.scp").write_text("".join(sorted(wav_scp)))
    (root / "utt2spk").write_text("".join(sorted(utt2spk)))
    return DataDir.load(root), info


CORPUS = {"spkA": [12000, 20000, 32000], "spkB": [8000, 16000, 24000], "spkC": [30000]}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"), CORPUS)


def test_chunk_sources(corpus):
    data, info = corpus
    by_k = {k: (utt, n) for utt, (k, n) in info.items()}
    ds = ChunkDataset(data, CHUNK, random_scale=False, seed=1)
    assert len(ds) == 7 and ds.skipped == []
    for epoch in range(4):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            utt = item["utt"]
            spk = data.utt2spk[utt]
            assert set(item) == {"utt", "chunk", "chunk_ctxt", "chunk_rand"}
            for key in ("chunk", "chunk_ctxt", "chunk_rand"):
                assert item[key].shape == (1, CHUNK) and item[key].dtype == torch.float32
            k, off = decode(item["chunk"])
            assert by_k[k][0] == utt and 0 <= off <= info[utt][1] - CHUNK
            ctxt = by_k[decode(item["chunk_ctxt"])[0]][0]
            if spk == "spkC":  # its only utterance: context is another offset of itself
                assert ctxt == utt
            else:
                assert ctxt != utt and data.utt2spk[ctxt] == spk
            rand = by_k[decode(item["chunk_rand"])[0]][0]
            assert data.utt2spk[rand] != spk


def test_offsets_cover_both_ends(tmp_path):
    data, _ = make_corpus(tmp_path / "d", {"s": [CHUNK + 1]})
    ds = ChunkDataset(data, CHUNK, random_scale=False, context=False)
    offsets = set()
    for epoch in range(40):
        ds.set_epoch(epoch)
        offsets.add(decode(ds[0]["chunk"])[1])
    assert offsets == {0, 1}


def test_single_speaker_rand_is_another_utterance(tmp_path):
    data, info = make_corpus(tmp_path / "d", {"s": [6000, 7000, 8000]})
    by_k = {k: utt for utt, (k, _) in info.items()}
    ds = ChunkDataset(data, CHUNK, random_scale=False)
    for epoch in range(5):
        ds.set_epoch(epoch)
        for i in range(3):
            item = ds[i]
            assert by_k[decode(item["chunk_ctxt"])[0]] != item["utt"]
            assert by_k[decode(item["chunk_rand"])[0]] != item["utt"]


def test_random_scale(corpus, tmp_path):
    data, info = corpus
    ds = ChunkDataset(data, CHUNK, random_scale=True, seed=5)
    plain = ChunkDataset(data, CHUNK, random_scale=False, seed=5)
    gains = []
    for i in range(len(ds)):
        scaled, raw = ds[i], plain[i]  # same seed: same utterances and offsets
        for key in ("chunk", "chunk_ctxt", "chunk_rand"):
            x, y = scaled[key].double(), raw[key].double()
            peak = x.abs().max().item()
            assert 0 <= peak <= 1
            ratio = x / y
            torch.testing.assert_close(ratio, ratio.mean().expand_as(ratio), rtol=1e-5, atol=0)
            gains.append(peak)
    assert len(set(gains)) == len(gains)  # independent gains per chunk
    (tmp_path / "z").mkdir()
    path = write_wav(tmp_path / "z" / "zero.wav", np.zeros(8000))
    (tmp_path / "z" / "wav.scp").write_text(f"zero {path}\n")
    zero = ChunkDataset(DataDir.load(tmp_path / "z"), CHUNK, context=False)[0]["chunk"]
    assert torch.all(zero == 0)


def test_short_utterances_padded_or_skipped(tmp_path, caplog):
    data, info = make_corpus(tmp_path / "d", {"a": [3000, 1500, 500], "b": [600, 9000]})
    with caplog.at_level(logging.WARNING):
        ds = ChunkDataset(data, CHUNK, random_scale=False, context=False)
    assert ds.skipped == ["a-u2", "b-u0"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "2 utterance(s)" in warnings[0].message
    assert "a-u2" in warnings[0].message
    assert [u.utt_id for u in ds.utterances] == ["a-u0", "a-u1", "b-u1"]
    reflected = ds[0]["chunk"].numpy().ravel()
    src = ramp(info["a-u0"][0], 3000).astype(np.float32)
    np.testing.assert_array_equal(reflected[:3000], src)
    np.testing.assert_array_equal(reflected[3000:], src[-2::-1][:1000])
    zero_padded = ds[1]["chunk"].numpy().ravel()
    src = ramp(info["a-u1"][0], 1500).astype(np.float32)
    np.testing.assert_array_equal(zero_padded[:1500], src)
    assert np.all(zero_padded[1500:] == 0)
    assert set(ds[2]) == {"utt", "chunk"}
    assert ChunkDataset(data, CHUNK, context=False, min_samples=0).skipped == []


def run_loader(ds, sampler, workers, epochs):
    loader = make_loader(ds, sampler, batch_size=3, num_workers=workers)
    batches = []
    for epoch in epochs:
        ds.set_epoch(epoch)
        sampler.set_epoch(epoch)
        batches.append(list(loader))
    return batches


def test_determinism_across_worker_counts(corpus):
    data, _ = corpus
    ds = ChunkDataset(data, CHUNK, seed=7)
    sampler = EpochSampler(len(ds), batches_per_epoch=4, batch_size=3, seed=7)
    serial = run_loader(ds, sampler, 0, [0, 1])
    parallel = run_loader(ds, sampler, 2, [0, 1])  # persistent workers must see set_epoch
    for a_epoch, b_epoch in zip(serial, parallel):
        assert len(a_epoch) == len(b_epoch) == 4
        for a, b in zip(a_epoch, b_epoch):
            assert a["chunk"].shape == (3, 1, CHUNK) and a["utt"] == b["utt"]
            for key in ("chunk", "chunk_ctxt", "chunk_rand"):
                assert torch.equal(a[key], b[key])
    assert not torch.equal(serial[0][0]["chunk"], serial[1][0]["chunk"])
    ds.set_epoch(0)
    rank0 = ds[0]
    ds.rank = 1
    assert not torch.equal(ds[0]["chunk"], rank0["chunk"])


def test_workers_do_not_share_offsets(tmp_path):
    data, _ = make_corpus(tmp_path / "d", {f"s{i}": [20000] for i in range(6)})
    ds = ChunkDataset(data, CHUNK, random_scale=False, context=False)
    sampler = EpochSampler(len(ds), batches_per_epoch=2, batch_size=3)
    batches = run_loader(ds, sampler, 2, [0])[0]  # batch 0 from worker 0, batch 1 from worker 1
    offsets = [[decode(c)[1] for c in batch["chunk"]] for batch in batches]
    assert offsets[0] != offsets[1]


def test_collate():
    items = [{"utt": f"u{i}", "chunk": torch.full((1, 5), float(i))} for i in range(3)]
    batch = collate_chunks(items)
    assert batch["utt"] == ["u0", "u1", "u2"] and batch["chunk"].shape == (3, 1, 5)


def test_epoch_sampler_ranks_partition_each_pass():
    shares = [list(EpochSampler(12, batches_per_epoch=2, batch_size=3, rank=r, world_size=2,
                                seed=4)) for r in range(2)]
    assert len(shares[0]) == len(shares[1]) == 6
    assert not set(shares[0]) & set(shares[1])
    assert sorted(shares[0] + shares[1]) == list(range(12))
    again = list(EpochSampler(12, batches_per_epoch=2, batch_size=3, rank=0, world_size=2, seed=4))
    assert again == shares[0]


def test_epoch_sampler_wraps_passes_across_epochs():
    world, n = 2, 5
    samplers = [EpochSampler(n, batches_per_epoch=1, batch_size=3, rank=r, world_size=world)
                for r in range(world)]
    stream = []
    for epoch in range(5):  # 6 global items per epoch: passes cut mid-epoch
        for s in samplers:
            s.set_epoch(epoch)
        per_rank = [list(s) for s in samplers]
        assert all(len(p) == 3 for p in per_rank)
        stream += [idx for group in zip(*per_rank) for idx in group]
    passes = [stream[i:i + n] for i in range(0, len(stream), n)]
    for p, keys in enumerate(passes):  # key = pass * n + item
        assert [k // n for k in keys] == [p] * n
        assert sorted(k % n for k in keys) == list(range(n))
    assert len({tuple(k % n for k in keys) for keys in passes}) > 1  # fresh permutations


def test_items_repeated_within_an_epoch_get_fresh_chunks(corpus):
    data, _ = corpus
    ds = ChunkDataset(data, CHUNK, random_scale=False, context=False)
    offsets: dict[str, list[int]] = {}
    for key in EpochSampler(len(ds), batches_per_epoch=7, batch_size=3):  # 3 passes over 7
        item = ds[key]
        offsets.setdefault(item["utt"], []).append(decode(item["chunk"])[1])
    assert len(offsets) == 7 and all(len(set(v)) == 3 for v in offsets.values())


def test_batches_per_epoch_rule():
    assert batches_per_epoch_from_duration(50 * 3600, 32000, 16) == 5625  # the original's example
    assert batches_per_epoch_from_duration(50 * 3600, 32000, 16, world_size=2) == 2812
    assert batches_per_epoch_from_duration(1.0, 32000, 16) == 1


def test_segments_read_only_the_chunk(tmp_path, monkeypatch):
    d = tmp_path / "seg"
    d.mkdir()
    rec = write_wav(d / "rec.wav", ramp(0, 3 * SR))
    (d / "wav.scp").write_text(f"pipe cat {rec} |\nrec {rec}\n")
    (d / "segments").write_text("p1 pipe 0.5 1.0\nr1 rec 0.5 1.5\nr2 rec 1.5 -1\n")
    (d / "utt2spk").write_text("p1 a\nr1 a\nr2 b\n")
    data = DataDir.load(d)
    frames_read = []
    real_read = sf.read

    def spy(file, *args, start=0, stop=None, **kwargs):
        out = real_read(file, *args, start=start, stop=stop, **kwargs)
        frames_read.append((isinstance(file, str), len(out[0])))
        return out

    monkeypatch.setattr(sf, "read", spy)
    ds = ChunkDataset(data, CHUNK, random_scale=False)
    assert ds.utterances == data.utterances
    bounds = {"p1": (0.5, 1.0), "r1": (0.5, 1.5), "r2": (1.5, 3.0)}
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            for key in ("chunk", "chunk_ctxt", "chunk_rand"):
                _, off = decode(item[key])
                owner = item["utt"] if key == "chunk" else None
                if owner is not None:
                    lo, hi = bounds[owner]
                    assert lo * SR <= off and off + CHUNK <= hi * SR
                else:
                    assert any(lo * SR <= off and off + CHUNK <= hi * SR
                               for lo, hi in bounds.values())
    file_reads = [n for is_path, n in frames_read if is_path]
    assert file_reads and all(n == CHUNK for n in file_reads)


def test_resampled_source_gives_a_slice_of_the_resampled_utterance(tmp_path):
    path = write_wav(tmp_path / "a.wav", np.random.default_rng(0).uniform(-0.5, 0.5, 8000), sr=8000)
    (tmp_path / "wav.scp").write_text(f"a {path}\n")
    ds = ChunkDataset(DataDir.load(tmp_path), CHUNK, random_scale=False, context=False)
    chunk = ds[0]["chunk"].numpy().ravel()
    full = read_audio(path)
    assert any(np.array_equal(full[o:o + CHUNK], chunk) for o in np.flatnonzero(full == chunk[0]))


def test_bad_audio_names_the_utterance(tmp_path):
    (tmp_path / "wav.scp").write_text(f"gone {tmp_path / 'missing.wav'}\n")
    ds = ChunkDataset(DataDir.load(tmp_path), CHUNK, durations={"gone": 1.0})
    with pytest.raises(AudioError, match="'gone'"):
        ds[0]


def test_utterance_durations_cached_in_utt2dur(tmp_path, monkeypatch):
    data, info = make_corpus(tmp_path / "d", {"a": [8000, 12345], "b": [16000]})
    durations = utterance_durations(data)
    assert durations == {utt: n / SR for utt, (_, n) in info.items()}
    written = read_kaldi_map(tmp_path / "d" / "utt2dur", n_fields=2)
    assert list(written) == sorted(written)
    monkeypatch.setattr(durations_mod, "audio_info", lambda s: pytest.fail("header read"))
    reloaded = DataDir.load(tmp_path / "d")
    again = utterance_durations(reloaded)
    assert again.keys() == durations.keys()
    for utt in durations:
        assert again[utt] == pytest.approx(durations[utt], abs=1e-6)


def test_utterance_durations_segments_and_pipes(tmp_path, monkeypatch):
    d = tmp_path / "seg"
    d.mkdir()
    rec = write_wav(d / "rec.wav", ramp(0, 2 * SR))
    (d / "wav.scp").write_text(f"pipe cat {rec} |\n")
    (d / "segments").write_text("s1 pipe 0 0.75\ns2 pipe 0.5 -1\ns3 pipe 1.25 -1\n")
    pipe_reads = []
    real_read = durations_mod.read_audio
    monkeypatch.setattr(durations_mod, "read_audio",
                        lambda *a, **k: pipe_reads.append(a) or real_read(*a, **k))
    got = utterance_durations(DataDir.load(d), write=False)
    assert got == pytest.approx({"s1": 0.75, "s2": 1.5, "s3": 0.75})
    assert len(pipe_reads) == 1
    assert not (d / "utt2dur").exists()


def make_spk_dir(root, n_speakers, utts_per_speaker=2):
    root.mkdir(parents=True, exist_ok=True)
    utts = [(f"spk{s:02d}-u{u}", f"spk{s:02d}") for s in range(n_speakers)
            for u in range(utts_per_speaker)]
    (root / "wav.scp").write_text("".join(f"{u} /corpus/{u}.wav\n" for u, _ in utts))
    (root / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in utts))
    (root / "text").write_text("".join(f"{u} HELLO\n" for u, _ in utts))
    return root


def test_split_by_speaker(tmp_path):
    data = DataDir.load(make_spk_dir(tmp_path / "d", 10))
    train, valid = split_by_speaker(data, 0.2, seed=3)
    spk = data.utt2spk
    assert not {spk[u] for u in train} & {spk[u] for u in valid}
    assert sorted(train + valid) == sorted(spk)
    assert len({spk[u] for u in valid}) == 2 and len(valid) == 4
    assert split_by_speaker(data, 0.2, seed=3) == (train, valid)
    assert len({tuple(split_by_speaker(data, 0.2, seed=s)[1]) for s in range(10)}) > 1
    assert len(split_by_speaker(data, 0.01)[1]) == 4  # at least two speakers held out
    assert len(split_by_speaker(data, 0.99)[0]) == 4  # at least two speakers kept
    assert len(split_by_speaker(data, 0.01, min_speakers=1)[1]) == 2
    assert len(split_by_speaker(data, num_valid_speakers=3)[1]) == 6
    with pytest.raises(PaseInputError, match=r"must be in \[2, 8\] \(10 speakers, at least 2 on each"):
        split_by_speaker(data, num_valid_speakers=1)
    with pytest.raises(DataDirError, match="3 speaker\\(s\\); a held-out-speaker split keeping at least "
                                           "2 on each side needs 4 \\(lower --min_speakers\\)"):
        split_by_speaker(DataDir.load(make_spk_dir(tmp_path / "three", 3)))


@pytest.mark.parametrize("nj", [2, 3, 5])
def test_speaker_split_keeps_enough_speakers_for_split_data(tmp_path, nj):
    """The issue: 8 speakers at --valid_fraction 0.1 used to leave one valid speaker, which
    utils/split_data.sh N refuses; with --min_speakers N (the recipes' --nj) both sides split."""
    from pase.bin.split_data import main as split_main

    src = make_spk_dir(tmp_path / "train", 10)
    tr, va = tmp_path / "tr", tmp_path / "va"
    split_main([str(src), str(tr), str(va), "--valid_fraction", "0.1", "--min_speakers", str(nj)])
    for d in (tr, va):
        assert len(set(DataDir.load(d).utt2spk.values())) >= nj
        parts = [DataDir.load(p) for p in sorted(split_data_dir(d, nj).iterdir())]
        assert len(parts) == nj and sum(len(p) for p in parts) == len(DataDir.load(d))
    assert len(set(DataDir.load(va).utt2spk.values())) == nj  # the fraction (1) raised to nj
    with pytest.raises(DataDirError, match="10 speaker\\(s\\).*at least 6 on each side needs 12"):
        split_main([str(src), str(tr), str(va), "--min_speakers", "6"])


def test_split_cli_writes_kaldi_dirs(tmp_path, capsys, monkeypatch):
    from pase.bin.split_data import cli as split_cli
    from pase.bin.split_data import main as split_main

    src = make_spk_dir(tmp_path / "train", 10)
    split_main([str(src), str(tmp_path / "tr"), str(tmp_path / "va"), "--valid-fraction", "0.3",
                "--seed", "3"])
    seen = set()
    for name in ("tr", "va"):
        out = tmp_path / name
        data = DataDir.load(out)
        utt2spk = read_kaldi_map(out / "utt2spk")
        spk2utt = (out / "spk2utt").read_text().splitlines()
        assert spk2utt == [f"{s} {' '.join(u)}" for s, u in utt2spk_to_spk2utt(utt2spk).items()]
        assert spk2utt == sorted(spk2utt) and list(utt2spk) == sorted(utt2spk)
        assert read_kaldi_map(out / "wav.scp").keys() == utt2spk.keys() == data.utt2spk.keys()
        assert not seen & set(data.utt2spk.values())
        seen |= set(data.utt2spk.values())
    assert len(seen) == 10 and len(read_kaldi_map(tmp_path / "va" / "utt2spk")) == 6
    make_spk_dir(tmp_path / "one", 1)
    monkeypatch.setattr(sys, "argv", ["pase-split-data", str(tmp_path / "one"),
                                      str(tmp_path / "a"), str(tmp_path / "b")])
    with pytest.raises(SystemExit) as exc:
        split_cli()
    assert exc.value.code == 1
    assert "pase-split-data: error:" in capsys.readouterr().err
