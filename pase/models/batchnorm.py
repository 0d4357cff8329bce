"""BatchNorm running statistics of an encoder: reset them, or re-estimate them on some audio.

Pretraining updates the running statistics with momentum 0.1 while the weights move fast, so a
checkpoint's statistics lag behind its own weights, and they describe the pretraining audio
rather than the audio it is later used on. Re-estimating them ("precise BN") runs the encoder in
training mode, without gradients, over fixed-length chunks of the target audio and stores the
cumulative average of the batch statistics: exactly what eval mode then assumes.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from pase.errors import PaseError


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def reset_batchnorm(model: nn.Module) -> int:
    """Running statistics back to their init (mean 0, var 1); returns the number of layers."""
    layers = batchnorm_layers(model)
    for bn in layers:
        bn.reset_running_stats()
    return len(layers)


def audio_chunks(wavs: Iterable[np.ndarray], chunk: int, max_chunks: int) -> list[np.ndarray]:
    """Non-overlapping `chunk`-sample pieces of each waveform (remainders dropped), at most
    `max_chunks`, taken evenly over the whole list so every recording contributes."""
    pieces = [[w[i:i + chunk] for i in range(0, len(w) - chunk + 1, chunk)] for w in wavs]
    out: list[np.ndarray] = []
    depth = 0
    while len(out) < max_chunks and any(depth < len(p) for p in pieces):
        out += [p[depth] for p in pieces if depth < len(p)][:max_chunks - len(out)]
        depth += 1
    return out


@torch.no_grad()
def reestimate_batchnorm(model: nn.Module, wavs: Sequence[np.ndarray], *, chunk: int = 32000,
                         batch_size: int = 8, max_chunks: int = 512, device: str | torch.device = "cpu",
                         where: str = "audio") -> int:
    """Replace every BatchNorm layer's running statistics by their average over `wavs`.

    The waveforms are cut into `chunk`-sample pieces (a recording shorter than one chunk is used
    whole only if no piece at all can be made: then the chunk shrinks to the shortest
    recording). Returns the number of chunks used. The model is left in eval mode.
    """
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    wavs = [w for w in wavs if len(w)]
    if not wavs:
        raise PaseError(f"{where}: no audio to re-estimate BatchNorm statistics on")
    if max(len(w) for w in wavs) < chunk:
        chunk = min(len(w) for w in wavs)
    pieces = audio_chunks(wavs, chunk, max_chunks)
    momenta = [bn.momentum for bn in layers]
    for bn in layers:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over all batches
    model.train()
    try:
        for i in range(0, len(pieces), batch_size):
            batch = torch.from_numpy(np.stack(pieces[i:i + batch_size])).unsqueeze(1).to(device)
            if batch.size(0) < 2:  # a batch of one has no batch variance
                batch = torch.cat([batch, batch.flip(-1)])
            model(batch)
    finally:
        for bn, m in zip(layers, momenta):
            bn.momentum = m
        model.eval()
    return len(pieces)
