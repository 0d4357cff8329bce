"""pase-data-dir: check, repair, subset and split Kaldi data directories.

    pase-data-dir validate data/train [--no_feats] [--no_text] [--no_wav]
    pase-data-dir fix data/train
    pase-data-dir subset data/train data/train_1k --shortest 1000
    pase-data-dir split data/train 8                  # -> data/train/split8/{1..8}
    pase-data-dir utt2spk-to-spk2utt < utt2spk > spk2utt

utils/{validate_data_dir,fix_data_dir,subset_data_dir,split_data}.sh expose these under
Kaldi's names.  validate reports every problem it finds (not just the first) so one run
tells what fix, or the data preparation, has to deal with.
"""
from __future__ import annotations

import argparse
import bisect
import itertools
import logging
import math
import os
import shutil
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pase.bin.common import ArgumentParser, run_main
from pase.io import DataDir, DataDirError, utt2spk_to_spk2utt, write_kaldi_map
from pase.io.datadir import _WS, _WS_CHARS, _c_order

log = logging.getLogger("pase-data-dir")

# Per-file problems beyond this many are summarised, so a broken 100k-line file stays readable.
_MAX_REPORTED = 10


def _check_nonneg_float(value: str) -> str | None:
    try:
        ok = math.isfinite(float(value)) and float(value) >= 0
    except ValueError:
        ok = False
    return None if ok else f"expected a non-negative number, got {value!r}"


def _check_nonneg_int(value: str) -> str | None:
    return None if value.isdigit() else f"expected a non-negative integer, got {value!r}"


def _check_gender(value: str) -> str | None:
    return None if value in ("m", "f") else f"gender must be 'm' or 'f', got {value!r}"


def _check_segment(value: str) -> str | None:
    _, start_s, end_s = _WS.split(value)
    try:
        start, end = float(start_s), float(end_s)
    except ValueError:
        return f"start/end must be numbers, got {start_s!r} {end_s!r}"
    if not (math.isfinite(start) and start >= 0 and (end > start or end == -1)):
        return f"need 0 <= start < end (or end -1), got {start_s} {end_s}"
    return None


@dataclass(frozen=True)
class Spec:
    """What a data-dir file is keyed by and what its lines must look like."""

    keyed_by: str  # "utt", "spk" or "reco"
    n_fields: int | None = None  # including the key
    allow_empty: bool = False
    check: Callable[[str], str | None] | None = None


# The files validate/fix/subset know.  wav.scp is keyed by utterance when there are no segments.
SPECS = {
    "utt2spk": Spec("utt", 2),
    "segments": Spec("utt", 4, check=_check_segment),
    "text": Spec("utt", allow_empty=True),  # Kaldi allows utterances without a transcript
    "feats.scp": Spec("utt"),
    "utt2dur": Spec("utt", 2, check=_check_nonneg_float),
    "utt2num_frames": Spec("utt", 2, check=_check_nonneg_int),
    "vad.scp": Spec("utt"),
    "utt2uniq": Spec("utt", 2),
    "utt2lang": Spec("utt", 2),
    "spk2utt": Spec("spk"),
    "cmvn.scp": Spec("spk"),
    "spk2gender": Spec("spk", 2, check=_check_gender),
    "wav.scp": Spec("reco"),
    "reco2file_and_channel": Spec("reco", 3),
    "reco2dur": Spec("reco", 2, check=_check_nonneg_float),
}


@dataclass
class Table:
    """A key-value file read leniently: good lines kept, bad lines described and skipped."""

    name: str
    entries: dict[str, tuple[int, str]]  # key -> (line number, value), first occurrence wins
    bad: list[str]  # "file:line: why" for each skipped line
    unsorted: str | None  # where the keys first leave C-locale order, if they do


def _scan_text(name: str, content: str, spec: Spec) -> Table:
    entries: dict[str, tuple[int, str]] = {}
    bad: list[str] = []
    unsorted = None
    prev = None
    lines = content.split("\n")
    if lines[-1] == "":
        lines.pop()
    for lineno, line in enumerate(lines, 1):
        stripped = line.strip(_WS_CHARS)
        if not stripped:
            bad.append(f"{name}:{lineno}: blank line")
            continue
        fields = _WS.split(stripped)
        key = fields[0]
        value = stripped[len(key):].strip(_WS_CHARS)
        if prev is not None and unsorted is None and _c_order(key) < _c_order(prev):
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
    return Table(name, entries, bad, unsorted)


