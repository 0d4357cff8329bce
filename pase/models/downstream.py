"""The encoder in front of a downstream model that reads waveforms (utterance classifier, hybrid MLP).

Fine-tuned, the encoder trains with the downstream model. Frozen (`freeze_encoder`), it stays as
pretrained: no gradient, and BatchNorm and dropout in eval mode whatever mode the downstream
model is put in, so only the downstream side learns. Either way the downstream model reads the
encoder's final output or, with `encoder_layers`, a softmax-weighted sum of those layers
(`LayerWeightedSum` over `layer_names`, each in the output's space) whose weights train with the
downstream model (by their own Adam, `layer_weights_optimizer`) and are reported with it: which
layers a task uses, SUPERB-style.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from pase.config import ConfigError
from pase.errors import PaseError
from pase.models.featurizer import LayerWeightedSum, layer_names, output_space_layers, select_layers
from pase.models.frontend import WaveFe

LAYER_WEIGHTS = "layer_weights"  # the file a trainer writes next to its model: "layer weight" lines


@dataclass(frozen=True)
class FrontOptions:
    """How a downstream model reads its encoder; the fields are the trainers' option names."""

    freeze_encoder: bool = False
    encoder_layers: str = "final"      # select_layers: 'final', 'all', indices or names
    encoder_layer_norm: bool = False   # normalise each layer before the weighted sum


@dataclass(frozen=True)
class EncoderSource:
    """The encoder a downstream trainer reads waveforms through: config, checkpoint, front."""

    cfg: str | Path
    ckpt: Path | None
    front: FrontOptions


def front_options(finetune: bool, freeze_encoder: bool, encoder_layers: str,
                  encoder_layer_norm: bool) -> FrontOptions | None:
    """The front of a trainer's run, None when it reads features (neither mode given)."""
    if finetune and freeze_encoder:
        raise ConfigError("--finetune trains the encoder, --freeze_encoder keeps it fixed: give one of them")
    if finetune or freeze_encoder:
        return FrontOptions(freeze_encoder, encoder_layers, encoder_layer_norm)
    if encoder_layers not in ("final", "last") or encoder_layer_norm:
        raise ConfigError(f"--encoder_layers {encoder_layers}"
                          f"{' --encoder_layer_norm' if encoder_layer_norm else ''}: the encoder's layers are "
                          "mixed with --freeze_encoder or --finetune; features of a feats.scp are one layer")
    return None


class EncoderFront(nn.Module):
    """Base of downstream models reading waveforms: `self.encoder`, and `encode` to read it.

    The encoder is an attribute of the model itself (state keys 'encoder.*', and 'layer_sum.logits'
    when layers are mixed), so models of the final output load the files they always did.
    """

    def __init__(self, encoder: WaveFe, front: FrontOptions | None = None) -> None:
        super().__init__()
        front = front or FrontOptions()
        names = layer_names(encoder)
        self.layer_ids = list(dict.fromkeys(select_layers(front.encoder_layers, names)))
        mixed = self.layer_ids != [len(names) - 1]
        if front.encoder_layer_norm and not mixed:
            raise ConfigError("--encoder_layer_norm normalises layers before their weighted sum: it needs "
                              "--encoder_layers other than final alone")
        self.encoder = encoder
        self.layer_sum = LayerWeightedSum(len(self.layer_ids), front.encoder_layer_norm) if mixed else None
        # Resolved names: a saved model rebuilds the same mix whatever spelling chose it.
        self.front = FrontOptions(front.freeze_encoder, ",".join(names[i] for i in self.layer_ids),
                                  front.encoder_layer_norm)
        if front.freeze_encoder:
            encoder.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> EncoderFront:
        super().train(mode)
        if self.front.freeze_encoder:
            self.encoder.eval()
        return self

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) waveforms -> (B, emb_dim, frames): the final output or the layers' weighted sum."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.front.freeze_encoder):
            if self.layer_sum is None:
                return self.encoder(wav)
            _, hidden = self.encoder.forward_hidden(wav)
            layers = output_space_layers(self.encoder, hidden)
        return self.layer_sum([layers[i].transpose(1, 2) for i in self.layer_ids]).transpose(1, 2)

    def layer_weights(self) -> dict[str, float]:
        """Layer name -> learnt weight, in the order --encoder_layers gave; empty when the final output is read alone."""
        if self.layer_sum is None:
            return {}
        return dict(zip(self.front.encoder_layers.split(","), self.layer_sum.layer_weights()))

    def layer_weights_optimizer(self, lr: float) -> torch.optim.Optimizer | None:
        """Adam on the layer weights, None without them. Their softmax logits get tiny gradients
        through a downstream model (SGD at its LR leaves them where they started); Adam's steps
        do not depend on the gradients' scale."""
        return None if self.layer_sum is None else torch.optim.Adam(self.layer_sum.parameters(), lr=lr)


def write_layer_weights(path: Path, weights: dict[str, float]) -> None:
    """`weights` as "layer weight" lines in layer order; no weights removes a stale file."""
    if weights:
        path.write_text("".join(f"{name} {w:.4f}\n" for name, w in weights.items()))
    else:
        path.unlink(missing_ok=True)


def read_layer_weights(path: Path) -> dict[str, float]:
    """What `write_layer_weights` wrote; a malformed line is an error naming the file and line."""
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            name, weight = line.split()
            out[name] = float(weight)
        except ValueError:
            raise PaseError(f"{path}:{n}: expected 'layer weight', got {line!r}") from None
    return out

