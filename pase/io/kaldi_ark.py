"""Kaldi binary archives (``ark``/``scp``) and CMVN statistics.

Features are written with ``kaldiio`` into a temporary archive that is renamed
into place only when every matrix was written, so a crashed or interrupted
extraction job never leaves an ``ark`` that a later stage mistakes for a
complete one.  CMVN follows Kaldi's ``compute-cmvn-stats``/``apply-cmvn``
exactly so the stats are interchangeable with Kaldi's own.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import kaldiio
import numpy as np

from pase.errors import naming_file
from pase.io.errors import PaseInputError

# Kaldi refuses variances below this when normalising (apply-cmvn).
_VAR_FLOOR = 1e-20
_BINARY_MARKER = b"\0B"
_BAD_KEY = re.compile(r"\s")


class ArkScpWriter:
    """Context manager writing matrices to ``ark_path`` and an index to ``scp_path``.

    Both files appear (atomically replacing any previous ones) only when the
    ``with`` block exits cleanly; on an exception the temporary files are
    deleted and pre-existing ``ark``/``scp`` files are left untouched.  The scp
    refers to ``ark_path`` exactly as given, so relative paths stay relative.
    """

    def __init__(
        self, ark_path: str | Path, scp_path: str | Path, *, dtype: type = np.float32
    ) -> None:
        if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        self.ark_path = str(ark_path)
        self.scp_path = str(scp_path)
        self.dtype = np.dtype(dtype)
        self._tmp_ark = self.ark_path + ".tmp"
        self._file: BinaryIO | None = None
        self._offsets: dict[str, int] = {}

    @property
    def num_written(self) -> int:
        return len(self._offsets)

    def __enter__(self) -> ArkScpWriter:
        # w+b: the first offset is verified by reading the marker back.
        self._file = open(self._tmp_ark, "w+b")
        return self

    def write(self, key: str, mat: np.ndarray) -> None:
        """Append one ``frames x dims`` float matrix under the unique ``key``."""
        self._check_key(key)
        mat = self._checked(key, mat)
        f = self._file
        offset = f.tell() + len(key.encode("utf-8")) + 1
        with naming_file(self.ark_path):
            kaldiio.save_ark(f, {key: mat})
        if not self._offsets:
            end = f.tell()
            f.seek(offset)
            marker = f.read(len(_BINARY_MARKER))
            f.seek(end)
            if marker != _BINARY_MARKER:
                raise RuntimeError(
                    f"{self._tmp_ark}: expected binary marker at offset {offset}, found {marker!r}"
                )
        self._offsets[key] = offset

    def write_pieces(self, key: str, rows: int, cols: int, pieces: Iterable[np.ndarray]) -> None:
        """Append a ``rows x cols`` matrix given as consecutive row blocks, never held whole.

        The bytes equal `write` of the whole matrix (Kaldi's binary header gives the size up
        front), so a long utterance's features can be written as they are computed.
        """
        with self.matrix(key, rows, cols) as append:
            for piece in pieces:
                append(piece)

    @contextlib.contextmanager
    def matrix(self, key: str, rows: int, cols: int) -> Iterator[Callable[[np.ndarray], None]]:
        """`write_pieces` driven by the caller: the context gives ``append(piece)``, so several
        archives can take the layers of one long utterance piece by piece, in step.

        Leaving it with fewer rows than announced, or by an exception, removes the matrix (the
        archive stays valid without it).
        """
        self._check_key(key)
        f = self._file
        start = f.tell()
        token = b"FM " if self.dtype == np.float32 else b"DM "
        done = 0

        def append(piece: np.ndarray) -> None:
            nonlocal done
            piece = self._checked(key, piece)
            if piece.shape[1] != cols or done + piece.shape[0] > rows:
                raise PaseInputError(f"{self.ark_path}: {key!r}: a piece of shape {piece.shape} "
                                     f"does not fit a {rows} x {cols} matrix after {done} rows")
            with naming_file(self.ark_path):
                f.write(np.ascontiguousarray(piece).tobytes())
            done += piece.shape[0]

        try:
            with naming_file(self.ark_path):
                f.write(key.encode("utf-8") + b" " + _BINARY_MARKER + token
                        + b"\x04" + struct.pack("<i", rows) + b"\x04" + struct.pack("<i", cols))
            yield append
            if done != rows:
                raise PaseInputError(f"{self.ark_path}: {key!r}: {done} rows written, {rows} announced")
        except BaseException:
            f.seek(start)  # the archive stays valid without this matrix
            f.truncate()
            raise
        self._offsets[key] = start + len(key.encode("utf-8")) + 1

    def _check_key(self, key: str) -> None:
        if self._file is None:
            raise RuntimeError("ArkScpWriter.write() called outside its 'with' block")
        if not key or _BAD_KEY.search(key):
            raise PaseInputError(f"{self.ark_path}: invalid key {key!r} (empty or whitespace)")
        if key in self._offsets:
            raise PaseInputError(f"{self.ark_path}: duplicate key {key!r}")

    def _checked(self, key: str, mat: np.ndarray) -> np.ndarray:
        """`mat` as a 2-D matrix of the archive's dtype; rejects other shapes, types, non-finite values."""
        mat = np.asarray(mat)
        if mat.ndim != 2:
            raise PaseInputError(
                f"{self.ark_path}: {key!r}: expected a 2-D frames x dims matrix, "
                f"got shape {mat.shape}"
            )
        if mat.dtype.kind != "f":
            raise PaseInputError(f"{self.ark_path}: {key!r}: expected floats, got {mat.dtype}")
        with np.errstate(over="ignore"):  # overflow to inf is reported just below
            mat = mat.astype(self.dtype, copy=False)
        n_bad = int(np.count_nonzero(~np.isfinite(mat)))
        if n_bad:
            raise PaseInputError(f"{self.ark_path}: {key!r}: {n_bad} non-finite values")
        return mat

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        f, self._file = self._file, None
        try:
            with naming_file(self.ark_path):
                if exc_type is None:
                    f.flush()
                    os.fsync(f.fileno())
                f.close()
            if exc_type is None:
                # The scp is complete on disk before either rename, so the two
                # renames are the only window in which the pair is inconsistent.
                scp_tmp = self.scp_path + ".tmp"
                with naming_file(self.scp_path), open(scp_tmp, "w", encoding="utf-8", newline="\n") as scp:
                    # Kaldi's convention: scp lines sorted by key in C (byte) order.
                    keys = sorted(self._offsets, key=lambda k: k.encode("utf-8"))
                    scp.writelines(f"{k} {self.ark_path}:{self._offsets[k]}\n" for k in keys)
                    scp.flush()
                    os.fsync(scp.fileno())
                os.replace(self._tmp_ark, self.ark_path)
                os.replace(scp_tmp, self.scp_path)
        finally:
            for tmp in (self._tmp_ark, self.scp_path + ".tmp"):
                if os.path.exists(tmp):
                    os.remove(tmp)