def _scan(path: Path, spec: Spec) -> Table:
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataDirError(f"{path}: not valid UTF-8: {exc}") from exc
    return _scan_text(str(path), content, spec)


def _capped(messages: list[str]) -> list[str]:
    extra = len(messages) - _MAX_REPORTED
    more = [f"... and {extra} more like the above"] if extra > 0 else []
    return messages[:_MAX_REPORTED] + more


def _few(keys: Iterable[str]) -> str:
    keys = sorted(keys, key=_c_order)
    shown = ", ".join(repr(k) for k in keys[:5])
    return f"{len(keys)}: {shown}" + (", ..." if len(keys) > 5 else "")


def _keyed_by(name: str, has_segments: bool) -> str:
    return "utt" if name == "wav.scp" and not has_segments else SPECS[name].keyed_by


def _load_tables(d: Path, skip: Iterable[str] = ()) -> dict[str, Table]:
    if not d.is_dir():
        raise DataDirError(f"{d}: data directory not found")
    return {name: _scan(d / name, spec) for name, spec in SPECS.items()
            if name not in skip and (d / name).is_file()}


def _compare_keys(table: Table, expected: set[str], what: str, ref: str) -> list[str]:
    """Errors for keys of ``table`` not in ``expected`` (by line) and expected keys it lacks."""
    errors = _capped([f"{table.name}:{line}: {what} {key!r} is not in {ref}"
                      for key, (line, _) in table.entries.items() if key not in expected])
    missing = expected - table.entries.keys()
    if missing:
        errors.append(f"{table.name}: {what}(s) of {ref} missing, {_few(missing)}")
    return errors


def validate(d: Path, *, no_feats: bool = False, no_text: bool = False,
             no_wav: bool = False) -> tuple[list[str], list[str], int, int]:
    """Check ``d`` against Kaldi's data-dir rules: ``(errors, warnings, #utts, #speakers)``."""
    skip = ((["feats.scp"] if no_feats else []) + (["text"] if no_text else [])
            + (["wav.scp", "segments", "reco2file_and_channel", "reco2dur"] if no_wav else []))
    tables = _load_tables(d, skip)
    errors: list[str] = []
    warnings: list[str] = []
    for name in ("utt2spk", "spk2utt", "wav.scp", "text"):
        if name in skip:
            continue
        if name not in tables:
            # Kaldi's spelling: utils/validate_data_dir.sh passes its options here unchanged.
            flag = {"wav.scp": " (or pass --no-wav)", "text": " (or pass --no-text)"}.get(name, "")
            errors.append(f"{d / name}: missing{flag}")
    for table in tables.values():
        errors += _capped(table.bad)
        if table.unsorted:
            errors.append(table.unsorted)
    if "utt2spk" not in tables:
        return errors, warnings, 0, 0

    utt2spk = {u: spk for u, (_, spk) in tables["utt2spk"].entries.items()}
    utts, speakers = set(utt2spk), set(utt2spk.values())
    if "spk2utt" in tables:
        errors += _check_spk2utt(tables["spk2utt"], utt2spk)
    by_utt = sorted(utt2spk, key=_c_order)
    spk_seq = [_c_order(utt2spk[u]) for u in by_utt]
    if any(a > b for a, b in zip(spk_seq, spk_seq[1:])):
        warnings.append(f"{tables['utt2spk'].name}: sorted by utterance, the speakers are not in "
                        "sorted order (make speaker ids prefixes of utterance ids); per-speaker "
                        "tools such as split_data.sh then see speakers interleaved")

    segments = tables.get("segments")
    for name, table in tables.items():
        keyed_by = _keyed_by(name, segments is not None)
        if name in ("utt2spk", "spk2utt"):
            continue
        if keyed_by == "utt":
            errors += _compare_keys(table, utts, "utterance", "utt2spk")
        elif keyed_by == "spk":
            errors += _compare_keys(table, speakers, "speaker", "utt2spk")
    if "wav.scp" in tables:
        recordings = set(tables["wav.scp"].entries)
        if segments is not None:
            used = {_WS.split(v)[0] for _, v in segments.entries.values()}
            errors += _capped([f"{segments.name}:{line}: recording {_WS.split(v)[0]!r} of "
                               f"utterance {u!r} is not in wav.scp"
                               for u, (line, v) in segments.entries.items()
                               if _WS.split(v)[0] not in recordings])
            unused = recordings - used
            if unused:
                errors.append(f"{tables['wav.scp'].name}: recording(s) used by no segment, "
                              f"{_few(unused)}")
        for name in ("reco2file_and_channel", "reco2dur"):
            if name in tables:
                errors += _compare_keys(tables[name], recordings, "recording", "wav.scp")
    if "text" in tables:
        empty = [u for u, (_, v) in tables["text"].entries.items() if not v]
        if empty:
            warnings.append(f"{tables['text'].name}: empty transcript(s), {_few(empty)}")
    return errors, warnings, len(utts), len(speakers)


