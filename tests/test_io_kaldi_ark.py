"""Kaldi ark/scp writing (checked with two independent readers) and CMVN."""

import kaldi_native_io
import kaldiio
import numpy as np
import pytest

from pase.io import (
    ArkScpWriter,
    PaseInputError,
    apply_cmvn,
    compute_cmvn_stats,
    write_matrix_ark_scp,
)


def matrices(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "utt-b": rng.normal(size=(7, 4)).astype(np.float32),
        "utt-a": rng.normal(loc=3.0, size=(1, 4)).astype(np.float32),
        "ütt-c": rng.normal(size=(12, 4)),  # float64 input is cast to float32
    }


def test_write_and_read_back_with_two_readers(tmp_path):
    ark, scp = tmp_path / "feats.ark", tmp_path / "feats.scp"
    mats = matrices()
    with ArkScpWriter(ark, scp) as writer:
        for key, mat in mats.items():
            writer.write(key, mat)
        assert writer.num_written == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feats.ark", "feats.scp"]
    lines = scp.read_text(encoding="utf-8").splitlines()
    # Written in the given order, indexed in Kaldi's sorted (C-locale) order.
    assert [line.split()[0] for line in lines] == sorted(mats, key=str.encode)
    assert lines[1] == f"utt-b {ark}:6"

    via_kaldiio = kaldiio.load_scp(str(scp))
    with kaldi_native_io.SequentialFloatMatrixReader(f"scp:{scp}") as reader:
        via_kni = {key: np.array(value) for key, value in reader}  # the reader reuses its buffer
    assert list(via_kni) == sorted(mats, key=str.encode)
    for key, mat in mats.items():
        assert via_kaldiio[key].dtype == np.float32
        np.testing.assert_array_equal(via_kaldiio[key], mat.astype(np.float32))
        np.testing.assert_array_equal(via_kni[key], mat.astype(np.float32))
    with kaldi_native_io.RandomAccessFloatMatrixReader(f"scp:{scp}") as reader:
        np.testing.assert_array_equal(reader["ütt-c"], via_kaldiio["ütt-c"])


def test_exception_leaves_no_partial_files(tmp_path):
    ark, scp = tmp_path / "feats.ark", tmp_path / "feats.scp"
    with pytest.raises(RuntimeError, match="boom"):
        with ArkScpWriter(ark, scp) as writer:
            writer.write("u1", np.ones((2, 3), dtype=np.float32))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []

    write_matrix_ark_scp(ark, scp, [("old", np.zeros((2, 3), dtype=np.float32))])
    before = ark.read_bytes(), scp.read_bytes()
    with pytest.raises(PaseInputError, match="'u2': 1 non-finite"):
        write_matrix_ark_scp(
            ark, scp, [("u1", np.ones((2, 3))), ("u2", np.array([[1.0, np.nan, 0.0]]))]
        )
    assert (ark.read_bytes(), scp.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feats.ark", "feats.scp"]


@pytest.mark.parametrize(
    "items, match",
    [
        ([("u1", np.ones((2, 3))), ("u1", np.ones((2, 3)))], "duplicate key 'u1'"),
        ([("u1", np.ones(3))], r"'u1': expected a 2-D .* shape \(3,\)"),
        ([("u1", np.ones((2, 3), dtype=np.int64))], "'u1': expected floats"),
        ([("u 1", np.ones((2, 3)))], "invalid key 'u 1'"),
        ([("u1", np.full((1, 2), 1e300))], "'u1': 2 non-finite"),  # overflows float32
    ],
)
def test_bad_matrices_rejected(tmp_path, items, match):
    with pytest.raises(PaseInputError, match=match):
        write_matrix_ark_scp(tmp_path / "a.ark", tmp_path / "a.scp", items)
    assert list(tmp_path.iterdir()) == []


def test_cmvn_stats_layout_and_apply(tmp_path):
    mats = [m.astype(np.float32) for m in matrices(seed=1).values()]
    stats = compute_cmvn_stats(mats)
    allf = np.concatenate(mats).astype(np.float64)
    assert stats.dtype == np.float64 and stats.shape == (2, 5)
    np.testing.assert_allclose(stats[0, :4], allf.sum(axis=0))
    np.testing.assert_allclose(stats[1, :4], np.square(allf).sum(axis=0))
    assert stats[0, 4] == 20 and stats[1, 4] == 0

    feats = np.concatenate(mats)
    normed = apply_cmvn(feats, stats)
    assert normed.dtype == np.float32
    np.testing.assert_allclose(normed.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(normed.std(axis=0), feats.std(axis=0), rtol=1e-5)
    normed = apply_cmvn(feats, stats, norm_vars=True)
    np.testing.assert_allclose(normed.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(normed.std(axis=0), 1.0, rtol=1e-4)

    with pytest.raises(PaseInputError, match="dimension 3 != 4"):
        compute_cmvn_stats([mats[0], np.ones((2, 3))])
    with pytest.raises(PaseInputError, match="does not match"):
        apply_cmvn(np.ones((2, 3)), stats)


def test_cmvn_stats_as_double_matrix(tmp_path):
    ark, scp = tmp_path / "cmvn.ark", tmp_path / "cmvn.scp"
    stats = {"spkA": compute_cmvn_stats([np.arange(6.0).reshape(3, 2) / 7])}
    stats["spkB"] = compute_cmvn_stats([np.full((4, 2), 0.1)])
    assert write_matrix_ark_scp(ark, scp, stats.items(), dtype=np.float64) == 2
    with kaldi_native_io.RandomAccessDoubleMatrixReader(f"scp:{scp}") as reader:
        for key, value in stats.items():
            np.testing.assert_array_equal(reader[key], value)
    assert kaldiio.load_scp(str(scp))["spkB"].dtype == np.float64
