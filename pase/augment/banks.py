"""Simulated distortion banks, so the PASE+ distortions run without downloading corpora.

Room impulse responses come from pyroomacoustics shoebox rooms laid out like openSLR's
`simulated_rirs_16k/<room type>/RoomNNN/` with `rir_list` files; noises are coloured noise,
babble, hum and machine-like noise; interfering speech is speech-like synthetic audio or crops of
given recordings; band-drop and low-pass filters are designed FIRs saved as .npy. Everything is
drawn from one numpy Generator, so a seed fixes the bank.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from pase.augment.dsp import bandreject_fir, lowpass_fir

log = logging.getLogger(__name__)

# The original PASE+ settings (cfg/distortions/pase+.cfg) with codec2 off.
PASE_PLUS_SETTINGS = {
    "reverb_p": 0.5,
    "overlap_p": 0.1, "overlap_snrs": [5, 7.5, 10], "overlap_reverb": True,
    "noises_p": 0.4, "noises_snrs": [0, 5, 10],
    "clip_p": 0.2, "clip_factors": [0.1, 0.3, 0.5],
    "chop_p": 0.2, "chop_factors": [[0.05, 0.025], [0.1, 0.05]], "max_chops": 5,
    "bandrop_p": 0.35,
    "downsample_p": 0.25,
    "codec2_p": 0.0,
}

# openSLR 26's room types: floor sides in metres; heights 2-5 m; absorption 0.2-0.8.
ROOM_SIDES = {"smallroom": (1.0, 10.0), "mediumroom": (10.0, 30.0), "largeroom": (30.0, 50.0)}
ROOM_HEIGHT = (2.0, 5.0)
ABSORPTION = (0.2, 0.8)
# Image-source order cap: keeps the simulation to seconds; the reverberant tail past it is
# missing, which the 1.5 s truncation of the distortion mostly hides.
MAX_IMAGE_ORDER = 30
PEAK = 0.5


def _room_rirs(rng: np.random.Generator, room: str, n_rirs: int, sample_rate: int) -> list[np.ndarray]:
    """RIRs of one random shoebox room: one source, `n_rirs` microphones at random positions."""
    import pyroomacoustics as pra

    lo, hi = ROOM_SIDES[room]
    dim = np.array([rng.uniform(lo, hi), rng.uniform(lo, hi), rng.uniform(*ROOM_HEIGHT)])
    alpha = rng.uniform(*ABSORPTION)
    volume, surface = dim.prod(), 2 * (dim[0] * dim[1] + dim[0] * dim[2] + dim[1] * dim[2])
    rt60 = 0.161 * volume / (surface * alpha)  # Sabine
    _, order = pra.inverse_sabine(rt60, dim)
    sim = pra.ShoeBox(dim, fs=sample_rate, materials=pra.Material(alpha),
                      max_order=min(order, MAX_IMAGE_ORDER))
    margin = min(0.5, dim[:2].min() / 4)

    def position() -> np.ndarray:
        return np.array([rng.uniform(margin, dim[0] - margin), rng.uniform(margin, dim[1] - margin),
                         rng.uniform(min(1.0, dim[2] / 2), min(2.0, dim[2] - 0.3))])

    sim.add_source(position())
    sim.add_microphone_array(np.stack([position() for _ in range(n_rirs)], axis=1))
    sim.compute_rir()
    return [np.asarray(sim.rir[m][0], dtype=np.float64) for m in range(n_rirs)]


def simulate_rirs(out_dir: Path, rng: np.random.Generator, rooms_per_type: int, rirs_per_room: int,
                  sample_rate: int = 16000) -> list[str]:
    """Write `simulated_rirs_16k/<type>/RoomNNN/RoomNNN-MMMMM.wav` and each type's `rir_list`.

    Returns the wav paths relative to out_dir (the layout pase-prepare-rirs reads).
    """
    rels = []
    for room in ROOM_SIDES:
        room_dir = out_dir / "simulated_rirs_16k" / room
        room_dir.mkdir(parents=True, exist_ok=True)
        lines = []
        for r in range(1, rooms_per_type + 1):
            name = f"Room{r:03d}"
            (room_dir / name).mkdir(exist_ok=True)
            for m, h in enumerate(_room_rirs(rng, room, rirs_per_room, sample_rate), 1):
                rel = f"simulated_rirs_16k/{room}/{name}/{name}-{m:05d}.wav"
                sf.write(out_dir / rel, (h / np.abs(h).max() * 0.99).astype(np.float32), sample_rate)
                lines.append(f"--rir-id {room}-{name}-{m:05d} --room-id {room}-{name} {rel}")
                rels.append(rel)
        (room_dir / "rir_list").write_text("\n".join(lines) + "\n")
    log.info("simulated %d room impulse responses in %s", len(rels), out_dir / "simulated_rirs_16k")
    return rels


def _peak(x: np.ndarray) -> np.ndarray:
    return (PEAK * x / np.abs(x).max()).astype(np.float32)


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with a 1 / f^exponent power spectrum (0 white, 1 pink, 2 brown)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    return _peak(np.fft.irfft(spec / f ** (exponent / 2), n))


def speech_like(seconds: float, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Syllable-rate voiced segments (gliding f0, three formant peaks) with fricative bursts and
    pauses: stands in for speech as an interferer or in babble when no recordings are given."""
    n = int(seconds * sample_rate)
    out = np.zeros(n)
    f0_base = rng.uniform(90, 250)
    t0 = int(rng.uniform(0, 0.2) * sample_rate)
    while t0 < n:
        seg = min(int(rng.uniform(0.12, 0.35) * sample_rate), n - t0)
        t = np.arange(seg) / sample_rate
        f0 = f0_base * rng.uniform(0.85, 1.15) * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(2, 5) * t))
        phase = 2 * np.pi * np.cumsum(f0) / sample_rate
        k = np.arange(1, int(4000 / f0.max()) + 1)
        formants = (rng.uniform(300, 900), rng.uniform(900, 2400), rng.uniform(2400, 3400))
        amp = sum(np.exp(-((k * f0.mean() - fm) / (80 + 0.1 * fm)) ** 2) for fm in formants) / k
        voiced = (amp[:, None] * np.sin(k[:, None] * phase[None])).sum(0)
        voiced *= np.hanning(seg) / max(np.abs(voiced).max(), 1e-9)
        if rng.random() < 0.3:  # a fricative: high-passed noise at the segment's start
            burst = min(seg, int(0.08 * sample_rate))
            voiced[:burst] += 0.3 * np.diff(rng.standard_normal(burst + 1)) * np.hanning(burst)
        out[t0:t0 + seg] = voiced
        t0 += seg + int(rng.uniform(0.02, 0.3) * sample_rate)
    return _peak(out)


