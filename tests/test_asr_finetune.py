"""Fine-tuning the encoder with the hybrid MLP from the waveform."""
import numpy as np
import pytest
import torch

from conftest import TINY_FE
from pase.asr.finetune import EncoderHybrid, FinetuneOptions, frame_error, train_finetune
from pase.asr.mlp import MlpOptions
from pase.models import wf_builder


def toy_utterances(n: int, seed: int):
    """Frame labels: 1 where a loud 300 Hz tone plays, 0 in near-silence (random segments)."""
    rng = np.random.default_rng(seed)
    wavs, alis = {}, {}
    for i in range(n):
        frames = 120
        lab = np.repeat(rng.integers(0, 2, 6), 20)
        t = np.arange(frames * 160) / 16000
        wav = np.where(np.repeat(lab, 160) == 1, 0.8 * np.sin(2 * np.pi * 300 * t), 0.003 * rng.standard_normal(t.size))
        wavs[f"u{i}"], alis[f"u{i}"] = wav.astype(np.float32), lab.astype(np.int64)
    return wavs, alis


def test_encoder_hybrid_shapes_and_splicing():
    torch.manual_seed(0)
    model = EncoderHybrid(wf_builder(TINY_FE), 5, MlpOptions(hidden=16, layers=1, context=2)).eval()
    out = model(torch.randn(2, 1, 3200))
    assert out.shape == (2, 20, 5)
    assert torch.allclose(out.exp().sum(-1), torch.ones(2, 20), atol=1e-5)


