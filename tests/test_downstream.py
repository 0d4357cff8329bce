"""The encoder in front of downstream models: frozen or trained, final output or learnt layer mix."""
import pytest
import torch

from conftest import TINY_FE
from pase.config import ConfigError
from pase.errors import PaseError
from pase.models import wf_builder
from pase.models.downstream import (EncoderFront, FrontOptions, front_options, read_layer_weights,
                                    write_layer_weights)
from pase.models.featurizer import layer_names, output_space_layers


class Probe(EncoderFront):
    """The smallest downstream model: a linear map of the encoded frames."""

    def __init__(self, front: FrontOptions) -> None:
        super().__init__(wf_builder(TINY_FE), front)
        self.out = torch.nn.Linear(self.encoder.emb_dim, 2)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.out(self.encode(wav).transpose(1, 2))


def test_frozen_mix_is_the_weighted_sum_of_the_eval_mode_layers_and_only_it_learns():
    torch.manual_seed(0)
    model = Probe(FrontOptions(freeze_encoder=True, encoder_layers="skip2,rnn,-1", encoder_layer_norm=False))
    assert model.front.encoder_layers == "skip2,rnn,final"  # resolved names: what a saved model keeps
    model.train()
    assert model.out.training and not any(m.training for m in model.encoder.modules())
    with torch.no_grad():
        model.layer_sum.logits.copy_(torch.tensor([0.5, -1.0, 2.0]))
    wav = torch.randn(2, 1, 3200)
    y = model.encode(wav)
    with torch.no_grad():
        _, hidden = model.encoder.forward_hidden(wav)
    layers = output_space_layers(model.encoder, hidden)
    w = torch.softmax(torch.tensor([0.5, -1.0, 2.0]), 0)
    torch.testing.assert_close(y, w[0] * layers[1] + w[1] * layers[7] + w[2] * layers[8])
    model(wav).square().mean().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.layer_sum.logits.grad.abs().min() > 0 and model.out.weight.grad is not None
    (adam_params,) = [g["params"] for g in model.layer_weights_optimizer(0.01).param_groups]
    assert adam_params == [model.layer_sum.logits]
    assert list(model.layer_weights()) == ["skip2", "rnn", "final"]
    torch.testing.assert_close(torch.tensor(list(model.layer_weights().values())), w)


def test_trained_front_and_final_output_alone():
    torch.manual_seed(0)
    final = Probe(FrontOptions())
    assert final.layer_sum is None and final.layer_weights() == {} and final.layer_weights_optimizer(0.01) is None
    assert [k for k in final.state_dict() if not k.startswith(("encoder.", "out."))] == []  # the files of old
    wav = torch.randn(1, 1, 3200)
    torch.testing.assert_close(final.eval().encode(wav), final.encoder(wav))
    final.train()
    assert final.encoder.training
    final(wav).sum().backward()
    assert any(p.grad is not None for p in final.encoder.parameters())
    every = Probe(FrontOptions(encoder_layers="all", encoder_layer_norm=True))
    assert list(every.layer_weights()) == layer_names(every.encoder) and every.layer_sum.layer_norm


def test_front_option_errors_are_one_line():
    assert front_options(False, False, "final", False) is None
    assert front_options(False, True, "all", True) == FrontOptions(True, "all", True)
    with pytest.raises(ConfigError, match="give one of them"):
        front_options(True, True, "final", False)
    with pytest.raises(ConfigError, match="--encoder_layers all: .*--freeze_encoder or --finetune"):
        front_options(False, False, "all", False)
    with pytest.raises(ConfigError, match="--encoder_layer_norm .*other than final"):
        Probe(FrontOptions(freeze_encoder=True, encoder_layer_norm=True))
    with pytest.raises(ConfigError, match="'skip9' is not a layer"):
        Probe(FrontOptions(encoder_layers="skip9"))


def test_layer_weights_file(tmp_path):
    path = tmp_path / "layer_weights"
    write_layer_weights(path, {"skip1": 0.25, "rnn": 0.70001, "final": 0.05})
    assert path.read_text() == "skip1 0.2500\nrnn 0.7000\nfinal 0.0500\n"  # layer order, not sorted
    assert read_layer_weights(path) == {"skip1": 0.25, "rnn": 0.7, "final": 0.05}
    write_layer_weights(path, {})  # a run without mixed layers leaves no stale weights
    assert not path.exists()
    path.write_text("skip1 0.5\nrnn\n")
    with pytest.raises(PaseError, match=r"layer_weights:2: expected 'layer weight', got 'rnn'"):
        read_layer_weights(path)
