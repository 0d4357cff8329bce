"""An s3prl upstream for our package: `UpstreamExpert(ckpt, model_config)`.

s3prl's own PASE+ upstream needs the original's dependencies and collects layers with forward
hooks on a plain padded forward pass, so a shorter utterance's last frames depend on the length
of the longest one in its batch.
This one follows the same call contract (a list of 1-D 16 kHz waveforms in; a dict with
`hidden_states`, each (B, T, D), and `last_hidden_state` out; `get_downsample_rates`) without
importing s3prl, and encodes padding-exactly. See README "s3prl / SUPERB".
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from pase.hub import load
from pase.models.featurizer import encode_layers


class UpstreamExpert(nn.Module):
    """The encoder of `ckpt` (a file or an experiment dir; config as in `pase.load`).

    kwargs takes s3prl's own constructor options (e.g. `refresh`), which do not apply to local
    paths. In training mode (s3prl's upstream fine-tuning) gradients reach the encoder while its
    BatchNorm keeps the pretrained statistics: batch statistics would mix in the padding.
    """

    def __init__(self, ckpt: str | Path, model_config: str | Path | None = None, **kwargs: Any) -> None:
        super().__init__()
        self.model = load(ckpt, fe_cfg=model_config)

    def train(self, mode: bool = True) -> "UpstreamExpert":
        super().train(mode)
        self.model.eval()
        return self

    def get_downsample_rates(self, key: str) -> int:
        """Input samples per output frame (160, 10 ms at 16 kHz), the same for every key."""
        return math.prod(block.stride for block in self.model.blocks)

    def forward(self, wavs: Sequence[torch.Tensor]) -> dict[str, Any]:
        lengths = torch.tensor([len(w) for w in wavs])
        batch = pad_sequence(list(wavs), batch_first=True).unsqueeze(1)
        layers, _ = encode_layers(self.model, batch, lengths)
        return {"hidden_states": layers, "last_hidden_state": layers[-1]}
