"""What each file of a Kaldi data dir holds, and a lenient reader for it.

The strict readers of :mod:`pase.io.datadir` stop at the first bad line; validate and fix
need every bad line (to report, or to drop), so :func:`scan` keeps the good lines and
describes the bad ones.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pase.io.datadir import WS, WS_CHARS, c_order
from pase.io.errors import DataDirError


def _check_positive_float(value: str) -> str | None:
    try:
        ok = math.isfinite(float(value)) and float(value) > 0
    except ValueError:
        ok = False
    return None if ok else f"expected a positive number, got {value!r}"


def _check_positive_int(value: str) -> str | None:
    # isascii: str.isdigit() is true for '²' and other digits int() refuses
    ok = value.isascii() and value.isdigit() and int(value) > 0
    return None if ok else f"expected a positive integer, got {value!r}"


def _check_warp(value: str) -> str | None:
    try:
        ok = 0.5 < float(value) < 1.5
    except ValueError:
        ok = False
    return None if ok else f"warp factor must be between 0.5 and 1.5, got {value!r}"


def _check_gender(value: str) -> str | None:
    return None if value in ("m", "f") else f"gender must be 'm' or 'f', got {value!r}"


def _check_channel(value: str) -> str | None:
    # Kaldi accepts channel "1" with a warning (validate reports it), anything else but A/B not.
    channel = WS.split(value)[1]
    return None if channel in ("A", "B", "1") else f"channel must be A or B, got {channel!r}"


def _check_wav(value: str) -> str | None:
    # fopen does no tilde expansion: "~/x.wav" names a file that does not exist.
    return f"path starts with '~', which is not expanded: {value!r}" if value.startswith("~") else None


def _check_segment(value: str) -> str | None:
    _, start_s, end_s = WS.split(value)
    try:
        start, end = float(start_s), float(end_s)
    except ValueError:
        return f"start/end must be numbers, got {start_s!r} {end_s!r}"
    if not (math.isfinite(start) and start >= 0 and end > start):
        # extract-segments reads end -1 as "to the end", but Kaldi's validate_data_dir.sh
        # rejects it, so a dir using it would not pass Kaldi's own recipes.
        return f"need 0 <= start < end (end -1 is not allowed), got {start_s} {end_s}"
    return None


@dataclass(frozen=True)
class Spec:
    """What a data-dir file is keyed by and what its lines must look like."""

    keyed_by: str  # "utt", "spk" or "reco"
    n_fields: int | None = None  # including the key
    allow_empty: bool = False
    check: Callable[[str], str | None] | None = None


# The files validate/fix/subset know, with the line rules of Kaldi's validate_data_dir.sh.
# wav.scp is keyed by utterance when there are no segments.
SPECS = {
    "utt2spk": Spec("utt", 2),
    "segments": Spec("utt", 4, check=_check_segment),
    "text": Spec("utt", allow_empty=True),  # Kaldi allows utterances without a transcript
    "feats.scp": Spec("utt"),
    "utt2dur": Spec("utt", 2, check=_check_positive_float),
    "utt2num_frames": Spec("utt", 2, check=_check_positive_int),
    "utt2warp": Spec("utt", 2, check=_check_warp),
    "vad.scp": Spec("utt"),
    "utt2uniq": Spec("utt", 2),
    "utt2lang": Spec("utt", 2),
    "spk2utt": Spec("spk"),
    "cmvn.scp": Spec("spk"),
    "spk2gender": Spec("spk", 2, check=_check_gender),
    "spk2warp": Spec("spk", 2, check=_check_warp),
    "wav.scp": Spec("reco", check=_check_wav),
    "reco2file_and_channel": Spec("reco", 3, check=_check_channel),
    "reco2dur": Spec("reco", 2, check=_check_positive_float),
}


def keyed_by(name: str, has_segments: bool) -> str:
    """What the keys of data-dir file ``name`` are: "utt", "spk" or "reco"."""
    return "utt" if name == "wav.scp" and not has_segments else SPECS[name].keyed_by


@dataclass
class Table:
    """A key-value file read leniently: good lines kept, bad lines described and skipped."""

    name: str
    entries: dict[str, tuple[int, str]]  # key -> (line number, value), first occurrence wins
    bad: list[str]  # "file:line: why" for each skipped line
    # Problems of the file as a whole (keys leaving C-locale order, no final newline): the
    # lines are usable, and fix's rewrite of the file mends them.
    file_errors: list[str]

    def strict(self, hint: str = "") -> dict[str, str]:
        """``key -> value``, or a :class:`DataDirError` naming the first bad line (plus ``hint``)."""
        if self.bad:
            raise DataDirError(self.bad[0] + hint)
        return {k: v for k, (_, v) in self.entries.items()}


def scan_text(name: str, content: str, spec: Spec) -> Table:
    """Read ``content`` (of the file called ``name``) as ``spec`` says, keeping every problem."""
    entries: dict[str, tuple[int, str]] = {}
    bad: list[str] = []
    unsorted = None
    prev = None
    lines = content.split("\n")
    if lines[-1] == "":
        lines.pop()
    # Kaldi's check_sorted_and_uniq: every line, the last one too, ends in a newline.
    file_errors = ([] if not lines or content.endswith("\n") else
                   [f"{name}:{len(lines)}: no newline at the end of the file"])
    for lineno, line in enumerate(lines, 1):
        stripped = line.strip(WS_CHARS)
        if not stripped:
            bad.append(f"{name}:{lineno}: blank line")
            continue
        fields = WS.split(stripped)
        key = fields[0]
        value = stripped[len(key):].strip(WS_CHARS)
        if prev is not None and unsorted is None and c_order(key) < c_order(prev):
            unsorted = (f"{name}:{lineno}: not sorted in C-locale order "
                        f"({key!r} after {prev!r}; sort with LC_ALL=C)")
        prev = key
        if spec.n_fields is not None and len(fields) != spec.n_fields:
            why = f"expected {spec.n_fields} fields, got {len(fields)}"
        elif not value and not spec.allow_empty:
            why = f"key {key!r} has no value"
        elif key in entries:
            why = f"duplicate key {key!r} (first on line {entries[key][0]})"
        else:
            why = spec.check(value) if spec.check and value else None
        if why:
            bad.append(f"{name}:{lineno}: {why}")
        else:
            entries[key] = (lineno, value)
    return Table(name, entries, bad, ([unsorted] if unsorted else []) + file_errors)


def read_raw(path: Path) -> str:
    """The text of ``path`` as Kaldi sees it: UTF-8, line ends untranslated (a CR stays a CR)."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataDirError(f"{path}: not valid UTF-8: {exc}") from exc


def scan(path: Path, spec: Spec | None = None) -> Table:
    """:func:`scan_text` of the file ``path`` (by default with the spec of its name)."""
    return scan_text(str(path), read_raw(path), spec or SPECS[path.name])
