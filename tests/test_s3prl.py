"""The s3prl upstream contract: list of waveforms in, (B, T, D) layers out, padding-exact."""
import pytest
import torch

from pase.models import wf_builder
from pase.models.featurizer import LayerWeightedSum
from pase.s3prl import UpstreamExpert

LENGTHS = [16000, 12345, 8090, 3201]  # s3prl keeps round(8090 / 160) = 51 frames of our 50


def checkpoint(tmp_path, cfg: str):
    torch.manual_seed(0)
    enc = wf_builder(cfg)
    with torch.no_grad():
        enc.train()(torch.randn(2, 1, 4000))  # BatchNorm statistics off their defaults
    torch.save(enc.state_dict(), tmp_path / "FE_e1.ckpt")
    return tmp_path / "FE_e1.ckpt", enc.eval()


@pytest.fixture(scope="module")
def plus(tmp_path_factory):
    return checkpoint(tmp_path_factory.mktemp("plus"), "cfg/frontend/PASE+.cfg")


def wavs():
    g = torch.Generator().manual_seed(1)
    return [torch.randn(n, generator=g) for n in LENGTHS]


def test_layers_shapes_and_padding_exactness(plus):
    ckpt, enc = plus
    up = UpstreamExpert(str(ckpt), "cfg/frontend/PASE+.cfg", refresh=False)  # s3prl's runner passes refresh
    assert up.get_downsample_rates("hidden_states") == 160
    batch = wavs()
    with torch.no_grad():
        out = up(batch)
        frames = [enc.num_frames(n) for n in LENGTHS]
        assert len(out["hidden_states"]) == 9  # 7 dense skips, W(QRNN), final output
        assert all(h.shape == (4, max(frames), 256) for h in out["hidden_states"])
        assert out["last_hidden_state"] is out["hidden_states"][-1]
        for i, (w, n) in enumerate(zip(batch, frames)):
            alone = up([w])["hidden_states"]
            for h, a in zip(out["hidden_states"], alone):
                assert torch.allclose(h[i, :n], a[0], atol=1e-4)
                assert not h[i, n:].any()  # zero past the utterance's end
            # The last layer is the encoder's plain output; W(QRNN) + skips is its input.
            y, hidden = enc.forward_hidden(w.view(1, 1, -1))
            assert torch.allclose(alone[-1][0], y[0].T, atol=1e-5)
            pre = sum(alone[:8])[0].T
            assert torch.allclose(enc.norm_out(pre.unsqueeze(0))[0].T, alone[-1][0], atol=1e-4)


def test_pase_layers(tmp_path):
    ckpt, _ = checkpoint(tmp_path, "cfg/frontend/PASE.cfg")
    with torch.no_grad():
        out = UpstreamExpert(ckpt)(wavs())
    assert [h.shape for h in out["hidden_states"]] == [(4, 100, 100)] * 2  # W(block 8), final


def test_finetuning_mode_keeps_batchnorm_statistics_and_backpropagates(plus):
    ckpt, _ = plus
    up = UpstreamExpert(ckpt)
    with torch.no_grad():
        frozen = up(wavs())["last_hidden_state"]
    up.train()
    assert up.training and not up.model.training
    out = up(wavs())["last_hidden_state"]
    assert torch.allclose(out, frozen)
    out.sum().backward()
    assert up.model.blocks[0].conv.low_hz_.grad.abs().sum() > 0


def test_through_s3prls_featurizer(plus):
    interfaces = pytest.importorskip(
        "s3prl.upstream.interfaces",
        reason="s3prl not installed; `pip install --no-deps s3prl` suffices for its Featurizer")
    ckpt, _ = plus
    up = UpstreamExpert(ckpt)
    batch = wavs()
    for normalize in (False, True):
        featurizer = interfaces.Featurizer(up, upstream_device="cpu", normalize=normalize)
        assert (featurizer.layer_num, featurizer.output_dim, featurizer.downsample_rate) == (9, 256, 160)
        with torch.no_grad():
            layers = up(batch)["hidden_states"]
            theirs = featurizer(batch, {"hidden_states": layers})
            ours = LayerWeightedSum(9, layer_norm=normalize)(layers)
        for i, (t, n) in enumerate(zip(theirs, LENGTHS)):
            assert t.shape == (min(round(n / 160), 100), 256)
            assert torch.allclose(t, ours[i, :len(t)], atol=1e-5)
