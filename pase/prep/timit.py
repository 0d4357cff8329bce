"""TIMIT (LDC93S1) -> Kaldi data dirs ``train``, ``dev`` and ``test``, as Kaldi's egs/timit/s5.

Sets (Kaldi's local/timit_data_prep.sh):

* ``train``: every SI and SX utterance under ``TRAIN/`` (the SA sentences, read by every
  speaker, are left out): 462 speakers, 3696 utterances on the real disc;
* ``dev``: the SI and SX utterances under ``TEST/`` of the 50 speakers in ``dev_spk.list``
  (400 utterances);
* ``test``: the same for the 24 core-test speakers in ``test_spk.list`` (192 utterances).

Files written in each set directory (all sorted in C order, Kaldi's ``key value`` format):

* ``wav.scp``: ``<spk>_<utt> /abs/path/SI1559.WAV`` (NIST SPHERE, read by soundfile directly),
  or with ``wav_format="pipe"`` Kaldi's ``sph2pipe -f wav /abs/path/SI1559.WAV |``;
* ``text``: ``<spk>_<utt> sil dh ax ... sil``, TIMIT's 61 phones folded to the 48-phone set of
  ``phones.60-48-39.map`` (``q`` dropped; consecutive ``sil`` merged into one);
* ``utt2spk``, ``spk2utt``, ``spk2gender`` (``m``/``f`` from the speaker id's first letter),
  ``utt2dur`` (seconds, from the audio header).

Ids are lower case (``fdhc0_si1559``), whatever the case of the files on the disc: the layout
``<root>/{TRAIN,TEST}/DR<n>/<SPK>/<UTT>.{WAV,PHN}`` is matched case-insensitively.

Conf files (:func:`write_timit_conf`): ``dev_spk.list`` and ``test_spk.list`` hold one speaker
id per line; ``phones.60-48-39.map`` has one line per TIMIT phone, ``timit61 phone48 phone39``,
and the line ``q`` alone (the glottal stop is deleted).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from pase.io import DataDirError, utt2spk_to_spk2utt, write_kaldi_map
from pase.prep.wav_entry import check_decoder, wav_entry

log = logging.getLogger(__name__)

SILENCE = "sil"

# Kaldi's egs/timit/s5/conf/test_spk.list: the 24-speaker core test set, three per dialect region.
CORE_TEST_SPEAKERS = (
    "mdab0", "mwbt0", "felc0", "mtas1", "mwew0", "fpas0", "mjmp0", "mlnt0", "fpkt0", "mlll0",
    "mtls0", "fjlm0", "mbpm0", "mklt0", "fnlp0", "mcmj0", "mjdh0", "fmgd0", "mgrt0", "mnjm0",
    "fdhc0", "mjln0", "mpam0", "fmld0")
# Kaldi's egs/timit/s5/conf/dev_spk.list: the 50-speaker development set (also from TEST).
DEV_SPEAKERS = (
    "faks0", "fdac1", "fjem0", "mgwt0", "mjar0", "mmdb1", "mmdm2", "mpdf0", "fcmh0", "fkms0",
    "mbdg0", "mbwm0", "mcsh0", "fadg0", "fdms0", "fedw0", "mgjf0", "mglb0", "mrtk0", "mtaa0",
    "mtdt0", "mthc0", "mwjg0", "fnmr0", "frew0", "fsem0", "mbns0", "mmjr0", "mdls0", "mdlf0",
    "mdvc0", "mers0", "fmah0", "fdrw0", "mrcs0", "mrjm4", "fcal1", "mmwh0", "fjsj0", "majc0",
    "mjsw0", "mreb0", "fgjd0", "fjmg0", "mroa0", "mteb0", "mjfc0", "mrjr0", "fmml0", "mrws1")

# The standard TIMIT folding (Lee & Hon 1989; Kaldi's conf/phones.60-48-39.map):
# (TIMIT phone, 48-phone training set, 39-phone scoring set); q has no mapping (deleted).
PHONE_MAP_60_48_39: tuple[tuple[str, ...], ...] = (
    ("aa", "aa", "aa"), ("ae", "ae", "ae"), ("ah", "ah", "ah"), ("ao", "ao", "aa"),
    ("aw", "aw", "aw"), ("ax", "ax", "ah"), ("ax-h", "ax", "ah"), ("axr", "er", "er"),
    ("ay", "ay", "ay"), ("b", "b", "b"), ("bcl", "vcl", "sil"), ("ch", "ch", "ch"),
    ("d", "d", "d"), ("dcl", "vcl", "sil"), ("dh", "dh", "dh"), ("dx", "dx", "dx"),
    ("eh", "eh", "eh"), ("el", "el", "l"), ("em", "m", "m"), ("en", "en", "n"),
    ("eng", "ng", "ng"), ("epi", "epi", "sil"), ("er", "er", "er"), ("ey", "ey", "ey"),
    ("f", "f", "f"), ("g", "g", "g"), ("gcl", "vcl", "sil"), ("h#", "sil", "sil"),
    ("hh", "hh", "hh"), ("hv", "hh", "hh"), ("ih", "ih", "ih"), ("ix", "ix", "ih"),
    ("iy", "iy", "iy"), ("jh", "jh", "jh"), ("k", "k", "k"), ("kcl", "cl", "sil"),
    ("l", "l", "l"), ("m", "m", "m"), ("n", "n", "n"), ("ng", "ng", "ng"), ("nx", "n", "n"),
    ("ow", "ow", "ow"), ("oy", "oy", "oy"), ("p", "p", "p"), ("pau", "sil", "sil"),
    ("pcl", "cl", "sil"), ("q",), ("r", "r", "r"), ("s", "s", "s"), ("sh", "sh", "sh"),
    ("t", "t", "t"), ("tcl", "cl", "sil"), ("th", "th", "th"), ("uh", "uh", "uh"),
    ("uw", "uw", "uw"), ("ux", "uw", "uw"), ("v", "v", "v"), ("w", "w", "w"), ("y", "y", "y"),
    ("z", "z", "z"), ("zh", "zh", "sh"))

_UTT_FILE = re.compile(r"^(s[aix]\d+)\.(wav|phn)$", re.IGNORECASE)
SETS = ("train", "dev", "test")


def write_timit_conf(conf_dir: Path) -> None:
    """Write ``dev_spk.list``, ``test_spk.list`` and ``phones.60-48-39.map`` (Kaldi's conf/)."""
    conf_dir = Path(conf_dir)
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "dev_spk.list").write_text("".join(f"{s}\n" for s in DEV_SPEAKERS))
    (conf_dir / "test_spk.list").write_text("".join(f"{s}\n" for s in CORE_TEST_SPEAKERS))
    (conf_dir / "phones.60-48-39.map").write_text(
        "".join("\t".join(row) + "\n" for row in PHONE_MAP_60_48_39))


