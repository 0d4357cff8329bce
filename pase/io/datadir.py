"""Kaldi data directories (``wav.scp``, ``segments``, ``utt2spk``, ...).

Follows Kaldi's conventions so that directories prepared by Kaldi/ESPnet
recipes can be used unchanged and directories written here can be fed back to
Kaldi tools: one ``key value`` entry per line, values may contain spaces (pipe
commands), files written sorted in C-locale (byte) order.  Reading is strict
(every problem is a :class:`DataDirError` with ``file:line``) because a silently
skipped line means a silently missing utterance.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pase.errors import naming_file
from pase.io.errors import DataDirError

logger = logging.getLogger(__name__)

# Files that make up a Kaldi data directory and that copy_data_dir carries over.
# feats.scp / cmvn.scp are deliberately absent: they are rewritten by the caller.
STANDARD_FILES = (
    "wav.scp",
    "segments",
    "utt2spk",
    "spk2utt",
    "text",
    "utt2dur",
    "utt2num_frames",
    "spk2gender",
    "reco2file_and_channel",
)

# Kaldi splits on ASCII whitespace only; str.split() would also split on
# Unicode spaces that may legitimately appear inside transcripts.
WS = re.compile(r"[ \t\r\f\v]+")
WS_CHARS = " \t\r\f\v"
_MAX_IDS_IN_MESSAGE = 5


def c_order(key: str) -> bytes:
    """Sort key matching ``LC_ALL=C sort``, which Kaldi requires."""
    return key.encode("utf-8")


def _few(ids: Sequence[str]) -> str:
    shown = ", ".join(repr(i) for i in ids[:_MAX_IDS_IN_MESSAGE])
    return shown + (", ..." if len(ids) > _MAX_IDS_IN_MESSAGE else "")


def _read_entries(
    path: str | Path, *, n_fields: int | None = None, allow_empty: bool = False
) -> dict[str, tuple[int, str]]:
    """Parse a key-value file into ``key -> (line number, value)``."""
    path = Path(path)
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataDirError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise DataDirError(f"{path}: not valid UTF-8: {exc}") from exc
    lines = content.split("\n")
    if lines[-1] == "":
        lines.pop()
    entries: dict[str, tuple[int, str]] = {}
    for lineno, line in enumerate(lines, 1):
        fields = WS.split(line.strip(WS_CHARS))
        key = fields[0]
        if not key:
            raise DataDirError(f"{path}:{lineno}: blank line")
        if n_fields is not None and len(fields) != n_fields:
            raise DataDirError(
                f"{path}:{lineno}: expected {n_fields} fields, got {len(fields)}"
            )
        value = line.strip(WS_CHARS)[len(key):].strip(WS_CHARS)
        if not value and not allow_empty:
            raise DataDirError(f"{path}:{lineno}: key {key!r} has no value")
        if key in entries:
            raise DataDirError(
                f"{path}:{lineno}: duplicate key {key!r} (first on line {entries[key][0]})"
            )
        entries[key] = (lineno, value)
    return entries


def read_kaldi_map(
    path: str | Path, *, n_fields: int | None = None, allow_empty: bool = False
) -> dict[str, str]:
    """Read a ``key value`` file, keeping file order.

    ``n_fields``, if given, is the exact number of whitespace-separated fields
    per line including the key (e.g. 2 for ``utt2spk``).  ``allow_empty``
    accepts lines with a key only, which Kaldi allows in ``text`` for
    utterances without a transcript.
    """
    entries = _read_entries(path, n_fields=n_fields, allow_empty=allow_empty)
    return {key: value for key, (_, value) in entries.items()}


def _parse_segments(path: str | Path) -> dict[str, tuple[int, str, float, float]]:
    """Parse ``segments`` into ``utt -> (line number, recording, start, end)``."""
    parsed = {}
    for utt, (lineno, value) in _read_entries(path, n_fields=4).items():
        reco, start_s, end_s = WS.split(value)
        try:
            start, end = float(start_s), float(end_s)
        except ValueError:
            raise DataDirError(
                f"{path}:{lineno}: start/end must be numbers, got {start_s!r} {end_s!r}"
            ) from None
        if not (math.isfinite(start) and math.isfinite(end)):
            raise DataDirError(f"{path}:{lineno}: non-finite start/end {start_s} {end_s}")
        if start < 0:
            raise DataDirError(f"{path}:{lineno}: negative start time {start_s}")
        if not (end > start or end == -1):
            raise DataDirError(
                f"{path}:{lineno}: end {end_s} must be greater than start {start_s} (or -1)"
            )
        parsed[utt] = (lineno, reco, start, end)
    return parsed


def read_segments(path: str | Path) -> dict[str, tuple[str, float, float]]:
    """Read ``segments``: ``utt -> (recording id, start, end)``; ``end == -1`` means to the end."""
    return {utt: (reco, s, e) for utt, (_, reco, s, e) in _parse_segments(path).items()}


def atomic_write(path: str | Path, write: Callable[[IO], Any], *, text: bool = False) -> None:
    """Call ``write`` on ``<path>.tmp`` (binary, or UTF-8 text with ``\\n`` line ends when
    ``text``), then rename it over ``path``.

    An interrupted or failing write (including an exception raised inside ``write``) never
    leaves ``path`` half-written: the old file stays as it was and the temporary file is
    removed; an OSError without a file name (disk full) is given ``path``'s.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with naming_file(path), (open(tmp, "w", encoding="utf-8", newline="\n") if text
                                 else open(tmp, "wb")) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_lines(path: str | Path, lines: Iterable[str]) -> None:
    """Write ``lines`` to ``path`` through :func:`atomic_write` (generating them may fail too)."""
    atomic_write(path, lambda f: f.writelines(lines), text=True)


