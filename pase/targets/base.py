"""Shared machinery for the workers' regression targets: input checks, the frame grid, deltas.

Every target maps a clean waveform batch (B, T) to (B, F, T // hop) frames, frame t centred on
sample hop * t, and appends derivative orders on the feature axis as [static; delta; delta-delta].
"""
from __future__ import annotations

import abc

import torch
import torchaudio.functional as AF
from torch import nn

# The original's librosa deltas spanned 9 frames; compute_deltas with the same span is the
# regression (not Savitzky-Golay) estimate, see `append_deltas`.
DELTA_WIN = 9


def check_waveform(wav: torch.Tensor) -> torch.Tensor:
    """Validate a (B, T) waveform batch once per call and return it as float32."""
    if not isinstance(wav, torch.Tensor) or wav.dim() != 2 or not wav.is_floating_point():
        raise ValueError("targets expect a floating-point waveform tensor of shape (B, T), got "
                         f"{type(wav).__name__} {tuple(getattr(wav, 'shape', ()))}")
    if not bool(torch.isfinite(wav).all()):
        raise ValueError("waveform contains non-finite values (NaN or Inf)")
    return wav.float()


def append_deltas(static: torch.Tensor, der_order: int) -> torch.Tensor:
    """Concatenate [static; delta; delta-delta] (up to `der_order`) on the feature axis.

    Deltas are the 9-frame regression formula with replicated edges (torchaudio
    `compute_deltas`), and delta-delta is the delta of the delta. The original used librosa's
    Savitzky-Golay `delta` (order 1 and order 2 each on the static features, 'interp' edges):
    first deltas agree away from the edges, second deltas differ (17-frame vs 9-frame span).
    This is a documented deviation.
    """
    feats = [static]
    for _ in range(der_order):
        feats.append(AF.compute_deltas(feats[-1], win_length=DELTA_WIN, mode="replicate"))
    return torch.cat(feats, dim=1)


def fast_fft_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n, so FFT-based convolutions avoid slow prime sizes."""
    best = 1 << max(n - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


class Target(nn.Module, abc.ABC):
    """A frame-level target: `forward(wav)` -> (B, dim, T // hop) on the input's device.

    Subclasses implement `static`; filterbanks and windows are buffers so `.to(device)` works.
    `cache` lets a `TargetBank` share intermediate results (e.g. one gammatone filtering for
    `gtn` and `gtn_long`) within one call.
    """

    def __init__(self, name: str, n_static: int, der_order: int, hop: int, sample_rate: int,
                 min_length: int) -> None:
        super().__init__()
        self.name = name
        self.n_static = n_static
        self.der_order = der_order
        self.hop = hop
        self.sample_rate = sample_rate
        self.min_length = max(min_length, hop)
        self.dim = n_static * (der_order + 1)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.features(check_waveform(wav), {})

    def features(self, wav: torch.Tensor, cache: dict) -> torch.Tensor:
        """Static features plus deltas for an already validated float32 (B, T) batch."""
        if wav.shape[-1] < self.min_length:
            raise ValueError(f"target {self.name!r} needs at least {self.min_length} samples per "
                             f"waveform, got {wav.shape[-1]}")
        return append_deltas(self.static(wav, cache), self.der_order)

    @abc.abstractmethod
    def static(self, wav: torch.Tensor, cache: dict) -> torch.Tensor:
        """(B, n_static, T // hop) float32 static features."""

    def extra_repr(self) -> str:
        return f"name={self.name!r}, dim={self.dim}, der_order={self.der_order}, hop={self.hop}"