def load_phone_map(path: str | Path) -> tuple[dict[str, str | None], dict[str, str]]:
    """``(map60to48, map48to39)``; deleted TIMIT phones (``q``) map to ``None`` in the first."""
    path = Path(path)
    if not path.is_file():
        raise DataDirError(f"{path}: phone map not found")
    map60: dict[str, str | None] = {}
    map48: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) not in (1, 3):
            raise DataDirError(f"{path}:{lineno}: expected 'timit61 phone48 phone39' or a "
                               f"deleted phone alone, got {line!r}")
        if fields[0] in map60:
            raise DataDirError(f"{path}:{lineno}: phone {fields[0]!r} mapped twice")
        if len(fields) == 1:
            map60[fields[0]] = None
            continue
        p60, p48, p39 = fields
        if map48.setdefault(p48, p39) != p39:
            raise DataDirError(f"{path}:{lineno}: {p48!r} maps to {p39!r} here but to "
                               f"{map48[p48]!r} on an earlier line")
        map60[p60] = p48
    if not map48:
        raise DataDirError(f"{path}: empty phone map")
    return map60, map48


def standard_phone_map() -> tuple[dict[str, str | None], dict[str, str]]:
    """The built-in 61->48 and 48->39 maps (the content :func:`write_timit_conf` writes)."""
    map60 = {row[0]: (row[1] if len(row) > 1 else None) for row in PHONE_MAP_60_48_39}
    map48 = {row[1]: row[2] for row in PHONE_MAP_60_48_39 if len(row) > 1}
    return map60, map48


def read_speaker_list(path: Path) -> list[str]:
    """Lower-case speaker ids, one per line (blank lines ignored)."""
    path = Path(path)
    if not path.is_file():
        raise DataDirError(f"{path}: speaker list not found")
    speakers = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if len(fields) > 1:
            raise DataDirError(f"{path}:{lineno}: expected one speaker id, got {line!r}")
        if fields:
            speakers.append(fields[0].lower())
    if not speakers:
        raise DataDirError(f"{path}: empty speaker list")
    return speakers


def _child(parent: Path, name: str) -> Path | None:
    """The entry of ``parent`` called ``name`` in any letter case."""
    for entry in parent.iterdir():
        if entry.name.lower() == name.lower():
            return entry
    return None


