"""Encoder structure, numerics and checkpoints against the facts of the original PASE/PASE+."""
import math
import pickle
from collections import OrderedDict

import pytest
import torch
import yaml

from pase.config import ConfigError
from pase.models import CheckpointError, wf_builder
from pase.models.frontend import pool_mode
from pase.models.qrnn import QRNNLayer

torch.manual_seed(0)


@pytest.fixture(scope="module")
def pase_plus():
    return wf_builder("cfg/frontend/PASE+.cfg").eval()


@pytest.fixture(scope="module")
def pase_v1():
    return wf_builder("cfg/frontend/PASE.cfg").eval()


def expected_plus_keys():
    """The original PASE+ state_dict key order (fact sheet section 2)."""
    keys = [f"denseskips.{i}.weight" for i in range(7)]
    for b in range(8):
        keys += ["blocks.0.conv.low_hz_", "blocks.0.conv.band_hz_"] if b == 0 else [f"blocks.{b}.conv.weight", f"blocks.{b}.conv.bias"]
        keys += [f"blocks.{b}.norm.{n}" for n in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
        keys.append(f"blocks.{b}.act.weight")
    keys += ["rnn.layers.0.linear.weight", "rnn.layers.0.linear.bias", "W.weight", "W.bias",
             "norm_out.running_mean", "norm_out.running_var", "norm_out.num_batches_tracked"]
    return keys


def test_parameter_counts(pase_plus, pase_v1):
    assert sum(p.numel() for p in pase_plus.parameters()) == 7_832_896
    assert sum(p.numel() for p in pase_v1.parameters()) == 5_818_020


def test_state_dict_keys_order_and_shapes(pase_plus, pase_v1):
    sd = pase_plus.state_dict()
    assert list(sd) == expected_plus_keys() and len(sd) == 78
    chans = [64, 64, 128, 128, 256, 256, 512]
    for i, c in enumerate(chans):
        assert sd[f"denseskips.{i}.weight"].shape == (256, c, 1)
    assert sd["blocks.0.conv.low_hz_"].shape == (64, 1)
    assert sd["blocks.1.conv.weight"].shape == (64, 64, 20)
    assert sd["rnn.layers.0.linear.weight"].shape == (1536, 1024)
    assert sd["W.weight"].shape == (256, 512, 1)
    v1 = pase_v1.state_dict()
    assert not any(k.startswith(("denseskips", "rnn")) for k in v1)
    assert v1["W.weight"].shape == (100, 512, 1)


def test_output_length_formula(pase_plus):
    for t in list(range(pase_plus.min_samples, 5000, 37)) + [16000, 16151, 16159, 32000, 100000]:
        assert pase_plus.num_frames(t) == math.floor(math.ceil(t / 10) / 16), t
    with torch.no_grad():
        for t in (pase_plus.min_samples, 1601, 16159, 32000):
            assert pase_plus(torch.randn(1, 1, t)).shape == (1, 256, pase_plus.num_frames(t))
        assert pase_plus(torch.randn(1, 1, 100000)).shape == (1, 256, 625)


def test_too_short_input_names_minimum(pase_plus):
    with pytest.raises(ValueError, match=rf"minimum of {pase_plus.min_samples} samples"):
        pase_plus(torch.randn(1, 1, pase_plus.min_samples - 1))


def test_sincconv_initial_band_edges(pase_plus):
    sinc = pase_plus.blocks[0].conv
    low, high = sinc.band_edges()
    assert sinc.low_hz_[0].item() == pytest.approx(30.0, abs=1e-3)
    assert sinc.band_hz_[0].item() == pytest.approx(28.7, abs=0.05)
    assert sinc.band_hz_[-1].item() == pytest.approx(325.1, abs=0.2)
    assert (low[0].item(), high[0].item()) == pytest.approx((80.0, 158.7), abs=0.05)
    assert (low[-1].item(), high[-1].item()) == pytest.approx((7624.9, 8000.0), abs=0.1)
    mel = 2595 * torch.log10(1 + (sinc.low_hz_.detach()[:, 0].double()) / 700)
    assert torch.allclose(torch.diff(mel), torch.diff(mel)[0].expand(63), rtol=1e-4)  # mel-spaced
    f = sinc.filters().detach()
    assert torch.allclose(f[:, 0, 125], torch.ones(64))  # centre tap normalised to 1
    assert torch.allclose(f, f.flip(-1))  # linear phase
    # A band-pass filter passes its own centre frequency and rejects far-away ones.
    k = 20
    fc = (low[k] + high[k]).item() / 2
    t = torch.arange(16000) / 16000
    resp = lambda freq: torch.nn.functional.conv1d(torch.sin(2 * math.pi * freq * t).view(1, 1, -1), f[k:k + 1]).abs().max()
    assert resp(fc) > 20 * resp(7000.0)


def naive_qrnn(layer, x):
    """Step-by-step reference loop of the QRNN recurrence (fact sheet 1.6)."""
    hs, c = [], torch.zeros(x.size(1), layer.hidden_size, dtype=x.dtype)
    prev = torch.zeros_like(x[0])
    for t in range(x.size(0)):
        g = layer.linear(torch.cat([x[t], prev], -1))
        z, f, o = g.chunk(3, -1)
        f = torch.sigmoid(f)
        c = f * torch.tanh(z) + (1 - f) * c
        hs.append(torch.sigmoid(o) * c)
        prev = x[t]
    return torch.stack(hs)


def test_qrnn_equals_naive_loop_forward_and_backward():
    layer = QRNNLayer(6, 5).double()
    x = torch.randn(40, 3, 6, dtype=torch.double, requires_grad=True)
    y = layer(x)
    ref = naive_qrnn(layer, x)
    assert torch.allclose(y, ref, atol=1e-12)
    g = torch.randn_like(y)
    grads = torch.autograd.grad((y * g).sum(), [x, layer.linear.weight])
    grads_ref = torch.autograd.grad((ref * g).sum(), [x, layer.linear.weight])
    for a, b in zip(grads, grads_ref):
        assert torch.allclose(a, b, atol=1e-10)
    assert torch.autograd.gradcheck(lambda inp: layer(inp), (x[:7],))


def test_padded_batch_equals_single_utterances(pase_plus):
    lengths = [16159, 12000, 3201, 16000]
    wavs = [torch.randn(n) for n in lengths]
    batch = torch.zeros(len(wavs), 1, max(lengths))
    for i, w in enumerate(wavs):
        batch[i, 0, :len(w)] = w
    with torch.no_grad():
        y, frames, hidden = pase_plus.forward_padded(batch, torch.tensor(lengths), return_hidden=True)
        assert len(hidden) == 9
        for i, w in enumerate(wavs):
            single, single_hidden = pase_plus.forward_hidden(w.view(1, 1, -1))
            n = int(frames[i])
            assert n == single.size(-1)
            assert torch.allclose(y[i, :, :n], single[0], atol=1e-4), i
            for h, sh in zip(hidden, single_hidden):
                assert torch.allclose(h[i, :, :n], sh[0], atol=1e-4)


def test_hidden_states_sum_to_output(pase_plus, pase_v1):
    x = torch.randn(2, 1, 8000)
    with torch.no_grad():
        y, hidden = pase_plus.forward_hidden(x)
        assert [h.size(1) for h in hidden] == [256] * 7 + [512, 256]
        assert all(h.size(-1) == 50 for h in hidden)
        # y = norm_out(W(qrnn) + sum of pooled skips)
        pre = pase_plus.W(hidden[7]) + sum(hidden[:7])
        assert torch.allclose(pase_plus.norm_out(pre), y, atol=1e-4)
        assert torch.allclose(pase_plus(x), y)
        y1, h1 = pase_v1.forward_hidden(x)
        assert [h.size(1) for h in h1] == [512, 100]


def test_pool_modes():
    y = torch.randn(2, 4, 10)
    assert torch.allclose(pool_mode(y, "avg_norm").mean(-1), torch.zeros(2, 4), atol=1e-6)
    cat = pool_mode(y, "avg_concat")
    assert cat.shape == (2, 8, 10) and torch.allclose(cat[:, 4:, 3], y.mean(-1))
    with pytest.raises(ValueError, match="unknown mode"):
        pool_mode(y, "max")


def test_configs_from_yaml_json_with_tabs_and_dict(tmp_path):
    cfg = {"emb_dim": 32, "fmaps": [8, 8, 8, 8, 8, 8, 16, 16], "kwidths": [251, 20, 11, 11, 11, 11, 11, 11],
           "rnn_pool": True, "rnn_dim": 16, "denseskips": True, "norm_out": True}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "b.cfg").write_text('{\n\t"emb_dim": 32,\n\t"fmaps": [8, 8, 8, 8, 8, 8, 16, 16],\n\t"kwidths": [251, 20, 11, 11, 11, 11, 11, 11],'
                                    '\n\t"rnn_pool": true, "rnn_dim": 16, "denseskips": true, "norm_out": true\n}\n')
    models = [wf_builder(tmp_path / "a.yaml"), wf_builder(tmp_path / "b.cfg"), wf_builder(cfg)]
    shapes = [{k: v.shape for k, v in m.state_dict().items()} for m in models]
    assert shapes[0] == shapes[1] == shapes[2]
    assert models[0](torch.randn(1, 1, 3200)).shape == (1, 32, 20)


