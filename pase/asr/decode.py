"""Decoding with an HCLG graph: hybrid (pseudo log-likelihood matrices) and GMM systems.

Hybrid input is what Kaldi's ``latgen-faster-mapped`` reads: one ``(T, num_pdfs)`` matrix per
utterance of scaled log-likelihoods ``log p(pdf|x) - log p(pdf)`` (the MLP's ark). Output is
one word (= phone) id sequence per LM weight, as Kaldi's scoring picks the 1-best path of each
lattice at acoustic scale ``1/LMWT``; :func:`decode_loglikes_set` and :func:`decode_gmm_set` do
this for a whole set, in words, timing the search.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import kaldi_hmm_gmm as khg
import kaldi_decoder
import kaldifst
import numpy as np

from pase.io import PaseInputError

log = logging.getLogger(__name__)


class Decoder:
    """Decoder objects for one graph and model, reused across utterances.

    Lattices come from kaldi_decoder's LatticeSimpleDecoder, the only lattice-producing
    decoder in the pinned bindings; it prunes by ``beam`` (and ``lattice_beam``) only, so
    ``max_active``/``min_active`` (latgen-faster-mapped's histogram pruning) apply to the GMM
    decoder (khg's LatticeFasterDecoder) alone. Without the cap the hybrid search is at least
    as wide as Kaldi's.
    """

    def __init__(self, hclg: kaldifst.StdVectorFst, trans_model: khg.TransitionModel, *,
                 beam: float = 13.0, lattice_beam: float = 8.0, max_active: int = 7000,
                 min_active: int = 200) -> None:
        if not (beam > 0 and lattice_beam > 0 and 0 <= min_active <= max_active):
            raise PaseInputError(f"bad decoder options: beam={beam}, lattice_beam={lattice_beam}"
                                 f", min_active={min_active}, max_active={max_active}")
        if hclg.start < 0:
            raise PaseInputError("empty decoding graph (no start state)")
        self.hclg = hclg
        self.trans_model = trans_model
        self.beam, self.lattice_beam = beam, lattice_beam
        self.max_active, self.min_active = max_active, min_active
        # transition-id -> pdf-id, entry 0 (epsilon) dropped: DecodableCtc indexes column id-1.
        self._tid2pdf = np.asarray(trans_model.transition_id_to_pdf_array()[1:], dtype=np.int64)
        self._lattice_decoder: kaldi_decoder.LatticeSimpleDecoder | None = None
        self._gmm_decoder: khg.LatticeFasterDecoder | None = None

    def lattice(self, loglikes: np.ndarray, *, acoustic_scale: float) -> kaldifst.Lattice | None:
        """The raw (undeterminized) lattice; its acoustic costs include ``acoustic_scale``.

        ``None`` when no path survives the beam. If no final state is reached the lattice
        ends in the best states at the last frame (Kaldi's ``--allow-partial=true``).
        """
        loglikes = np.asarray(loglikes)
        if loglikes.ndim != 2 or loglikes.shape[1] != self.trans_model.num_pdfs:
            raise PaseInputError(f"log-likelihoods of shape {loglikes.shape}; the model has "
                                 f"{self.trans_model.num_pdfs} pdfs (expected (T, num_pdfs))")
        if loglikes.shape[0] == 0 or not np.isfinite(loglikes).all():
            raise PaseInputError("log-likelihood matrix is empty or has NaN/inf values")
        if not acoustic_scale > 0:
            raise PaseInputError(f"acoustic_scale must be > 0, got {acoustic_scale}")
        if self._lattice_decoder is None:
            self._lattice_decoder = kaldi_decoder.LatticeSimpleDecoder(
                self.hclg, kaldi_decoder.LatticeSimpleDecoderConfig(
                    beam=self.beam, lattice_beam=self.lattice_beam))
        scores = np.ascontiguousarray(acoustic_scale * loglikes[:, self._tid2pdf],
                                      dtype=np.float32)
        dec = self._lattice_decoder
        dec.decode(kaldi_decoder.DecodableCtc(scores))
        if not math.isfinite(dec.final_relative_cost()):
            log.warning("no final state reached after %d frames; using partial output",
                        loglikes.shape[0])
        ok, lat = dec.get_raw_lattice(use_final_probs=True)
        return lat if ok and lat.num_states > 0 else None

    def decode_matrix(self, loglikes: np.ndarray, *, acoustic_scale: float,
                      lm_weights: Sequence[float]) -> dict[float, list[int]]:
        """Word ids of the best path for each LM weight (empty when decoding failed)."""
        if not lm_weights or any(not w > 0 for w in lm_weights):
            raise PaseInputError(f"LM weights must be positive, got {list(lm_weights)}")
        lat = self.lattice(loglikes, acoustic_scale=acoustic_scale)
        if lat is None:
            log.warning("decoding failed: no surviving path")
            return {w: [] for w in lm_weights}
        out = {}
        for lmwt in lm_weights:
            # graph + acoustic/(acwt*LMWT) ranks paths as LMWT*graph + (-loglik): Kaldi's LMWT
            best = kaldifst.lattice_to_nbest(lat, acoustic_scale=1.0 / (acoustic_scale * lmwt),
                                             lm_scale=1.0, n=1)[0]
            ok, _, words, _ = kaldifst.get_linear_symbol_sequence(best)
            if not ok:
                raise RuntimeError("lattice_to_nbest returned a non-linear path")
            out[lmwt] = list(words)
        return out

    def decode_gmm(self, am: khg.AmDiagGmm, feats: np.ndarray, *,
                   acoustic_scale: float = 0.1) -> list[int]:
        """Word ids of the 1-best path of a GMM system (gmm-latgen-faster's best path)."""
        feats = np.ascontiguousarray(feats, dtype=np.float32)
        if feats.ndim != 2 or feats.shape[0] == 0:
            raise PaseInputError(f"features must be a non-empty (T, dim) matrix, got {feats.shape}")
        if self._gmm_decoder is None:
            self._gmm_decoder = khg.LatticeFasterDecoder(self.hclg, khg.LatticeFasterDecoderConfig(
                beam=self.beam, max_active=self.max_active, min_active=self.min_active,
                lattice_beam=self.lattice_beam))
        decodable = khg.DecodableAmDiagGmmScaled(am=am, tm=self.trans_model, feats=feats,
                                                 scale=acoustic_scale)
        ok, _, words, _ = khg.decode_utterance_lattice_faster(
            decoder=self._gmm_decoder, decodable=decodable, trans_model=self.trans_model,
            utt="", allow_partial=True)
        if not ok:
            log.warning("GMM decoding failed: no surviving path")
            return []
        return list(words)


def decode_matrix(hclg: kaldifst.StdVectorFst, trans_model: khg.TransitionModel,
                  loglikes: np.ndarray, *, acoustic_scale: float, beam: float = 13.0,
                  lattice_beam: float = 8.0, max_active: int = 7000, min_active: int = 200,
                  lm_weights: Sequence[float]) -> dict[float, list[int]]:
    """One utterance, latgen-faster-mapped + Kaldi scoring: LMWT -> best word-id sequence.

    For many utterances make one :class:`Decoder` and call its ``decode_matrix``.
    """
    return Decoder(hclg, trans_model, beam=beam, lattice_beam=lattice_beam,
                   max_active=max_active, min_active=min_active
                   ).decode_matrix(loglikes, acoustic_scale=acoustic_scale, lm_weights=lm_weights)


def decode_gmm(hclg: kaldifst.StdVectorFst, trans_model: khg.TransitionModel, am: khg.AmDiagGmm,
               feats: np.ndarray, *, acoustic_scale: float = 0.1, beam: float = 13.0,
               lattice_beam: float = 8.0, max_active: int = 7000,
               min_active: int = 200) -> list[int]:
    """One utterance with a GMM acoustic model: best word-id sequence."""
    return Decoder(hclg, trans_model, beam=beam, lattice_beam=lattice_beam,
                   max_active=max_active, min_active=min_active
                   ).decode_gmm(am, feats, acoustic_scale=acoustic_scale)


class SetHypotheses(NamedTuple):
    """A set's word sequences per LM weight and the search effort behind them."""

    hyps: dict[float, dict[str, list[str]]]
    search_seconds: float
    frames: int  # frames searched: a GMM set is searched once per LM weight

    @property
    def rtf(self) -> float:
        """Search time over audio time (10 ms frames)."""
        return self.search_seconds / max(self.frames * 0.01, 1e-9)


def decode_loglikes_set(decoder: Decoder, loglikes: Mapping[str, np.ndarray],
                        words: Mapping[int, str], *, acoustic_scale: float,
                        lm_weights: Sequence[float]) -> SetHypotheses:
    """Hybrid: one lattice per utterance at ``acoustic_scale``, its best path per LM weight."""
    hyps: dict[float, dict[str, list[str]]] = {w: {} for w in lm_weights}
    seconds, frames = 0.0, 0
    for utt, ll in loglikes.items():
        start = time.time()
        out = decoder.decode_matrix(ll, acoustic_scale=acoustic_scale, lm_weights=lm_weights)
        seconds += time.time() - start
        frames += len(ll)
        for w in lm_weights:
            hyps[w][utt] = [words[i] for i in out[w]]
    return SetHypotheses(hyps, seconds, frames)


def decode_gmm_set(decoder: Decoder, am: khg.AmDiagGmm, feats: Mapping[str, np.ndarray],
                   words: Mapping[int, str], *, lm_weights: Sequence[float]) -> SetHypotheses:
    """GMM: a 1-best search per utterance and LM weight at acoustic scale ``1/LMWT``."""
    hyps: dict[float, dict[str, list[str]]] = {w: {} for w in lm_weights}
    seconds, frames = 0.0, 0
    for utt, f in feats.items():
        start = time.time()
        for w in lm_weights:
            hyps[w][utt] = [words[i] for i in decoder.decode_gmm(am, f, acoustic_scale=1.0 / w)]
        seconds += time.time() - start
        frames += len(f) * len(lm_weights)
    return SetHypotheses(hyps, seconds, frames)
