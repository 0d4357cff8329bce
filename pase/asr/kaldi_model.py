"""Kaldi's GMM model file ``final.mdl``: a TransitionModel then an AmDiagGmm, binary.

This is what gmm-init-mono and gmm-est write and what every Kaldi program taking a model reads
(latgen-faster-mapped reads its TransitionModel only). The bindings write neither object, so
the bytes are laid out here as Kaldi's ``Write(os, binary=true)`` does (hmm/transition-model.cc,
hmm/hmm-topology.cc, gmm/am-diag-gmm.cc, gmm/diag-gmm.cc), from :mod:`pase.asr.kaldi_binary`'s
primitives::

    \\0B <TransitionModel>
      <Topology> phones phone2idx [-1: non-HMM] #entries
        { #states { forward-pdf-class [self-loop-pdf-class] #transitions { dest prob } } }
      </Topology>
      <Triples> #tuples { phone hmm-state pdf } </Triples>   (<Tuples>, with the self-loop
                                                               pdf, for a non-HMM topology)
      <LogProbs> FV </LogProbs>
    </TransitionModel>
    <DIMENSION> dim <NUMPDFS> #pdfs
      { <DiagGMM> <GCONSTS> FV <WEIGHTS> FV <MEANS_INVVARS> FM <INV_VARS> FM </DiagGMM> }

:func:`read_model` reads such a file (ours or Kaldi's) back into a :class:`GmmSystem`.
"""
from __future__ import annotations

from pathlib import Path

import kaldi_hmm_gmm as khg
import numpy as np

from pase.asr import kaldi_binary as kb
from pase.asr.gmm import (GmmSystem, TopoState, context_dependency_from_bytes,
                          format_topology, read_topology, topology_fields, transition_model)
from pase.errors import PaseError


def topology_bytes(topo: khg.HmmTopology) -> bytes:
    phones, phone2idx, entries = topology_fields(topo)
    out = [kb.token("<Topology>"), kb.int32_vector(phones), kb.int32_vector(phone2idx)]
    if not topo.is_hmm:
        out.append(kb.int32(-1))  # Kaldi's marker of the format with self-loop pdf-classes
    out.append(kb.int32(len(entries)))
    for entry in entries:
        out.append(kb.int32(len(entry)))
        for forward, self_loop, transitions in entry:
            out.append(kb.int32(forward))
            if not topo.is_hmm:
                out.append(kb.int32(self_loop))
            out.append(kb.int32(len(transitions)))
            out += [kb.int32(dst) + kb.float32(prob) for dst, prob in transitions]
    out.append(kb.token("</Topology>"))
    return b"".join(out)


def transition_model_bytes(tm: khg.TransitionModel) -> bytes:
    is_hmm = tm.topo.is_hmm
    name = "Triples" if is_hmm else "Tuples"
    out = [kb.token("<TransitionModel>"), topology_bytes(tm.topo), kb.token(f"<{name}>"),
           kb.int32(len(tm.tuples))]
    for tup in tm.tuples:
        phone, hmm_state, forward_pdf, self_loop_pdf = tup.__getstate__()
        out.append(kb.int32(phone) + kb.int32(hmm_state) + kb.int32(forward_pdf))
        if not is_hmm:
            out.append(kb.int32(self_loop_pdf))
    out += [kb.token(f"</{name}>"), kb.token("<LogProbs>"),
            kb.float_vector(np.asarray(tm.log_probs)), kb.token("</LogProbs>"),
            kb.token("</TransitionModel>")]
    return b"".join(out)


def am_diag_gmm_bytes(am: khg.AmDiagGmm) -> bytes:
    out = [kb.token("<DIMENSION>"), kb.int32(am.dim), kb.token("<NUMPDFS>"),
           kb.int32(am.num_pdfs)]
    for i in range(am.num_pdfs):
        gmm = am.get_pdf(i)
        if not gmm.valid_gconsts:
            raise ValueError(f"pdf {i}: gconsts not computed (Kaldi refuses to write it)")
        out += [kb.token("<DiagGMM>"), kb.token("<GCONSTS>"), kb.float_vector(gmm.gconsts),
                kb.token("<WEIGHTS>"), kb.float_vector(gmm.weights),
                kb.token("<MEANS_INVVARS>"), kb.float_matrix(gmm.means_invvars),
                kb.token("<INV_VARS>"), kb.float_matrix(gmm.inv_vars), kb.token("</DiagGMM>")]
    return b"".join(out)


