"""The hybrid MLP: context windows, length matching, priors, training schedule, scaled likelihoods."""
from pathlib import Path

import numpy as np
import pytest
import torch

from pase.asr.mlp import (AlignmentError, FrameSet, HybridMLP, MlpOptions, frame_error, log_priors,
                          match_lengths, scaled_loglikes, train_mlp)

ROOT = Path(__file__).resolve().parents[1]


def test_windows_stay_inside_their_utterance():
    feats = {"a": np.arange(4, dtype=np.float32)[:, None], "b": 10 + np.arange(3, dtype=np.float32)[:, None]}
    fs = FrameSet(feats, context=2)
    assert fs.input_dim == 5
    w = fs.windows(torch.arange(len(fs)))
    # utterance a: frames 0..3, edges repeated; utterance b starts at row 4
    assert w[0].tolist() == [0, 0, 0, 1, 2]
    assert w[3].tolist() == [1, 2, 3, 3, 3]
    assert w[4].tolist() == [10, 10, 10, 11, 12]
    assert torch.equal(fs.utterance("b"), w[4:])


def test_length_matching_trims_known_extra_frames_only():
    labels = np.zeros(10, np.int64)
    assert len(match_lengths(np.zeros((12, 3)), labels, "u")) == 10
    with pytest.raises(AlignmentError, match=r"'u': 15 feature frames vs 10"):
        match_lengths(np.zeros((15, 3)), labels, "u")
    with pytest.raises(AlignmentError, match="9 feature frames"):
        match_lengths(np.zeros((9, 3)), labels, "u")
    with pytest.raises(AlignmentError, match="no alignment for 1"):
        FrameSet({"u": np.zeros((3, 2)), "v": np.zeros((3, 2))}, {"u": np.zeros(3, np.int64)})


def test_log_priors():
    p = log_priors([np.array([0, 0, 1]), np.array([1, 1])], 3)
    counts = np.array([3, 4, 1.0])  # +1 smoothing
    np.testing.assert_allclose(p, np.log(counts / counts.sum()))


def toy_sets(seed: int):
    """Frames whose label is the argmax of a noisy one-hot-ish code, two utterances per set."""
    rng = np.random.default_rng(seed)

    def utt(n):
        lab = rng.integers(0, 4, n)
        x = np.eye(4)[lab] * 2 + 0.5 * rng.standard_normal((n, 4))
        return x.astype(np.float32), lab
    train = [utt(300) for _ in range(3)]
    dev = [utt(200) for _ in range(2)]
    mk = lambda items: ({f"u{i}": f for i, (f, _) in enumerate(items)}, {f"u{i}": lab for i, (_, lab) in enumerate(items)})
    return FrameSet(*mk(train), context=1), FrameSet(*mk(dev), context=1)


def test_training_learns_and_halves_the_learning_rate():
    train, dev = toy_sets(0)
    opts = MlpOptions(hidden=32, layers=2, epochs=8, batch_size=32, lr=0.2, improvement_threshold=0.5)
    model, history = train_mlp(train, dev, 4, opts, torch.device("cpu"))
    assert history[-1]["dev_frame_error"] < 0.15
    assert frame_error(model, dev, torch.device("cpu")) == pytest.approx(min(h["dev_frame_error"] for h in history))
    lrs = [h["lr"] for h in history]
    assert lrs[0] == 0.2 and lrs[-1] < 0.2 and all(b in (a, a * 0.5) for a, b in zip(lrs, lrs[1:]))


def test_scaled_loglikes_are_log_posteriors_minus_priors():
    train, _ = toy_sets(1)
    model = HybridMLP(train.input_dim, 4, hidden=16, layers=1)
    priors = log_priors([train.labels.numpy()], 4)
    out = scaled_loglikes(model, train, priors, torch.device("cpu"))
    model.eval()
    with torch.no_grad():
        direct = model(train.utterance("u0")).numpy() - priors
    np.testing.assert_allclose(out["u0"], direct, rtol=1e-5, atol=1e-5)
    assert out["u0"].shape == (300, 4)


def test_baseline_features_for_the_mlp(tiny_corpus, tmp_path):
    """The TIMIT recipe's MFCC (39) / fbank (120) inputs: pase-extract with its conf, the MLP
    reading them mean-normalised per speaker through cmvn.scp."""
    from pase.bin.extract import main
    from pase.asr.features import load_features
    from pase.io import read_kaldi_map
    for kind, dim in (("mfcc", 39), ("fbank", 120)):
        out = tmp_path / f"data_{kind}"
        main([str(tiny_corpus), str(tmp_path / f"dump_{kind}"), "--out_data_dir", str(out), "--feats_type", kind,
              "--feats_config", str(ROOT / f"egs/timit/hybrid1/conf/{kind}.yaml"), "--no_progress"])
        feats = load_features(out)
        assert set(feats) == set(read_kaldi_map(tiny_corpus / "wav.scp"))
        assert all(m.shape[1] == dim for m in feats.values())
        spk0 = np.concatenate([m for u, m in feats.items() if u.startswith("spk0")])
        np.testing.assert_allclose(spk0.mean(0), 0, atol=1e-3)


def test_hybrid_model_round_trip_and_file_format(tmp_path):
    """save_hybrid_model writes the format pase-decode has always read; load_hybrid_model restores it."""
    import yaml
    from pase.asr.model_io import load_hybrid_model, save_hybrid_model
    opts = MlpOptions(hidden=8, layers=2, context=1)
    model = HybridMLP(6, 4, opts.hidden, opts.layers, opts.dropout).eval()
    priors = log_priors([np.array([0, 1, 1, 3])], 4)
    stats = {"train_frames": 4, "train_seconds": 0.1, "train_frames_per_second": 40.0}
    save_hybrid_model(tmp_path, model, priors, opts, 6, 4, stats)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final.pt", "log_priors.npy", "mlp.yaml"]
    assert list(yaml.safe_load((tmp_path / "mlp.yaml").read_text())) == [
        "options", "input_dim", "num_pdfs", "train_frames", "train_seconds", "train_frames_per_second"]
    loaded = load_hybrid_model(tmp_path)
    assert not loaded.finetuned and loaded.num_pdfs == 4 and loaded.options == opts
    np.testing.assert_array_equal(loaded.priors, priors)
    x = torch.randn(3, 6)
    torch.testing.assert_close(loaded.model.eval()(x), model(x))


def test_hybrid_model_load_errors_name_the_file(tmp_path):
    from pase.asr.model_io import load_hybrid_model, save_hybrid_model
    from pase.errors import PaseError
    with pytest.raises(PaseError, match="mlp.yaml: missing"):
        load_hybrid_model(tmp_path)
    opts = MlpOptions(hidden=8, layers=1, context=0)
    save_hybrid_model(tmp_path, HybridMLP(2, 3, 8, 1), log_priors([], 3), opts, 2, 3, {})
    (tmp_path / "final.pt").write_bytes((tmp_path / "final.pt").read_bytes()[:100])
    with pytest.raises(PaseError, match="final.pt: cannot load the model"):
        load_hybrid_model(tmp_path)
