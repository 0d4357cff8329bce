"""Forced alignment with a GMM-HMM (Kaldi's ``compile-train-graphs`` + ``gmm-align-compiled``).

Training graphs are compiled once per tree with transition and self-loop scales 0 (as Kaldi's
compile-train-graphs does); the transition probabilities are added to a copy of the graph at
alignment time, so re-estimated transitions are used without recompiling and never counted
twice. Alignments are transition-id sequences, stored as Kaldi int32-vector archives.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import kaldi_hmm_gmm as khg  # noqa: I001  (before kaldifst: the pinned bindings expect this order)
import kaldifst
import kaldiio
import numpy as np

from pase.asr.lang import Lang
from pase.io.errors import PaseInputError

if TYPE_CHECKING:
    from pase.asr.gmm import GmmSystem

log = logging.getLogger(__name__)

# Kaldi's scale_opts in steps/train_*.sh and align_si.sh.
ACOUSTIC_SCALE = 0.1
TRANSITION_SCALE = 1.0
SELF_LOOP_SCALE = 0.1


@dataclass
class AlignResult:
    """Alignments of the utterances that aligned, the ones that failed, and the total score."""

    alignments: dict[str, np.ndarray]
    failed: list[str] = field(default_factory=list)
    tot_like: float = 0.0
    frames: int = 0
    seconds: float = 0.0

    @property
    def like_per_frame(self) -> float:
        return self.tot_like / max(self.frames, 1)


class GraphCompiler:
    """Kaldi's TrainingGraphCompiler for one tree, keeping the models it references alive."""

    def __init__(self, system: GmmSystem, lang: Lang) -> None:
        self.system = system
        lex = lang.L.copy()
        kaldifst.arcsort(lex, sort_type="olabel")
        self._compiler = khg.TrainingGraphCompiler(
            trans_model=system.trans_model, ctx_dep=system.tree, lex_fst=lex,
            disambig_syms=list(lang.disambig_phone_ids),
            opts=khg.TrainingGraphCompilerOptions(transition_scale=0.0, self_loop_scale=0.0,
                                                  reorder=True))

    def compile(self, transcripts: Mapping[str, Sequence[int]]) -> dict[str, kaldifst.StdVectorFst]:
        """One training graph per utterance; an empty transcript or graph is an error."""
        graphs = {}
        for utt, words in transcripts.items():
            if not words:
                raise PaseInputError(f"{utt}: empty transcript, nothing to align to")
            graph = self._compiler.compile_graph_from_text(list(words))
            if graph.num_states == 0:
                raise PaseInputError(f"{utt}: empty training graph (words not in the lexicon?)")
            graphs[utt] = graph
        return graphs


def align_compiled(system: GmmSystem, feats: Mapping[str, np.ndarray],
                   graphs: Mapping[str, kaldifst.StdVectorFst], *, beam: float = 10.0,
                   retry_beam: float = 40.0) -> AlignResult:
    """Viterbi-align each utterance to its graph; a failure at ``beam`` retries at
    ``retry_beam`` (0: no retry), and one that fails again is logged and listed."""
    if retry_beam and retry_beam <= beam:
        raise PaseInputError(f"retry beam {retry_beam} must exceed the beam {beam} (or be 0)")
    start = time.perf_counter()
    config = khg.AlignConfig(beam=beam, retry_beam=retry_beam, careful=False)
    result = AlignResult({})
    for utt in graphs:
        graph = graphs[utt].copy()  # add_transition_probs works in place
        khg.add_transition_probs(trans_model=system.trans_model,
                                 transition_scale=TRANSITION_SCALE,
                                 self_loop_scale=SELF_LOOP_SCALE, fst=graph)
        mat = np.ascontiguousarray(feats[utt], dtype=np.float32)
        decodable = khg.DecodableAmDiagGmmScaled(am=system.am, tm=system.trans_model, feats=mat,
                                                 scale=ACOUSTIC_SCALE)
        _, num_err, _, like, nframes, ali, _ = khg.align_utterance_wrapper(
            config=config, utt=utt, acoustic_scale=ACOUSTIC_SCALE, fst=graph,
            decodable=decodable, num_done=0, num_error=0, num_retried=0, tot_like=0.0,
            frame_count=0)
        if num_err or len(ali) != len(mat):
            result.failed.append(utt)
            continue
        result.alignments[utt] = np.asarray(ali, dtype=np.int32)
        # Kaldi's AlignUtteranceWrapper: acoustic log-likelihood + graph score / acoustic scale.
        result.tot_like += like
        result.frames += nframes
    result.seconds = time.perf_counter() - start
    if result.failed:
        log.warning("alignment failed for %d of %d utterance(s) even at retry beam %g: %s",
                    len(result.failed), len(result.failed) + len(result.alignments), retry_beam,
                    " ".join(result.failed[:20]) + (" ..." if len(result.failed) > 20 else ""))
    return result


def align(system: GmmSystem, feats: Mapping[str, np.ndarray],
          transcripts: Mapping[str, Sequence[int]], lang: Lang, *, beam: float = 10.0,
          retry_beam: float = 40.0) -> AlignResult:
    """Align every utterance that has both features and a transcript (others are logged)."""
    common = [u for u in transcripts if u in feats]
    missing = len(transcripts) + len(feats) - 2 * len(common)
    if missing:
        log.warning("%d utterance(s) lack features or a transcript and are not aligned", missing)
    graphs = GraphCompiler(system, lang).compile({u: transcripts[u] for u in common})
    return align_compiled(system, feats, graphs, beam=beam, retry_beam=retry_beam)


def write_alignments(path: str | Path, alignments: Mapping[str, np.ndarray]) -> None:
    """Write ``utt -> int vector`` as a binary Kaldi int32-vector ark (``ali-to-pdf`` format),
    keys in C order, atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            for utt in sorted(alignments, key=lambda k: k.encode("utf-8")):
                kaldiio.save_ark(f, {utt: np.asarray(alignments[utt], dtype=np.int32)})
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def read_alignments(path: str | Path) -> dict[str, np.ndarray]:
    """Read an int32-vector ark written by :func:`write_alignments` (or by Kaldi)."""
    return {utt: np.asarray(v, dtype=np.int32) for utt, v in kaldiio.load_ark(str(path))}