def kaldi_map_lines(mapping: Mapping[str, str | Sequence[str]], where: str | Path) -> Iterable[str]:
    """The ``key value`` lines of ``mapping`` in C-locale order; errors name ``where``.

    Sequence values are joined with spaces (e.g. ``spk2utt``).  Keys must be
    non-empty and free of whitespace, as Kaldi's table readers require.
    """
    for key in sorted(mapping, key=c_order):
        if not key or WS.search(key) or "\n" in key:
            raise DataDirError(f"{where}: invalid key {key!r} (empty or contains whitespace)")
        value = mapping[key]
        text = value if isinstance(value, str) else " ".join(value)
        if "\n" in text:
            raise DataDirError(f"{where}: value for key {key!r} contains a newline")
        yield f"{key} {text}\n" if text else f"{key}\n"


def write_kaldi_map(path: str | Path, mapping: Mapping[str, str | Sequence[str]]) -> None:
    """Write :func:`kaldi_map_lines` of ``mapping`` to ``path``, atomically."""
    atomic_write_lines(path, kaldi_map_lines(mapping, Path(path)))


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    """Invert ``utt2spk``; speakers and their utterances in C-locale order, as Kaldi expects."""
    spk2utt: dict[str, list[str]] = {}
    for utt, spk in utt2spk.items():
        spk2utt.setdefault(spk, []).append(utt)
    return {spk: sorted(spk2utt[spk], key=c_order) for spk in sorted(spk2utt, key=c_order)}


@dataclass(frozen=True)
class Utterance:
    """One utterance to process: where its audio comes from and who speaks.

    ``source`` is a ``wav.scp`` value (path or ``cmd |``); ``start``/``end``
    are segment times in seconds, ``None`` meaning the start/end of the
    recording.
    """

    utt_id: str
    source: str
    start: float | None
    end: float | None
    speaker: str


def _warn_unsorted(path: Path, keys: Iterable[str]) -> None:
    keys = list(keys)
    if keys != sorted(keys, key=c_order):
        logger.warning("%s: keys are not sorted in C-locale order (Kaldi tools require it)", path)


def _read_dir_file(path: Path, **kwargs) -> dict[str, tuple[int, str]]:
    entries = _read_entries(path, **kwargs)
    _warn_unsorted(path, entries)
    return entries


def _check_same_utts(utts: Mapping[str, object], utt2spk: Mapping[str, str],
                     utt2spk_path: Path, source_path: Path) -> None:
    missing = [u for u in utts if u not in utt2spk]
    if missing:
        raise DataDirError(
            f"{utt2spk_path}: {len(missing)} utterance(s) from {source_path} missing: "
            f"{_few(missing)}"
        )
    extra = [u for u in utt2spk if u not in utts]
    if extra:
        raise DataDirError(
            f"{utt2spk_path}: {len(extra)} utterance(s) not in {source_path}: {_few(extra)}"
        )


