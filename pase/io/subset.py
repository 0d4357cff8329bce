"""Kaldi's subset_data_dir.sh: choose utterances of a data dir and write them as data dirs."""
from __future__ import annotations

import logging
from pathlib import Path

from pase.io.datadir import WS, DataDir, c_order, utt2spk_to_spk2utt, write_kaldi_map
from pase.io.errors import DataDirError
from pase.io.file_specs import SPECS, keyed_by, scan

log = logging.getLogger(__name__)

# The ways to choose: an id list (value: its path) or N utterances (value: N).
SUBSET_MODES = ("utt_list", "spk_list", "first", "last", "shortest", "spread")


def select_utterances(data: DataDir, mode: str, value: Path | int) -> list[str]:
    """The utterance ids of ``data`` that ``mode`` (one of :data:`SUBSET_MODES`) and ``value`` choose.

    An id list keeps the listed utterances (or those of the listed speakers), ignoring ids
    ``data`` lacks as Kaldi's filter_scp.pl does; first/last/spread take N in C-locale
    order, shortest the N shortest by utt2dur.
    """
    utts = [u.utt_id for u in data.utterances]
    if mode in ("utt_list", "spk_list"):
        path = Path(value)
        wanted = {line.split()[0] for line in path.read_text(encoding="utf-8").splitlines()
                  if line.strip()}
        by_utt = mode == "utt_list"
        known = set(utts) if by_utt else set(data.utt2spk.values())
        if wanted - known:
            log.warning("%s: %d id(s) not in %s ignored, e.g. %r", path, len(wanted - known),
                        data.path, sorted(wanted - known)[0])
        ids = [u for u in utts if (u if by_utt else data.utt2spk[u]) in wanted]
        if not ids:
            raise DataDirError(f"{path}: selects no utterance of {data.path}")
        return ids
    if mode not in SUBSET_MODES:
        raise ValueError(f"unknown subset mode {mode!r}; choose one of {', '.join(SUBSET_MODES)}")
    n = int(value)
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
    missing = [u for u in utts if u not in data.utt2dur]
    if missing:
        raise DataDirError(f"{data.path / 'utt2dur'}: no duration for {len(missing)} utterance(s), "
                           f"e.g. {missing[0]!r}; --shortest needs every one (pase-data-dir fix)")
    return sorted(utts, key=lambda u: (data.utt2dur[u], c_order(u)))[:n]


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
    files = {name: scan(src / name).strict(" (run fix_data_dir.sh)") for name in SPECS
             if name != "spk2utt" and (src / name).is_file()}
    reco_of = ({u: WS.split(v)[0] for u, v in files["segments"].items()} if has_segments
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
        owner = owners[keyed_by(name, has_segments)]
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


def subset_data_dir(src: Path, dst: Path, mode: str, value: Path | int) -> tuple[int, int]:
    """Write the utterances of ``src`` that :func:`select_utterances` chooses to ``dst``.

    Returns the number of utterances and of speakers written.
    """
    data = DataDir.load(src)
    ids = select_utterances(data, mode, value)
    write_subsets(data, [(dst, ids)])
    return len(ids), len({data.utt2spk[u] for u in ids})
