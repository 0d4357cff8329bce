"""The original PASE data inputs as Kaldi data dirs.

The original README describes a flat folder of wavs, `train_scp`/`test_scp` lists of file names
and a file name -> speaker dictionary saved with numpy. Here they become `train`/`test` data dirs
(wav.scp, utt2spk, spk2utt) so every recipe stage and command can read them.

The numpy dictionary is a pickle, and loading a pickle can run arbitrary code: it is read only
when the caller opts in. A text file of `file speaker` lines, or a JSON object, is the safe form.

Utterance ids are `<speaker>-<file name without extension>` (unchanged when the name already
starts with `<speaker>-`, as LibriSpeech's do): Kaldi wants speaker ids as prefixes of utterance
ids, so utt2spk sorted by utterance is also sorted by speaker.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from pase.io import utt2spk_to_spk2utt, write_kaldi_map
from pase.io.errors import PaseInputError

_WS = re.compile(r"\s")
# numpy's .npy magic and the first byte of a pickle (protocol 2 and later).
_PICKLE_HEADS = (b"\x93NUMPY", b"\x80")


class SeedDataError(PaseInputError):
    """A seed input (list, speaker map, wav folder) is missing, malformed or inconsistent."""


def _speaker(value: object, where: str) -> str:
    """A map value as a speaker id: a string or an integer class, one Kaldi token."""
    if isinstance(value, (bool, float)) or not isinstance(value, (str, int, np.integer)):
        raise SeedDataError(f"{where}: speaker must be a string or an integer, got {value!r}")
    spk = str(value)
    if not spk or _WS.search(spk):
        raise SeedDataError(f"{where}: speaker {spk!r} is empty or contains whitespace")
    return spk


def load_speaker_map(path: Path, *, allow_pickle: bool = False) -> dict[str, str]:
    """File name -> speaker id from a `file speaker` text file, a JSON object, or (only with
    `allow_pickle`) the original's numpy-saved dictionary."""
    if not path.is_file():
        raise SeedDataError(f"{path}: speaker map not found")
    raw = path.read_bytes()
    if raw.startswith(_PICKLE_HEADS):
        if not allow_pickle:
            raise SeedDataError(
                f"{path}: a numpy/pickle file, and loading one can run code: pass --allow_pickle "
                "if you trust it, or give the map as 'file speaker' lines or a JSON object")
        obj = np.load(path, allow_pickle=True)
        obj = obj.item() if isinstance(obj, np.ndarray) and obj.shape == () else obj
        if not isinstance(obj, Mapping):
            raise SeedDataError(f"{path}: holds a {type(obj).__name__}, not a file -> speaker dictionary")
        return {str(k): _speaker(v, f"{path}: {k}") for k, v in obj.items()}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SeedDataError(f"{path}: not UTF-8 text, JSON or a numpy file ({e.reason})") from None
    if text.lstrip().startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise SeedDataError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
        return {str(k): _speaker(v, f"{path}: {k}") for k, v in obj.items()}
    out: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise SeedDataError(f"{path}:{lineno}: expected 'file speaker', got {line.strip()!r}")
        if fields[0] in out:
            raise SeedDataError(f"{path}:{lineno}: {fields[0]!r} listed twice")
        out[fields[0]] = _speaker(fields[1], f"{path}:{lineno}")
    return out


def read_file_list(path: Path) -> list[tuple[int, str]]:
    """(line number, file name) of a train/test list: one name per line, no directory."""
    if not path.is_file():
        raise SeedDataError(f"{path}: file list not found")
    out: list[tuple[int, str]] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 1 or "/" in fields[0]:
            raise SeedDataError(f"{path}:{lineno}: expected one file name without a directory, "
                                f"got {line.strip()!r}")
        out.append((lineno, fields[0]))
    return out


def utterance_id(name: str, speaker: str) -> str:
    """The Kaldi utterance id of file `name` (see the module docstring)."""
    stem = name.rsplit(".", 1)[0] if "." in name[1:] else name
    return stem if stem.startswith(speaker + "-") else f"{speaker}-{stem}"


def read_seed_list(list_path: Path, data_root: Path, spk_map: Mapping[str, str], *,
                   map_name: str = "the speaker map") -> tuple[dict[str, str], dict[str, str]]:
    """(wav.scp, utt2spk) of one list. Every listed wav must exist and have a speaker, and no
    file or utterance id may repeat."""
    wav_scp: dict[str, str] = {}
    utt2spk: dict[str, str] = {}
    seen: dict[str, int] = {}
    for lineno, name in read_file_list(list_path):
        where = f"{list_path}:{lineno}"
        if name in seen:
            raise SeedDataError(f"{where}: {name!r} already listed at line {seen[name]}")
        seen[name] = lineno
        wav = data_root / name
        if not wav.is_file():
            raise SeedDataError(f"{where}: {wav} not found")
        if name not in spk_map:
            raise SeedDataError(f"{where}: {name!r} has no speaker in {map_name}")
        utt = utterance_id(name, spk_map[name])
        if utt in utt2spk:
            raise SeedDataError(f"{where}: {name!r} gives utterance id {utt!r} a second time")
        wav_scp[utt], utt2spk[utt] = str(wav.resolve()), spk_map[name]
    if not utt2spk:
        raise SeedDataError(f"{list_path}: no file names")
    return wav_scp, utt2spk


def write_data_dir(out_dir: Path, wav_scp: Mapping[str, str], utt2spk: Mapping[str, str]) -> None:
    """wav.scp, utt2spk and spk2utt of `out_dir`, each C-sorted."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_kaldi_map(out_dir / "wav.scp", wav_scp)
    write_kaldi_map(out_dir / "utt2spk", utt2spk)
    write_kaldi_map(out_dir / "spk2utt", utt2spk_to_spk2utt(utt2spk))
