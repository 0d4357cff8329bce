"""SincNet band-pass convolution, parameterised exactly as PASE's first layer.

Each of the 64 filters is a windowed difference of two sinc low-passes whose cut-offs are
learned in Hz (`low_hz_`, `band_hz_`, the only state_dict entries). The window and the time
axis are non-persistent buffers so that checkpoints keep the original's two keys.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def hz_to_mel(hz: float | torch.Tensor) -> float | torch.Tensor:
    if isinstance(hz, torch.Tensor):
        return 2595.0 * torch.log10(1.0 + hz / 700.0)
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


class SincConv(nn.Module):
    """Learnable band-pass filter bank (SincNet), stride 1, no bias, 'same' length output.

    Padding is applied by the caller (the encoder reflect-pads kernel_size // 2 on both sides).
    """

    def __init__(self, out_channels: int = 64, kernel_size: int = 251, sample_rate: int = 16000,
                 min_low_hz: float = 50.0, min_band_hz: float = 50.0) -> None:
        super().__init__()
        if kernel_size % 2 == 0:  # symmetric filters need an odd length, as in SincNet
            kernel_size += 1
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.sample_rate = sample_rate
        self.min_low_hz = min_low_hz
        self.min_band_hz = min_band_hz

        # Mel-spaced initial edges between 30 Hz and Nyquist minus the two minimum widths.
        high = sample_rate / 2 - (min_low_hz + min_band_hz)
        mel = torch.linspace(hz_to_mel(30.0), hz_to_mel(high), out_channels + 1, dtype=torch.float64)
        hz = mel_to_hz(mel)
        self.low_hz_ = nn.Parameter(hz[:-1].view(-1, 1).float())
        self.band_hz_ = nn.Parameter(torch.diff(hz).view(-1, 1).float())

        half = kernel_size // 2
        # Half Hamming window on linspace(0, half - 0.5, half): SincNet's off-by-half spacing, kept
        # so that the original checkpoints produce the original filters.
        u = torch.linspace(0, kernel_size / 2 - 1, steps=half, dtype=torch.float64)
        window = 0.54 - 0.46 * torch.cos(2 * math.pi * u / kernel_size)
        n = 2 * math.pi * torch.arange(-half, 0, dtype=torch.float64).view(1, -1) / sample_rate
        self.register_buffer("window_", window.float(), persistent=False)
        self.register_buffer("n_", n.float(), persistent=False)

    def band_edges(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Effective (low, high) cut-offs in Hz, shape (out_channels, 1)."""
        low = self.min_low_hz + self.low_hz_.abs()
        high = torch.clamp(low + self.min_band_hz + self.band_hz_.abs(), self.min_low_hz, self.sample_rate / 2)
        return low, high

    def filters(self) -> torch.Tensor:
        """The filter bank, shape (out_channels, 1, kernel_size), centre tap 1."""
        low, high = self.band_edges()
        band = (high - low)[:, 0]
        f_low = low @ self.n_
        f_high = high @ self.n_
        left = (torch.sin(f_high) - torch.sin(f_low)) / (self.n_ / 2) * self.window_
        centre = 2 * band.view(-1, 1)
        bp = torch.cat([left, centre, left.flip(dims=[1])], dim=1) / (2 * band[:, None])
        return bp.view(self.out_channels, 1, self.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.filters().to(x.dtype))
