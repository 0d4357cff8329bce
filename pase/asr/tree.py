"""Triphone decision trees in numpy, loaded into kaldi-hmm-gmm as Kaldi ContextDependency.

kaldi-hmm-gmm binds no tree building (acc-tree-stats, cluster-phones, build-tree), but its
ContextDependency unpickles Kaldi's binary tree format, so the tree is grown here and handed
over in that format:

* statistics per seen (left, centre, right, pdf-class) from an alignment: count, sum x, sum x^2;
* questions: sets of phones from bottom-up clustering of per-phone Gaussians by the likelihood
  lost when merging (Kaldi's cluster-phones clusters top-down; the sets play the same role),
  plus every phone alone;
* one root per (centre phone, pdf-class) -- no questions on the HMM state, unlike a
  ``shared`` root in Kaldi -- split greedily, best likelihood gain first over the whole tree,
  on the left or right phone, until ``num_leaves`` leaves or no split leaves ``min_count``
  frames on both sides. Phones in ``no_split`` (silence, in the recipe) keep one leaf per
  state, as their sparse, varied contexts would only fragment them. Kaldi's final leaf
  re-clustering is not done;
* leaf Gaussians from the leaf statistics, smoothed toward the root's (see
  :meth:`DecisionTree.leaf_gaussians`).

Binary format (Kaldi's ``ContextDependency::Write`` with ``binary=true``, from
:mod:`pase.asr.kaldi_binary`'s tokens, int32s, uint32s and int32 vectors):
``ContextDependency <N> <P> ToPdf <map> EndContextDependency`` with the maps ``CE <pdf>``,
``TE <key> <n> ( <map or NULL> ... )`` and ``SE <key> <yes-set> { <yes> <no> }``; keys 0, 1, 2
are the left, centre and right phone and -1 the pdf-class.
"""
from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import kaldi_hmm_gmm as khg
import numpy as np

from pase.asr import kaldi_binary as kb

if TYPE_CHECKING:
    from pase.asr.gmm import GmmSystem

VAR_FLOOR = 0.01  # acc-tree-stats' --var-floor
_LOG_2PI = float(np.log(2 * np.pi))
LEFT, CENTRE, RIGHT, PDF_CLASS = 0, 1, 2, -1


@dataclass
class TreeStats:
    """Gaussian statistics of every seen (left, centre, right, pdf-class) combination."""

    contexts: np.ndarray   # (n, 3) int32 phone ids, 0 outside the utterance
    pdf_class: np.ndarray  # (n,) int32
    count: np.ndarray      # (n,) float64
    x: np.ndarray          # (n, D) float64
    x2: np.ndarray         # (n, D) float64