def _check_spk2utt(table: Table, utt2spk: dict[str, str]) -> list[str]:
    errors = []
    listed: dict[str, str] = {}
    for spk, (line, value) in table.entries.items():
        for utt in _WS.split(value):
            if utt in listed:
                errors.append(f"{table.name}:{line}: utterance {utt!r} listed again "
                              f"(already under speaker {listed[utt]!r})")
            elif utt2spk.get(utt) != spk:
                errors.append(f"{table.name}:{line}: utterance {utt!r} under speaker {spk!r} but "
                              f"utt2spk says {utt2spk.get(utt, 'nothing')!r}")
            listed.setdefault(utt, spk)
    missing = utt2spk.keys() - listed.keys()
    if missing:
        errors.append(f"{table.name}: utterance(s) of utt2spk missing, {_few(missing)}")
    if not errors:
        expected = {s: " ".join(u) for s, u in utt2spk_to_spk2utt(utt2spk).items()}
        errors += [f"{table.name}:{line}: utterances of speaker {spk!r} not in C-locale order"
                   for spk, (line, value) in table.entries.items() if value != expected[spk]]
    return _capped(errors)


def fix(d: Path) -> list[str]:
    """Make ``d`` pass :func:`validate` by dropping what is inconsistent; return the report.

    Keeps the utterances present in every per-utterance file, whose speaker is in every
    per-speaker file and whose recording is in every per-recording file; then keeps only
    the speakers and recordings still used, sorts everything and regenerates spk2utt.
    The original files are copied to ``d/.backup/`` first.
    """
    tables = _load_tables(d)
    if "utt2spk" not in tables:
        raise DataDirError(f"{d / 'utt2spk'}: missing; fix cannot guess the speakers")
    report = [f"{line}: dropped" for t in tables.values() for line in _capped(t.bad)]
    utt2spk = {u: v for u, (_, v) in tables["utt2spk"].entries.items()}
    seg_reco = ({u: _WS.split(v)[0] for u, (_, v) in tables["segments"].entries.items()}
                if "segments" in tables else None)
    failed: dict[str, set[str]] = {}  # reason -> utterances failing it
    for name, table in tables.items():
        keyed_by = _keyed_by(name, seg_reco is not None)
        if name in ("utt2spk", "spk2utt"):
            continue
        if keyed_by == "utt" or (keyed_by == "reco" and seg_reco is None):
            failed[f"not in {name}"] = utt2spk.keys() - table.entries.keys()
        elif keyed_by == "spk":
            failed[f"whose speaker is not in {name}"] = {
                u for u, s in utt2spk.items() if s not in table.entries}
        else:  # utterances without a segment are already counted as "not in segments"
            failed[f"whose recording is not in {name}"] = {
                u for u, r in seg_reco.items() if u in utt2spk and r not in table.entries}
    removed = set().union(*failed.values())
    kept = utt2spk.keys() - removed
    if not kept:
        raise DataDirError(f"{d}: no utterance would remain; not touching the directory "
                           f"({'; '.join(f'{len(u)} {r}' for r, u in failed.items() if u)})")
    report += [f"{len(u)} utterance(s) {reason}" for reason, u in failed.items() if u]
    for name, table in tables.items():
        strays = table.entries.keys() - utt2spk.keys()
        if _keyed_by(name, seg_reco is not None) == "utt" and strays:
            report.append(f"{name}: dropped {len(strays)} line(s) of utterances not in utt2spk")

    speakers = {utt2spk[u] for u in kept}
    recordings = kept if seg_reco is None else {seg_reco[u] for u in kept}
    keep_by = {"utt": kept, "spk": speakers, "reco": recordings}
    backup = d / ".backup"
    backup.mkdir(exist_ok=True)
    for name in tables:
        shutil.copy2(d / name, backup / name)
    new_utt2spk = {u: s for u, s in utt2spk.items() if u in kept}
    for name, table in tables.items():
        if name == "spk2utt":
            continue
        keys = keep_by[_keyed_by(name, seg_reco is not None)]
        write_kaldi_map(d / name, {k: v for k, (_, v) in table.entries.items() if k in keys})
    write_kaldi_map(d / "spk2utt", utt2spk_to_spk2utt(new_utt2spk))
    report.append(f"kept {len(kept)} of {len(utt2spk)} utterances ({len(removed)} removed), "
                  f"{len(speakers)} speakers; originals in {backup}")
    return report


