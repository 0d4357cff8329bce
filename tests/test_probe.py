"""pase-probe: split rules, the linear probe on separable and shuffled labels, cache, layers, BN
handling, errors; and (when ../shared/data is there) a real-speech probe."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_data_dir
from pase.bin import probe as probe_cli
from pase.errors import PaseError
from pase.io import DataDir
from pase.models.batchnorm import audio_chunks, batchnorm_layers, reestimate_batchnorm
from pase.models.frontend import wf_builder
from pase.probe import EncoderSpec, ProbeOptions, run_probe
from pase.probe import features as probe_features
from pase.probe.split import ProbeError, draw_train, read_items, split_test

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "librispeech-samples" / "LibriSpeech"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    # 4 "speakers" (pitch and timbre) x 6 utterances of 0.6-1 s.
    return make_data_dir(tmp_path_factory.mktemp("probe"), speakers=4, utts=6, seconds=(0.6, 1.0), seed=3)


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> Path:
    """A separable case: class k is a tone at 300 (k + 1) Hz in light noise, 6 items per class."""
    import soundfile as sf
    root = tmp_path_factory.mktemp("tones")
    rng = np.random.default_rng(0)
    scp, u2s = [], []
    for k in range(4):
        for i in range(6):
            t = np.arange(int(16000 * rng.uniform(0.5, 0.8))) / 16000
            x = 0.3 * np.sin(2 * np.pi * 300 * (k + 1) * t + rng.uniform(0, 6)) + 0.01 * rng.standard_normal(len(t))
            path = root / f"c{k}-{i}.wav"
            sf.write(path, x.astype(np.float32), 16000)
            scp.append(f"c{k}-{i} {path}\n")
            u2s.append(f"c{k}-{i} c{k}\n")
    data = root / "data"
    data.mkdir()
    (data / "wav.scp").write_text("".join(scp))
    (data / "utt2spk").write_text("".join(u2s))
    return data


def opts(tmp: Path, **kw) -> ProbeOptions:
    base = dict(few=3, test_per_class=2, draws=3, progress=False, cache_dir=tmp / "cache")
    base.update(kw)
    return ProbeOptions(**base)


def test_split_and_draws(corpus):
    items = read_items(DataDir.load(corpus))
    test, pool = split_test(items, few=3, test_per_class=2, test_ids=None, seed=[0, 0])
    assert len(test) == 8 and all(len(v) == 4 for v in pool.values())
    assert not {t.item_id for t in test} & {i.item_id for v in pool.values() for i in v}
    train = draw_train(pool, 3, seed=1)
    assert len(train) == 12 and train == draw_train(pool, 3, seed=1)
    chopped = read_items(DataDir.load(corpus), chop=3)
    assert len(chopped) == 3 * len(items)
    assert chopped[1].item_id == f"{items[0].item_id}-p3-1" and chopped[1].start == pytest.approx(1 / 3)


def test_separable_labels_reach_one_and_shuffled_sit_at_chance(tones, tmp_path):
    corpus = tones
    r = run_probe(corpus, EncoderSpec(feats="mfcc"), opts(tmp_path))
    assert r["classes"] == 4 and r["train_examples"] == 12 and r["test_examples"] == 8
    assert r["chance"] == 0.25 and r["results"][0]["accuracy"] == 1.0 and r["results"][0]["std"] == 0.0
    # Labels unrelated to the audio: 24 recordings of the same white-noise process in 4 classes.
    import soundfile as sf
    rng = np.random.default_rng(0)
    noise = tmp_path / "noise"
    noise.mkdir()
    scp = []
    for i in range(24):
        sf.write(noise / f"n{i:02d}.wav", (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)
        scp.append(f"n{i:02d} {noise / f'n{i:02d}.wav'}\n")
    (noise / "wav.scp").write_text("".join(scp))
    (noise / "utt2spk").write_text("".join(f"n{i:02d} c{i % 4}\n" for i in range(24)))
    accs = []
    for seed in range(6):
        r = run_probe(noise, EncoderSpec(feats="mfcc"), opts(tmp_path, split_seed=seed))
        accs.append(r["results"][0]["accuracy"])
    assert abs(np.mean(accs) - 0.25) < 0.12


def test_random_init_pase_all_layers_noise_and_cache(corpus, tmp_path, monkeypatch):
    o = opts(tmp_path, layers="all", test_snr=(None, 0.0), draws=2)
    r1 = run_probe(corpus, EncoderSpec(seed=0), o)
    names = [x["layer"] for x in r1["results"] if x["condition"] == "clean"]
    assert names == [f"skip{i}" for i in range(1, 8)] + ["rnn", "final"]
    clean = {x["layer"]: x["accuracy"] for x in r1["results"] if x["condition"] == "clean"}
    noisy = {x["layer"]: x["accuracy"] for x in r1["results"] if x["condition"] == "snr0"}
    assert clean["final"] >= 0.75          # speaker pitch/timbre survive a random encoder
    assert np.mean(list(noisy.values())) < np.mean(list(clean.values()))  # 0 dB white noise hurts

    # A rerun reads every feature from the cache: the encoder never runs.
    def fail(*a, **k):
        raise AssertionError("encoded again despite the cache")
    monkeypatch.setattr(probe_features, "encode_items", fail)
    import pase.probe.run as run_mod
    monkeypatch.setattr(run_mod, "encode_items", fail)
    r2 = run_probe(corpus, EncoderSpec(seed=0), o)
    assert r2["results"] == r1["results"]
    # Another seed is another encoder: not taken from the cache.
    with pytest.raises(AssertionError, match="encoded again"):
        run_probe(corpus, EncoderSpec(seed=1), o)


def test_cli_json_and_checkpoint(corpus, tmp_path, capsys):
    torch.manual_seed(5)
    enc = wf_builder("cfg/frontend/PASE+.cfg")
    ckpt = tmp_path / "FE_e0.ckpt"
    torch.save(enc.state_dict(), ckpt)
    out = tmp_path / "probe.json"
    args = [str(corpus), "--few", "3", "--test_per_class", "2", "--draws", "2", "--cache_dir", str(tmp_path / "c"),
            "--no_progress", "--device", "cpu"]
    r_ckpt = probe_cli.main(args + ["--ckpt", str(ckpt), "--out_json", str(out)])
    assert "final" in capsys.readouterr().out
    assert json.loads(out.read_text())["results"] == r_ckpt["results"]
    # The checkpoint holds seed 5's init, so it probes exactly like --seed 5 (kebab spelling too).
    r_seed = probe_cli.main(args + ["--seed", "5"])
    assert r_seed["results"][0]["accuracies"] == r_ckpt["results"][0]["accuracies"]
    r_bn = probe_cli.main(args + ["--fe-ckpt", str(ckpt), "--bn-stats", "reestimate"])
    assert r_bn["encoder"].endswith("BN stats re-estimated")


def test_bn_reestimation_matches_the_data():
    torch.manual_seed(0)
    enc = wf_builder("cfg/frontend/PASE+.cfg").eval()
    rng = np.random.default_rng(0)
    loud = [(3.0 * rng.standard_normal(16000)).astype(np.float32) for _ in range(4)]
    n = reestimate_batchnorm(enc, loud, chunk=8000, batch_size=4)
    assert n == 8 and not enc.training
    first = batchnorm_layers(enc)[0]
    # The first block's running variance now reflects the loud input instead of the init's 1.
    assert float(first.running_var.mean()) > 2.0
    assert all(bn.momentum == 0.1 for bn in batchnorm_layers(enc))
    assert len(audio_chunks([np.zeros(100), np.zeros(30)], 40, 10)) == 2


def test_bad_inputs(corpus, tmp_path):
    with pytest.raises(ProbeError, match=r"4 class\(es\) have fewer examples than --few 5 \+ --test_per_class 2.*spk0"):
        run_probe(corpus, EncoderSpec(feats="mfcc"), opts(tmp_path, few=5))
    with pytest.raises(PaseError, match="not a layer of this encoder"):
        run_probe(corpus, EncoderSpec(seed=0), opts(tmp_path, layers="12"))
    with pytest.raises(ProbeError, match="label file not found"):
        run_probe(corpus, EncoderSpec(feats="mfcc"), opts(tmp_path, labels="utt2label"))
    partial = tmp_path / "partial"
    partial.write_text("spk0-utt0 a\n")
    with pytest.raises(ProbeError, match="no label for 23 of 24"):
        run_probe(corpus, EncoderSpec(feats="mfcc"), opts(tmp_path, labels=str(partial)))
    empty = tmp_path / "empty_list"
    empty.write_text("")
    with pytest.raises(ProbeError, match="empty test list"):
        run_probe(corpus, EncoderSpec(feats="mfcc"), opts(tmp_path, test_list=empty))
    torch.manual_seed(0)
    other = tmp_path / "pase_v1.ckpt"
    torch.save(wf_builder("cfg/frontend/PASE.cfg").state_dict(), other)
    with pytest.raises(PaseError, match="does not match the model"):
        run_probe(corpus, EncoderSpec(ckpt=other, fe_cfg="cfg/frontend/PASE+.cfg"), opts(tmp_path))
    assert not list((tmp_path / "cache").glob("*.tmp*"))


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/librispeech-samples is not here")
def test_real_speech_speaker_probe(tmp_path):
    from pase.prep.librispeech import prepare_subset
    out = tmp_path / "test_other"
    assert prepare_subset(SHARED / "test-other", out) == 100
    assert not (out / "text").exists()  # no transcripts in the samples: a data dir without text
    r = run_probe(out, EncoderSpec(feats="mfcc"), ProbeOptions(few=5, test_per_class=5, draws=2, progress=False,
                                                               cache_dir=None))
    assert r["classes"] == 10 and r["results"][0]["accuracy"] > 0.8  # chance 0.1
