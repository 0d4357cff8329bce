"""The decoding graph HCLG (Kaldi's utils/mkgraph.sh) from a test lang dir, a tree and a model.

``HCLG.fst`` is an OpenFst binary StdVectorFst (kaldifst): input labels are transition-ids,
output labels word (= phone) ids of the lang's ``words.txt``, weights the graph cost (LM plus
transition log-probabilities, self-loops scaled by ``self_loop_scale``). A GMM dir keeps its
graph for a test lang as ``<gmm>/graph/HCLG.fst`` (:func:`graph_for`).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

import kaldi_hmm_gmm as khg
import kaldifst

from pase.asr.lang import Lang, read_fst
from pase.io import DataDirError, PaseInputError

if TYPE_CHECKING:
    from pase.asr.gmm import GmmSystem

log = logging.getLogger(__name__)


def _drop_ilabels(fst: kaldifst.StdVectorFst, labels: Collection[int]) -> kaldifst.StdVectorFst:
    """A copy of ``fst`` with the given input labels replaced by epsilon (fstrmsymbols).

    kaldifst has no relabelling and no mutable arc iterator, hence the rebuild.
    """
    out = kaldifst.StdVectorFst()
    states = list(kaldifst.StateIterator(fst))
    for _ in states:
        out.add_state()
    out.start = fst.start
    for s in states:
        out.set_final(state=s, weight=fst.final(s).value)
        for arc in kaldifst.ArcIterator(fst, s):
            ilabel = 0 if arc.ilabel in labels else arc.ilabel
            out.add_arc(state=s, arc=kaldifst.StdArc(ilabel, arc.olabel, arc.weight.value,
                                                     arc.nextstate))
    return out


def make_hclg(lang_test: Lang | Path, tree: khg.ContextDependency,
              trans_model: khg.TransitionModel, *, self_loop_scale: float = 0.1
              ) -> kaldifst.StdVectorFst:
    """Build HCLG as mkgraph.sh does (transition-scale 1.0, self-loops added last, reordered).

    LG = min(det*(L_disambig o G)); CLG = C o LG for the tree's context window; HCLGa =
    min(rmsymbols(det*(Ha o CLG))) with H's disambiguation transition-ids removed after
    determinization; HCLG = HCLGa with self-loops. (mkgraph.sh's fstpushspecial and
    fstrmepslocal are not in kaldifst; they only make the graph smaller.)
    """
    lang = lang_test if isinstance(lang_test, Lang) else Lang.load(lang_test)
    if lang.G is None:
        raise DataDirError(f"{lang.path}: no G.fst (a test lang dir is needed, e.g. lang_test_bg)")
    if lang.L_disambig.num_states == 0 or lang.G.num_states == 0:
        raise PaseInputError(f"{lang.path}: empty L_disambig.fst or G.fst")
    lg = kaldifst.compose(lang.L_disambig, lang.G)
    kaldifst.determinize_star(lg, use_log=True)
    kaldifst.minimize_encoded(lg)
    kaldifst.arcsort(lg, sort_type="ilabel")
    clg, ilabels = kaldifst.compose_context(
        disambig_syms=lang.disambig_phone_ids, context_width=tree.context_width,
        central_position=tree.central_position, ifst=lg)
    kaldifst.arcsort(clg, sort_type="ilabel")
    ha, disambig_tids = khg.get_h_transducer(
        ilabel_info=ilabels, ctx_dep=tree, trans_model=trans_model,
        config=khg.HTransducerConfig(transition_scale=1.0))
    hclga = kaldifst.compose(ha, clg)
    kaldifst.determinize_star(hclga, use_log=True)
    hclga = _drop_ilabels(hclga, set(disambig_tids))
    kaldifst.minimize_encoded(hclga)
    hclg = khg.add_self_loops(self_loop_scale=self_loop_scale, disambig_syms=[], reorder=True,
                              trans_model=trans_model, ifst=hclga)
    log.info("HCLG: %d states, %d CLG ilabels", hclg.num_states, len(ilabels))
    return hclg


def save_hclg(hclg: kaldifst.StdVectorFst, path: str | Path) -> None:
    """Write ``HCLG.fst`` (an OpenFst binary vector FST, the format Kaldi tools read)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    hclg.write(str(path))


def load_hclg(path: str | Path) -> kaldifst.StdVectorFst:
    """Read a graph written by :func:`save_hclg`."""
    return read_fst(path)


def graph_for(gmm: Path, lang_test: Path, system: GmmSystem) -> kaldifst.StdVectorFst:
    """<gmm>/graph/HCLG.fst for ``system`` (read from <gmm>/final.npz), rebuilt when older
    than the model or G, or built for another test lang (<gmm>/graph/lang_test names it: one
    graph dir serves each lang in turn, so decoding with a new G never reuses the old graph)."""
    path, stamp = gmm / "graph" / "HCLG.fst", gmm / "graph" / "lang_test"
    inputs = [gmm / "final.npz", lang_test / "G.fst"]
    lang_id = str(Path(lang_test).resolve())
    if (path.is_file() and stamp.is_file() and stamp.read_text().strip() == lang_id
            and all(path.stat().st_mtime >= p.stat().st_mtime for p in inputs)):
        return load_hclg(path)
    start = time.time()
    hclg = make_hclg(lang_test, system.tree, system.trans_model)
    stamp.unlink(missing_ok=True)  # no stamp while HCLG.fst is replaced
    save_hclg(hclg, path)
    stamp.write_text(lang_id + "\n")
    log.info("built %s (%d states) in %.1f s", path, hclg.num_states, time.time() - start)
    return hclg