def write_subsets(data: DataDir, parts: list[tuple[Path, list[str]]]) -> None:
    """Write each ``(dst, utt_ids)`` of ``parts`` as a data dir of those utterances of ``data``.

    Every file of ``data.path`` that :data:`SPECS` knows (feats.scp and cmvn.scp included) is
    read once, so a split into many parts stays linear in the data size.  Each part keeps the
    entries of its utterances, their speakers and their recordings, and gets spk2utt
    regenerated.  Known files left in a ``dst`` by an earlier run that the source lacks are
    removed, so each ``dst`` is consistent.
    """
    src = data.path
    has_segments = (src / "segments").is_file()
    files = {name: _strict(src / name) for name in SPECS
             if name != "spk2utt" and (src / name).is_file()}
    reco_of = ({u: _WS.split(v)[0] for u, v in files["segments"].items()} if has_segments
               else {u: u for u in data.utt2spk})
    owners: dict[str, dict[str, set[int]]] = {"utt": {}, "spk": {}, "reco": {}}  # key -> parts
    for j, (dst, utts) in enumerate(parts):
        if dst.resolve() == src.resolve():
            raise DataDirError(f"{dst}: output must differ from the input data dir")
        for u in utts:
            if u not in data.utt2spk:
                raise DataDirError(f"{src}: unknown utterance id {u!r}")
            # One recording may hold segments of speakers that end up in different parts.
            for kind, key in (("utt", u), ("spk", data.utt2spk[u]), ("reco", reco_of[u])):
                owners[kind].setdefault(key, set()).add(j)
    out: list[dict[str, dict]] = [{name: {} for name in files} for _ in parts]
    for name, entries in files.items():
        owner = owners[_keyed_by(name, has_segments)]
        for key, value in entries.items():
            for j in owner.get(key, ()):
                out[j][name][key] = value
    for (dst, _), tables in zip(parts, out):
        dst.mkdir(parents=True, exist_ok=True)
        if "utt2spk" in tables:
            tables["spk2utt"] = utt2spk_to_spk2utt(tables["utt2spk"])
        for name in SPECS:
            if name in tables:
                write_kaldi_map(dst / name, tables[name])
            elif (dst / name).exists():
                (dst / name).unlink()


def _strict(path: Path) -> dict[str, str]:
    table = _scan(path, SPECS[path.name])
    if table.bad:
        raise DataDirError(f"{table.bad[0]} (run fix_data_dir.sh)")
    return {k: v for k, (_, v) in table.entries.items()}