def find_timit_dirs(root: Path) -> tuple[Path, Path]:
    """``(TRAIN, TEST)`` under ``root``, or under ``root/TIMIT`` (as LDC's disc has it)."""
    root = Path(root)
    if not root.is_dir():
        raise DataDirError(f"{root}: TIMIT directory not found")
    for base in (root, _child(root, "timit")):
        if base is None or not base.is_dir():
            continue
        train, test = _child(base, "train"), _child(base, "test")
        if train is not None and test is not None and train.is_dir() and test.is_dir():
            return train, test
    raise DataDirError(f"{root}: not a TIMIT directory (expected TRAIN/ and TEST/ in it or in "
                       f"{root}/TIMIT, any letter case)")


@dataclass(frozen=True)
class TimitUtterance:
    """One recording: Kaldi id ``<spk>_<utt>``, its audio and its .PHN file."""

    utt_id: str
    speaker: str
    wav: Path
    phn: Path


def scan_split(split_dir: Path) -> dict[str, list[TimitUtterance]]:
    """Speaker id -> its SI/SX utterances in ``split_dir/DR*/<SPK>/`` (SA sentences skipped)."""
    speakers: dict[str, list[TimitUtterance]] = {}
    for region in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        for spk_dir in sorted(p for p in region.iterdir() if p.is_dir()):
            spk = spk_dir.name.lower()
            if spk in speakers:
                raise DataDirError(f"{spk_dir}: speaker {spk!r} appears twice in {split_dir}")
            files: dict[str, dict[str, Path]] = {}
            for f in spk_dir.iterdir():
                m = _UTT_FILE.match(f.name)
                if m:
                    files.setdefault(m.group(1).lower(), {})[m.group(2).lower()] = f
            utts = []
            for utt, found in sorted(files.items()):
                if utt.startswith("sa"):
                    continue
                if "wav" not in found or "phn" not in found:
                    have = next(iter(found.values()))
                    raise DataDirError(f"{have}: no matching .{'PHN' if 'wav' in found else 'WAV'}"
                                       f" file for utterance {utt.upper()} in {spk_dir}")
                utts.append(TimitUtterance(f"{spk}_{utt}", spk, found["wav"], found["phn"]))
            if utts:
                speakers[spk] = utts
    return speakers