def accumulate_tree_stats(system: GmmSystem, feats: Mapping[str, np.ndarray],
                          alignments: Mapping[str, np.ndarray]) -> TreeStats:
    """acc-tree-stats: statistics per triphone context and pdf-class from an alignment."""
    utts = [u for u in alignments if u in feats]
    tids = np.concatenate([alignments[u] for u in utts])
    ctx = np.concatenate([system.frame_contexts(alignments[u]) for u in utts]).astype(np.int64)
    pdf_class = system.tid_table["pdf_class"][tids].astype(np.int64)
    x = np.concatenate([feats[u] for u in utts]).astype(np.float64)
    n_phones = int(ctx.max()) + 1
    n_classes = int(pdf_class.max()) + 1
    key = ((ctx[:, 0] * n_phones + ctx[:, 1]) * n_phones + ctx[:, 2]) * n_classes + pdf_class
    uniq, inverse = np.unique(key, return_inverse=True)
    count = np.bincount(inverse, minlength=len(uniq)).astype(np.float64)
    sx = np.zeros((len(uniq), x.shape[1]))
    sx2 = np.zeros_like(sx)
    np.add.at(sx, inverse, x)
    np.add.at(sx2, inverse, x * x)
    k = uniq // n_classes
    contexts = np.stack([k // (n_phones * n_phones), (k // n_phones) % n_phones, k % n_phones],
                        axis=1)
    return TreeStats(contexts.astype(np.int32), (uniq % n_classes).astype(np.int32), count, sx,
                     sx2)


def gauss_objf(count: np.ndarray, x: np.ndarray, x2: np.ndarray,
               var_floor: float = VAR_FLOOR) -> np.ndarray:
    """Log-likelihood of the data under its own ML diagonal Gaussian (Kaldi's
    GaussClusterable::Objf), vectorised over leading axes; 0 for no data."""
    count = np.asarray(count, dtype=np.float64)
    safe = np.maximum(count, 1e-10)[..., None]
    mean = x / safe
    var = np.maximum(x2 / safe - mean * mean, var_floor)
    dim = x.shape[-1]
    objf = -0.5 * count * (dim * (1.0 + _LOG_2PI) + np.log(var).sum(axis=-1))
    return np.where(count > 0, objf, 0.0)


def cluster_phones(stats: TreeStats, num_pdf_classes: Mapping[int, int]
                   ) -> list[tuple[int, ...]]:
    """Phone sets from agglomerative clustering: each phone's Gaussian over its middle
    pdf-class (cluster-phones' default) merged pairwise at the least likelihood loss; every
    cluster formed on the way is a question. Phones without data join no cluster."""
    clusters: list[tuple[tuple[int, ...], float, np.ndarray, np.ndarray]] = []
    for p in sorted(num_pdf_classes):
        rows = ((stats.contexts[:, CENTRE] == p)
                & (stats.pdf_class == num_pdf_classes[p] // 2))
        if stats.count[rows].sum() > 0:
            clusters.append(((p,), stats.count[rows].sum(), stats.x[rows].sum(0),
                             stats.x2[rows].sum(0)))
    sets = []
    while len(clusters) > 2:
        count = np.array([c[1] for c in clusters])
        x = np.stack([c[2] for c in clusters])
        x2 = np.stack([c[3] for c in clusters])
        own = gauss_objf(count, x, x2)
        merged = gauss_objf(count[:, None] + count[None], x[:, None] + x[None],
                            x2[:, None] + x2[None])
        loss = own[:, None] + own[None] - merged
        loss[np.tril_indices(len(clusters))] = np.inf
        i, j = np.unravel_index(np.argmin(loss), loss.shape)
        a, b = clusters[i], clusters[j]
        new = (tuple(sorted(a[0] + b[0])), a[1] + b[1], a[2] + b[2], a[3] + b[3])
        clusters = [c for k, c in enumerate(clusters) if k not in (i, j)] + [new]
        sets.append(new[0])
    return sets


def make_questions(stats: TreeStats, num_pdf_classes: Mapping[int, int]
                   ) -> list[tuple[int, ...]]:
    """Every phone alone plus the clustered sets, without duplicates, in a fixed order."""
    singles = [(p,) for p in sorted(num_pdf_classes)]
    return list(dict.fromkeys(singles + cluster_phones(stats, num_pdf_classes)))


@dataclass(frozen=True)
class Leaf:
    pdf: int


@dataclass(frozen=True)
class Split:
    key: int
    yes_set: tuple[int, ...]
    yes: Leaf | Split
    no: Leaf | Split


def _write_map(node: Leaf | Split | None) -> bytes:
    if node is None:
        return kb.token("NULL")
    if isinstance(node, Leaf):
        return kb.token("CE") + kb.int32(node.pdf)
    return (kb.token("SE") + kb.int32(node.key) + kb.int32_vector(sorted(node.yes_set))
            + kb.token("{") + _write_map(node.yes) + _write_map(node.no) + kb.token("}"))


def _write_table(key: int, children: Sequence[bytes | None]) -> bytes:
    return (kb.token("TE") + kb.int32(key) + kb.uint32(len(children)) + kb.token("(")
            + b"".join(kb.token("NULL") if c is None else c for c in children) + kb.token(")"))


@dataclass
class DecisionTree:
    """A triphone tree: per centre phone, one subtree per pdf-class; leaves are pdf ids
    0..num_pdfs-1. ``leaf_count/leaf_x/leaf_x2`` are the training statistics per pdf."""

    roots: dict[int, list[Leaf | Split]]
    num_pdfs: int
    leaf_count: np.ndarray
    leaf_x: np.ndarray
    leaf_x2: np.ndarray

    def compute(self, left: int, centre: int, right: int, pdf_class: int) -> int:
        """The pdf of a context (the same answer as Kaldi's ContextDependency::Compute)."""
        node = self.roots[centre][pdf_class]
        while isinstance(node, Split):
            node = node.yes if (left if node.key == LEFT else right) in node.yes_set else node.no
        return node.pdf

    def to_kaldi_bytes(self) -> bytes:
        """Kaldi's binary ContextDependency (N=3, P=1) for this tree."""
        per_phone: list[bytes | None] = [None] * (max(self.roots) + 1)
        for phone, classes in self.roots.items():
            per_phone[phone] = _write_table(PDF_CLASS, [_write_map(n) for n in classes])
        return (kb.token("ContextDependency") + kb.int32(3) + kb.int32(1) + kb.token("ToPdf")
                + _write_table(CENTRE, per_phone) + kb.token("EndContextDependency"))

    def context_dependency(self) -> khg.ContextDependency:
        """The tree as a kaldi-hmm-gmm ContextDependency (through its pickle hook)."""
        tree = khg.ContextDependency.__new__(khg.ContextDependency)
        tree.__setstate__((np.frombuffer(self.to_kaldi_bytes(), dtype=np.int8).tolist(),))
        return tree

    def leaf_gaussians(self, prior_count: float = 10.0, var_floor: float = VAR_FLOOR
                       ) -> tuple[np.ndarray, np.ndarray]:
        """``(means, variances)`` ``(num_pdfs, D)`` of each leaf's data (gmm-init-model), with
        ``prior_count`` frames of its root's (centre phone and pdf-class) Gaussian added and,
        for the root, as many of the global one. Kaldi initialises from the leaf alone, which
        for a phone seen a handful of times gives near-zero variances that the update (which
        skips pdfs under 10 frames) keeps, and that wreck alignment of unseen speakers."""
        total = self.leaf_count.sum()
        g_x, g_x2 = self.leaf_x.sum(0) / total, self.leaf_x2.sum(0) / total
        means, variances = np.empty_like(self.leaf_x), np.empty_like(self.leaf_x)

        def visit(node: Leaf | Split, prior_x: np.ndarray, prior_x2: np.ndarray) -> None:
            if isinstance(node, Split):
                visit(node.yes, prior_x, prior_x2)
                visit(node.no, prior_x, prior_x2)
                return
            n = self.leaf_count[node.pdf] + prior_count
            mean = (self.leaf_x[node.pdf] + prior_count * prior_x) / n
            var = (self.leaf_x2[node.pdf] + prior_count * prior_x2) / n - mean**2
            means[node.pdf], variances[node.pdf] = mean, np.maximum(var, var_floor)

        for classes in self.roots.values():
            for root in classes:
                pdfs = list(_leaves(root))
                n = self.leaf_count[pdfs].sum() + prior_count
                visit(root, (self.leaf_x[pdfs].sum(0) + prior_count * g_x) / n,
                      (self.leaf_x2[pdfs].sum(0) + prior_count * g_x2) / n)
        return means, variances


def _leaves(node: Leaf | Split) -> list[int]:
    if isinstance(node, Leaf):
        return [node.pdf]
    return _leaves(node.yes) + _leaves(node.no)


class _Node:
    """A tree node while growing: the stats rows that reach it and, once split, its question."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows
        self.split: tuple[int, tuple[int, ...], _Node, _Node] | None = None


class _Grower:
    def __init__(self, stats: TreeStats, questions: Sequence[tuple[int, ...]],
                 min_count: float) -> None:
        self.stats, self.questions, self.min_count = stats, list(questions), min_count
        n_phones = max(int(stats.contexts.max()), max(max(q) for q in questions)) + 1
        self.member = np.zeros((len(self.questions), n_phones))
        for i, q in enumerate(self.questions):
            self.member[i, list(q)] = 1.0

    def best_split(self, node: _Node) -> tuple[float, int, int]:
        """``(gain, key, question)`` of the best split of ``node`` (gain -inf: none allowed)."""
        s, rows = self.stats, node.rows
        count, x, x2 = s.count[rows], s.x[rows], s.x2[rows]
        tot = (count.sum(), x.sum(0), x2.sum(0))
        parent = float(gauss_objf(*tot))
        best = (-np.inf, -1, -1)
        for key in (LEFT, RIGHT):
            m = self.member[:, s.contexts[rows, key]]
            yc, yx, yx2 = m @ count, m @ x, m @ x2
            nc, nx, nx2 = tot[0] - yc, tot[1] - yx, tot[2] - yx2
            gain = gauss_objf(yc, yx, yx2) + gauss_objf(nc, nx, nx2) - parent
            gain[(yc < self.min_count) | (nc < self.min_count)] = -np.inf
            q = int(np.argmax(gain))
            if gain[q] > best[0]:
                best = (float(gain[q]), key, q)
        return best

    def apply(self, node: _Node, key: int, q: int) -> tuple[_Node, _Node]:
        yes = self.member[q, self.stats.contexts[node.rows, key]] > 0
        children = _Node(node.rows[yes]), _Node(node.rows[~yes])
        node.split = (key, self.questions[q], *children)
        return children


def build_tree(stats: TreeStats, questions: Sequence[tuple[int, ...]],
               num_pdf_classes: Mapping[int, int], *, num_leaves: int, min_count: float = 50.0,
               no_split: Sequence[int] = ()) -> DecisionTree:
    """Grow the tree: roots for every phone of ``num_pdf_classes`` (phone -> number of pdf
    classes, from the topology) and greedy best-gain splits until ``num_leaves`` (never fewer
    leaves than roots)."""
    grower = _Grower(stats, questions, min_count)
    roots: dict[int, list[_Node]] = {}
    heap: list[tuple[float, int, int, int, _Node]] = []
    order = 0
    for phone in sorted(num_pdf_classes):
        roots[phone] = []
        for k in range(num_pdf_classes[phone]):
            node = _Node(np.flatnonzero((stats.contexts[:, CENTRE] == phone)
                                        & (stats.pdf_class == k)))
            roots[phone].append(node)
            if phone not in no_split and len(node.rows) > 1:
                gain, key, q = grower.best_split(node)
                if np.isfinite(gain):
                    heapq.heappush(heap, (-gain, order, key, q, node))
                    order += 1
    leaves = sum(len(r) for r in roots.values())
    while heap and leaves < num_leaves:
        neg_gain, _, key, q, node = heapq.heappop(heap)
        if -neg_gain <= 0:
            break
        for child in grower.apply(node, key, q):
            if len(child.rows) > 1:
                gain, ckey, cq = grower.best_split(child)
                if np.isfinite(gain):
                    heapq.heappush(heap, (-gain, order, ckey, cq, child))
                    order += 1
        leaves += 1
    return _freeze(roots, stats)


def _freeze(roots: Mapping[int, list[_Node]], stats: TreeStats) -> DecisionTree:
    """Number the leaves depth-first (phone, pdf-class order) and collect their statistics."""
    counts, xs, x2s = [], [], []

    def visit(node: _Node) -> Leaf | Split:
        if node.split is None:
            counts.append(stats.count[node.rows].sum())
            xs.append(stats.x[node.rows].sum(0))
            x2s.append(stats.x2[node.rows].sum(0))
            return Leaf(len(counts) - 1)
        key, yes_set, yes, no = node.split
        return Split(key, yes_set, visit(yes), visit(no))

    frozen = {p: [visit(n) for n in nodes] for p, nodes in roots.items()}
    return DecisionTree(frozen, len(counts), np.array(counts), np.array(xs), np.array(x2s))
