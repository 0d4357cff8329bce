"""Kaldi's validate_data_dir.sh and fix_data_dir.sh.

validate applies the rules of Kaldi's script, so that a dir it passes also passes Kaldi's, but
reports every problem it finds (not just the first, each with its file, line and key) so that
one run tells what fix, or the data preparation, has to deal with; fix drops what is
inconsistent until validate passes.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from pase.io.datadir import WS, c_order, utt2spk_to_spk2utt, write_kaldi_map
from pase.io.errors import DataDirError
from pase.io.file_specs import SPECS, Table, keyed_by, read_raw, scan
from pase.io.text_rules import text_errors

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


def _required(d: Path, tables: dict[str, Table], *, no_feats: bool, no_text: bool,
              no_wav: bool) -> list[str]:
    """Errors for the files Kaldi requires that are missing or empty."""
    wanted = {"utt2spk": "", "spk2utt": "", "text": " (or pass --no-text)"}
    if no_text:
        del wanted["text"]
    if "segments" in tables:
        wanted["wav.scp"] = " (segments refers to its recordings)"
    elif not no_wav:
        wanted["wav.scp"] = " (or pass --no-wav)"
    if not no_feats:
        wanted["feats.scp"] = " (or pass --no-feats)"
    errors = [f"{d / name}: missing{hint}" for name, hint in wanted.items() if name not in tables]
    return errors + [f"{d / name}: empty" for name in ("utt2spk", "spk2utt", "text")
                     if name in tables and (d / name).stat().st_size == 0]


def _speaker_order(utt2spk: Table) -> str | None:
    """Kaldi's ``sort -k2 -C utt2spk``: the lines in (speaker, utterance) order as well."""
    prev: tuple[bytes, bytes] | None = None
    for utt, (line, spk) in utt2spk.entries.items():
        here = (c_order(spk), c_order(utt))
        if prev is not None and here < prev:
            return (f"{utt2spk.name}:{line}: speaker {spk!r} after "
                    f"{prev[0].decode('utf-8')!r}: utt2spk must be sorted by speaker as well as "
                    "by utterance (make the speaker ids prefixes of the utterance ids)")
        prev = here
    return None


def validate_data_dir(d: Path, *, no_feats: bool = False, no_text: bool = False,
                      no_wav: bool = False, no_spk_sort: bool = False,
                      non_print: bool = False) -> tuple[list[str], list[str], int, int]:
    """Check ``d`` by the rules of Kaldi's utils/validate_data_dir.sh, with its options.

    Returns ``(errors, warnings, #utterances, #speakers)``. As in Kaldi, ``no_feats`` and
    ``no_wav`` make feats.scp and wav.scp optional (still checked when present), ``no_text``
    leaves text unchecked, ``no_spk_sort`` drops the rule that utt2spk be sorted by speaker
    too (spk2utt must still list the utterances in utt2spk's order, so interleaved speakers
    still fail there) and ``non_print`` allows non-printable characters in text.
    """
    tables = _load_tables(d, ["text"] if no_text else [])
    errors = _required(d, tables, no_feats=no_feats, no_text=no_text, no_wav=no_wav)
    warnings: list[str] = []
    for table in tables.values():
        errors += _capped(table.bad) + table.file_errors
    if "text" in tables:
        errors += _capped(text_errors(tables["text"].name, read_raw(d / "text"),
                                      non_print=non_print))
    if "utt2spk" not in tables:
        return errors, warnings, 0, 0

    utt2spk = {u: spk for u, (_, spk) in tables["utt2spk"].entries.items()}
    utts, speakers = set(utt2spk), set(utt2spk.values())
    if len(speakers) == 1:
        warnings.append(f"{tables['utt2spk'].name}: only one speaker; per-speaker tools "
                        "(CMVN, split_data.sh) then see the whole set as one speaker")
    unordered = None if no_spk_sort else _speaker_order(tables["utt2spk"])
    if unordered:
        errors.append(unordered)
    if "spk2utt" in tables:
        errors += _check_spk2utt(tables["spk2utt"], tables["utt2spk"], check_order=not unordered)

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
    if "reco2file_and_channel" in tables:
        ones = [r for r, (_, v) in tables["reco2file_and_channel"].entries.items()
                if WS.split(v)[1] == "1"]
        if ones:
            warnings.append(f"{tables['reco2file_and_channel'].name}: channel '1' where Kaldi "
                            f"wants A or B, {_few(ones)}")
    if "text" in tables:
        empty = [u for u, (_, v) in tables["text"].entries.items() if not v]
        if empty:
            warnings.append(f"{tables['text'].name}: empty transcript(s), {_few(empty)}")
    return errors, warnings, len(utts), len(speakers)


def _check_spk2utt(table: Table, utt2spk_table: Table, *, check_order: bool) -> list[str]:
    """spk2utt against utt2spk; with ``check_order``, also Kaldi's rule that spk2utt, read in
    order, gives utt2spk's lines in order (``spk2utt_to_utt2spk`` output = utt2spk)."""
    utt2spk = {u: spk for u, (_, spk) in utt2spk_table.entries.items()}
    errors = []
    listed: dict[str, str] = {}
    pairs = []  # (utterance, spk2utt line) in spk2utt's order
    for spk, (line, value) in table.entries.items():
        for utt in WS.split(value):
            if utt in listed:
                errors.append(f"{table.name}:{line}: utterance {utt!r} listed again "
                              f"(already under speaker {listed[utt]!r})")
            elif utt2spk.get(utt) != spk:
                errors.append(f"{table.name}:{line}: utterance {utt!r} under speaker {spk!r} but "
                              f"utt2spk says {utt2spk.get(utt, 'nothing')!r}")
            listed.setdefault(utt, spk)
            pairs.append((utt, line))
    missing = utt2spk.keys() - listed.keys()
    if missing:
        errors.append(f"{table.name}: utterance(s) of utt2spk missing, {_few(missing)}")
    if not errors and check_order:
        for (utt, line), (want, (want_line, _)) in zip(pairs, utt2spk_table.entries.items()):
            if utt != want:
                errors.append(f"{table.name}:{line}: utterance {utt!r} comes where "
                              f"{utt2spk_table.name}:{want_line} has {want!r}: spk2utt must list "
                              "the utterances in utt2spk's order")
                break
    return _capped(errors)


def fix_data_dir(d: Path) -> list[str]:
    """Make ``d`` pass :func:`validate_data_dir` by dropping what is inconsistent; return the report.

    Keeps the utterances present in every per-utterance file, whose speaker is in every
    per-speaker file and whose recording is in every per-recording file; then keeps only
    the speakers and recordings still used, sorts everything and regenerates spk2utt.
    The original files are copied to ``d/.backup/`` first. What only the data preparation
    can change is left as it is, as Kaldi's fix_data_dir.sh does: the characters of text,
    speaker ids that do not sort with the utterance ids.
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