def _read_utt2dur(path: Path) -> dict[str, float]:
    durations = {}
    for utt, (lineno, value) in _read_dir_file(path, n_fields=2).items():
        try:
            dur = float(value)
        except ValueError:
            raise DataDirError(
                f"{path}:{lineno}: duration must be a number, got {value!r}"
            ) from None
        if not (math.isfinite(dur) and dur >= 0):
            raise DataDirError(f"{path}:{lineno}: invalid duration {value!r}")
        durations[utt] = dur
    return durations


class DataDir:
    """A validated Kaldi data directory, as a C-sorted list of :class:`Utterance`."""

    def __init__(
        self,
        path: str | Path,
        utterances: Iterable[Utterance],
        *,
        text: dict[str, str] | None = None,
        utt2dur: dict[str, float] | None = None,
    ) -> None:
        self.path = Path(path)
        self.utterances: list[Utterance] = sorted(utterances, key=lambda u: c_order(u.utt_id))
        self._index = {u.utt_id: u for u in self.utterances}
        if len(self._index) != len(self.utterances):
            raise DataDirError(f"{self.path}: duplicate utterance ids")
        self.utt2spk: dict[str, str] = {u.utt_id: u.speaker for u in self.utterances}
        self.text = text
        self.utt2dur = utt2dur

    @classmethod
    def load(cls, path: str | Path) -> DataDir:
        """Read ``wav.scp`` and the optional files, cross-checking utterance ids."""
        path = Path(path)
        if not path.is_dir():
            raise DataDirError(f"{path}: data directory not found")
        wav_path = path / "wav.scp"
        wav_scp = _read_dir_file(wav_path)
        seg_path = path / "segments"
        spans: dict[str, tuple[str, float | None, float | None]]
        if seg_path.exists():
            segments = _parse_segments(seg_path)
            _warn_unsorted(seg_path, segments)
            spans = {}
            for utt, (lineno, reco, start, end) in segments.items():
                if reco not in wav_scp:
                    raise DataDirError(
                        f"{seg_path}:{lineno}: recording {reco!r} of utterance {utt!r} "
                        f"is not in {wav_path}"
                    )
                spans[utt] = (wav_scp[reco][1], start, None if end == -1 else end)
            utt_source = seg_path
        else:
            spans = {utt: (value, None, None) for utt, (_, value) in wav_scp.items()}
            utt_source = wav_path
        spk_path = path / "utt2spk"
        if spk_path.exists():
            utt2spk = {u: v for u, (_, v) in _read_dir_file(spk_path, n_fields=2).items()}
            _check_same_utts(spans, utt2spk, spk_path, utt_source)
        else:
            logger.warning("%s: missing; treating each utterance as its own speaker", spk_path)
            utt2spk = {utt: utt for utt in spans}
        text_path = path / "text"
        text = (
            {u: v for u, (_, v) in _read_dir_file(text_path, allow_empty=True).items()}
            if text_path.exists()
            else None
        )
        dur_path = path / "utt2dur"
        utt2dur = _read_utt2dur(dur_path) if dur_path.exists() else None
        utterances = [
            Utterance(utt, source, start, end, utt2spk[utt])
            for utt, (source, start, end) in spans.items()
        ]
        return cls(path, utterances, text=text, utt2dur=utt2dur)

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, utt_id: str) -> Utterance:
        try:
            return self._index[utt_id]
        except KeyError:
            raise KeyError(f"{self.path}: no utterance {utt_id!r}") from None

    def subset(self, utt_ids: Iterable[str]) -> DataDir:
        """Restrict to ``utt_ids`` (unknown ids are an error, not silently dropped)."""
        keep = set(utt_ids)
        unknown = sorted(keep - self._index.keys(), key=c_order)
        if unknown:
            raise DataDirError(f"{self.path}: unknown utterance id(s): {_few(unknown)}")

        def restrict(d: dict | None) -> dict | None:
            return None if d is None else {k: v for k, v in d.items() if k in keep}

        return DataDir(
            self.path,
            [u for u in self.utterances if u.utt_id in keep],
            text=restrict(self.text),
            utt2dur=restrict(self.utt2dur),
        )

    def shard(self, nj: int, job: int) -> list[Utterance]:
        """Utterances of 1-based ``job`` of ``nj`` contiguous, nearly equal parts (Kaldi's JOB)."""
        if nj < 1 or not 1 <= job <= nj:
            raise ValueError(f"job must be in 1..nj, got job={job}, nj={nj}")
        n = len(self.utterances)
        if nj > n:
            raise DataDirError(f"{self.path}: cannot split {n} utterance(s) into {nj} jobs")
        size, extra = divmod(n, nj)
        begin = (job - 1) * size + min(job - 1, extra)
        return self.utterances[begin:begin + size + (1 if job <= extra else 0)]


