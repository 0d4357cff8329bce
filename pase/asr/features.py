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

from pase.errors import PaseError
from pase.io import ArkScpWriter, DataDir, apply_cmvn, compute_cmvn_stats, read_audio, read_kaldi_map
from pase.io.errors import PaseInputError
from pase.kaldi_feats import add_deltas, kaldi_features

FEAT_DIM = 39
GMM_MFCC = {"num_ceps": 13, "use_energy": False, "dither": 0.0, "snip_edges": True}


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
    return kaldi_features(wave, "mfcc", GMM_MFCC, sample_rate)


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


def mfcc_cmvn_deltas(data: DataDir) -> dict[str, np.ndarray]:
    """GMM features ``utt -> (T, 39) float32`` of every utterance of ``data``."""
    raw = {}
    with torch_single_thread():
        for utt in data.utterances:
            wave = read_audio(utt.source, start=utt.start, end=utt.end, name=utt.utt_id)
            if len(wave) < 400:
                raise PaseInputError(f"{data.path}: {utt.utt_id}: shorter than one 25 ms frame")
            raw[utt.utt_id] = mfcc(wave)
    return cmvn_deltas(raw, data.utt2spk)


def write_feats(feats: Mapping[str, np.ndarray], ark: str | Path, scp: str | Path) -> None:
    """Write features as a Kaldi float-matrix ark/scp (for Kaldi, kaldiio, kaldi_native_io)."""
    with ArkScpWriter(ark, scp) as writer:
        for utt, mat in feats.items():
            writer.write(utt, mat)


def read_feats(scp: str | Path) -> dict[str, np.ndarray]:
    """Read a feature scp as ``utt -> float32 matrix``, in scp order."""
    return {u: np.asarray(m, dtype=np.float32) for u, m in kaldiio.load_scp(str(scp)).items()}


def load_features(source: Path) -> dict[str, np.ndarray]:
    """Features of a data dir (feats.scp, per-speaker mean normalisation from cmvn.scp) or an scp.

    The one reader of the hybrid model's inputs, so training and decoding normalise alike.
    """
    if source.is_dir():
        scp = source / "feats.scp"
        if not scp.is_file():
            raise PaseError(f"{source}: no feats.scp (dump features with pase-extract first)")
        feats = read_feats(scp)
        if (source / "cmvn.scp").is_file():
            cmvn = kaldiio.load_scp(str(source / "cmvn.scp"))
            utt2spk = read_kaldi_map(source / "utt2spk")
            feats = {u: apply_cmvn(m, cmvn[utt2spk[u]]) for u, m in feats.items()}
        return feats
    if not source.is_file():
        raise PaseError(f"{source}: neither a data dir nor a feats.scp file")
    return read_feats(source)
