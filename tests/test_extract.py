"""pase-extract end to end on a small synthetic data dir: ark/scp, CMVN, data dir, sharding, errors."""
import os
import subprocess
import sys
from pathlib import Path

import kaldi_native_io
import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch

from pase.bin.extract import main
from pase.errors import PaseError
from pase.io import DataDir, PaseInputError, compute_cmvn_stats, read_audio, read_kaldi_map
from pase.models import wf_builder

ROOT = Path(__file__).resolve().parents[1]


def voiced(seconds, f0, sr=16000, seed=0):
    """A crude vowel: harmonics of f0 with a slow amplitude envelope, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(t.size)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two speakers; WAV, FLAC, 8 kHz audio, a pipe command and a segmented recording."""
    root = tmp_path_factory.mktemp("corpus")
    wav = root / "wav"
    wav.mkdir()
    sf.write(wav / "a1.wav", voiced(1.0, 120), 16000)
    sf.write(wav / "a2.flac", voiced(1.37, 130, seed=1), 16000)
    sf.write(wav / "b1.wav", voiced(0.8, 210, seed=2, sr=8000), 8000)
    sf.write(wav / "b2.wav", voiced(1.2, 220, seed=3), 16000)
    sf.write(wav / "long.wav", voiced(3.0, 200, seed=4), 16000)
    data = root / "data" / "test"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text(
        f"a1 {wav / 'a1.wav'}\na2 {wav / 'a2.flac'}\nb1 {wav / 'b1.wav'}\n"
        f"b2 cat {wav / 'b2.wav'} |\nrec {wav / 'long.wav'}\n")
    (data / "segments").write_text(
        "a1 a1 0 -1\na2 a2 0 -1\nb1 b1 0 -1\nb2 b2 0 -1\nb3 rec 0.5 1.75\nb4 rec 1.75 3.0\n")
    (data / "utt2spk").write_text("a1 spkA\na2 spkA\nb1 spkB\nb2 spkB\nb3 spkB\nb4 spkB\n")
    (data / "text").write_text("a1 HELLO\na2 WORLD\nb1 FOO\nb2 BAR\nb3 BAZ\nb4 QUX\n")
    return data


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A PASE+ encoder with non-trivial weights and BN statistics, saved as a raw state_dict."""
    torch.manual_seed(3)
    model = wf_builder("cfg/frontend/PASE+.cfg")
    model.train()
    with torch.no_grad():
        for _ in range(3):  # BN running statistics from real forward passes
            model(torch.randn(2, 1, 8000) * 0.1)
        for m in model.modules():
            if isinstance(m, torch.nn.PReLU):
                m.weight.uniform_(0.0, 0.3)
    path = tmp_path_factory.mktemp("ckpt") / "FE_e0.ckpt"
    torch.save(model.state_dict(), path)
    return path, model.eval()


@pytest.fixture
def extract(checkpoint):
    """Run pase-extract in-process with the test checkpoint."""
    def run(data, dump, *extra):
        main([str(data), str(dump), "--ckpt", str(checkpoint[0]), "--no-progress", *extra])
    return run


def test_features_equal_direct_encoding(extract, corpus, checkpoint, tmp_path):
    _, model = checkpoint
    dump = tmp_path / "dump"
    extract(corpus, dump, "--batch-size", "4", "--out-data-dir", str(tmp_path / "out"))
    feats = dict(kaldiio.load_scp(str(dump / "feats.scp")))
    data = DataDir.load(corpus)
    assert sorted(feats) == [u.utt_id for u in data.utterances]
    for utt in data.utterances:
        wav = read_audio(utt.source, start=utt.start, end=utt.end)
        with torch.no_grad():
            ref = model(torch.from_numpy(wav).view(1, 1, -1))[0].T.numpy()
        assert feats[utt.utt_id].dtype == np.float32
        assert feats[utt.utt_id].shape == (model.num_frames(len(wav)), 256)
        np.testing.assert_allclose(feats[utt.utt_id], ref, atol=2e-4, rtol=1e-4)


def test_independent_reader_and_output_data_dir(extract, corpus, tmp_path):
    dump, out = tmp_path / "dump", tmp_path / "test_pase"
    extract(corpus, dump, "--out-data-dir", str(out))
    ours = dict(kaldiio.load_scp(str(out / "feats.scp")))
    reader = kaldi_native_io.SequentialFloatMatrixReader(f"scp:{out / 'feats.scp'}")
    seen = 0
    for key, mat in reader:
        np.testing.assert_array_equal(np.asarray(mat), ours[key])
        seen += 1
    assert seen == len(ours) == 6
    # A Kaldi data dir: sorted, consistent utt2spk/spk2utt, frames listed, the scp's ark absolute.
    for name in ("wav.scp", "segments", "utt2spk", "spk2utt", "text", "feats.scp", "utt2num_frames", "cmvn.scp"):
        keys = [line.split()[0] for line in (out / name).read_text().splitlines()]
        assert keys == sorted(keys, key=str.encode), name
    assert read_kaldi_map(out / "spk2utt") == {"spkA": "a1 a2", "spkB": "b1 b2 b3 b4"}
    frames = {k: int(v) for k, v in read_kaldi_map(out / "utt2num_frames").items()}
    assert frames == {k: v.shape[0] for k, v in ours.items()}
    assert all(Path(v.rsplit(":", 1)[0]).is_absolute() for v in read_kaldi_map(out / "feats.scp").values())
    # Per-speaker CMVN in Kaldi's layout, readable by kaldi-native-io as a double matrix.
    cmvn = kaldi_native_io.RandomAccessDoubleMatrixReader(f"scp:{out / 'cmvn.scp'}")
    for spk, utts in (("spkA", ["a1", "a2"]), ("spkB", ["b1", "b2", "b3", "b4"])):
        stats = np.asarray(cmvn[spk])
        cat = np.concatenate([ours[u] for u in utts]).astype(np.float64)
        np.testing.assert_allclose(stats[0, :-1], cat.sum(0), rtol=1e-6)
        np.testing.assert_allclose(stats[1, :-1], (cat ** 2).sum(0), rtol=1e-6)
        assert stats[0, -1] == len(cat) and stats[1, -1] == 0
        np.testing.assert_allclose(stats, compute_cmvn_stats(ours[u] for u in utts))


def test_batch_size_and_sharding_do_not_change_features(extract, corpus, tmp_path):
    extract(corpus, tmp_path / "one", "--batch-size", "1", "--out-data-dir", str(tmp_path / "d1"))
    extract(corpus, tmp_path / "nj", "--nj", "2", "--batch-size", "3", "--out-data-dir", str(tmp_path / "d2"))
    assert (tmp_path / "nj" / "feats.1.ark").exists() and (tmp_path / "nj" / "feats.2.ark").exists()
    a = dict(kaldiio.load_scp(str(tmp_path / "d1" / "feats.scp")))
    b = dict(kaldiio.load_scp(str(tmp_path / "d2" / "feats.scp")))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=2e-4, rtol=1e-4)


def test_bn_reestimation_is_the_same_in_every_shard(extract, corpus, checkpoint, tmp_path):
    extract(corpus, tmp_path / "plain", "--out-data-dir", str(tmp_path / "p"))
    extract(corpus, tmp_path / "one", "--bn-reestimate", "--out-data-dir", str(tmp_path / "d1"))
    extract(corpus, tmp_path / "nj", "--bn_reestimate", "--nj", "2", "--out-data-dir", str(tmp_path / "d2"))
    plain = dict(kaldiio.load_scp(str(tmp_path / "p" / "feats.scp")))
    a = dict(kaldiio.load_scp(str(tmp_path / "d1" / "feats.scp")))
    b = dict(kaldiio.load_scp(str(tmp_path / "d2" / "feats.scp")))
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=2e-4, rtol=1e-4)
        assert np.abs(a[k] - plain[k]).max() > 1e-2  # the statistics did change
    # Re-estimated statistics describe this audio: the output BatchNorm (affine-free) then gives
    # frames of about zero mean and unit variance over the data.
    cat = np.concatenate(list(a.values()))
    assert abs(float(cat.mean())) < 0.3 and 0.5 < float(cat.var()) < 1.5


def test_peak_norm_and_bf16(extract, corpus, tmp_path):
    extract(corpus, tmp_path / "fp32", "--out-data-dir", str(tmp_path / "a"), "--peak-norm")
    extract(corpus, tmp_path / "bf16", "--out-data-dir", str(tmp_path / "b"), "--peak-norm", "--bf16")
    a = dict(kaldiio.load_scp(str(tmp_path / "a" / "feats.scp")))
    b = dict(kaldiio.load_scp(str(tmp_path / "b" / "feats.scp")))
    for k in a:
        cos = (a[k] * b[k]).sum(1) / (np.linalg.norm(a[k], axis=1) * np.linalg.norm(b[k], axis=1))
        assert cos.mean() > 0.99, (k, cos.mean())


def test_bad_utterance_fails_without_touching_previous_outputs(extract, corpus, tmp_path):
    dump = tmp_path / "dump"
    extract(corpus, dump, "--out-data-dir", str(tmp_path / "out"))
    before = {p.name: p.read_bytes() for p in dump.iterdir() if p.is_file()}
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("segments", "utt2spk", "text"):
        (bad / name).write_text((corpus / name).read_text())
    (bad / "wav.scp").write_text((corpus / "wav.scp").read_text().replace("a2.flac", "missing.flac"))
    with pytest.raises(PaseInputError, match=r"missing\.flac.*'a2'.*not found"):
        extract(bad, dump, "--out-data-dir", str(tmp_path / "out"))
    after = {p.name: p.read_bytes() for p in dump.iterdir() if p.is_file()}
    # No .tmp left, old ark/scp intact; only the job's done.1 is gone, so no merge takes the old job.
    assert after == {k: v for k, v in before.items() if k != "done.1"}
    with pytest.raises(PaseError, match=r"done\.1 not found: job 1 of 1 has not finished"):
        extract(bad, dump, "--merge")
    # --skip-bad: the rest is extracted, the bad one listed and left out of the data dir.
    extract(bad, tmp_path / "dump2", "--skip-bad", "--out-data-dir", str(tmp_path / "out2"))
    assert "a2" in read_kaldi_map(tmp_path / "dump2" / "skipped")
    assert "a2" not in read_kaldi_map(tmp_path / "out2" / "feats.scp")
    assert read_kaldi_map(tmp_path / "out2" / "spk2utt")["spkA"] == "a1"


def test_too_short_and_silent_utterances(extract, corpus, tmp_path):
    d = tmp_path / "short"
    d.mkdir()
    sf.write(tmp_path / "short.wav", voiced(0.02, 150), 16000)
    sf.write(tmp_path / "zero.wav", np.zeros(16000, np.float32), 16000)
    (d / "wav.scp").write_text(f"s1 {tmp_path / 'short.wav'}\n")
    with pytest.raises(PaseInputError, match=r"'s1'.*too short: 320 samples.*minimum is 471 samples"):
        extract(d, tmp_path / "dump")
    (d / "wav.scp").write_text(f"z1 {tmp_path / 'zero.wav'}\n")
    with pytest.raises(PaseInputError, match=r"'z1'.*all-zero"):
        extract(d, tmp_path / "dump")
    assert not list((tmp_path / "dump").glob("feats*"))


def test_cli_reports_bad_input_in_one_line(corpus, checkpoint, tmp_path):
    d = tmp_path / "malformed"
    d.mkdir()
    (d / "wav.scp").write_text("u1 /x.wav\nu2\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "pase.bin.extract", str(d), str(tmp_path / "dump"),
                           "--random-init"], capture_output=True, text=True, env=env)
    assert proc.returncode == 1
    assert "pase-extract: error:" in proc.stderr and "wav.scp:2" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "pase.bin.extract", str(corpus), str(tmp_path / "dump"),
                           "--config", "cfg/frontend/PASE.cfg", "--ckpt", str(checkpoint[0])],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and "does not match the model" in proc.stderr