def copy_data_dir(
    src: str | Path, dst: str | Path, *, utt_ids: Iterable[str] | None = None,
    carry_all: bool = False,
) -> None:
    """Copy the standard Kaldi files of ``src`` to ``dst``, optionally for a subset.

    ``carry_all`` also copies every other ``utt2*`` / ``spk2*`` file (``utt2label``,
    ``utt2lang``, ...) for the kept utterances / speakers, so task labels follow the data.

    ``src`` is validated with :meth:`DataDir.load` first.  Recording-level
    files (``wav.scp``, ``reco2file_and_channel``) keep only recordings still
    referenced, ``spk2gender`` only speakers still present, and ``spk2utt`` is
    regenerated.  Standard files left in ``dst`` from an earlier copy that
    ``src`` lacks are removed so ``dst`` is consistent.
    """
    src, dst = Path(src), Path(dst)
    data = DataDir.load(src)
    if utt_ids is None:
        keep = set(data.utt2spk)
    else:
        keep = set(utt_ids)
        unknown = sorted(keep - data.utt2spk.keys(), key=c_order)
        if unknown:
            raise DataDirError(f"{src}: unknown utterance id(s): {_few(unknown)}")

    def read(name: str, **kwargs) -> dict[str, str] | None:
        return read_kaldi_map(src / name, **kwargs) if (src / name).exists() else None

    def by_keys(mapping: dict[str, str] | None, keys: set[str]) -> dict[str, str] | None:
        return None if mapping is None else {k: v for k, v in mapping.items() if k in keys}

    out: dict[str, Mapping[str, str | Sequence[str]] | None] = {
        "segments": by_keys(read("segments", n_fields=4), keep),
        "utt2spk": by_keys(read("utt2spk", n_fields=2), keep),
        "text": by_keys(read("text", allow_empty=True), keep),
        "utt2dur": by_keys(read("utt2dur", n_fields=2), keep),
        "utt2num_frames": by_keys(read("utt2num_frames", n_fields=2), keep),
    }
    segments = out["segments"]
    recos = keep if segments is None else {WS.split(v)[0] for v in segments.values()}
    out["wav.scp"] = by_keys(read("wav.scp"), recos)
    out["reco2file_and_channel"] = by_keys(read("reco2file_and_channel"), recos)
    utt2spk = out["utt2spk"]
    if utt2spk is not None:
        out["spk2utt"] = utt2spk_to_spk2utt(utt2spk)
        out["spk2gender"] = by_keys(read("spk2gender", n_fields=2), set(utt2spk.values()))
    dst.mkdir(parents=True, exist_ok=True)
    for name in STANDARD_FILES:
        mapping = out.get(name)
        if mapping is not None:
            write_kaldi_map(dst / name, mapping)
        elif (dst / name).exists() and not (src / name).exists():
            logger.info("%s: removing stale file not present in %s", dst / name, src)
            (dst / name).unlink()
    if carry_all:
        speakers = set(utt2spk.values()) if utt2spk is not None else set()
        for path in sorted(src.glob("utt2*")) + sorted(src.glob("spk2*")):
            if path.name not in STANDARD_FILES and path.is_file():
                keys = keep if path.name.startswith("utt2") else speakers
                write_kaldi_map(dst / path.name, by_keys(read(path.name), keys))
