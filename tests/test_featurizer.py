"""The learnable layer-weighted sum over a real encoder's layers."""
import pytest
import torch

from pase.models import wf_builder
from pase.models.featurizer import LayerWeightedSum, encode_layers, output_space_layers

from conftest import TINY_FE


@pytest.fixture(scope="module")
def layers():
    """The 9 layers of a (random-init) PASE+-shaped encoder on two utterances, (B, T, D)."""
    torch.manual_seed(0)
    enc = wf_builder(TINY_FE).eval()
    x = torch.randn(2, 1, 16000)
    with torch.no_grad():
        y, hidden = enc.forward_hidden(x)
        out = output_space_layers(enc, hidden)
        # The projected layers are the output's parts: norm_out(sum of all but the last) = y.
        assert torch.allclose(enc.norm_out(sum(out[:-1])), y, atol=1e-4)
        padded, frames = encode_layers(enc, x, torch.tensor([16000, 16000]))
    assert frames.tolist() == [100, 100]
    assert all(torch.allclose(p, h.transpose(1, 2), atol=1e-5) for p, h in zip(padded, out))
    return padded


def test_starts_as_the_mean_and_reports_weights(layers):
    ws = LayerWeightedSum(len(layers))
    assert torch.allclose(ws(layers), torch.stack(layers).mean(0), atol=1e-6)
    weights = ws.layer_weights()
    assert len(weights) == 9 and all(isinstance(w, float) for w in weights)
    assert weights == pytest.approx([1 / 9] * 9)


def test_learns_the_layer_a_task_needs(layers):
    torch.manual_seed(1)
    ws = LayerWeightedSum(len(layers))
    target = layers[3]
    opt = torch.optim.Adam(ws.parameters(), lr=0.1)
    for _ in range(150):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(ws(layers), target)
        loss.backward()
        opt.step()
    weights = ws.layer_weights()
    assert max(range(9), key=weights.__getitem__) == 3 and weights[3] > 0.9
    assert sum(weights) == pytest.approx(1.0)


def test_layer_norm_ignores_each_layers_scale(layers):
    ws = LayerWeightedSum(len(layers), layer_norm=True)
    with torch.no_grad():
        ws.logits.copy_(torch.randn(9))
    unit = [h / h.std() for h in layers]  # unit scale: layer_norm's epsilon negligible
    rescaled = [h * (10.0 ** i) + 3.0 for i, h in enumerate(unit)]
    assert torch.allclose(ws(rescaled), ws(unit), atol=1e-4)
    assert not torch.allclose(LayerWeightedSum(9)(rescaled), LayerWeightedSum(9)(unit))


def test_wrong_layer_count():
    with pytest.raises(ValueError, match="expected 3 layers, got 2"):
        LayerWeightedSum(3)([torch.zeros(1, 2, 4)] * 2)
    with pytest.raises(ValueError, match="at least 1"):
        LayerWeightedSum(0)