def test_bad_config_keys(tmp_path):
    with pytest.raises(ConfigError, match="'emb_size'"):
        wf_builder({"emb_size": 10})
    bad = tmp_path / "bad.cfg"
    bad.write_text('{"emb_dim": 100, "rnn_type": "lstm", "rnn_pool": true}')
    with pytest.raises(ConfigError, match=r"bad\.cfg.*rnn_type='lstm'"):
        wf_builder(bad)
    with pytest.raises(ConfigError, match="not found"):
        wf_builder(tmp_path / "missing.cfg")
    broken = tmp_path / "broken.cfg"
    broken.write_text("{emb_dim: [1, 2")
    with pytest.raises(ConfigError, match="broken.cfg"):
        wf_builder(broken)


# ---- checkpoints ---------------------------------------------------------------------------------

def trained_copy(model):
    """A copy of `model` with every parameter and BN statistic changed, as after training."""
    other = wf_builder(model.config)
    with torch.no_grad():
        for v in other.state_dict().values():
            if v.is_floating_point():
                v.add_(torch.rand_like(v) * 0.01 + 0.001)
    return other


def test_raw_state_dict_checkpoint_loads(tmp_path, pase_plus):
    src = trained_copy(pase_plus)
    path = tmp_path / "FE_e199.ckpt"
    torch.save(src.state_dict(), path)  # the original trainer saves the raw OrderedDict
    model = wf_builder("cfg/frontend/PASE+.cfg").eval()
    keys = model.load_pretrained(path, load_last=True, verbose=True)
    assert len(keys) == 78
    for k, v in src.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    x = torch.randn(1, 1, 4000)
    with torch.no_grad():
        assert torch.allclose(model(x), src.eval()(x))
    # The original Saver's wrapper format and DDP 'module.' prefixes load too.
    torch.save({"step": 10, "state_dict": src.state_dict(), "optimizer": {}}, tmp_path / "saver.ckpt")
    torch.save(OrderedDict(("module." + k, v) for k, v in src.state_dict().items()), tmp_path / "ddp.ckpt")
    for name in ("saver.ckpt", "ddp.ckpt"):
        assert len(wf_builder("cfg/frontend/PASE+.cfg").load_pretrained(tmp_path / name)) == 78


