"""GMM-HMM training as Kaldi's ``train_mono.sh`` and ``train_deltas.sh`` do.

Graph compilation, alignment and the ML update (MleDiagGmmUpdate per pdf,
TransitionModel::MleUpdate) come from kaldi-hmm-gmm, so variance flooring and Gaussian removal
behave as in Kaldi. Done here: the statistics accumulation (gmm-acc-stats-ali, vectorised over
all frames of a pdf instead of one Python call per frame), mixing up (Kaldi's SplitByCount,
with a seeded random generator so that training is reproducible), convert-ali, and the
triphone tree (:mod:`pase.asr.tree`).
"""
from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import _kaldi_hmm_gmm  # the bindings' raw module: mle_diag_gmm_update is not re-exported
import kaldi_hmm_gmm as khg  # noqa: I001  (before kaldifst: the pinned bindings expect this order)
import kaldifst
import numpy as np
import torch

from pase.asr.align import AlignResult, GraphCompiler, align_compiled
from pase.asr.features import torch_single_thread
from pase.asr.gmm import GmmSystem, diag_gmm, read_topology
from pase.asr.lang import Lang
from pase.asr.tree import accumulate_tree_stats, build_tree, make_questions
from pase.errors import PaseError

log = logging.getLogger(__name__)

# steps/train_mono.sh
MONO_REALIGN_ITERS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 23, 26, 29, 32, 35, 38)
# steps/train_deltas.sh
TRI_REALIGN_ITERS = (10, 20, 30)
# gmm-est defaults for mixing up.
_PERTURB_FACTOR = 0.01
_MIXUP_MIN_COUNT = 20.0


class IterationStats(NamedTuple):
    """One EM pass: the avg log-likelihood per frame is measured on the pass's alignment
    with the model it is about to update (gmm-acc-stats-ali's figure). Mono's iteration 0
    runs on the equal alignment; ``failed`` counts utterances its alignment left out."""

    iteration: int
    realigned: bool
    frames: int
    like_per_frame: float
    num_gauss: int
    failed: int
    seconds: float


class TrainResult(NamedTuple):
    """A trained system, its alignments of the training data with the final model, and the
    per-iteration history."""

    system: GmmSystem
    alignments: dict[str, np.ndarray]
    history: list[IterationStats]


@dataclass
class _PdfStats:
    """Zeroth/first/second-order statistics per Gaussian of every pdf (the E-step result)."""

    occ: list[np.ndarray]
    x: list[np.ndarray]
    x2: list[np.ndarray]
    tot_like: float
    frames: int


def accumulate(am: khg.AmDiagGmm, feats: np.ndarray, pdfs: np.ndarray) -> _PdfStats:
    """gmm-acc-stats-ali for frames ``feats`` (N, D) labelled with ``pdfs`` (N,): component
    posteriors and moments per pdf with matrix products, in float64 (torch, one thread: numpy's
    multi-threaded BLAS made this 14x slower on busy cores)."""
    order = np.argsort(pdfs, kind="stable")
    bounds = np.searchsorted(pdfs[order], np.arange(am.num_pdfs + 1))
    frames = torch.from_numpy(np.ascontiguousarray(feats[order], dtype=np.float64))
    stats = _PdfStats([], [], [], 0.0, len(pdfs))
    with torch_single_thread():
        for p in range(am.num_pdfs):
            gmm = am.get_pdf(p)
            x = frames[bounds[p]:bounds[p + 1]]
            x2 = x * x
            ll = (torch.from_numpy(gmm.gconsts.astype(np.float64))
                  + x @ torch.from_numpy(gmm.means_invvars.astype(np.float64)).T
                  - 0.5 * x2 @ torch.from_numpy(gmm.inv_vars.astype(np.float64)).T)
            frame_ll = torch.logsumexp(ll, dim=1)
            post = torch.exp(ll - frame_ll[:, None])
            stats.tot_like += float(frame_ll.sum())
            stats.occ.append(post.sum(dim=0).numpy())
            stats.x.append((post.T @ x).numpy())
            stats.x2.append((post.T @ x2).numpy())
    return stats


def split_targets(occs: np.ndarray, target: int, power: float, min_count: float) -> list[int]:
    """Kaldi's GetSplitTargets: Gaussians per pdf for ``target`` in total, handed out one at a
    time to the pdf with the most occupancy^power per Gaussian, while each Gaussian keeps
    ``min_count`` frames."""
    weight = np.power(np.asarray(occs, dtype=np.float64), power)
    counts = [1] * len(occs)
    heap = [(-w, p) for p, w in enumerate(weight) if w > 0]
    heapq.heapify(heap)
    total = len(occs)
    while heap and total < target:
        _, p = heapq.heappop(heap)
        if (counts[p] + 1) * min_count >= occs[p]:
            continue
        counts[p] += 1
        total += 1
        heapq.heappush(heap, (-weight[p] / counts[p], p))
    return counts


