"""A directory of every bank the PASE+ distortions need, and the distortions.cfg that uses it.

Layout under the output directory:
  simulated_rirs_16k/{smallroom,mediumroom,largeroom}/RoomNNN/*.wav + rir_list  (openSLR's layout)
  noises/*.wav, overlap/*.wav + overlap/overlap.lst
  filters/bandrop/filter_<i>_<f1>_<f2>.npy, filters/filter_16_to_8.npy   (unless filters=False)
All of it is drawn from one numpy Generator seeded with `seed`, so a seed fixes the files.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from pase.augment.banks import (PASE_PLUS_SETTINGS, make_filters, make_noises, make_overlap,
                                simulate_rirs, speech_like)
from pase.augment.openslr import openslr_rirs
from pase.io import read_audio, read_kaldi_map


@dataclass(frozen=True)
class BankSizes:
    """How much of each bank to simulate."""

    rooms_per_type: int = 2
    rirs_per_room: int = 5
    num_noises: int = 10
    noise_seconds: float = 5.0
    num_overlap: int = 10
    overlap_seconds: float = 4.0
    num_bandrop_filters: int = 20


def speech_sources(scp: Path) -> list[str]:
    """Audio sources of a wav.scp ('utt path-or-pipe') or of a plain list of files."""
    lines = [line.strip() for line in scp.read_text().splitlines() if line.strip()]
    if lines and all(len(line.split()) == 1 for line in lines):
        return lines
    return list(read_kaldi_map(scp).values())


def _talker(rng: np.random.Generator, sample_rate: int, speech_scp: Path | None
            ) -> Callable[[int], np.ndarray]:
    """n samples of speech: synthetic speech-like audio, or a random crop of a real recording."""
    if speech_scp is None:
        return lambda n: speech_like(n / sample_rate, rng, sample_rate)
    recordings = [read_audio(s, sample_rate=sample_rate) for s in speech_sources(speech_scp)]

    def crop(n: int) -> np.ndarray:
        wav = recordings[rng.integers(len(recordings))]
        start = rng.integers(max(1, len(wav) - n + 1))
        return np.pad(wav[start:start + n], (0, max(0, n - len(wav))))

    return crop


def make_distortion_banks(out: Path, sizes: BankSizes = BankSizes(), *, seed: int = 0,
                          speech_scp: Path | None = None, filters: bool = True,
                          out_cfg: Path | None = None, sample_rate: int = 16000) -> Path:
    """Simulate every bank under `out` and write its config (default `out/distortions.cfg`).

    Every PASE+ distortion keeps the original probabilities, codec2 off. `speech_scp` (a wav.scp
    or a list of audio files) gives real speech for babble and overlap; without `filters` no
    filter files are written and the config designs band-drop and low-pass filters on the fly.
    Returns the config's path.
    """
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    talker = _talker(rng, sample_rate, speech_scp)
    simulate_rirs(out, rng, sizes.rooms_per_type, sizes.rirs_per_room, sample_rate)
    make_noises(out / "noises", rng, sizes.num_noises, sizes.noise_seconds, talker, sample_rate)
    overlap_list = make_overlap(out / "overlap", sizes.num_overlap, sizes.overlap_seconds, talker,
                                sample_rate)
    _, rirs = openslr_rirs(out, {}, seed)
    cfg = {"data_root": str(out.resolve()), **PASE_PLUS_SETTINGS,
           "reverb_data_root": ".", "reverb_fmt": "wav", "reverb_irfiles": rirs,
           "overlap_dir": "overlap", "overlap_list": str(overlap_list.relative_to(out)),
           "noises_dir": ["noises"]}
    if filters:
        make_filters(out / "filters", rng, sizes.num_bandrop_filters, sample_rate=sample_rate)
        cfg.update(bandrop_data_root="filters/bandrop", bandrop_fmt="npy", bandrop_irfiles=[],
                   downsample_data_root="filters", downsample_fmt="npy",
                   downsample_irfiles=["filter_16_to_8.npy"])
    out_cfg = out_cfg or out / "distortions.cfg"
    out_cfg.parent.mkdir(parents=True, exist_ok=True)
    out_cfg.write_text(json.dumps(cfg, indent=2) + "\n")
    return out_cfg
