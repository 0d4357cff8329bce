"""STFT-based targets: log power spectrum (lps), log mel filterbank (fbank) and MFCC.

All three use torch.stft with centre=True and reflect padding, so frame t is centred on sample
hop * t, and keep the first T // hop of the T // hop + 1 frames.
"""
from __future__ import annotations

import torch
import torchaudio.functional as AF

from pase.targets.base import Target

LPS_FLOOR = 1e-19  # the original's literal 10e-20
# python_speech_features replaced zero filterbank energies by numpy's float64 eps before the log.
FBANK_FLOOR = 2.220446049250313e-16
PREEMPHASIS = 0.97


def stft_power(wav: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor) -> torch.Tensor:
    """|STFT|^2 of shape (B, n_fft // 2 + 1, T // hop + 1); a window shorter than n_fft is
    zero-padded centred to n_fft by torch.stft, as the original's torch.stft call did."""
    spec = torch.stft(wav, n_fft, hop_length=hop, win_length=window.numel(), window=window,
                      center=True, pad_mode="reflect", return_complex=True)
    return spec.real.square() + spec.imag.square()


class LogPowerSpectrum(Target):
    """10 log10(|X|^2 + 1e-19) over n_fft // 2 + 1 bins with a rectangular window of `win` ones
    (the original passed window=None to torch.stft, which meant exactly that)."""

    def __init__(self, name: str, n_fft: int, win: int, der_order: int, hop: int,
                 sample_rate: int) -> None:
        super().__init__(name, n_fft // 2 + 1, der_order, hop, sample_rate, n_fft // 2 + 1)
        self.n_fft = n_fft
        self.register_buffer("window", torch.ones(win), persistent=False)

    def static(self, wav: torch.Tensor, cache: dict) -> torch.Tensor:
        power = stft_power(wav, self.n_fft, self.hop, self.window)[..., : wav.shape[-1] // self.hop]
        return 10.0 * torch.log10(power + LPS_FLOOR)


class LogMelFbank(Target):
    """python_speech_features.logfbank re-done on the centred grid: pre-emphasis 0.97,
    rectangular `win`-sample frames, |FFT|^2 / n_fft, HTK mel triangles, natural log.

    Triangles are torchaudio's continuous-frequency HTK filters; python_speech_features snapped
    the triangle corners to FFT bins, so values differ slightly (most for the narrow low bands).
    """

    def __init__(self, name: str, n_fft: int, win: int, n_filters: int, f_min: float,
                 der_order: int, hop: int, sample_rate: int) -> None:
        super().__init__(name, n_filters, der_order, hop, sample_rate, n_fft // 2 + 1)
        self.n_fft = n_fft
        self.register_buffer("window", torch.ones(win), persistent=False)
        fb = AF.melscale_fbanks(n_fft // 2 + 1, float(f_min), sample_rate / 2.0, n_filters,
                                sample_rate, norm=None, mel_scale="htk")
        self.register_buffer("fb_t", fb.T.contiguous(), persistent=False)  # (n_filters, n_freqs)

    def static(self, wav: torch.Tensor, cache: dict) -> torch.Tensor:
        emph = AF.preemphasis(wav, PREEMPHASIS)
        n_frames = wav.shape[-1] // self.hop
        power = stft_power(emph, self.n_fft, self.hop, self.window)[..., :n_frames]
        mel = torch.matmul(self.fb_t, power / self.n_fft)
        return torch.log(mel.clamp_min(FBANK_FLOOR))


class MFCC(Target):
    """librosa.feature.mfcc defaults with n_fft = win (the original forced that): periodic Hann
    window, power spectrum, 128 Slaney mel bands 0..sr/2, power_to_db (ref 1, amin 1e-10,
    top_db 80 over each utterance's whole spectrogram), DCT-II ortho, first `order` rows.

    With win 400 some of the 128 mel bands are (nearly) empty, as in the original.
    """

    N_MELS = 128

    def __init__(self, name: str, win: int, order: int, der_order: int, hop: int,
                 sample_rate: int) -> None:
        super().__init__(name, order, der_order, hop, sample_rate, win // 2 + 1)
        self.n_fft = win
        self.register_buffer("window", torch.hann_window(win, periodic=True), persistent=False)
        fb = AF.melscale_fbanks(win // 2 + 1, 0.0, sample_rate / 2.0, self.N_MELS, sample_rate,
                                norm="slaney", mel_scale="slaney")
        self.register_buffer("fb_t", fb.T.contiguous(), persistent=False)
        dct = AF.create_dct(order, self.N_MELS, norm="ortho")  # (n_mels, order)
        self.register_buffer("dct_t", dct.T.contiguous(), persistent=False)

    def static(self, wav: torch.Tensor, cache: dict) -> torch.Tensor:
        mel = torch.matmul(self.fb_t, stft_power(wav, self.n_fft, self.hop, self.window))
        # (B, 1, n_mels, frames): amplitude_to_DB takes its top_db maximum per leading item,
        # so the channel axis keeps utterances from clipping each other.
        # db_multiplier is log10(ref) with ref = 1.
        db = AF.amplitude_to_DB(mel.unsqueeze(1), multiplier=10.0, amin=1e-10, db_multiplier=0.0,
                                top_db=80.0).squeeze(1)
        return torch.matmul(self.dct_t, db)[..., : wav.shape[-1] // self.hop]
