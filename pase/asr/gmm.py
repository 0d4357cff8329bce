"""The GMM-HMM acoustic model: topology, tree, transition model and diagonal GMMs, and its file.

The Kaldi objects come from kaldi-hmm-gmm; training is :mod:`pase.asr.gmm_train`. Models are
saved without pickle: Kaldi's own binary bytes for the tree, the topology as Kaldi text, and
plain float arrays for transition log-probabilities and Gaussians, in one ``.npz``.
"""
from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import kaldi_hmm_gmm as khg
import numpy as np

from pase.errors import PaseError

_FORMAT = "pase-gmm-1"
_TUPLE = re.compile(r"phone=(\d+),hmm_state=(\d+),forward_pdf=(-?\d+),self_loop_pdf=(-?\d+)")


def read_topology(text: str) -> khg.HmmTopology:
    topo = khg.HmmTopology()
    topo.read(text)
    return topo


TopoState = tuple[int, int, list[tuple[int, float]]]
"""A topology state: forward pdf-class, self-loop pdf-class, (destination, probability) list."""


def topology_fields(topo: khg.HmmTopology) -> tuple[list[int], list[int], list[list[TopoState]]]:
    """A topology as plain values: its phones, phone -> entry index (-1: none), entries."""
    phones, phone2idx, entries = topo.__getstate__()
    return list(phones), list(phone2idx), [
        [(s.forward_pdf_class, s.self_loop_pdf_class, [(d, p) for d, p in s.transitions])
         for s in entry] for entry in entries]


def format_topology(phones: Sequence[int], phone2idx: Sequence[int],
                    entries: Sequence[Sequence[TopoState]]) -> str:
    """Kaldi's text form of a topology given as :func:`topology_fields` returns it."""
    lines = ["<Topology>"]
    for idx, entry in enumerate(entries):
        members = " ".join(str(p) for p in phones if phone2idx[p] == idx)
        lines += ["<TopologyEntry>", "<ForPhones>", members, "</ForPhones>"]
        for k, (forward, self_loop, transitions) in enumerate(entry):
            text = f"<State> {k}"
            if forward == self_loop:
                if forward >= 0:
                    text += f" <PdfClass> {forward}"
            else:
                text += f" <ForwardPdfClass> {forward} <SelfLoopPdfClass> {self_loop}"
            text += "".join(f" <Transition> {dst} {prob!r}" for dst, prob in transitions)
            lines.append(text + " </State>")
        lines.append("</TopologyEntry>")
    return "\n".join(lines + ["</Topology>", ""])


def topology_text(topo: khg.HmmTopology) -> str:
    """Kaldi text form of a topology, its probabilities exact (``str(topo)`` rounds them)."""
    return format_topology(*topology_fields(topo))


def context_dependency_from_bytes(data: bytes) -> khg.ContextDependency:
    """A ContextDependency from Kaldi's binary ``ContextDependency ... EndContextDependency``."""
    tree = khg.ContextDependency.__new__(khg.ContextDependency)
    tree.__setstate__((np.frombuffer(data, dtype=np.int8).tolist(),))
    return tree


def context_dependency_bytes(tree: khg.ContextDependency) -> bytes:
    return np.asarray(tree.__getstate__()[0], dtype=np.int8).tobytes()


def diag_gmm(weights: np.ndarray, means: np.ndarray, variances: np.ndarray) -> khg.DiagGmm:
    """A DiagGmm from ``(G,)`` weights and ``(G, D)`` means and variances."""
    gmm = khg.DiagGmm(nmix=len(weights), dim=means.shape[1])
    gmm.set_weights(np.asarray(weights, dtype=np.float32))
    gmm.set_invvars_and_means(np.asarray(1.0 / variances, dtype=np.float32),
                              np.asarray(means, dtype=np.float32))
    gmm.compute_gconsts()
    return gmm


def transition_model(tree: khg.ContextDependency, topo: khg.HmmTopology,
                     log_probs: np.ndarray, non_self_loop_log_probs: np.ndarray
                     ) -> khg.TransitionModel:
    """The transition model of ``tree`` and ``topo`` with the given probabilities.

    The structure (tuples, transition-ids) is rebuilt by Kaldi's constructor, so only the
    probabilities need storing; a ValueError when their sizes do not fit that structure.
    """
    state = list(khg.TransitionModel(ctx_dep=tree, hmm_topo=topo).__getstate__())
    if (len(state[6]), len(state[7])) != (len(log_probs), len(non_self_loop_log_probs)):
        raise ValueError(f"{len(log_probs) - 1} transition-ids, but the tree and topology "
                         f"make {len(state[6]) - 1}")
    state[6] = np.asarray(log_probs, dtype=np.float32).tolist()
    state[7] = np.asarray(non_self_loop_log_probs, dtype=np.float32).tolist()
    tm = khg.TransitionModel.__new__(khg.TransitionModel)  # __setstate__ needs a bare instance
    tm.__setstate__(tuple(state))
    return tm


