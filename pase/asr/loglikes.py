"""A hybrid model's frame scores for decoding: log-posteriors minus log-priors per utterance.

These pseudo log-likelihoods are what Kaldi's latgen-faster-mapped reads, so
:func:`write_loglikes` stores them as its ``ark``/``scp`` next to a note on running the
original's decoding on them.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from pase.asr.features import load_features
from pase.asr.finetune import utterance_logprobs
from pase.asr.mlp import FrameSet, scaled_loglikes
from pase.asr.model_io import HybridModel
from pase.io import DataDir, peak_normalize, read_audio, write_matrix_ark_scp

LATGEN_DOC = """# The scaled log-likelihoods in loglikes.ark are what Kaldi's latgen-faster-mapped reads.
# With a Kaldi install (and the model in Kaldi's format), the original's decoding is:
#   latgen-faster-mapped --min-active=200 --max-active=7000 --max-mem=50000000 --beam=13.0 \\
#     --lattice-beam=8.0 --acoustic-scale={acwt} --allow-partial=true \\
#     --word-symbol-table={words} final.mdl {graph} ark:{ark} "ark:|gzip -c > lat.1.gz"
# then local/score.sh --min-lmwt 1 --max-lmwt 10 on the lattices.
"""


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


def write_loglikes(out: Path, loglikes: Mapping[str, np.ndarray], *, acwt: float, words: Path,
                   graph: Path) -> None:
    """``<out>/loglikes.{ark,scp}`` (sorted, the scp pointing at the ark's absolute path) and
    ``<out>/latgen-faster-mapped.txt``."""
    write_matrix_ark_scp((out / "loglikes.ark").resolve(), out / "loglikes.scp",
                         sorted(loglikes.items()))
    (out / "latgen-faster-mapped.txt").write_text(LATGEN_DOC.format(
        acwt=acwt, words=words, graph=graph, ark=out / "loglikes.ark"))
