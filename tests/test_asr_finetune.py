"""Fine-tuning the encoder with the hybrid MLP from the waveform."""
import numpy as np
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
