"""pase-decode's work on one data dir: graph, acoustic scores, search and scoring.

The decoding graph is the GMM dir's (:func:`pase.asr.graph.graph_for`). A hybrid model's
scaled log-likelihoods are decoded into lattices at ``acwt`` and scored for every LM weight
(Kaldi's score.sh sweep); a GMM is searched for its 1-best at acoustic scale ``1/LMWT``.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from pase.asr.decode import Decoder, decode_gmm_set, decode_loglikes_set
from pase.asr.gmm import GmmSystem
from pase.asr.gmm_dir import decode_features
from pase.asr.graph import graph_for
from pase.asr.kaldi_model import model_file
from pase.asr.lang import Lang
from pase.asr.loglikes import KaldiDecode, hybrid_loglikes, write_loglikes
from pase.asr.model_io import load_hybrid_model
from pase.asr.score import write_scores
from pase.errors import PaseError
from pase.io import read_kaldi_map

log = logging.getLogger(__name__)


def decode_dir(*, gmm: Path, lang_test: Path, data: Path, out: Path, lm_weights: Sequence[float],
               model: Path | None = None, acwt: float = 0.2, beam: float = 13.0,
               lattice_beam: float = 8.0, device: torch.device = torch.device("cpu")) -> list[str]:
    """Decode ``data`` into decode dir ``out`` with hybrid ``model`` (a pase-train-mlp dir) or,
    without one, with the GMM itself; returns the best standard and lenient RESULTS lines."""
    lang = Lang.load(lang_test)
    words = lang.id_to_word()
    system = GmmSystem.load(gmm / "final.npz")
    decoder = Decoder(graph_for(gmm, lang_test, system), system.trans_model, beam=beam,
                      lattice_beam=lattice_beam)
    refs = {u: t.split() for u, t in read_kaldi_map(data / "text", allow_empty=True).items()}
    out.mkdir(parents=True, exist_ok=True)
    if model is not None:
        hybrid = load_hybrid_model(model)
        if hybrid.num_pdfs != system.num_pdfs:
            raise PaseError(f"{model} has {hybrid.num_pdfs} outputs but {gmm} {system.num_pdfs} pdfs")
        loglikes = hybrid_loglikes(hybrid, data, device)
        write_loglikes(out, loglikes, KaldiDecode(
            model=model_file(gmm, system), graph=gmm / "graph" / "HCLG.fst", lang=lang_test,
            data=data, acwt=acwt, beam=beam, lattice_beam=lattice_beam, lm_weights=lm_weights))
        result = decode_loglikes_set(decoder, loglikes, words, acoustic_scale=acwt,
                                     lm_weights=lm_weights)
    else:
        result = decode_gmm_set(decoder, system.am, decode_features(gmm, data), words,
                                lm_weights=lm_weights)
    lines = write_scores(out, refs, result.hyps, rtf=result.rtf)
    log.info("decoding real-time factor %.4f (search only, %d frames)", result.rtf, result.frames)
    return lines