def write_matrix_ark_scp(
    ark_path: str | Path,
    scp_path: str | Path,
    items: Iterable[tuple[str, np.ndarray]],
    *,
    dtype: type = np.float32,
) -> int:
    """Write ``(key, matrix)`` pairs with :class:`ArkScpWriter`; returns how many."""
    with ArkScpWriter(ark_path, scp_path, dtype=dtype) as writer:
        for key, mat in items:
            writer.write(key, mat)
    return writer.num_written


def iter_matrix_blocks(rxspec: str, rows: int = 4096) -> Iterator[np.ndarray]:
    """The matrix at ``ark:offset`` as consecutive blocks of up to `rows` rows.

    Binary float/double matrices (what `ArkScpWriter` writes) are read block by block, so an
    hour of features never sits in memory whole; any other format is loaded by kaldiio.
    """
    path, _, offset = rxspec.rpartition(":")
    with open(path, "rb") as f:
        f.seek(int(offset))
        head = f.read(len(_BINARY_MARKER) + 3 + 10)
        token = head[2:5]
        if len(head) == 15 and head[:2] == _BINARY_MARKER and token in (b"FM ", b"DM "):
            n_rows, n_cols = struct.unpack("<xixi", head[5:])
            dtype = np.dtype("<f4" if token == b"FM " else "<f8")
            for start in range(0, n_rows, rows):
                n = min(rows, n_rows - start)
                block = np.fromfile(f, dtype=dtype, count=n * n_cols)
                if block.size != n * n_cols:
                    raise PaseInputError(f"{path}: truncated matrix at offset {offset}")
                yield block.reshape(n, n_cols)
            return
    yield kaldiio.load_mat(rxspec)


def compute_cmvn_stats(feats: Iterable[np.ndarray]) -> np.ndarray:
    """Accumulate CMVN stats in Kaldi's ``compute-cmvn-stats`` layout.

    Returns float64 ``(2, D+1)``: ``[sum_d..., count; sumsq_d..., 0]``, which
    can be written as a double matrix and read by Kaldi's ``apply-cmvn``.
    """
    stats: np.ndarray | None = None
    for i, mat in enumerate(feats):
        mat = np.asarray(mat, dtype=np.float64)
        if mat.ndim != 2:
            raise PaseInputError(f"CMVN input {i}: expected a 2-D matrix, got shape {mat.shape}")
        if stats is None:
            stats = np.zeros((2, mat.shape[1] + 1), dtype=np.float64)
        elif mat.shape[1] != stats.shape[1] - 1:
            raise PaseInputError(
                f"CMVN input {i}: dimension {mat.shape[1]} != {stats.shape[1] - 1} "
                "of earlier inputs"
            )
        stats[0, :-1] += mat.sum(axis=0)
        stats[1, :-1] += np.square(mat).sum(axis=0)
        stats[0, -1] += mat.shape[0]
    if stats is None:
        raise PaseInputError("CMVN: no feature matrices given")
    return stats


def apply_cmvn(feats: np.ndarray, stats: np.ndarray, *, norm_vars: bool = False) -> np.ndarray:
    """Normalise ``feats`` (frames x D) with ``stats`` exactly as Kaldi's ``apply-cmvn``."""
    feats = np.asarray(feats)
    stats = np.asarray(stats, dtype=np.float64)
    if feats.ndim != 2 or stats.shape != (2, feats.shape[1] + 1):
        raise PaseInputError(
            f"CMVN: stats shape {stats.shape} does not match features of shape {feats.shape}"
        )
    count = stats[0, -1]
    if count < 1.0:
        raise PaseInputError(f"CMVN: insufficient stats (frame count {count})")
    mean = stats[0, :-1] / count
    if norm_vars:
        var = np.maximum(stats[1, :-1] / count - mean**2, _VAR_FLOOR)
        scale = 1.0 / np.sqrt(var)
        out = (feats - mean) * scale
    else:
        out = feats - mean
    return out.astype(feats.dtype if feats.dtype.kind == "f" else np.float32)