def read_phn(path: Path, map60to48: Mapping[str, str | None]) -> list[str]:
    """The 48-phone transcript of a .PHN file (``start end phone`` lines)."""
    phones: list[str] = []
    for lineno, line in enumerate(Path(path).read_text(encoding="ascii", errors="replace")
                                  .splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3 or not all(f.isascii() and f.isdigit() for f in fields[:2]):
            raise DataDirError(f"{path}:{lineno}: expected 'start end phone', got {line!r}")
        phone = fields[2].lower()
        if phone not in map60to48:
            raise DataDirError(f"{path}:{lineno}: phone {fields[2]!r} is not in the phone map")
        folded = map60to48[phone]
        if folded is None or (folded == SILENCE and phones and phones[-1] == SILENCE):
            continue
        phones.append(folded)
    if not phones:
        raise DataDirError(f"{path}: no phones")
    return phones


def write_set(utts: Sequence[TimitUtterance], out_dir: Path,
              map60to48: Mapping[str, str | None], *, wav_format: str = "path") -> None:
    """Write one Kaldi data dir (see the module docstring for the files)."""
    wav, text, utt2spk, utt2dur, genders = {}, {}, {}, {}, {}
    for u in utts:
        wav[u.utt_id] = wav_entry(u.wav.resolve(), "sphere", wav_format)
        text[u.utt_id] = " ".join(read_phn(u.phn, map60to48))
        utt2spk[u.utt_id] = u.speaker
        try:
            info = sf.info(str(u.wav))
        except (sf.SoundFileError, RuntimeError) as exc:
            raise DataDirError(f"{u.wav}: cannot read audio header: {exc}") from exc
        utt2dur[u.utt_id] = str(round(info.frames / info.samplerate, 6))
        if u.speaker[0] not in "mf":
            raise DataDirError(f"{u.wav.parent}: speaker id {u.speaker!r} does not start with "
                               "M or F (TIMIT's sex prefix)")
        genders[u.speaker] = u.speaker[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    write_kaldi_map(out_dir / "wav.scp", wav)
    write_kaldi_map(out_dir / "text", text)
    write_kaldi_map(out_dir / "utt2spk", utt2spk)
    write_kaldi_map(out_dir / "spk2utt", utt2spk_to_spk2utt(utt2spk))
    write_kaldi_map(out_dir / "spk2gender", genders)
    write_kaldi_map(out_dir / "utt2dur", utt2dur)


def _select(speakers: Mapping[str, list[TimitUtterance]], wanted: Iterable[str], list_path: str,
            test_dir: Path, allow_missing: bool) -> list[TimitUtterance]:
    wanted = list(dict.fromkeys(wanted))
    missing = [s for s in wanted if s not in speakers]
    if missing:
        msg = (f"{list_path}: {len(missing)} of {len(wanted)} listed speaker(s) not in {test_dir}: "
               + ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else ""))
        if not allow_missing:
            raise DataDirError(msg)
        log.warning("%s (skipped)", msg)
    return [u for s in wanted if s in speakers for u in speakers[s]]


def check_timit(timit_root: Path, *, dev_spk: Path | None = None, test_spk: Path | None = None,
                allow_missing_speakers: bool = False) -> list[str]:
    """What `timit_root` lacks for prepare_timit, one line per problem ([] when complete).

    TIMIT is licensed (LDC93S1), so a recipe can only check its copy: every listed speaker
    missing from it is named, not just the first.
    """
    try:
        train_dir, test_dir = find_timit_dirs(Path(timit_root))
        train_speakers, test_speakers = scan_split(train_dir), scan_split(test_dir)
    except DataDirError as e:
        return [str(e)]
    problems = [] if train_speakers else [f"{train_dir}: no SI/SX utterances in DR*/<speaker>/"]
    for name, path, default in (("dev", dev_spk, DEV_SPEAKERS), ("test", test_spk, CORE_TEST_SPEAKERS)):
        wanted = list(dict.fromkeys(default if path is None else read_speaker_list(path)))
        missing = [s for s in wanted if s not in test_speakers]
        if len(missing) == len(wanted) or missing and not allow_missing_speakers:
            problems.append(f"{test_dir}: {len(missing)} of the {len(wanted)} {name} speakers "
                            f"({path or 'built-in list'}) missing: {' '.join(missing)}")
    return problems


def prepare_timit(timit_root: Path, data_dir: Path, *, dev_spk: Path | None = None,
                  test_spk: Path | None = None, phone_map: Path | None = None,
                  allow_missing_speakers: bool = False, wav_format: str = "path") -> dict[str, int]:
    """Write ``data_dir/{train,dev,test}``; returns the number of utterances per set.

    ``dev_spk``/``test_spk``/``phone_map`` default to the built-in standard lists and map.
    A listed speaker missing from ``TEST/`` is an error (an incomplete disc) unless
    ``allow_missing_speakers`` (a corpus holding a subset of the speakers, like the synthetic
    one), when it is logged and skipped. ``wav_format`` is "path" or "pipe" (wav.scp above).
    """
    check_decoder("sphere", wav_format)
    train_dir, test_dir = find_timit_dirs(Path(timit_root))
    map60to48 = standard_phone_map()[0] if phone_map is None else load_phone_map(phone_map)[0]
    dev = DEV_SPEAKERS if dev_spk is None else read_speaker_list(dev_spk)
    test = CORE_TEST_SPEAKERS if test_spk is None else read_speaker_list(test_spk)
    overlap = sorted(set(dev) & set(test))
    if overlap:
        raise DataDirError(f"{dev_spk or 'dev list'} and {test_spk or 'test list'} share "
                           f"speaker(s) {', '.join(overlap[:5])}")
    train_speakers = scan_split(train_dir)
    if not train_speakers:
        raise DataDirError(f"{train_dir}: no SI/SX utterances in DR*/<speaker>/")
    test_speakers = scan_split(test_dir)
    sets = {
        "train": [u for spk in sorted(train_speakers) for u in train_speakers[spk]],
        "dev": _select(test_speakers, dev, str(dev_spk or "dev speaker list"), test_dir,
                       allow_missing_speakers),
        "test": _select(test_speakers, test, str(test_spk or "test speaker list"), test_dir,
                        allow_missing_speakers),
    }
    counts = {}
    for name, utts in sets.items():
        if not utts:
            raise DataDirError(f"{timit_root}: no utterances for the {name} set")
        write_set(utts, Path(data_dir) / name, map60to48, wav_format=wav_format)
        counts[name] = len(utts)
        log.info("%s: %d utterances, %d speakers", Path(data_dir) / name, len(utts),
                 len({u.speaker for u in utts}))
    return counts
