"""Kaldi's binary serialisation primitives (base/io-funcs, matrix/kaldi-vector), both ways.

The bindings write only the tree in Kaldi's binary format, so the model file and the tree are
assembled from these pieces, byte for byte as Kaldi's ``Write(os, binary=true)`` lays them out:

* a token is its ASCII text and one space;
* a basic integer (``WriteBasicType``) is a size byte (4 for int32, -4 i.e. ``\\xfc`` for
  uint32) and the little-endian value; a float the byte 4 and an IEEE float32;
* an integer vector (``WriteIntegerVector``) is the element size byte, the int32 length
  (without its own size byte) and the raw elements;
* a float vector is the token ``FV``, a basic int32 length and the raw float32 data; a float
  matrix the token ``FM``, basic int32 rows and columns and the rows;
* a binary file starts with ``\\0B`` (``InitKaldiOutputStream``).
"""
from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pase.errors import PaseError

BINARY_HEADER = b"\x00B"


def token(text: str) -> bytes:
    return text.encode("ascii") + b" "


def int32(value: int) -> bytes:
    return b"\x04" + struct.pack("<i", value)


def uint32(value: int) -> bytes:
    return b"\xfc" + struct.pack("<I", value)


def float32(value: float) -> bytes:
    return b"\x04" + struct.pack("<f", value)


def int32_vector(values: Sequence[int]) -> bytes:
    return b"\x04" + struct.pack(f"<i{len(values)}i", len(values), *values)


def float_vector(values: np.ndarray) -> bytes:
    data = np.ascontiguousarray(values, dtype="<f4")
    if data.ndim != 1:
        raise ValueError(f"a Kaldi vector is 1-D, got shape {data.shape}")
    return token("FV") + int32(len(data)) + data.tobytes()


def float_matrix(values: np.ndarray) -> bytes:
    data = np.ascontiguousarray(values, dtype="<f4")
    if data.ndim != 2:
        raise ValueError(f"a Kaldi matrix is 2-D, got shape {data.shape}")
    return token("FM") + int32(data.shape[0]) + int32(data.shape[1]) + data.tobytes()


class BinaryReader:
    """Reads the primitives back from a Kaldi binary file's bytes; any mismatch is a PaseError
    naming the file and the byte offset."""

    def __init__(self, data: bytes, name: str | Path) -> None:
        self.data, self.name, self.pos = data, str(name), 0

    @classmethod
    def open(cls, path: str | Path) -> BinaryReader:
        """A reader past the ``\\0B`` header of the binary file ``path``."""
        path = Path(path)
        if not path.is_file():
            raise PaseError(f"{path}: not found")
        reader = cls(path.read_bytes(), path)
        if reader._take(2) != BINARY_HEADER:
            raise PaseError(f"{path}: not a Kaldi binary file (no \\0B header)")
        return reader

    def _fail(self, what: str) -> PaseError:
        return PaseError(f"{self.name}: byte {self.pos}: {what}")

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self._fail(f"file ends, {n} more bytes expected")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def token(self) -> str:
        end = self.data.find(b" ", self.pos)
        if end < 0:
            raise self._fail("file ends inside a token")
        text = self.data[self.pos:end].decode("ascii", errors="replace")
        self.pos = end + 1
        return text

    def expect(self, text: str) -> None:
        start = self.pos
        got = self.token()
        if got != text:
            self.pos = start
            raise self._fail(f"expected token {text!r}, got {got!r}")

    def _size_byte(self, expected: bytes, what: str) -> None:
        if self._take(1) != expected:
            self.pos -= 1
            raise self._fail(f"expected {what}")

    def int32(self) -> int:
        self._size_byte(b"\x04", "an int32")
        return struct.unpack("<i", self._take(4))[0]

    def float32(self) -> float:
        self._size_byte(b"\x04", "a float")
        return struct.unpack("<f", self._take(4))[0]

    def count(self) -> int:
        """A basic int32 that sizes what follows (negative is an error)."""
        n = self.int32()
        if n < 0:
            self.pos -= 5
            raise self._fail(f"negative size {n}")
        return n

    def int32_vector(self) -> list[int]:
        self._size_byte(b"\x04", "an int32 vector")
        (n,) = struct.unpack("<i", self._take(4))
        if n < 0:
            raise self._fail(f"negative vector size {n}")
        return list(struct.unpack(f"<{n}i", self._take(4 * n)))

    def float_vector(self) -> np.ndarray:
        self.expect("FV")
        n = self.count()
        return np.frombuffer(self._take(4 * n), dtype="<f4").astype(np.float32)

    def float_matrix(self) -> np.ndarray:
        self.expect("FM")
        rows, cols = self.count(), self.count()
        data = np.frombuffer(self._take(4 * rows * cols), dtype="<f4")
        return data.astype(np.float32).reshape(rows, cols)

    def at_end(self) -> bool:
        return self.pos == len(self.data)
