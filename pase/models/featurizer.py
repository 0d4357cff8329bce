"""Every encoder layer at once, and a learnable softmax-weighted sum of them (SUPERB-style).

A frozen encoder's best features for a task are often not its last layer; a downstream model
that learns one weight per layer (trained with it, the encoder frozen) finds the mix and says
which layers it used. The layers are the encoder's `forward_hidden` outputs with W's input taken
through W: the QRNN output (PASE+, 512-d) or block 8's output (PASE) enters as its contribution
to the final output, so every layer has emb_dim and the sum lives in the output's space.
"""
from __future__ import annotations

import re
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pase.config import ConfigError
from pase.models.frontend import WaveFe


def layer_names(encoder: WaveFe) -> list[str]:
    """Names of the `forward_hidden` layers, in order (PASE+: skip1..skip7, rnn, final)."""
    n_skips = len(encoder.denseskips) if encoder.denseskips is not None else 0
    return [f"skip{i + 1}" for i in range(n_skips)] + ["rnn" if encoder.rnn is not None else "block"] + ["final"]


def select_layers(spec: str, names: list[str]) -> list[int]:
    """Indices into `names` of a --layers value: 'final' (or 'last'), 'all', or comma-separated
    0-based indices (negative ones count from the end) and names."""
    if spec in ("final", "last"):
        return [len(names) - 1]
    if spec == "all":
        return list(range(len(names)))
    out = []
    for tok in spec.split(","):
        tok = tok.strip()
        if tok in names:
            out.append(names.index(tok))
        elif re.fullmatch(r"-?[0-9]+", tok) and -len(names) <= int(tok) < len(names):
            out.append(int(tok) % len(names))
        else:
            raise ConfigError(f"--layers: {tok!r} is not a layer of this encoder: indices 0..{len(names) - 1} "
                              f"or names {', '.join(names)} (or 'final', 'all')")
    return out


def output_space_layers(encoder: WaveFe, hidden: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """`forward_hidden`'s (B, D, T) layers with W's input projected by W (all emb_dim-wide)."""
    *skips, w_input, final = hidden
    return [*skips, encoder.W(w_input), final]


def encode_layers(encoder: WaveFe, x: torch.Tensor,
                  lengths: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Every layer of a right-padded batch (B, 1, T_max) as (B, frames, emb_dim), and the frames.

    Each row equals its utterance encoded alone (`forward_padded`); frames past a row's end are
    zero, so consumers that cut a frame more than `frames` (s3prl rounds T/160) see silence.
    """
    _, frames, hidden = encoder.forward_padded(x, lengths, return_hidden=True)
    layers = output_space_layers(encoder, hidden)
    past_end = torch.arange(layers[0].size(-1)).view(1, 1, -1) >= frames.view(-1, 1, 1)
    past_end = past_end.to(layers[0].device)
    return [h.masked_fill(past_end, 0.0).transpose(1, 2) for h in layers], frames


class LayerWeightedSum(nn.Module):
    """sum_l softmax(w)_l * layer_l over equally shaped layers (..., D), w learnable.

    Weights start equal (zeros before the softmax). layer_norm=True normalises each layer over D
    first (no affine parameters), so layers of different scales compete on their content only.
    """

    def __init__(self, num_layers: int, layer_norm: bool = False) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        self.logits = nn.Parameter(torch.zeros(num_layers))
        self.layer_norm = layer_norm

    def forward(self, layers: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(layers) != self.logits.numel():
            raise ValueError(f"expected {self.logits.numel()} layers, got {len(layers)}")
        stacked = torch.stack(list(layers))
        if self.layer_norm:
            stacked = F.layer_norm(stacked, stacked.shape[-1:])
        weights = self.weights().to(stacked.dtype).view(-1, *[1] * (stacked.dim() - 1))
        return (weights * stacked).sum(0)

    def weights(self) -> torch.Tensor:
        """The normalised layer weights (they sum to 1), differentiable."""
        return torch.softmax(self.logits, dim=0)

    def layer_weights(self) -> list[float]:
        """The normalised weights as plain floats, layer order, for reports."""
        return self.weights().detach().cpu().tolist()