def babble(n: int, rng: np.random.Generator, talker: Callable[[int], np.ndarray], talkers: int = 6
           ) -> np.ndarray:
    """Sum of `talkers` independent talkers (`talker(n)`: n samples of speech) at random levels."""
    mix = np.zeros(n)
    for _ in range(talkers):
        x = talker(n)
        mix += rng.uniform(0.3, 1.0) * x / np.abs(x).max()
    return _peak(mix)


def hum(n: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Mains hum (50 or 60 Hz and decaying harmonics) over a little white noise."""
    t = np.arange(n) / sample_rate
    f = rng.choice([50.0, 60.0])
    x = sum(rng.uniform(0.3, 1.0) / h * np.sin(2 * np.pi * h * f * t + rng.uniform(0, 2 * np.pi))
            for h in range(1, 9))
    return _peak(x + 0.02 * rng.standard_normal(n))


def machine(n: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Band-passed noise with a periodic amplitude modulation (engine / fan-like)."""
    noise = torch.from_numpy(rng.standard_normal(n)).float()
    band = AF.bandpass_biquad(noise, sample_rate, float(rng.uniform(200, 2000)), Q=1.0).numpy()
    t = np.arange(n) / sample_rate
    return _peak(band * (1 + 0.6 * np.sin(2 * np.pi * rng.uniform(5, 30) * t)))


def make_noises(noise_dir: Path, rng: np.random.Generator, count: int, seconds: float,
                talker: Callable[[int], np.ndarray], sample_rate: int = 16000) -> list[Path]:
    """`count` noise wavs cycling through white, pink, brown, babble, hum and machine noise."""
    n = int(seconds * sample_rate)
    kinds: dict[str, Callable[[], np.ndarray]] = {
        "white": lambda: coloured_noise(n, 0.0, rng),
        "pink": lambda: coloured_noise(n, 1.0, rng),
        "brown": lambda: coloured_noise(n, 2.0, rng),
        "babble": lambda: babble(n, rng, talker),
        "hum": lambda: hum(n, rng, sample_rate),
        "machine": lambda: machine(n, rng, sample_rate),
    }
    noise_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        kind = list(kinds)[i % len(kinds)]
        path = noise_dir / f"{kind}_{i:03d}.wav"
        sf.write(path, kinds[kind](), sample_rate)
        paths.append(path)
    log.info("wrote %d noise files to %s", count, noise_dir)
    return paths


def make_overlap(overlap_dir: Path, count: int, seconds: float, talker: Callable[[int], np.ndarray],
                 sample_rate: int = 16000) -> Path:
    """`count` interfering-speech wavs plus `overlap.lst` naming them (the original's overlap_list)."""
    overlap_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        names.append(f"speech_{i:03d}.wav")
        sf.write(overlap_dir / names[-1], talker(int(seconds * sample_rate)), sample_rate)
    lst = overlap_dir / "overlap.lst"
    lst.write_text("\n".join(names) + "\n")
    return lst


def make_filters(filter_dir: Path, rng: np.random.Generator, count: int,
                 width_hz: tuple[float, float] = (400.0, 1200.0), sample_rate: int = 16000) -> None:
    """Band-reject FIRs `bandrop/filter_<i>_<f1>_<f2>.npy` (the original's naming) and the 4 kHz
    low-pass `filter_16_to_8.npy`, kept apart so the band-drop glob does not pick the low-pass."""
    (filter_dir / "bandrop").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        width = rng.uniform(*width_hz)
        low = rng.uniform(100.0, sample_rate / 2 - 100.0 - width)
        taps = bandreject_fir(torch.tensor([low]), torch.tensor([low + width]), sample_rate)[0]
        np.save(filter_dir / "bandrop" / f"filter_{i}_{int(low)}_{int(low + width)}.npy",
                taps.numpy())
    np.save(filter_dir / "filter_16_to_8.npy",
            lowpass_fir(torch.tensor([sample_rate / 4]), sample_rate)[0].numpy())
    log.info("wrote %d band-drop filters and a low-pass to %s", count, filter_dir)
