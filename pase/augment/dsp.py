"""Batched signal operations behind the distortions: FIR design, per-sample convolution, SNR mixing,
an energy voice-activity detector.

Every function works on (B, L) float tensors on any device and takes its random choices as
arguments, so the callers can draw them on the CPU and stay deterministic across devices.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torchaudio.functional import fftconvolve

from pase.targets.base import fast_fft_len

# FIR length of the designed band-reject and low-pass filters: with a Blackman window the
# transition band is about 5.5 * sr / taps wide (86 Hz at 16 kHz) and the stop band reaches
# -74 dB, so the dropped band really disappears (the original's filter files are unknown).
FIR_TAPS = 1025
# The original renormalised with this epsilon in the overlap mixer.
ENERGY_EPS = 1e-14


def energy(x: torch.Tensor) -> torch.Tensor:
    """Sum of squares per row (the original's x . x), shape (B,)."""
    return x.square().sum(-1)


def renormalise(y: torch.Tensor, target_energy: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """Scale each row of `y` to `target_energy`; rows with zero energy are left unchanged."""
    e = energy(y)
    gain = torch.where(e > 0, torch.sqrt(target_energy / (e + eps)), torch.ones_like(e))
    return y * gain.unsqueeze(-1)


def lowpass_fir(cutoff_hz: torch.Tensor, sample_rate: int, taps: int = FIR_TAPS) -> torch.Tensor:
    """Blackman-windowed sinc low-pass filters (one per cutoff), unit DC gain, shape (N, taps)."""
    if taps % 2 != 1:
        raise ValueError(f"FIR length must be odd (linear phase, integer delay), got {taps}")
    fc = (cutoff_hz.to(torch.float64) / sample_rate).reshape(-1, 1)
    n = torch.arange(taps, dtype=torch.float64, device=fc.device) - (taps - 1) / 2
    window = torch.blackman_window(taps, periodic=False, dtype=torch.float64, device=fc.device)
    h = 2 * fc * torch.sinc(2 * fc * n) * window
    return (h / h.sum(-1, keepdim=True)).float()


def bandreject_fir(low_hz: torch.Tensor, high_hz: torch.Tensor, sample_rate: int,
                   taps: int = FIR_TAPS) -> torch.Tensor:
    """Band-reject filters removing [low_hz, high_hz] (one per row): a delta minus a band-pass."""
    lp = lowpass_fir(torch.cat([low_hz.reshape(-1), high_hz.reshape(-1)]), sample_rate, taps)
    bandpass = lp[low_hz.numel():] - lp[: low_hz.numel()]
    h = -bandpass
    h[:, (taps - 1) // 2] += 1.0
    return h


def convolve_shift(x: torch.Tensor, kernels: torch.Tensor, shift: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Full convolution of each row of x (B, L) with its own kernel (B, K), shifted left.

    Returns ``(y, full_energy)``: y[b, n] = full[b, n + shift[b]] for n < L (zero past the end
    of the full convolution) and the energy of the whole full convolution, which the reverb
    renormalisation uses. x is zero-padded to a 2^a 3^b 5^c FFT length (slow prime sizes cost
    several times more), which does not change the full convolution.
    """
    length, k = x.shape[-1], kernels.shape[-1]
    n_full = length + k - 1
    padded = F.pad(x, (0, fast_fft_len(n_full) - n_full))
    full = fftconvolve(padded, kernels)[:, :n_full]
    full = F.pad(full, (0, length))
    idx = shift.reshape(-1, 1) + torch.arange(length, device=x.device)
    return full.gather(1, idx), energy(full)


def mix_at_snr(x: torch.Tensor, noise: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
    """x + K * noise with K setting the SNR exactly, then rescaled to x's energy (the original's rule).

    K = sqrt(Ex / (10^(snr/10) * En)); rows whose noise has no energy come back unchanged.
    """
    ex, en = energy(x), energy(noise)
    k = torch.sqrt(ex / (10.0 ** (snr_db / 10.0) * en.clamp_min(torch.finfo(en.dtype).tiny)))
    noisy = renormalise(x + k.unsqueeze(-1) * noise, ex, ENERGY_EPS)
    return torch.where((en > 0).unsqueeze(-1), noisy, x)


def energy_vad(x: torch.Tensor, frame: int, *, margin_db: float = 6.0, range_db: float = 40.0,
               hangover: int = 3) -> torch.Tensor:
    """Speech/non-speech per frame of `frame` samples (10 ms), shape (B, L // frame), bool.

    A frame is speech when its energy is above both the chunk's floor (10th percentile of frame
    energies) plus `margin_db` and its peak (99th percentile) minus `range_db`: relative to the
    chunk so that the random scaling of the chunks does not matter. Each speech frame extends
    the decision over the next `hangover` frames so that short dips inside words do not split
    regions.
    """
    n_frames = x.shape[-1] // frame
    frames = x[:, : n_frames * frame].reshape(x.shape[0], n_frames, frame)
    db = 10.0 * torch.log10(frames.square().mean(-1) + 1e-12)
    q = torch.quantile(db, torch.tensor([0.1, 0.99], device=x.device, dtype=db.dtype), dim=1)
    threshold = torch.maximum(q[0] + margin_db, q[1] - range_db)
    speech = (db > threshold.unsqueeze(1)).float()
    held = F.max_pool1d(F.pad(speech.unsqueeze(1), (hangover, 0)), hangover + 1, stride=1)
    return held.squeeze(1).bool()


def speech_regions(speech: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Runs of speech frames as (begin, end, valid), each (B, F): region r of sample b spans
    frames [begin, end); `valid` marks the slots that hold a region (static shapes, no sync)."""
    b, n = speech.shape
    prev = F.pad(speech, (1, 0))[:, :-1]
    ids = torch.cumsum(speech & ~prev, dim=1) * speech  # 1..R inside regions, 0 outside
    frame_idx = torch.arange(n, device=speech.device).expand(b, n)
    begin = torch.full((b, n + 1), n, dtype=torch.long, device=speech.device)
    end = torch.zeros((b, n + 1), dtype=torch.long, device=speech.device)
    begin = begin.scatter_reduce(1, ids, frame_idx, reduce="amin", include_self=True)
    end = end.scatter_reduce(1, ids, frame_idx + 1, reduce="amax", include_self=True)
    begin, end = begin[:, 1:], end[:, 1:]
    return begin, end, end > begin
