"""openSLR simulated room impulse responses (RIRS_NOISES / sim_rir_16k) as a reverb list.

The tree has `{smallroom,mediumroom,largeroom}/rir_list`; the 5th space-separated field of each
line is the RIR's wav path relative to the directory that holds the `simulated_rirs*` folder.
"""
from __future__ import annotations

import random
from pathlib import Path

from pase.config import ConfigError

ROOM_TYPES = ("smallroom", "mediumroom", "largeroom")
_TREE_NAMES = ("simulated_rirs_16k", "simulated_rirs", "RIRS_NOISES/simulated_rirs_16k",
               "RIRS_NOISES/simulated_rirs")


def find_rir_dir(data_root: Path) -> Path:
    """The directory holding the room-type folders: data_root itself or a known subfolder."""
    for cand in (data_root, *(data_root / n for n in _TREE_NAMES)):
        if any((cand / room / "rir_list").is_file() for room in ROOM_TYPES):
            return cand
    raise ConfigError(f"{data_root}: no {{{','.join(ROOM_TYPES)}}}/rir_list found there "
                      f"(nor under {', '.join(_TREE_NAMES)})")


def read_rir_list(path: Path) -> list[str]:
    """Relative wav paths (5th field) of an openSLR rir_list."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) < 5:
            raise ConfigError(f"{path}:{n}: expected '--rir-id ID --room-id ROOM PATH', got {line!r}")
        out.append(fields[4])
    if not out:
        raise ConfigError(f"{path}: lists no impulse responses")
    return out


def openslr_rirs(data_root: Path, ratios: dict[str, float], seed: int) -> tuple[Path, list[str]]:
    """(base directory, sorted relative RIR paths), each room type subsampled by its ratio.

    A ratio r keeps round(r * n) of the n RIRs of that room type, chosen with `random.Random(seed)`.
    Every kept file must exist under the returned base directory.
    """
    rir_dir = find_rir_dir(data_root)
    rng = random.Random(seed)
    kept: list[str] = []
    for room in ROOM_TYPES:
        ratio = ratios.get(room, 1.0)
        if not 0.0 <= ratio <= 1.0:
            raise ConfigError(f"{room} ratio must be in [0, 1], got {ratio}")
        if ratio == 0.0:
            continue
        path = rir_dir / room / "rir_list"
        if not path.is_file():
            raise ConfigError(f"{path}: not found (set the {room} ratio to 0 to skip this room type)")
        rels = read_rir_list(path)
        kept += rng.sample(rels, round(ratio * len(rels)))
    if not kept:
        raise ConfigError(f"{data_root}: the room ratios keep no impulse response")
    base = next((d for d in (rir_dir, *rir_dir.parents) if (d / kept[0]).is_file()), None)
    if base is None:
        raise ConfigError(f"{rir_dir}: RIR file {kept[0]!r} not found relative to it or any parent")
    missing = [r for r in kept if not (base / r).is_file()]
    if missing:
        raise ConfigError(f"{base}: {len(missing)} listed RIR file(s) missing, e.g. {missing[0]}")
    return base, sorted(kept)