def split_gmm(gmm: khg.DiagGmm, target: int, perturb_factor: float,
              rng: np.random.Generator) -> None:
    """Kaldi's DiagGmm::Split in place: halve the heaviest component into two copies whose
    means move apart by ``perturb_factor`` random standard deviations. Done here because the
    bindings draw that noise from an unseedable std::random_device (irreproducible training)."""
    n = gmm.num_gauss
    if target <= n:
        return
    weights = gmm.weights.astype(np.float64)
    inv_vars = gmm.inv_vars.astype(np.float64)
    means_invvars = gmm.means_invvars.astype(np.float64)
    weights = np.concatenate([weights, np.zeros(target - n)])
    inv_vars = np.concatenate([inv_vars, np.zeros((target - n, inv_vars.shape[1]))])
    means_invvars = np.concatenate([means_invvars, np.zeros_like(inv_vars[n:])])
    for new in range(n, target):
        big = int(np.argmax(weights[:new]))
        weights[big] /= 2
        weights[new] = weights[big]
        shift = perturb_factor * rng.standard_normal(inv_vars.shape[1]) * np.sqrt(inv_vars[big])
        inv_vars[new] = inv_vars[big]
        means_invvars[new] = means_invvars[big] + shift
        means_invvars[big] -= shift
    gmm.resize(target, inv_vars.shape[1])
    gmm.set_weights(weights.astype(np.float32))
    gmm.set_invvars_and_means(inv_vars.astype(np.float32),
                              (means_invvars / inv_vars).astype(np.float32))
    gmm.compute_gconsts()


def update(system: GmmSystem, stats: _PdfStats, tids: np.ndarray, *,
           min_gaussian_occupancy: float = 10.0, mix_up: int = 0, power: float = 0.25,
           rng: np.random.Generator | None = None) -> None:
    """gmm-est: Kaldi's ML update of transitions and of every pdf, then (Kaldi's
    SplitByCount) mixing up to ``mix_up`` Gaussians in total when that is more than there are."""
    counts = np.bincount(tids, minlength=system.trans_model.num_transition_ids + 1)
    system.trans_model.mle_update(counts.astype(np.float64), khg.MleTransitionUpdateConfig())
    flags = int(khg.GmmUpdateFlags.kGmmAll)
    opts = khg.MleDiagGmmOptions()
    opts.min_gaussian_occupancy = min_gaussian_occupancy
    dim = system.am.dim
    for p in range(system.num_pdfs):
        acc = khg.AccumDiagGmm()
        acc.resize(num_gauss=len(stats.occ[p]), dim=dim, flags=flags)
        for g in range(len(stats.occ[p])):
            acc.add_stats_for_component(g, float(stats.occ[p][g]), stats.x[p][g], stats.x2[p][g])
        if stats.occ[p].sum() > 0:
            _kaldi_hmm_gmm.mle_diag_gmm_update(opts, acc, flags, system.am.get_pdf(p))
    if mix_up > system.num_gauss:
        rng = np.random.default_rng(0) if rng is None else rng
        occs = np.array([o.sum() for o in stats.occ])
        for p, n in enumerate(split_targets(occs, mix_up, power, _MIXUP_MIN_COUNT)):
            split_gmm(system.am.get_pdf(p), n, _PERTURB_FACTOR, rng)


