"""Reading the distortion banks (impulse responses, filters, noises) named by a distortion config.

Banks are read once, when the distortions are built, and every problem (missing directory, empty
list, unreadable or silent file) is a ConfigError naming the config key and the file, so a bad
bank fails at start-up rather than hours into training.
"""
from __future__ import annotations

import glob
import logging
from pathlib import Path

import numpy as np
import torch

from pase.config import ConfigError
from pase.io.audio import read_audio
from pase.io.errors import AudioError

log = logging.getLogger(__name__)

# Formats the original read: 'imp' and 'txt' are whitespace-separated text, 'mat' a MATLAB file.
FORMATS = ("npy", "txt", "imp", "wav", "mat")
_GLOB_CHARS = set("*?[")


def resolve(root: Path | None, path: str) -> Path:
    """`path` relative to `root` (the config's data_root) unless it is absolute or root is None."""
    p = Path(path)
    return p if root is None or p.is_absolute() else root / p


def list_files(key: str, data_root: Path, files: list[str], fmt: str) -> list[Path]:
    """The files of a bank: the listed ones under data_root, or all `*.fmt` there if the list is empty.

    Entries may be glob patterns (an extension: the original only listed plain names), which lets
    a config name a nested tree such as openSLR's simulated_rirs_16k/*/*/*.wav.
    """
    if not data_root.is_dir():
        raise ConfigError(f"{key}: directory not found: {data_root}")
    if not files:
        found = sorted(data_root.glob(f"*.{fmt}"))
        if not found:
            raise ConfigError(f"{key}: no *.{fmt} files in {data_root} (and no file list given)")
        return found
    out: list[Path] = []
    for name in files:
        if _GLOB_CHARS & set(name):
            matched = sorted(Path(p) for p in glob.glob(str(data_root / name)))
            if not matched:
                raise ConfigError(f"{key}: pattern {name!r} matches no file under {data_root}")
            out.extend(matched)
        else:
            path = data_root / name
            if not path.is_file():
                raise ConfigError(f"{key}: file not found: {path}")
            out.append(path)
    return out


def load_taps(key: str, path: Path, fmt: str, mat_key: str, sample_rate: int) -> np.ndarray:
    """One impulse response or FIR filter as float64 1-D; wav files are resampled to sample_rate."""
    try:
        if fmt == "wav":
            taps = read_audio(str(path), sample_rate=sample_rate).astype(np.float64)
        elif fmt == "npy":
            taps = np.load(path, allow_pickle=False)
        elif fmt in ("txt", "imp"):
            taps = np.loadtxt(path)
        else:
            try:
                from scipy.io import loadmat
            except ImportError as e:
                raise ConfigError(f"{key}: reading .mat files needs scipy (pip install scipy)") from e
            mat = loadmat(str(path), squeeze_me=True)
            if mat_key not in mat:
                raise ConfigError(f"{key}: {path} has no variable {mat_key!r}")
            taps = mat[mat_key]
    except (OSError, ValueError, AudioError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{key}: cannot read {path}: {e}") from e
    taps = np.asarray(taps, dtype=np.float64)
    if taps.ndim != 1 and taps.size == max(taps.shape, default=0):
        taps = taps.reshape(-1)
    if taps.ndim != 1 or taps.size == 0:
        raise ConfigError(f"{key}: {path}: expected a 1-D array of taps, got shape {taps.shape}")
    if not np.all(np.isfinite(taps)):
        raise ConfigError(f"{key}: {path}: non-finite (NaN/inf) taps")
    if not np.any(taps):
        raise ConfigError(f"{key}: {path}: all taps are zero")
    return taps


def tap_bank(taps: list[np.ndarray]) -> torch.Tensor:
    """Right-zero-padded (N, max length) float32 tensor of a list of tap vectors."""
    bank = torch.zeros(len(taps), max(len(t) for t in taps))
    for i, t in enumerate(taps):
        bank[i, : len(t)] = torch.from_numpy(t).float()
    return bank


def read_list(key: str, path: Path) -> list[str]:
    """Non-empty lines of a file list (the original's overlap_list), first field of each."""
    if not path.is_file():
        raise ConfigError(f"{key}: file not found: {path}")
    names = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise ConfigError(f"{key}: {path} lists no files")
    return names


def load_waves(key: str, paths: list[Path], sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise or speech files at sample_rate, concatenated: (flat samples, length of each file)."""
    waves = []
    for path in paths:
        try:
            wav = read_audio(str(path), sample_rate=sample_rate)
        except AudioError as e:
            raise ConfigError(f"{key}: {e}") from e
        if not np.all(np.isfinite(wav)):
            raise ConfigError(f"{key}: {path}: non-finite (NaN/inf) samples")
        if not np.any(wav):
            raise ConfigError(f"{key}: {path}: silent (all-zero) file")
        waves.append(torch.from_numpy(wav))
    flat = torch.cat(waves)
    log.info("%s: %d files, %.1f s, %.1f MB", key, len(waves), len(flat) / sample_rate,
             flat.numel() * 4 / 2**20)
    return flat, torch.tensor([len(w) for w in waves], dtype=torch.long)
