"""Kaldi's model file (final.mdl) and tree of trained systems: the bytes are Kaldi's layout, and
reading them back gives the bindings' objects we wrote, to the last bit."""
from __future__ import annotations

import os
from pathlib import Path

import kaldi_hmm_gmm as khg  # noqa: F401,I001  (before kaldifst)
import kaldi_native_io
import numpy as np
import pytest

from conftest import small_timit
from pase.asr import kaldi_binary as kb
from pase.asr.features import mfcc_cmvn_deltas
from pase.asr.gmm import GmmSystem, context_dependency_bytes, diag_gmm, read_topology
from pase.asr.gmm_train import train_mono, train_tri
from pase.asr.kaldi_model import model_file, read_model, read_tree, write_model
from pase.errors import PaseError


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, object]:
    """Briefly trained monophone and triphone systems (a real tree, mixtures) and features."""
    root = tmp_path_factory.mktemp("kaldi_model")
    lang, train, texts = small_timit(root)
    feats = mfcc_cmvn_deltas(train)
    mono = train_mono(feats, texts, lang, num_iters=4, max_iter_inc=2, tot_gauss=150,
                      realign_iters=(1, 2))
    tri = train_tri(feats, texts, lang, mono.alignments, mono.system, num_leaves=250,
                    tot_gauss=500, min_leaf_count=10, num_iters=4, max_iter_inc=2,
                    realign_iters=(2,), no_split_phones=lang.silence_phone_ids)
    return {"mono": mono.system, "tri": tri.system, "frames": next(iter(feats.values()))[:30]}