def select(data: DataDir, args: argparse.Namespace) -> list[str]:
    """The utterance ids a ``subset`` invocation asks for."""
    utts = [u.utt_id for u in data.utterances]
    if args.utt_list or args.spk_list:
        path = args.utt_list or args.spk_list
        wanted = {line.split()[0] for line in path.read_text(encoding="utf-8").splitlines()
                  if line.strip()}
        known = set(utts) if args.utt_list else set(data.utt2spk.values())
        if wanted - known:  # Kaldi's filter_scp.pl convention: intersect, don't fail
            log.warning("%s: %d id(s) not in %s ignored, e.g. %r", path, len(wanted - known),
                        data.path, sorted(wanted - known)[0])
        ids = [u for u in utts if (u if args.utt_list else data.utt2spk[u]) in wanted]
        if not ids:
            raise DataDirError(f"{path}: selects no utterance of {data.path}")
        return ids
    mode, n = next((m, getattr(args, m)) for m in ("first", "last", "shortest", "spread")
                   if getattr(args, m) is not None)
    if not 0 < n <= len(utts):
        raise DataDirError(f"{data.path}: cannot take {n} of its {len(utts)} utterances")
    if mode == "first":
        return utts[:n]
    if mode == "last":
        return utts[-n:]
    if mode == "spread":
        return [utts[i * len(utts) // n] for i in range(n)]
    if data.utt2dur is None:
        raise DataDirError(f"{data.path / 'utt2dur'}: missing; --shortest needs durations")
    return sorted(utts, key=lambda u: (data.utt2dur[u], _c_order(u)))[:n]


def partition(sizes: list[int], nj: int) -> list[int]:
    """Cut ``sizes`` into ``nj`` non-empty contiguous runs of nearly equal sums.

    Returns the start index of each run: run j ends where the running total comes nearest
    to j/nj of the whole, so every run is within the largest item of the mean.  Contiguous
    runs of C-sorted speakers keep each part sorted and the parts, in order, equal to the
    whole, as with Kaldi's split.
    """
    cumulative = list(itertools.accumulate(sizes, initial=0))
    starts = [0]
    for j in range(1, nj):
        target = cumulative[-1] * j / nj
        i = bisect.bisect_left(cumulative, target)
        if i > 0 and target - cumulative[i - 1] <= cumulative[i] - target:
            i -= 1
        # Leave at least one item to every run, this one and those after it.
        starts.append(min(max(i, starts[-1] + 1), len(sizes) - (nj - j)))
    return starts


def _split_is_current(d: Path, out: Path, nj: int) -> bool:
    parts = [out / str(j) for j in range(1, nj + 1)]
    if not all((p / "utt2spk").is_file() for p in parts):
        return False
    newest_src = max(f.stat().st_mtime_ns for f in d.iterdir() if f.is_file())
    oldest_split = min(f.stat().st_mtime_ns for p in parts for f in p.iterdir() if f.is_file())
    return oldest_split > newest_src


def split(d: Path, nj: int) -> Path:
    """Write ``d/split<nj>/{1..nj}``: whole speakers per part, parts balanced by utterances."""
    out = d / f"split{nj}"
    data = DataDir.load(d)
    spk2utt = utt2spk_to_spk2utt(data.utt2spk)
    if not 1 <= nj <= len(spk2utt):
        raise DataDirError(f"{d}: cannot split {len(spk2utt)} speaker(s) into {nj} parts "
                           "(speakers are not split across parts)")
    if _split_is_current(d, out, nj):
        log.info("%s: newer than %s; reusing it", out, d)
        return out
    utt_lists = list(spk2utt.values())
    starts = partition([len(u) for u in utt_lists], nj) + [len(utt_lists)]
    # Built aside and renamed so that a concurrent or interrupted split never leaves half a split.
    tmp = d / f".split{nj}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write_subsets(data, [(tmp / str(j + 1), [u for utts in utt_lists[starts[j]:starts[j + 1]]
                                                 for u in utts]) for j in range(nj)])
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sizes = [sum(map(len, utt_lists[starts[j]:starts[j + 1]])) for j in range(nj)]
    log.info("%s: %d parts of %d-%d utterances", out, nj, min(sizes), max(sizes))
    return out