class GmmSystem:
    """A Kaldi GMM-HMM: topology, tree, transition model and acoustic model, kept together
    because the transition model indexes the tree's pdfs and the compiler references both."""

    def __init__(self, topo: khg.HmmTopology, tree: khg.ContextDependency,
                 trans_model: khg.TransitionModel, am: khg.AmDiagGmm) -> None:
        if am.num_pdfs != trans_model.num_pdfs:
            raise ValueError(f"acoustic model has {am.num_pdfs} pdfs, transition model "
                             f"{trans_model.num_pdfs}")
        self.topo, self.tree, self.trans_model, self.am = topo, tree, trans_model, am

    @classmethod
    def build(cls, topo: khg.HmmTopology, tree: khg.ContextDependency,
              pdfs: Sequence[khg.DiagGmm]) -> GmmSystem:
        """A system with a fresh transition model (the topology's initial probabilities)."""
        am = khg.AmDiagGmm()
        for gmm in pdfs:
            am.add_pdf(gmm)
        return cls(topo, tree, khg.TransitionModel(ctx_dep=tree, hmm_topo=topo), am)

    @property
    def num_pdfs(self) -> int:
        return self.am.num_pdfs

    @property
    def num_gauss(self) -> int:
        return self.am.num_gauss

    @property
    def context_width(self) -> int:
        return self.tree.context_width

    # --- transition-id tables -------------------------------------------------------------

    @cached_property
    def tid_table(self) -> dict[str, np.ndarray]:
        """Per transition-id (index 0 unused): pdf, phone, hmm_state, pdf_class, transition
        index within its state, transition state, and whether it is a self-loop; parsed once,
        as the bindings give the transition tuples only as strings."""
        tm = self.trans_model
        n = tm.num_transition_ids + 1
        state2id = list(tm.state2id)
        table = {k: np.full(n, -1, dtype=np.int32)
                 for k in ("pdf", "phone", "hmm_state", "pdf_class", "index", "state")}
        table["self_loop"] = np.zeros(n, dtype=bool)
        table["pdf"][:] = tm.transition_id_to_pdf_array()
        table["pdf"][0] = -1
        for s, tup in enumerate(tm.tuples, start=1):
            m = _TUPLE.search(str(tup))
            if m is None:
                raise RuntimeError(f"cannot parse transition tuple {tup}")
            phone, hmm_state = int(m.group(1)), int(m.group(2))
            state = self.topo.topology_for_phone(phone)[hmm_state]
            for index, tid in enumerate(range(state2id[s], state2id[s + 1])):
                loop = state.transitions[index][0] == hmm_state
                table["phone"][tid], table["hmm_state"][tid] = phone, hmm_state
                table["index"][tid], table["state"][tid] = index, s
                table["self_loop"][tid] = loop
                table["pdf_class"][tid] = (state.self_loop_pdf_class if loop
                                           else state.forward_pdf_class)
        return table

    def pdf_alignment(self, tids: np.ndarray) -> np.ndarray:
        """Pdf ids (MLP targets) of a transition-id alignment."""
        return self.tid_table["pdf"][np.asarray(tids)]

    def phone_segments(self, tids: np.ndarray) -> list[tuple[int, int, int]]:
        """``[(phone, start, end)]`` (end exclusive) of an alignment.

        With reordered self-loops (Kaldi's default, used throughout) a state's frames begin
        with its outgoing forward transition and continue with its self-loops, so a phone
        starts exactly on the forward transition out of HMM state 0 (Kaldi's topologies never
        re-enter state 0).
        """
        tids = np.asarray(tids)
        table = self.tid_table
        starts = np.flatnonzero((table["hmm_state"][tids] == 0) & ~table["self_loop"][tids])
        if len(tids) == 0 or len(starts) == 0 or starts[0] != 0:
            raise ValueError("alignment does not start with a phone's first HMM state")
        ends = np.concatenate([starts[1:], [len(tids)]])
        phones = table["phone"][tids[starts]]
        return [(int(p), int(s), int(e)) for p, s, e in zip(phones, starts, ends)]

    def frame_contexts(self, tids: np.ndarray) -> np.ndarray:
        """``(T, 3)`` left, centre and right phone of every frame (0 beyond the utterance)."""
        segs = self.phone_segments(tids)
        phones = np.array([0] + [p for p, _, _ in segs] + [0], dtype=np.int32)
        lengths = [e - s for _, s, e in segs]
        idx = np.repeat(np.arange(1, len(segs) + 1), lengths)
        return np.stack([phones[idx - 1], phones[idx], phones[idx + 1]], axis=1)

    # --- persistence -----------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the model to ``path`` (an ``.npz``; no pickled objects)."""
        pdfs = [self.am.get_pdf(i) for i in range(self.num_pdfs)]
        tm_state = self.trans_model.__getstate__()
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, format=np.array(_FORMAT), topo=np.array(topology_text(self.topo)),
                 tree=np.frombuffer(context_dependency_bytes(self.tree), dtype=np.uint8),
                 log_probs=np.asarray(tm_state[6], dtype=np.float32),
                 non_self_loop_log_probs=np.asarray(tm_state[7], dtype=np.float32),
                 num_gauss=np.array([g.num_gauss for g in pdfs], dtype=np.int32),
                 weights=np.concatenate([g.weights for g in pdfs]),
                 inv_vars=np.concatenate([g.inv_vars for g in pdfs]),
                 means_invvars=np.concatenate([g.means_invvars for g in pdfs]))
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> GmmSystem:
        """Read a model written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise PaseError(f"{path}: not a readable GMM model: {exc}") from exc
        if str(arrays.get("format")) != _FORMAT:
            raise PaseError(f"{path}: not a {_FORMAT} model")
        topo = read_topology(str(arrays["topo"]))
        tree = context_dependency_from_bytes(arrays["tree"].tobytes())
        try:
            tm = transition_model(tree, topo, arrays["log_probs"],
                                  arrays["non_self_loop_log_probs"])
        except ValueError as exc:
            raise PaseError(f"{path}: {exc}") from None
        am = khg.AmDiagGmm.__new__(khg.AmDiagGmm)
        bounds = np.cumsum(arrays["num_gauss"])[:-1]
        am.__setstate__(tuple(
            a for w, iv, miv in zip(np.split(arrays["weights"], bounds),
                                    np.split(arrays["inv_vars"], bounds),
                                    np.split(arrays["means_invvars"], bounds))
            for a in (w, iv, miv)))
        return cls(topo, tree, tm, am)
