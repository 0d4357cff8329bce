"""MFCC / fbank features through torchaudio's Kaldi-compatible functions: pase-extract's
`--feats_type mfcc|fbank`, the baselines of the hybrid ASR and classification recipes.

Options are the torchaudio functions' own keyword arguments (Kaldi's option names: num_ceps,
num_mel_bins, frame_length, dither, ...) plus `delta_order` (Kaldi's add-deltas --delta-order,
window 2), so a YAML file of them reads like a Kaldi conf/mfcc.conf. `KaldiFeatureExtractor` has
`FeatureExtractor`'s `run` contract (one layer, 'final'), so pase-extract shards, merges, skips and
writes CMVN statistics the same way for every feature type.
"""
from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torchaudio.compliance.kaldi as kaldi
from tqdm import tqdm

from pase.config import ConfigError, check_keys
from pase.dump import JobWriter
from pase.io import AudioError, Utterance, check_waveform, peak_normalize, read_audio

log = logging.getLogger(__name__)

FEATURE_FUNCTIONS = {"mfcc": kaldi.mfcc, "fbank": kaldi.fbank}
DELTA_ORDER = "delta_order"
# Kaldi reads 16-bit PCM as integers; its energy floor and log compression assume that scale.
_INT16_SCALE = 32768.0


def delta_windows(order: int = 2, window: int = 2) -> list[np.ndarray]:
    """Kaldi's DeltaFeatures scales: order i is the order-(i-1) window convolved with the
    first-order one, so every order reads the (edge-clamped) input directly."""
    base = np.arange(-window, window + 1, dtype=np.float64)
    base /= np.sum(base**2)
    scales = [np.ones(1)]
    for _ in range(order):
        scales.append(np.convolve(scales[-1], base))
    return scales


def add_deltas(feats: np.ndarray, order: int = 2, window: int = 2) -> np.ndarray:
    """Kaldi ``add-deltas``: ``(T, D) -> (T, D * (order + 1))``, frames clamped at the edges.

    Applying a first-order delta twice (e.g. torchaudio's ``compute_deltas``) differs from this
    in the first and last ``window`` frames of the second order, because Kaldi clamps the input,
    not the intermediate deltas.
    """
    feats = np.asarray(feats, dtype=np.float64)
    scales = delta_windows(order, window)
    half = (len(scales[-1]) - 1) // 2
    padded = np.concatenate([np.repeat(feats[:1], half, 0), feats,
                             np.repeat(feats[-1:], half, 0)])
    t = feats.shape[0]
    out = []
    for scale in scales:
        offset = half - (len(scale) - 1) // 2
        out.append(sum(s * padded[offset + j:offset + j + t] for j, s in enumerate(scale) if s))
    return np.concatenate(out, axis=1).astype(np.float32)


def feature_options(kind: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Check `options` against the torchaudio function's own keyword arguments and `delta_order`."""
    if kind not in FEATURE_FUNCTIONS:
        raise ConfigError(f"unknown feature type {kind!r}; choose one of {', '.join(FEATURE_FUNCTIONS)}")
    allowed = set(inspect.signature(FEATURE_FUNCTIONS[kind]).parameters) - {"waveform", "sample_frequency"}
    check_keys(dict(options), allowed | {DELTA_ORDER}, f"{kind} options")
    order = options.get(DELTA_ORDER, 0)
    if not isinstance(order, int) or isinstance(order, bool) or order < 0:
        raise ConfigError(f"{kind} options: {DELTA_ORDER} must be an integer >= 0, got {order!r}")
    return dict(options)


def kaldi_features(wav: np.ndarray, kind: str, options: Mapping[str, Any], sample_rate: int) -> np.ndarray:
    """(frames, dims) float32 features of a float waveform in [-1, 1].

    Kaldi reads 16-bit samples unscaled, so the waveform is scaled to that range first: the log
    energies (and energy_floor) then mean what they mean in Kaldi.
    """
    opts = dict(options)
    order = opts.pop(DELTA_ORDER, 0)
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32) * _INT16_SCALE).unsqueeze(0)
    feats = FEATURE_FUNCTIONS[kind](x, sample_frequency=sample_rate, **opts).numpy()
    return add_deltas(feats, order) if order else feats


class KaldiFeatureExtractor:
    """Writes `kind` features of utterances to ark/scp, one utterance at a time."""

    layer_names = ("final",)

    def __init__(self, kind: str, options: Mapping[str, Any], *, sample_rate: int = 16000,
                 peak_norm: bool = False, skip_bad: bool = False, progress: bool = True) -> None:
        self.kind = kind
        self.options = feature_options(kind, options)
        self.sample_rate = sample_rate
        self.peak_norm = peak_norm
        self.skip_bad = skip_bad
        self.progress = progress
        # torchaudio fails with a bare assertion on audio shorter than one frame.
        self.min_samples = int(sample_rate * self.options.get("frame_length", 25.0) / 1000)

    def load(self, utt: Utterance) -> np.ndarray:
        wav = read_audio(utt.source, sample_rate=self.sample_rate, start=utt.start, end=utt.end,
                         name=utt.utt_id)
        check_waveform(wav, name=f"utterance {utt.utt_id!r} ({utt.source})",
                       min_samples=self.min_samples, sample_rate=self.sample_rate)
        return peak_normalize(wav, name=utt.utt_id) if self.peak_norm else wav

    def run(self, utts: list[Utterance], writer: JobWriter) -> None:
        """Write the features of `utts` (or, with `skip_bad`, skip those that cannot be read)."""
        for utt in tqdm(utts, unit="utt", disable=not self.progress, desc=self.kind):
            try:
                wav = self.load(utt)
            except AudioError as e:
                if not self.skip_bad:
                    raise
                log.warning("skipping %s", e)
                writer.skip(utt.utt_id, str(e))
                continue
            writer.write(utt.utt_id, [kaldi_features(wav, self.kind, self.options, self.sample_rate)])