def _read_pairs(source: str, content: str, spec: Spec) -> dict[str, str]:
    table = _scan_text(source, content, spec)
    if table.bad:
        raise DataDirError(table.bad[0])
    return {k: v for k, (_, v) in table.entries.items()}


def _input(path: Path | None) -> tuple[str, str]:
    if path is None:
        return "<stdin>", sys.stdin.read()
    return str(path), path.read_text(encoding="utf-8")


def build_parser() -> ArgumentParser:
    p = ArgumentParser("pase-data-dir", __doc__)
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="check a data dir; print every problem")
    v.add_argument("data_dir", type=Path)
    v.add_argument("--no_feats", action="store_true", help="do not check feats.scp")
    v.add_argument("--no_text", action="store_true", help="text is not required (nor checked)")
    v.add_argument("--no_wav", action="store_true",
                   help="wav.scp is not required (nor segments and recording files checked)")
    f = sub.add_parser("fix", help="drop inconsistent entries, sort, regenerate spk2utt")
    f.add_argument("data_dir", type=Path)
    s = sub.add_parser("subset", help="copy part of a data dir")
    s.add_argument("data_dir", type=Path)
    s.add_argument("out_dir", type=Path)
    how = s.add_mutually_exclusive_group(required=True)
    how.add_argument("--utt_list", type=Path, help="utterances in this file (first field)")
    how.add_argument("--spk_list", type=Path, help="utterances of the speakers in this file")
    how.add_argument("--first", type=int, help="first N utterances (C-locale order)")
    how.add_argument("--last", type=int, help="last N utterances")
    how.add_argument("--shortest", type=int, help="N shortest utterances (needs utt2dur)")
    how.add_argument("--spread", type=int, help="N utterances evenly spread over the dir")
    sp = sub.add_parser("split", help="split into DIR/split<NJ>/{1..NJ} by speaker")
    sp.add_argument("data_dir", type=Path)
    sp.add_argument("nj", type=int)
    for name, what in (("utt2spk-to-spk2utt", "utt2spk"), ("spk2utt-to-utt2spk", "spk2utt")):
        c = sub.add_parser(name, help=f"convert {what} (FILE or stdin) to stdout")
        c.add_argument("file", type=Path, nargs="?")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "validate":
        errors, warnings, n_utts, n_spks = validate(
            args.data_dir, no_feats=args.no_feats, no_text=args.no_text, no_wav=args.no_wav)
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
        for e in errors:
            print(f"error: {e}", file=sys.stderr)
        if errors:
            print(f"{args.data_dir}: {len(errors)} error(s)", file=sys.stderr)
            sys.exit(1)
        print(f"{args.data_dir}: OK ({n_utts} utterances, {n_spks} speakers)")
    elif args.command == "fix":
        for line in fix(args.data_dir):
            print(f"{args.data_dir}: {line}")
    elif args.command == "subset":
        data = DataDir.load(args.data_dir)
        ids = select(data, args)
        write_subsets(data, [(args.out_dir, ids)])
        print(f"{args.out_dir}: {len(ids)} utterances, "
              f"{len({data.utt2spk[u] for u in ids})} speakers (from {args.data_dir})")
    elif args.command == "split":
        print(split(args.data_dir, args.nj))
    elif args.command == "utt2spk-to-spk2utt":
        utt2spk = _read_pairs(*_input(args.file), SPECS["utt2spk"])
        spk2utt = utt2spk_to_spk2utt(utt2spk)
        sys.stdout.writelines(f"{s} {' '.join(u)}\n" for s, u in spk2utt.items())
    else:
        pairs: dict[str, str] = {}
        source, content = _input(args.file)
        for spk, utts in _read_pairs(source, content, SPECS["spk2utt"]).items():
            for utt in _WS.split(utts):
                if pairs.setdefault(utt, spk) != spk:
                    raise DataDirError(f"{source}: utterance {utt!r} under speakers "
                                       f"{pairs[utt]!r} and {spk!r}")
        sys.stdout.writelines(f"{u} {pairs[u]}\n" for u in sorted(pairs, key=_c_order))


def cli() -> None:
    run_main(main, "pase-data-dir")


if __name__ == "__main__":
    cli()
