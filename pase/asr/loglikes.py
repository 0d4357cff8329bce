"""A hybrid model's frame scores for decoding: log-posteriors minus log-priors per utterance.

These pseudo log-likelihoods are what Kaldi's latgen-faster-mapped reads, so
:func:`write_loglikes` stores them as its ``ark``/``scp`` next to the Kaldi commands that decode
and score them as the original did (the model, graph and scoring script they name exist).
"""
from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pase.asr.features import load_features
from pase.asr.finetune import utterance_logprobs
from pase.asr.mlp import FrameSet, scaled_loglikes
from pase.asr.model_io import HybridModel
from pase.io import DataDir, peak_normalize, read_audio, write_matrix_ark_scp

LATGEN_DOC = """\
# Kaldi's own decoding of loglikes.ark ((log-posterior - log-prior) per frame and pdf, what
# latgen-faster-mapped reads) and its scoring, as the original ran them. Run from the directory
# pase-decode ran in, with Kaldi's binaries on PATH (local/score.sh also finds them from
# KALDI_ROOT). The model is the GMM system's transition model and GMMs in Kaldi's format, the
# graph its HCLG; local/score.sh (the recipe's) writes the 39-phone PER per LM weight (both
# silence scorings, compute-wer) beside pase-decode's own.
latgen-faster-mapped --min-active=200 --max-active=7000 --max-mem=50000000 --beam={beam:g} \\
  --lattice-beam={lattice_beam:g} --acoustic-scale={acwt:g} --allow-partial=true \\
  --word-symbol-table={words} {model} {graph} {ark} {lattices}
echo 1 > {num_jobs}
local/score.sh --min-lmwt {min_lmwt:g} --max-lmwt {max_lmwt:g} {data} {lang} {out}
"""


@dataclass(frozen=True)
class KaldiDecode:
    """What the note's commands need: the Kaldi files and the decoding options."""

    model: Path       # <gmm>/final.mdl
    graph: Path       # <gmm>/graph/HCLG.fst
    lang: Path        # the test lang dir (its words.txt)
    data: Path        # the decoded data dir (its text, for scoring)
    acwt: float
    beam: float
    lattice_beam: float
    lm_weights: Sequence[float]


def hybrid_loglikes(hybrid: HybridModel, data: Path, device: torch.device) -> dict[str, np.ndarray]:
    """``(T, num_pdfs)`` per utterance of data dir ``data``: from its feats.scp, or from its
    audio for a fine-tuned model (encoder and MLP together)."""
    model, priors = hybrid.model.to(device), hybrid.priors
    if hybrid.finetuned:
        return {u.utt_id: utterance_logprobs(model, peak_normalize(
            read_audio(u.source, start=u.start, end=u.end, name=u.utt_id), name=u.utt_id),
            device).numpy() - priors for u in DataDir.load(data).utterances}
    frames = FrameSet(load_features(data), None, hybrid.options.context)
    return scaled_loglikes(model, frames, priors, device)


def write_loglikes(out: Path, loglikes: Mapping[str, np.ndarray], kaldi: KaldiDecode) -> None:
    """``<out>/loglikes.{ark,scp}`` (sorted, the scp pointing at the ark's absolute path) and
    ``<out>/latgen-faster-mapped.txt``, Kaldi's decoding and scoring of them as a shell script."""
    write_matrix_ark_scp((out / "loglikes.ark").resolve(), out / "loglikes.scp",
                         sorted(loglikes.items()))
    q = shlex.quote
    (out / "latgen-faster-mapped.txt").write_text(LATGEN_DOC.format(
        beam=kaldi.beam, lattice_beam=kaldi.lattice_beam, acwt=kaldi.acwt,
        words=q(str(kaldi.lang / "words.txt")), model=q(str(kaldi.model)),
        graph=q(str(kaldi.graph)), ark=q(f"ark:{out / 'loglikes.ark'}"),
        lattices=q(f"ark:|gzip -c > {q(str(out / 'lat.1.gz'))}"), num_jobs=q(str(out / "num_jobs")),
        min_lmwt=min(kaldi.lm_weights), max_lmwt=max(kaldi.lm_weights), data=q(str(kaldi.data)),
        lang=q(str(kaldi.lang)), out=q(str(out))))