def test_finetuning_learns_and_updates_the_encoder():
    torch.manual_seed(0)
    encoder = wf_builder(TINY_FE)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    train, train_ali = toy_utterances(8, 0)
    dev, dev_ali = toy_utterances(3, 1)
    opts = MlpOptions(hidden=32, layers=2, context=2, epochs=4, lr=0.1)
    ft = FinetuneOptions(encoder_lr=1e-3, chunk_frames=60, batch_size=4, steps_per_epoch=15)
    model, history = train_finetune(encoder, train, train_ali, dev, dev_ali, 2, opts, ft, torch.device("cpu"))
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert frame_error(model, dev, dev_ali, torch.device("cpu")) < 0.2
    changed = [k for k, v in model.encoder.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert any(k.startswith("blocks.") for k in changed)


def test_finetuned_model_round_trip(tmp_path):
    """A fine-tuned model reloads with its encoder (rebuilt from mlp.yaml's finetune.pase_cfg)."""
    from pase.asr.mlp import log_priors
    from pase.asr.model_io import load_hybrid_model, save_hybrid_model
    torch.manual_seed(0)
    encoder = wf_builder(TINY_FE)
    opts = MlpOptions(hidden=16, layers=1, context=2)
    model = EncoderHybrid(encoder, 3, opts).eval()
    save_hybrid_model(tmp_path, model, log_priors([], 3), opts, model.mlp.hidden[0].in_features, 3, {},
                      {"pase_cfg": encoder.config})
    loaded = load_hybrid_model(tmp_path)
    assert loaded.finetuned
    x = torch.randn(1, 1, 3200)
    torch.testing.assert_close(loaded.model.eval()(x), model(x))


def test_a_failed_save_leaves_the_previous_model_whole(tmp_path, monkeypatch):
    """A full disk while final.pt is written: the previous final.pt (the recipes' stamp of a
    complete dir) stays byte-identical and no temporary file is left."""
    import errno

    from pase.asr.mlp import log_priors
    from pase.asr.model_io import save_hybrid_model
    opts = MlpOptions(hidden=16, layers=1, context=2)
    model = EncoderHybrid(wf_builder(TINY_FE), 3, opts).eval()
    args = (log_priors([], 3), opts, model.mlp.hidden[0].in_features, 3, {}, {"pase_cfg": model.encoder.config})
    save_hybrid_model(tmp_path, model, *args)
    before = (tmp_path / "final.pt").read_bytes()

    def full_disk(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_hybrid_model(tmp_path, model, *args)
    assert (tmp_path / "final.pt").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final.pt", "log_priors.npy", "mlp.yaml"]


def test_frozen_encoder_trains_the_mlp_and_layer_weights_only_and_reloads(tmp_path):
    """--freeze_encoder: the encoder (parameters and BatchNorm statistics) stays bit-identical, the
    MLP and the softmax weights of every layer learn; the model dir rebuilds the same model."""
    from pase.asr.mlp import log_priors
    from pase.asr.model_io import load_hybrid_model, save_hybrid_model
    from pase.models.downstream import FrontOptions
    from pase.models.featurizer import layer_names
    torch.manual_seed(0)
    encoder = wf_builder(TINY_FE)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    train, train_ali = toy_utterances(8, 0)
    dev, dev_ali = toy_utterances(3, 1)
    opts = MlpOptions(hidden=32, layers=2, context=2, epochs=4, lr=0.1)
    ft = FinetuneOptions(chunk_frames=60, batch_size=4, steps_per_epoch=15)
    model, history = train_finetune(encoder, train, train_ali, dev, dev_ali, 2, opts, ft, torch.device("cpu"),
                                    FrontOptions(freeze_encoder=True, encoder_layers="all"))
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert frame_error(model, dev, dev_ali, torch.device("cpu")) < 0.2
    assert all(torch.equal(v, before[k]) for k, v in model.encoder.state_dict().items())
    weights = model.layer_weights()
    assert list(weights) == layer_names(encoder) and abs(sum(weights.values()) - 1) < 1e-6
    assert max(abs(w - 1 / len(weights)) for w in weights.values()) > 1e-3
    save_hybrid_model(tmp_path, model, log_priors([], 2), opts, model.mlp.hidden[0].in_features, 2, {},
                      {"pase_cfg": encoder.config})
    loaded = load_hybrid_model(tmp_path)
    assert loaded.finetuned and loaded.model.front == model.front and loaded.info["layer_weights"] == \
        pytest.approx(weights, abs=1e-6)
    x = torch.from_numpy(dev["u0"]).view(1, 1, -1)
    assert torch.equal(loaded.model.eval()(x), model.eval()(x))


def write_aligned_dir(root, name: str, wavs: dict, alis: dict) -> None:
    """A data dir of `wavs` (one speaker per utterance)."""
    import soundfile as sf
    d = root / name
    (d / "wav").mkdir(parents=True)
    for u, w in wavs.items():
        sf.write(d / "wav" / f"{u}.wav", w, 16000, subtype="FLOAT")
    (d / "wav.scp").write_text("".join(f"{u} {d / 'wav' / u}.wav\n" for u in sorted(wavs)))
    (d / "utt2spk").write_text("".join(f"{u} {u}\n" for u in sorted(wavs)))
    (d / "spk2utt").write_text("".join(f"{u} {u}\n" for u in sorted(wavs)))


@pytest.fixture(scope="module")
def frozen_mlp_dir(tmp_path_factory):
    """pase-train-mlp --freeze_encoder --encoder_layers all on toy data dirs and a GMM dir holding
    their pdf alignments: (out dir, encoder checkpoint, dev data dir)."""
    import yaml
    from pase.asr.align import write_alignments
    from pase.bin.train_mlp import main
    root = tmp_path_factory.mktemp("frozen_mlp")
    torch.manual_seed(0)
    torch.save(wf_builder(TINY_FE).state_dict(), root / "fe.ckpt")
    (root / "fe.yaml").write_text(yaml.safe_dump(TINY_FE))
    (root / "gmm").mkdir()
    (root / "gmm" / "num_pdfs").write_text("2\n")
    for name, (n, seed) in {"train": (8, 0), "dev": (3, 10)}.items():
        wavs, alis = toy_utterances(n, seed)
        alis = {f"{name}{u}": a for u, a in alis.items()}
        write_aligned_dir(root, name, {f"{name}{u}": w for u, w in wavs.items()}, alis)
        write_alignments(root / "gmm" / ("pdf_ali.ark" if name == "train" else "pdf_ali_dev.ark"), alis)
    main(["--train", str(root / "train"), "--dev", str(root / "dev"), "--gmm", str(root / "gmm"),
          "--out", str(root / "mlp"), "--freeze_encoder", "--encoder_layers", "all", "--fe_cfg", str(root / "fe.yaml"),
          "--fe_ckpt", str(root / "fe.ckpt"), "--hidden", "32", "--layers", "2", "--context", "2", "--epochs", "3",
          "--lr", "0.1", "--chunk_frames", "60", "--steps_per_epoch", "10", "--num_threads", "1", "--device", "cpu"])
    return root / "mlp", root / "fe.ckpt", root / "dev"


def test_train_mlp_frozen_encoder_writes_the_layer_weights(frozen_mlp_dir):
    import json
    import yaml
    from pase.asr.loglikes import hybrid_loglikes
    from pase.asr.model_io import load_hybrid_model
    from pase.models.downstream import read_layer_weights
    out, ckpt, dev = frozen_mlp_dir
    history = json.loads((out / "history.json").read_text())
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    info = yaml.safe_load((out / "mlp.yaml").read_text())
    assert info["finetune"]["freeze_encoder"] is True and info["finetune"]["encoder_layers"].split(",")[-1] == "final"
    loaded = load_hybrid_model(out)
    pretrained = torch.load(ckpt, weights_only=True)
    assert all(torch.equal(v, pretrained[k]) for k, v in loaded.model.encoder.state_dict().items())
    written = read_layer_weights(out / "layer_weights")
    learnt = loaded.model.layer_weights()
    assert written == pytest.approx(learnt, abs=5e-5) and info["layer_weights"] == pytest.approx(learnt, abs=1e-6)
    assert len(set(written.values())) > 1  # learnt, no longer all equal
    scores = hybrid_loglikes(loaded, dev, torch.device("cpu"))  # pase-decode reads the waveforms through it
    assert sorted(scores) == ["devu0", "devu1", "devu2"] and all(s.shape == (120, 2) for s in scores.values())


def test_hybrid_recipe_results_list_the_layer_weights(frozen_mlp_dir, tmp_path):
    """hybrid.sh stage 6 (decodes up to date) writes RESULTS.md with the learnt layer weights."""
    import os
    import shutil
    import subprocess
    import time
    from conftest import recipe_tree
    from pase.models.downstream import read_layer_weights
    env = recipe_tree(tmp_path)
    recipe = tmp_path / "egs/timit/hybrid1"
    mlp = recipe / "exp/mlp_pase_frozen_all"
    shutil.copytree(frozen_mlp_dir[0], mlp)
    for s in ("dev", "test"):
        (mlp / f"decode_{s}").mkdir()
        (mlp / f"decode_{s}" / "best_per").write_text(f"%PER 30.00 [ 3 / 10 ] exp/{mlp.name}/decode_{s} (standard scoring)\n")
    later = time.time() + 5
    for f in mlp.glob("decode_*/best_per"):
        os.utime(f, (later, later))
    proc = subprocess.run(["./hybrid.sh", "--stage", "6", "--freeze_encoder", "true"], cwd=recipe,
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = (recipe / "RESULTS.md").read_text()
    assert "exp/mlp_pase_frozen_all/decode_test (standard scoring)" in results
    table = results.split("## Encoder layer weights of exp/mlp_pase_frozen_all")[1]
    for name, w in read_layer_weights(mlp / "layer_weights").items():
        assert f"| {name} | {w:.4f} |" in table