def write_model(system: GmmSystem, path: str | Path) -> None:
    """Write ``system``'s transition model and GMMs to ``path`` (atomically)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(kb.BINARY_HEADER + transition_model_bytes(system.trans_model)
                    + am_diag_gmm_bytes(system.am))
    tmp.replace(path)


def model_file(gmm: Path, system: GmmSystem) -> Path:
    """``<gmm>/final.mdl``, written from ``system`` if missing or older than its final.npz (a
    dir trained before pase-train-gmm wrote one)."""
    path, npz = gmm / "final.mdl", gmm / "final.npz"
    if not path.is_file() or (npz.is_file() and path.stat().st_mtime < npz.stat().st_mtime):
        write_model(system, path)
    return path


def read_tree(path: str | Path) -> khg.ContextDependency:
    """A Kaldi binary tree file (``tree``, as ``ContextDependency.write(True, path)`` or Kaldi's
    build-tree write it), parsed by the bindings."""
    r = kb.BinaryReader.open(path)
    try:
        return context_dependency_from_bytes(r.data[r.pos:])
    except RuntimeError as exc:  # Kaldi's parse error, with its own message
        raise PaseError(f"{path}: not a Kaldi ContextDependency: {exc}") from None


def _read_topology(r: kb.BinaryReader) -> khg.HmmTopology:
    r.expect("<Topology>")
    phones, phone2idx = r.int32_vector(), r.int32_vector()
    n = r.int32()
    is_hmm = n != -1
    if not is_hmm:
        n = r.int32()
    entries: list[list[TopoState]] = []
    for _ in range(n):
        entry = []
        for _ in range(r.count()):
            forward = r.int32()
            self_loop = forward if is_hmm else r.int32()
            entry.append((forward, self_loop, [(r.int32(), r.float32())
                                               for _ in range(r.count())]))
        entries.append(entry)
    r.expect("</Topology>")
    if len(phone2idx) <= max(phones, default=0):
        raise PaseError(f"{r.name}: topology phone table shorter than its phones")
    try:
        return read_topology(format_topology(phones, phone2idx, entries))
    except RuntimeError as exc:  # Kaldi's own check of the topology
        raise PaseError(f"{r.name}: bad topology: {exc}") from None


def _read_tuples(r: kb.BinaryReader) -> list[tuple[int, int, int, int]]:
    name = r.token()
    if name not in ("<Triples>", "<Tuples>"):
        raise PaseError(f"{r.name}: byte {r.pos}: expected <Triples> or <Tuples>, got {name!r}")
    tuples = []
    for _ in range(r.count()):
        phone, hmm_state, forward_pdf = r.int32(), r.int32(), r.int32()
        tuples.append((phone, hmm_state, forward_pdf,
                       r.int32() if name == "<Tuples>" else forward_pdf))
    r.expect(f"</{name[1:]}")
    return tuples


def _read_am(r: kb.BinaryReader) -> khg.AmDiagGmm:
    r.expect("<DIMENSION>")
    dim = r.int32()
    r.expect("<NUMPDFS>")
    pdfs = []
    for _ in range(r.count()):
        r.expect("<DiagGMM>")
        start = r.pos
        if r.token() == "<GCONSTS>":  # optional, and recomputed anyway (as Kaldi does)
            r.float_vector()
        else:
            r.pos = start
        r.expect("<WEIGHTS>")
        weights = r.float_vector()
        r.expect("<MEANS_INVVARS>")
        means_invvars = r.float_matrix()
        r.expect("<INV_VARS>")
        inv_vars = r.float_matrix()
        r.expect("</DiagGMM>")
        if means_invvars.shape != (len(weights), dim) or inv_vars.shape != means_invvars.shape:
            raise PaseError(f"{r.name}: pdf {len(pdfs)}: Gaussians of shape "
                            f"{means_invvars.shape}/{inv_vars.shape}, {len(weights)} weights, "
                            f"dimension {dim}")
        pdfs += [weights, inv_vars, means_invvars]
    am = khg.AmDiagGmm.__new__(khg.AmDiagGmm)
    am.__setstate__(tuple(pdfs))
    return am


def read_model(path: str | Path, tree: khg.ContextDependency) -> GmmSystem:
    """The system in Kaldi model file ``path`` with its ``tree``.

    The transition structure is rebuilt from tree and topology by Kaldi's constructor and must
    give the file's tuples; the non-self-loop log-probabilities are derived as Kaldi's
    ``ComputeDerivedOfProbs`` does, log(1 - self-loop probability) per transition state.
    """
    r = kb.BinaryReader.open(path)
    r.expect("<TransitionModel>")
    topo = _read_topology(r)
    tuples = _read_tuples(r)
    r.expect("<LogProbs>")
    log_probs = r.float_vector()
    r.expect("</LogProbs>")
    r.expect("</TransitionModel>")
    am = _read_am(r)
    if not r.at_end():
        raise PaseError(f"{path}: byte {r.pos}: data after the model")
    try:
        fresh = khg.TransitionModel(ctx_dep=tree, hmm_topo=topo)
    except RuntimeError as exc:
        raise PaseError(f"{path}: the topology does not fit the tree: {exc}") from None
    if [t.__getstate__() for t in fresh.tuples] != tuples:
        raise PaseError(f"{path}: transition tuples do not match the tree")
    if am.num_pdfs != fresh.num_pdfs:
        raise PaseError(f"{path}: {am.num_pdfs} GMMs, but the tree has {fresh.num_pdfs} pdfs")
    table = GmmSystem(topo, tree, fresh, am).tid_table
    loops = np.flatnonzero(table["self_loop"])
    non_self_loop = np.zeros(fresh.num_transition_states + 1, dtype=np.float32)
    # float32 steps, each rounded from double as glibc's expf/logf round
    stay = np.exp(log_probs[loops].astype(np.float64)).astype(np.float32)
    leave = np.maximum(np.float32(1) - stay, np.float32(1e-10))
    non_self_loop[table["state"][loops]] = np.log(leave.astype(np.float64))
    try:
        tm = transition_model(tree, topo, log_probs, non_self_loop)
    except ValueError as exc:
        raise PaseError(f"{path}: {exc}") from None
    return GmmSystem(topo, tree, tm, am)
