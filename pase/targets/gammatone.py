"""Log gammatonegram (gtn) target: the `gammatone` package's gtgram on the centred frame grid.

Filterbank: Slaney's gammatone approximation (Apple TR #35), each channel four cascaded
biquads sharing one pole pair, normalised to unit gain at its centre frequency; centre
frequencies ERB-spaced (Glasberg & Moore: ear Q 9.26449, min bandwidth 24.7 Hz) from f_min
to sr / 2, ascending.

Speed: the IIR cascade is turned into its impulse response once (torchaudio lfilter, float64,
truncated where the remaining tail energy is < 1e-12 of the total: 693 taps for f_min 500 Hz)
and applied by float64 FFT convolution. On 2 CPU threads that takes ~0.2 s for a (16, 32000)
batch, ~4x faster than running the 4 x 40 biquads with torchaudio lfilter, and it equals the
zero-initial-state IIR output of the original to float64 rounding.

Framing: the filters run on the unpadded signal from rest (as the original); the squared
outputs are reflect-padded by win // 2 so that frame t is the RMS over the window centred on
hop * t. The original's windows started at hop * t (shifted by +win / 2) and were then
replicate-padded at the end: a quirk this grid fixes. Value: log(RMS + 1e-10).
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
import torchaudio.functional as AF

from pase.targets.base import Target, fast_fft_len

EAR_Q = 9.26449
MIN_BW = 24.7
LOG_FLOOR = 1e-10
_TAIL_TOL = 1e-12
_CHANNEL_GROUP = 2  # small groups keep intermediates cache- and allocator-friendly


def erb_centre_freqs(n_filters: int, f_min: float, f_max: float) -> torch.Tensor:
    """Ascending float64 centre frequencies, uniform on the ERB scale, first one at f_min and
    the last one a step below f_max (the gammatone package's `centre_freqs`, flipped)."""
    q = EAR_Q * MIN_BW
    frac = torch.arange(n_filters, 0, -1, dtype=torch.float64) / n_filters
    return -q + torch.exp(frac * (math.log(f_min + q) - math.log(f_max + q))) * (f_max + q)


def _cascade_response(centre_freqs: torch.Tensor, sample_rate: int, length: int) -> torch.Tensor:
    """(C, length) float64 impulse responses, each scaled to unit gain at its centre frequency."""
    t = 1.0 / sample_rate
    bw = 1.019 * 2 * math.pi * (centre_freqs / EAR_Q + MIN_BW)
    arg = 2 * math.pi * centre_freqs * t
    decay = torch.exp(-bw * t)
    a = torch.stack([torch.ones_like(arg), -2 * torch.cos(arg) * decay, decay.square()], dim=1)
    z_inv = torch.exp(-1j * arg)  # e^{-j w_c}
    ir = torch.zeros(len(centre_freqs), length, dtype=torch.float64)
    ir[:, 0] = 1.0
    response = torch.ones_like(z_inv)
    for rt in (math.sqrt(3 + 2 ** 1.5), -math.sqrt(3 + 2 ** 1.5),
               math.sqrt(3 - 2 ** 1.5), -math.sqrt(3 - 2 ** 1.5)):
        a1 = -t * decay * (torch.cos(arg) + rt * torch.sin(arg))
        b = torch.stack([torch.full_like(a1, t), a1, torch.zeros_like(a1)], dim=1)
        ir = AF.lfilter(ir, a, b, clamp=False)
        response = response * (t + a1 * z_inv) / (1 + a[:, 1] * z_inv + a[:, 2] * z_inv ** 2)
    return ir / response.abs().unsqueeze(1)


def gammatone_impulse_responses(centre_freqs: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """(C, L) float64 impulse responses of Slaney's 4-biquad gammatone filters, L the shortest
    length that leaves < 1e-12 of every channel's energy in the discarded tail."""
    length = 1024
    while True:
        energy = _cascade_response(centre_freqs, sample_rate, length).square().cumsum(1)
        # Lengthen until the last quarter is already negligible, so `energy` ~ the total.
        if (1.0 - energy[:, 3 * length // 4] / energy[:, -1]).max() < _TAIL_TOL:
            break
        length *= 2
    tail = 1.0 - energy / energy[:, -1:]
    keep = int((tail > _TAIL_TOL).sum(1).max()) + 1
    return _cascade_response(centre_freqs, sample_rate, keep)


@functools.lru_cache(maxsize=8)
def _filterbank(n_filters: int, f_min: float,
                sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre frequencies and impulse responses, designed once per configuration (gtn and
    gtn_long share them)."""
    cf = erb_centre_freqs(n_filters, f_min, sample_rate / 2.0)
    return cf, gammatone_impulse_responses(cf, sample_rate)


class Gammatonegram(Target):
    """log(RMS + 1e-10) of `n_filters` gammatone channels over `win`-sample centred windows."""

    def __init__(self, name: str, win: int, n_filters: int, f_min: float, der_order: int,
                 hop: int, sample_rate: int) -> None:
        super().__init__(name, n_filters, der_order, hop, sample_rate, win // 2 + 1)
        self.win = win
        self.f_min = float(f_min)
        cf, ir = _filterbank(n_filters, self.f_min, sample_rate)
        self.register_buffer("centre_freqs", cf.clone(), persistent=False)
        self.register_buffer("ir", ir.clone(), persistent=False)

    def filterbank_energy(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, C, T) float32 squared filter outputs (zero initial state), by FFT convolution.

        Done in float64: float32 FFT rounding would put a floor ~125 dB below the utterance
        peak, far above the true filter output in digital silence (which log(x + 1e-10) keeps).
        Channels go in small groups to bound the memory of the (B, C, n) intermediate.
        """
        n_samples = wav.shape[-1]
        n = fast_fft_len(n_samples + self.ir.shape[-1] - 1)
        spec = torch.fft.rfft(wav.double(), n).unsqueeze(1)
        return torch.cat([torch.fft.irfft(spec * torch.fft.rfft(ir.double(), n), n)
                          [..., :n_samples].float().square()
                          for ir in self.ir.split(_CHANNEL_GROUP)], dim=1)

    def static(self, wav: torch.Tensor, cache: dict) -> torch.Tensor:
        key = ("gammatone_energy", self.ir.shape[0], self.f_min, self.sample_rate)
        if key not in cache:
            cache[key] = self.filterbank_energy(wav)
        energy = F.pad(cache[key], (self.win // 2, self.win // 2), mode="reflect")
        # Window sums from sums over blocks of gcd(hop, win) samples: two cheap direct passes.
        n_frames = wav.shape[-1] // self.hop
        block = math.gcd(self.hop, self.win)
        n_blocks = (self.hop * (n_frames - 1) + self.win) // block
        blocks = energy[..., : n_blocks * block].unflatten(-1, (n_blocks, block)).sum(-1)
        mean_sq = blocks.unfold(-1, self.win // block, self.hop // block).sum(-1) / self.win
        return torch.log(mean_sq.sqrt() + LOG_FLOOR)
