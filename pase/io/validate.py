"""Kaldi's validate_data_dir.sh and fix_data_dir.sh.

validate reports every problem it finds (not just the first) so that one run tells what fix,
or the data preparation, has to deal with; fix drops what is inconsistent until validate
passes.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from pase.io.datadir import WS, c_order, utt2spk_to_spk2utt, write_kaldi_map
from pase.io.errors import DataDirError
from pase.io.file_specs import SPECS, Table, keyed_by, scan

# Per-file problems beyond this many are summarised, so a broken 100k-line file stays readable.
_MAX_REPORTED = 10


def _capped(messages: list[str]) -> list[str]:
    extra = len(messages) - _MAX_REPORTED
    more = [f"... and {extra} more like the above"] if extra > 0 else []
    return messages[:_MAX_REPORTED] + more


def _few(keys: Iterable[str]) -> str:
    keys = sorted(keys, key=c_order)
    shown = ", ".join(repr(k) for k in keys[:5])
    return f"{len(keys)}: {shown}" + (", ..." if len(keys) > 5 else "")


def _load_tables(d: Path, skip: Iterable[str] = ()) -> dict[str, Table]:
    if not d.is_dir():
        raise DataDirError(f"{d}: data directory not found")
    return {name: scan(d / name, spec) for name, spec in SPECS.items()
            if name not in skip and (d / name).is_file()}


def _compare_keys(table: Table, expected: set[str], what: str, ref: str) -> list[str]:
    """Errors for keys of ``table`` not in ``expected`` (by line) and expected keys it lacks."""
    errors = _capped([f"{table.name}:{line}: {what} {key!r} is not in {ref}"
                      for key, (line, _) in table.entries.items() if key not in expected])
    missing = expected - table.entries.keys()
    if missing:
        errors.append(f"{table.name}: {what}(s) of {ref} missing, {_few(missing)}")
    return errors


def validate_data_dir(d: Path, *, no_feats: bool = False, no_text: bool = False,
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
    by_utt = sorted(utt2spk, key=c_order)
    spk_seq = [c_order(utt2spk[u]) for u in by_utt]
    if any(a > b for a, b in zip(spk_seq, spk_seq[1:])):
        warnings.append(f"{tables['utt2spk'].name}: sorted by utterance, the speakers are not in "
                        "sorted order (make speaker ids prefixes of utterance ids); per-speaker "
                        "tools such as split_data.sh then see speakers interleaved")

    segments = tables.get("segments")
    for name, table in tables.items():
        kind = keyed_by(name, segments is not None)
        if name in ("utt2spk", "spk2utt"):
            continue
        if kind == "utt":
            errors += _compare_keys(table, utts, "utterance", "utt2spk")
        elif kind == "spk":
            errors += _compare_keys(table, speakers, "speaker", "utt2spk")
    if "wav.scp" in tables:
        recordings = set(tables["wav.scp"].entries)
        if segments is not None:
            used = {WS.split(v)[0] for _, v in segments.entries.values()}
            errors += _capped([f"{segments.name}:{line}: recording {WS.split(v)[0]!r} of "
                               f"utterance {u!r} is not in wav.scp"
                               for u, (line, v) in segments.entries.items()
                               if WS.split(v)[0] not in recordings])
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
        for utt in WS.split(value):
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


def fix_data_dir(d: Path) -> list[str]:
    """Make ``d`` pass :func:`validate_data_dir` by dropping what is inconsistent; return the report.

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
    seg_reco = ({u: WS.split(v)[0] for u, (_, v) in tables["segments"].entries.items()}
                if "segments" in tables else None)
    failed: dict[str, set[str]] = {}  # reason -> utterances failing it
    for name, table in tables.items():
        kind = keyed_by(name, seg_reco is not None)
        if name in ("utt2spk", "spk2utt"):
            continue
        if kind == "utt" or (kind == "reco" and seg_reco is None):
            failed[f"not in {name}"] = utt2spk.keys() - table.entries.keys()
        elif kind == "spk":
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
        if keyed_by(name, seg_reco is not None) == "utt" and strays:
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
        keys = keep_by[keyed_by(name, seg_reco is not None)]
        write_kaldi_map(d / name, {k: v for k, (_, v) in table.entries.items() if k in keys})
    write_kaldi_map(d / "spk2utt", utt2spk_to_spk2utt(new_utt2spk))
    report.append(f"kept {len(kept)} of {len(utt2spk)} utterances ({len(removed)} removed), "
                  f"{len(speakers)} speakers; originals in {backup}")
    return report