class _Trainer:
    """The EM loop shared by mono and tri training (Kaldi's iteration/realign/mix-up schedule)."""

    def __init__(self, system: GmmSystem, feats: Mapping[str, np.ndarray],
                 graphs: Mapping[str, kaldifst.StdVectorFst]) -> None:
        self.system, self.feats, self.graphs = system, feats, graphs
        self.history: list[IterationStats] = []
        self.rng = np.random.default_rng(0)

    def em_pass(self, iteration: int, alignments: Mapping[str, np.ndarray], realigned: bool,
                failed: int, *, min_gaussian_occupancy: float, mix_up: int, power: float,
                started: float) -> None:
        utts = list(alignments)
        tids = np.concatenate([alignments[u] for u in utts])
        x = np.concatenate([self.feats[u] for u in utts])
        stats = accumulate(self.system.am, x, self.system.pdf_alignment(tids))
        update(self.system, stats, tids, min_gaussian_occupancy=min_gaussian_occupancy,
               mix_up=mix_up, power=power, rng=self.rng)
        it = IterationStats(iteration, realigned, stats.frames, stats.tot_like / stats.frames,
                            self.system.num_gauss, failed, time.perf_counter() - started)
        log.info("iter %d: %s%d frames, avg like/frame %.4f, %d Gaussians, %.1fs", iteration,
                 "realigned, " if realigned else "", it.frames, it.like_per_frame, it.num_gauss,
                 it.seconds)
        self.history.append(it)

    def align(self, beam: float, retry_beam: float) -> AlignResult:
        return align_compiled(self.system, self.feats, self.graphs, beam=beam,
                              retry_beam=retry_beam)

    def run(self, alignments: dict[str, np.ndarray], *, first_iter: int, num_iters: int,
            max_iter_inc: int, tot_gauss: int, realign_iters: Sequence[int], power: float,
            beams: Sequence[float], retry_factor: float) -> dict[str, np.ndarray]:
        """Iterations ``first_iter .. num_iters-1``; ``beams[0]`` for the first realignment,
        ``beams[1]`` after it (train_mono's 6 then 10); returns final-model alignments."""
        num_gauss = self.system.num_gauss
        inc_gauss = max(0, (tot_gauss - num_gauss) // max(max_iter_inc, 1))
        beam = beams[0]
        for x in range(first_iter, num_iters):
            started = time.perf_counter()
            failed = 0
            if x in realign_iters:
                result = self.align(beam, beam * retry_factor)
                alignments, failed = result.alignments, len(result.failed)
                beam = beams[1]
            if not alignments:
                raise PaseError(f"iteration {x}: no utterance could be aligned")
            self.em_pass(x, alignments, x in realign_iters, failed, min_gaussian_occupancy=10.0,
                         mix_up=num_gauss, power=power, started=started)
            if x <= max_iter_inc:
                num_gauss += inc_gauss
        final = self.align(beams[1], beams[1] * retry_factor)
        log.info("final alignment: %d utterances, avg like/frame %.4f, %d failed",
                 len(final.alignments), final.like_per_frame, len(final.failed))
        return final.alignments


def _global_gaussian(feats: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate(list(feats.values())).astype(np.float64)
    return x.mean(axis=0), np.maximum(x.var(axis=0), 1e-3)


def equal_alignments(graphs: Mapping[str, kaldifst.StdVectorFst],
                     feats: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """align-equal-compiled: a random path of the right length through each graph, giving
    every state about the same number of frames (utterances too short for theirs are left out)."""
    out = {}
    for utt, graph in graphs.items():
        ok, path = kaldifst.equal_align(ifst=graph, length=len(feats[utt]), rand_seed=0,
                                        num_retries=10)
        if ok:
            ok, tids, _, _ = kaldifst.get_linear_symbol_sequence(path)
        if ok and len(tids) == len(feats[utt]):
            out[utt] = np.asarray(tids, dtype=np.int32)
        else:
            log.warning("%s: no equal alignment (%d frames too few for its transcript?)", utt,
                        len(feats[utt]))
    return out


def _usable(feats: Mapping[str, np.ndarray], transcripts: Mapping[str, Sequence[int]]
            ) -> dict[str, Sequence[int]]:
    common = {u: transcripts[u] for u in transcripts if u in feats}
    if not common:
        raise PaseError("no utterance has both features and a transcript")
    dropped = len(transcripts) + len(feats) - 2 * len(common)
    if dropped:
        log.warning("%d utterance(s) without features or transcript are not used", dropped)
    return common


def train_mono(feats: Mapping[str, np.ndarray], transcripts: Mapping[str, Sequence[int]],
               lang: Lang, *, num_iters: int = 40, max_iter_inc: int = 30,
               tot_gauss: int = 1000, realign_iters: Sequence[int] = MONO_REALIGN_ITERS,
               power: float = 0.25, beam: float = 10.0, retry_beam: float = 40.0) -> TrainResult:
    """steps/train_mono.sh: one Gaussian per pdf from the global mean and variance, EM from
    equal alignments, realignment on ``realign_iters`` (beam 6 first, then ``beam``), mixing
    up linearly to ``tot_gauss`` over ``max_iter_inc`` iterations."""
    transcripts = _usable(feats, transcripts)
    topo = read_topology(lang.topo_text)
    tree = khg.monophone_context_dependency(
        phones=topo.phones, phone2num_pdf_classes=topo.get_phone_to_num_pdf_classes())
    mean, var = _global_gaussian(feats)
    proto = diag_gmm(np.ones(1), mean[None], var[None])
    system = GmmSystem.build(topo, tree, [proto] * tree.num_pdfs)
    graphs = GraphCompiler(system, lang).compile(transcripts)
    trainer = _Trainer(system, feats, graphs)
    started = time.perf_counter()
    alignments = equal_alignments(graphs, feats)
    if not alignments:
        raise PaseError("no utterance could be equally aligned")
    # gmm-est on the equal alignments: --min-gaussian-occupancy=3.
    trainer.em_pass(0, alignments, True, len(graphs) - len(alignments),
                    min_gaussian_occupancy=3.0, mix_up=0, power=power, started=started)
    retry_factor = retry_beam / beam
    alignments = trainer.run(alignments, first_iter=1, num_iters=num_iters,
                             max_iter_inc=max_iter_inc, tot_gauss=tot_gauss,
                             realign_iters=realign_iters, power=power, beams=(6.0, beam),
                             retry_factor=retry_factor)
    return TrainResult(system, alignments, trainer.history)


def convert_alignments(src: GmmSystem, dst: GmmSystem, alignments: Mapping[str, np.ndarray]
                       ) -> dict[str, np.ndarray]:
    """convert-ali: the same phone/HMM-state/transition path in ``dst``'s transition ids,
    with pdfs from ``dst``'s tree for each frame's phone context."""
    table, dst_table = src.tid_table, dst.tid_table
    # (phone, hmm_state, pdf) -> transition state of dst; the standard topologies have one
    # pdf class per state, so that pdf identifies the transition tuple.
    dst_states: dict[tuple[int, int, int], int] = {}
    for tid in range(1, len(dst_table["pdf"])):
        key = (int(dst_table["phone"][tid]), int(dst_table["hmm_state"][tid]),
               int(dst_table["pdf"][tid]))
        dst_states.setdefault(key, int(dst_table["state"][tid]))
    utts = list(alignments)
    tids = np.concatenate([alignments[u] for u in utts])
    keys = np.column_stack([np.concatenate([src.frame_contexts(alignments[u]) for u in utts]),
                            table["pdf_class"][tids], table["hmm_state"][tids]])
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    states = np.empty(len(uniq), dtype=np.int64)
    for j, (left, centre, right, pdf_class, hmm_state) in enumerate(uniq.tolist()):
        context = [left, centre, right] if dst.context_width == 3 else [centre]
        found, pdf = dst.tree.compute(context, pdf_class)
        state = dst_states.get((centre, hmm_state, pdf)) if found else None
        if state is None:
            raise PaseError(f"target model has no pdf for phone {centre} state {hmm_state} "
                            f"in context {left} _ {right}")
        states[j] = state
    state2id = np.asarray(dst.trans_model.state2id, dtype=np.int64)
    new = (state2id[states[inverse.reshape(-1)]] + table["index"][tids]).astype(np.int32)
    bounds = np.cumsum([len(alignments[u]) for u in utts])[:-1]
    return dict(zip(utts, np.split(new, bounds)))


def train_tri(feats: Mapping[str, np.ndarray], transcripts: Mapping[str, Sequence[int]],
              lang: Lang, mono_alignments: Mapping[str, np.ndarray], mono_system: GmmSystem,
              *, num_leaves: int = 2500, tot_gauss: int = 15000, num_iters: int = 35,
              max_iter_inc: int = 25, realign_iters: Sequence[int] = TRI_REALIGN_ITERS,
              power: float = 0.25, min_leaf_count: float = 50.0,
              no_split_phones: Sequence[int] = (), beam: float = 10.0,
              retry_beam: float = 40.0) -> TrainResult:
    """steps/train_deltas.sh: tree from the mono alignment's triphone statistics, one
    Gaussian per leaf from its statistics (gmm-init-model), alignments converted to the new
    tree (convert-ali), then EM with realignment on ``realign_iters`` and mixing up to
    ``tot_gauss``. ``no_split_phones`` (silence) keep one leaf per HMM state."""
    transcripts = _usable(feats, transcripts)
    started = time.perf_counter()
    topo = mono_system.topo
    stats = accumulate_tree_stats(mono_system, feats, mono_alignments)
    classes = dict(zip(topo.phones, (topo.num_pdf_classes(p) for p in topo.phones)))
    questions = make_questions(stats, classes)
    tree = build_tree(stats, questions, classes, num_leaves=num_leaves,
                      min_count=min_leaf_count, no_split=no_split_phones)
    means, variances = tree.leaf_gaussians()
    system = GmmSystem.build(topo, tree.context_dependency(),
                             [diag_gmm(np.ones(1), m[None], v[None])
                              for m, v in zip(means, variances)])
    log.info("tree: %d leaves from %d contexts, %d questions, %.1fs", tree.num_pdfs,
             len(stats.count), len(questions), time.perf_counter() - started)
    alignments = convert_alignments(mono_system, system, mono_alignments)
    graphs = GraphCompiler(system, lang).compile(transcripts)
    trainer = _Trainer(system, feats, graphs)
    alignments = trainer.run(alignments, first_iter=1, num_iters=num_iters,
                             max_iter_inc=max_iter_inc, tot_gauss=tot_gauss,
                             realign_iters=realign_iters, power=power, beams=(beam, beam),
                             retry_factor=retry_beam / beam)
    return TrainResult(system, alignments, trainer.history)