def write_dir(system: GmmSystem, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    write_model(system, out / "final.mdl")
    system.tree.write(True, str(out / "tree"))  # Kaldi's own writer, through the bindings
    return out / "final.mdl", out / "tree"


def assert_same_system(back: GmmSystem, system: GmmSystem, frames: np.ndarray) -> None:
    # Kaldi's text Write of the whole transition model (topology, tuples, log-probs)
    assert str(back.trans_model) == str(system.trans_model)
    assert str(back.topo) == str(system.topo)
    assert context_dependency_bytes(back.tree) == context_dependency_bytes(system.tree)
    tm, ref = back.trans_model, system.trans_model
    assert [t.__getstate__() for t in tm.tuples] == [t.__getstate__() for t in ref.tuples]
    assert (tm.num_pdfs, tm.num_transition_ids) == (ref.num_pdfs, ref.num_transition_ids)
    assert list(tm.log_probs) == list(ref.log_probs)
    assert list(tm.non_self_loop_log_probs) == list(ref.non_self_loop_log_probs)
    for key, column in system.tid_table.items():
        assert np.array_equal(back.tid_table[key], column), key
    assert (back.am.dim, back.num_pdfs, back.num_gauss) == (system.am.dim, system.num_pdfs,
                                                            system.num_gauss)
    for i in range(system.num_pdfs):
        a, b = back.am.get_pdf(i), system.am.get_pdf(i)
        for field in ("weights", "means", "vars", "gconsts"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), (i, field)
        assert [a.log_likelihood(x) for x in frames] == [b.log_likelihood(x) for x in frames]


def test_primitives_are_what_kaldi_io_reads(tmp_path):
    """Vectors and matrices as Kaldi writes them: kaldi_native_io reads them from an ark."""
    rng = np.random.default_rng(0)
    vec, mat = rng.standard_normal(7).astype(np.float32), rng.standard_normal((3, 5))
    (tmp_path / "v.ark").write_bytes(b"a " + kb.BINARY_HEADER + kb.float_vector(vec))
    (tmp_path / "m.ark").write_bytes(b"b " + kb.BINARY_HEADER + kb.float_matrix(mat))
    # (copied while the reader holds them: its arrays view memory it frees)
    [(key, got)] = [(k, np.array(v)) for k, v in
                    kaldi_native_io.SequentialFloatVectorReader(f"ark:{tmp_path}/v.ark")]
    assert key == "a" and np.array_equal(got, vec)
    [(key, got)] = [(k, np.array(v)) for k, v in
                    kaldi_native_io.SequentialFloatMatrixReader(f"ark:{tmp_path}/m.ark")]
    assert key == "b" and np.array_equal(got, mat.astype(np.float32))
    data = (kb.token("<X>") + kb.int32(-3) + kb.float32(0.25) + kb.int32_vector([4, 1])
            + kb.float_vector(vec) + kb.float_matrix(mat))
    r = kb.BinaryReader(data, "mem")
    r.expect("<X>")
    assert (r.int32(), r.float32(), r.int32_vector()) == (-3, 0.25, [4, 1])
    assert np.array_equal(r.float_vector(), vec)
    assert np.array_equal(r.float_matrix(), mat.astype(np.float32)) and r.at_end()


@pytest.mark.parametrize("name", ["mono", "tri"])
def test_model_and_tree_read_back(trained, tmp_path, name):
    system = trained[name]
    mdl, tree = write_dir(system, tmp_path)
    data = mdl.read_bytes()
    assert data.startswith(b"\0B<TransitionModel> <Topology> \x04")
    assert b"<Triples> " in data and b"<Tuples> " not in data  # our topologies are HMMs
    am_start = data.index(b"</TransitionModel> ") + len(b"</TransitionModel> ")
    assert data[am_start:].startswith(b"<DIMENSION> " + kb.int32(39) + b"<NUMPDFS> ")
    assert data.count(b"<DiagGMM> <GCONSTS> FV ") == system.num_pdfs
    assert tree.read_bytes()[:20] == b"\0BContextDependency "
    back = read_model(mdl, read_tree(tree))
    assert_same_system(back, system, trained["frames"])
    # a model read back writes the same bytes again
    assert write_dir(back, tmp_path / "again")[0].read_bytes() == data


def test_non_hmm_topology(tmp_path):
    """Separate forward and self-loop pdf-classes: Kaldi's extended format (-1 marker, Tuples)."""
    topo = read_topology(
        "<Topology>\n<TopologyEntry>\n<ForPhones>\n1 2\n</ForPhones>\n"
        "<State> 0 <ForwardPdfClass> 0 <SelfLoopPdfClass> 1 <Transition> 0 0.625 "
        "<Transition> 1 0.375 </State>\n<State> 1 </State>\n</TopologyEntry>\n</Topology>\n")
    assert not topo.is_hmm
    tree = khg.monophone_context_dependency(
        phones=topo.phones, phone2num_pdf_classes=topo.get_phone_to_num_pdf_classes())
    rng = np.random.default_rng(1)
    system = GmmSystem.build(topo, tree, [diag_gmm(np.array([0.25, 0.75]), rng.standard_normal(
        (2, 4)), rng.uniform(0.5, 2.0, (2, 4))) for _ in range(tree.num_pdfs)])
    mdl, tree_file = write_dir(system, tmp_path)
    data = mdl.read_bytes()
    assert b"<Tuples> " in data and b"<Triples> " not in data
    phones, phone2idx, _ = topo.__getstate__()
    assert data.startswith(b"\0B<TransitionModel> <Topology> " + kb.int32_vector(phones)
                           + kb.int32_vector(phone2idx) + kb.int32(-1) + kb.int32(1))
    assert_same_system(read_model(mdl, read_tree(tree_file)), system,
                       rng.standard_normal((5, 4)).astype(np.float32))


def test_model_file_errors(trained, tmp_path):
    mdl, tree = write_dir(trained["tri"], tmp_path)
    data = mdl.read_bytes()
    (tmp_path / "short.mdl").write_bytes(data[:-7])
    with pytest.raises(PaseError, match=r"short.mdl: byte \d+: file ends"):
        read_model(tmp_path / "short.mdl", read_tree(tree))
    (tmp_path / "text.mdl").write_bytes(data[2:])
    with pytest.raises(PaseError, match=r"text.mdl: not a Kaldi binary file"):
        read_model(tmp_path / "text.mdl", read_tree(tree))
    (tmp_path / "long.mdl").write_bytes(data + b"x")
    with pytest.raises(PaseError, match=r"long.mdl: byte \d+: data after the model"):
        read_model(tmp_path / "long.mdl", read_tree(tree))
    bad = data.replace(b"<MEANS_INVVARS> ", b"<MEANS_INVVAR> ", 1)
    (tmp_path / "bad.mdl").write_bytes(bad)
    with pytest.raises(PaseError, match=r"bad.mdl: byte \d+: expected token '<MEANS_INVVARS>'"):
        read_model(tmp_path / "bad.mdl", read_tree(tree))
    with pytest.raises(PaseError, match="transition tuples do not match the tree"):
        read_model(mdl, trained["mono"].tree)
    with pytest.raises(PaseError, match="final.mdl: not a Kaldi ContextDependency"):
        read_tree(mdl)


def test_model_file_is_written_when_missing_or_stale(trained, tmp_path):
    system = trained["mono"]
    system.save(tmp_path / "final.npz")
    path = model_file(tmp_path, system)
    assert path == tmp_path / "final.mdl"
    assert_same_system(read_model(path, system.tree), system, trained["frames"])
    written = path.stat().st_mtime_ns
    assert model_file(tmp_path, system) == path and path.stat().st_mtime_ns == written
    os.utime(tmp_path / "final.npz", ns=(written + 10**9, written + 10**9))
    model_file(tmp_path, system)
    assert path.stat().st_mtime_ns > written
