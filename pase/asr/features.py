"""MFCC + per-speaker CMVN + deltas: the GMM-HMM front end of Kaldi's TIMIT recipe.

Equivalent to Kaldi's ``compute-mfcc-feats --config=conf/mfcc.conf`` with TIMIT's
``conf/mfcc.conf`` (``--use-energy=false``: c0 is the zeroth cepstrum, not log energy),
``compute-cmvn-stats --spk2utt`` + ``apply-cmvn --utt2spk`` (means only, Kaldi's default) and
``add-deltas`` (order 2, window 2): 39 dimensions. Two deliberate differences from Kaldi's
defaults: dither is 0 so that features (and hence every model trained on them) are
reproducible bit for bit, and nothing else is randomised.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import kaldiio
import numpy as np
import torch
import torchaudio

from pase.io import ArkScpWriter, DataDir, apply_cmvn, compute_cmvn_stats, read_audio
from pase.io.errors import PaseInputError

FEAT_DIM = 39
# Kaldi reads 16-bit PCM as integers; its energy floor and log compression assume that scale.
_INT16_SCALE = 32768.0


@contextmanager
def torch_single_thread() -> Iterator[None]:
    """Run torch on one intra-op thread, restoring the setting afterwards.

    The GMM front end and statistics work on many small tensors: threads gain little there,
    and on busy cores their hand-offs made the work 10-100x slower (measured: MFCCs of 40
    utterances in 0.07 s with one thread, 3-7 s with two; a monophone accumulation pass 14x).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def mfcc(wave: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """13 Kaldi MFCCs (25 ms / 10 ms, snip_edges, no energy, no dither) of a float waveform."""
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32) * _INT16_SCALE)
    return torchaudio.compliance.kaldi.mfcc(
        x[None], sample_frequency=float(sample_rate), num_ceps=13, use_energy=False, dither=0.0,
        snip_edges=True).numpy()


def fbank(wave: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """40 Kaldi log mel filterbank energies (25 ms / 10 ms, snip_edges, no dither)."""
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32) * _INT16_SCALE)
    return torchaudio.compliance.kaldi.fbank(
        x[None], sample_frequency=float(sample_rate), num_mel_bins=40, dither=0.0,
        snip_edges=True).numpy()


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


def cmvn_deltas(raw: Mapping[str, np.ndarray], utt2spk: Mapping[str, str]
                ) -> dict[str, np.ndarray]:
    """Subtract each speaker's mean (Kaldi's per-speaker CMVN without variance normalisation),
    then add deltas."""
    by_spk: dict[str, list[str]] = {}
    for utt in raw:
        by_spk.setdefault(utt2spk[utt], []).append(utt)
    out = {}
    for utts in by_spk.values():
        stats = compute_cmvn_stats(raw[u] for u in utts)
        for u in utts:
            out[u] = add_deltas(apply_cmvn(raw[u], stats))
    return {u: out[u] for u in raw}


def mfcc_cmvn_deltas(data: DataDir, kind: str = "mfcc") -> dict[str, np.ndarray]:
    """GMM features ``utt -> (T, 39) float32`` of every utterance of ``data``; ``kind="fbank"``
    gives 40 filterbank energies with the same normalisation and deltas (T, 120), a baseline
    input for the hybrid MLP."""
    extract = {"mfcc": mfcc, "fbank": fbank}[kind]
    raw = {}
    with torch_single_thread():
        for utt in data.utterances:
            wave = read_audio(utt.source, start=utt.start, end=utt.end, name=utt.utt_id)
            if len(wave) < 400:
                raise PaseInputError(f"{data.path}: {utt.utt_id}: shorter than one 25 ms frame")
            raw[utt.utt_id] = extract(wave)
    return cmvn_deltas(raw, data.utt2spk)


def write_feats(feats: Mapping[str, np.ndarray], ark: str | Path, scp: str | Path) -> None:
    """Write features as a Kaldi float-matrix ark/scp (for Kaldi, kaldiio, kaldi_native_io)."""
    with ArkScpWriter(ark, scp) as writer:
        for utt, mat in feats.items():
            writer.write(utt, mat)


def read_feats(scp: str | Path) -> dict[str, np.ndarray]:
    """Read a feature scp as ``utt -> float32 matrix``, in scp order."""
    return {u: np.asarray(m, dtype=np.float32) for u, m in kaldiio.load_scp(str(scp)).items()}
