"""pase-extract's one output contract for every --feats_type (pase, mfcc, fbank): feats.scp,
per-speaker cmvn.scp, utt2num_frames and every utt2*/spk2* file of the input data dir."""
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from pase.bin.extract import main
from pase.config import ConfigError
from pase.errors import PaseError
from pase.io import DataDir, compute_cmvn_stats, read_audio, read_kaldi_map
from pase.kaldi_feats import kaldi_features

SPK = {"a1": "spkA", "a2": "spkA", "b1": "spkB", "b2": "spkB", "b3": "spkB"}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Two speakers, a segmented recording, labels, genders and a per-utterance file of its own."""
    root = tmp_path_factory.mktemp("feats")
    rng = np.random.default_rng(0)
    for name, seconds in (("a1", 0.7), ("a2", 1.1), ("b1", 0.9), ("rec", 2.0)):
        sf.write(root / f"{name}.wav", (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32), 16000)
    d = root / "data"
    d.mkdir()
    (d / "wav.scp").write_text("".join(f"{r} {root / r}.wav\n" for r in ("a1", "a2", "b1", "rec")))
    (d / "segments").write_text("a1 a1 0 -1\na2 a2 0 -1\nb1 b1 0 -1\nb2 rec 0.0 0.9\nb3 rec 0.9 2.0\n")
    (d / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in SPK.items()))
    (d / "text").write_text("a1 A\na2 B\nb1 C\nb2 D\nb3 E\n")
    (d / "spk2gender").write_text("spkA f\nspkB m\n")
    (d / "utt2label").write_text("a1 x\na2 y\nb1 x\nb2 y\nb3 x\n")
    (d / "utt2lang").write_text("a1 en\na2 en\nb1 fr\nb2 fr\nb3 fr\n")
    return d


def dump(data: Path, out: Path, feats_type: str, *extra: str) -> Path:
    main([str(data), str(out / "dump"), "--out_data_dir", str(out / "data"), "--feats_type", feats_type,
          "--no_progress", *extra])
    return out / "data"


@pytest.mark.parametrize("feats_type", ["pase", "mfcc", "fbank"])
def test_every_feats_type_writes_the_same_contract(data, tmp_path, feats_type):
    extra = ["--random_init", "--fe_cfg", "cfg/frontend/PASE+.cfg"] if feats_type == "pase" else []
    out = dump(data, tmp_path, feats_type, *extra)
    for name in ("feats.scp", "cmvn.scp", "utt2num_frames", "wav.scp", "segments", "utt2spk", "spk2utt", "text",
                 "spk2gender", "utt2label", "utt2lang"):
        assert (out / name).is_file(), name
    for name in ("text", "utt2label", "utt2lang", "spk2gender"):
        assert read_kaldi_map(out / name) == read_kaldi_map(data / name), name
    feats = {u: np.asarray(m) for u, m in kaldiio.load_scp(str(out / "feats.scp")).items()}
    assert sorted(feats) == sorted(SPK)
    assert read_kaldi_map(out / "utt2num_frames") == {u: str(m.shape[0]) for u, m in feats.items()}
    cmvn = kaldiio.load_scp(str(out / "cmvn.scp"))
    assert sorted(cmvn) == ["spkA", "spkB"]
    for spk in cmvn:
        np.testing.assert_allclose(cmvn[spk], compute_cmvn_stats([feats[u] for u, s in SPK.items() if s == spk]),
                                   rtol=1e-6)


def test_kaldi_features_equal_direct_computation_and_deltas_extend_them(data, tmp_path):
    conf = tmp_path / "mfcc.yaml"
    conf.write_text("num_ceps: 13\nuse_energy: false\ndelta_order: 2\n")
    plain = kaldiio.load_scp(str(dump(data, tmp_path / "plain", "mfcc") / "feats.scp"))
    deltas = kaldiio.load_scp(str(dump(data, tmp_path / "deltas", "mfcc", "--feats_config", str(conf)) / "feats.scp"))
    for utt in DataDir.load(data).utterances:
        direct = kaldi_features(read_audio(utt.source, start=utt.start, end=utt.end), "mfcc", {}, 16000)
        np.testing.assert_array_equal(plain[utt.utt_id], direct)
        assert deltas[utt.utt_id].shape == (direct.shape[0], 39)
    static = kaldi_features(read_audio(str(data.parent / "a1.wav")), "mfcc", {"use_energy": False}, 16000)
    np.testing.assert_array_equal(deltas["a1"][:, :13], static)


def test_sharded_dump_equals_one_job(data, tmp_path):
    one = dump(data, tmp_path / "one", "fbank")
    two = dump(data, tmp_path / "two", "fbank", "--nj", "2")
    a, b = (kaldiio.load_scp(str(d / "feats.scp")) for d in (one, two))
    assert list(a) == list(b)
    for utt in a:
        np.testing.assert_array_equal(a[utt], b[utt])
    assert (one / "cmvn.scp").read_text() != "" and read_kaldi_map(two / "utt2label") == read_kaldi_map(one / "utt2label")


def test_a_skipped_utterance_leaves_every_carried_file(data, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in data.iterdir():
        (bad / f.name).write_text(f.read_text())
    sf.write(tmp_path / "tiny.wav", np.full(100, 0.1, dtype=np.float32), 16000)  # shorter than one frame
    (bad / "wav.scp").write_text((data / "wav.scp").read_text().replace(str(data.parent / "a1.wav"),
                                                                         str(tmp_path / "tiny.wav")))
    with pytest.raises(PaseError, match="'a1'.*too short"):
        dump(bad, tmp_path / "strict", "mfcc")
    out = dump(bad, tmp_path / "lenient", "mfcc", "--skip_bad")
    assert "a1" not in read_kaldi_map(out / "utt2label") and "a1" not in read_kaldi_map(out / "utt2num_frames")
    assert "a1" in read_kaldi_map(tmp_path / "lenient" / "dump" / "skipped")


def test_bad_feature_options_are_one_clear_error(data, tmp_path):
    conf = tmp_path / "fbank.yaml"
    conf.write_text("num_mel_bin: 40\n")
    with pytest.raises(ConfigError, match="num_mel_bin"):
        dump(data, tmp_path, "fbank", "--feats_config", str(conf))
    conf.write_text("delta_order: two\n")
    with pytest.raises(ConfigError, match="delta_order"):
        dump(data, tmp_path, "fbank", "--feats_config", str(conf))
    with pytest.raises(PaseError, match="--feats_config is for"):
        dump(data, tmp_path, "pase", "--random_init", "--feats_config", str(conf))