def test_checkpoint_of_other_model_is_rejected_whole(tmp_path, pase_v1):
    path = tmp_path / "pase_v1.ckpt"
    torch.save(trained_copy(pase_v1).state_dict(), path)
    model = wf_builder("cfg/frontend/PASE+.cfg")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as err:
        model.load_pretrained(path)
    msg = str(err.value)
    assert "missing keys (9)" in msg and "denseskips.0.weight" in msg and "rnn.layers.0.linear.weight" in msg
    assert "W.weight: checkpoint (100, 512, 1) vs model (256, 512, 1)" in msg
    assert "PASE-like (emb_dim 100" in msg
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing loaded
    loaded = model.load_pretrained(path, partial=True)
    assert "blocks.3.conv.weight" in loaded and "W.weight" not in loaded


def test_load_last_false_drops_last_two_keys(tmp_path, pase_plus):
    path = tmp_path / "FE.ckpt"
    torch.save(pase_plus.state_dict(), path)
    with pytest.raises(CheckpointError, match="use load_last=True") as err:
        wf_builder("cfg/frontend/PASE+.cfg").load_pretrained(path, load_last=False)
    assert "norm_out.running_var, norm_out.num_batches_tracked" in str(err.value)


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_unsafe_or_corrupt_checkpoints(tmp_path):
    model = wf_builder("cfg/frontend/PASE.cfg")
    evil = tmp_path / "evil.ckpt"
    with open(evil, "wb") as f:
        pickle.dump({"W.weight": Evil()}, f)
    with pytest.raises(CheckpointError, match="evil.ckpt: not a readable"):
        model.load_pretrained(evil)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="junk.ckpt"):
        model.load_pretrained(junk)
    with pytest.raises(CheckpointError, match="not found"):
        model.load_pretrained(tmp_path / "nope.ckpt")


def test_chunked_inference_front_equals_plain_path(monkeypatch):
    """The eval fast path (BN folded, blocks 1-2 in time chunks) gives the plain path's output."""
    torch.manual_seed(0)  # seeded: the tolerance is tight and the order of the tests must not matter
    model = trained_copy(wf_builder("cfg/frontend/PASE+.cfg")).eval()
    for batch, t in ((1, 471), (1, 16159), (3, 20011), (1, 100000), (2, 64000)):
        x = torch.randn(batch, 1, t)
        with torch.no_grad():
            fast, fast_hidden = model.forward_hidden(x)
            monkeypatch.setattr(model, "_front_fusable", lambda: False)
            plain, plain_hidden = model.forward_hidden(x)
            monkeypatch.undo()
        assert fast.shape == plain.shape == (batch, 256, model.num_frames(t))
        for a, b in zip([fast, *fast_hidden], [plain, *plain_hidden]):
            assert torch.allclose(a, b, atol=2e-4, rtol=1e-4), (batch, t)
