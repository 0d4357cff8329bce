"""PASE+ distortions of the anchor chunk, batched on the chunk's device.

`build_distortions(cfg)` reads the original distortion config (`cfg/distortions/pase+.cfg` keys)
and loads every bank once; `Distortions(x, generator)` then applies, per sample and each with its
own probability, in the original's fixed order: reverb, overlap, additive noise, clipping,
codec2, chop, band-drop, downsample. All random choices are drawn from the caller's CPU
generator with shapes that do not depend on the data or on which samples were selected, so a
seed fixes the output on any device.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torchaudio.functional as AF

from pase.augment.dsp import (FIR_TAPS, bandreject_fir, convolve_shift, energy, energy_vad,
                              lowpass_fir, mix_at_snr, speech_regions)
from pase.augment.loading import (FORMATS, list_files, load_taps, load_waves, read_list, resolve,
                                  tap_bank)
from pase.config import ConfigError, check_keys, load_config

log = logging.getLogger(__name__)

# Application order of the original's PCompose list (the codec2 cache and the speed/resample
# transforms that PASE+ does not use are not implemented).
DISTORTIONS = ("reverb", "overlap", "noises", "clip", "codec2", "chop", "bandrop", "downsample")

CONFIG_KEYS = frozenset({
    "data_root",
    "reverb_p", "reverb_data_root", "reverb_fmt", "reverb_irfiles",
    "overlap_p", "overlap_dir", "overlap_list", "overlap_snrs", "overlap_reverb",
    "noises_p", "noises_dir", "noises_snrs",
    "clip_p", "clip_factors",
    "codec2_p", "codec2_kbps",
    "chop_p", "chop_factors", "max_chops",
    "bandrop_p", "bandrop_data_root", "bandrop_irfiles", "bandrop_fmt", "bandrop_width_hz",
    "downsample_p", "downsample_data_root", "downsample_irfiles", "downsample_fmt",
})
# Keys of the original's config_distortions that change nothing here: the banks are always held
# in memory (the *_cache flags), `return_applied` replaces `report`, and the speed/resample
# probabilities only mattered with speed_range/resample_factors, which must stay unset.
INERT_KEYS = frozenset({"reverb_cache", "noises_cache", "codec2_cache", "report",
                        "speed_p", "resample_p"})
UNSUPPORTED_KEYS = {
    "speed_range": "SpeedChange is not part of PASE+ and is not implemented",
    "resample_factors": "Resample is not part of PASE+ and is not implemented",
    "codec2_cachedir": "pre-computed codec2 caches are not supported; codec2 runs on the fly",
}

# The original truncated impulse responses to 24000 taps at 16 kHz.
MAX_IR_SECONDS = 1.5
# Energy VAD frame for the chop (10 ms, as the original's webrtcvad frames).
VAD_FRAME_SECONDS = 0.01
CODEC2_RATE = 8000
# Designed band-drop bands keep this far from 0 Hz and from the Nyquist frequency.
BANDROP_EDGE_HZ = 100.0


def check_distortion_keys(cfg: Mapping[str, Any], where: str) -> None:
    """ConfigError for a key the original did not have, or an unsupported one that is set."""
    for key in cfg:
        if key in UNSUPPORTED_KEYS and cfg[key] not in (None, [], ()):
            raise ConfigError(f"{where}: {key}: {UNSUPPORTED_KEYS[key]}; remove the key")
    check_keys(dict(cfg), CONFIG_KEYS | INERT_KEYS | set(UNSUPPORTED_KEYS), where)


class _Cfg:
    """Typed access to the config dict; every error names the key."""

    def __init__(self, cfg: Mapping[str, Any], where: str) -> None:
        self.cfg, self.where = cfg, where

    def error(self, key: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.where}: {key}: {msg}")

    def has(self, key: str) -> bool:
        return self.cfg.get(key) is not None

    def prob(self, key: str) -> float:
        v = self.cfg.get(key, 0.0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            raise self.error(key, f"expected a probability in [0, 1], got {v!r}")
        return float(v)

    def numbers(self, key: str, default: list[float] | None = None, *, positive: bool = False
                ) -> list[float]:
        v = self.cfg.get(key, default)
        if v is None:
            raise self.error(key, "required (a non-empty list of numbers) when its distortion is on")
        if not isinstance(v, list) or not v or any(
                isinstance(e, bool) or not isinstance(e, (int, float)) or not math.isfinite(e)
                for e in v):
            raise self.error(key, f"expected a non-empty list of numbers, got {v!r}")
        if positive and any(e <= 0 for e in v):
            raise self.error(key, f"values must be > 0, got {v!r}")
        return [float(e) for e in v]

    def integer(self, key: str, default: int, minimum: int) -> int:
        v = self.cfg.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise self.error(key, f"expected an integer >= {minimum}, got {v!r}")
        return v

    def flag(self, key: str, default: bool) -> bool:
        v = self.cfg.get(key, default)
        if not isinstance(v, bool):
            raise self.error(key, f"expected true or false, got {v!r}")
        return v

    def string(self, key: str, default: str | None = None) -> str:
        v = self.cfg.get(key, default)
        if not isinstance(v, str) or not v:
            raise self.error(key, f"expected a non-empty string, got {v!r}")
        return v

    def strings(self, key: str) -> list[str]:
        v = self.cfg.get(key)
        v = [] if v is None else [v] if isinstance(v, str) else v
        if not isinstance(v, list) or not all(isinstance(e, str) and e for e in v):
            raise self.error(key, f"expected a list of file names, got {v!r}")
        return v

    def fmt(self, key: str, default: str) -> str:
        v = self.string(key, default)
        if v not in FORMATS:
            raise self.error(key, f"unknown format {v!r}; expected one of {', '.join(FORMATS)}")
        return v


class TapBank:
    """Impulse responses or FIR filters as a padded (N, K) tensor plus the left shift of each."""

    def __init__(self, bank: torch.Tensor, shift: torch.Tensor) -> None:
        self.bank, self.shift = bank, shift

    def __len__(self) -> int:
        return self.bank.shape[0]

    def to(self, device: torch.device) -> TapBank:
        self.bank, self.shift = self.bank.to(device), self.shift.to(device)
        return self

    def convolve(self, y: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row convolved with bank[idx[row]], shifted, cut to L; also the full energy."""
        return convolve_shift(y, self.bank[idx], self.shift[idx])

    def filter(self, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Filter and rescale to the input energy (rows that filter to silence are kept)."""
        out, _ = self.convolve(y, idx)
        e = energy(out)
        gain = torch.sqrt(energy(y) / e.clamp_min(torch.finfo(e.dtype).tiny))
        return torch.where((e > 0).unsqueeze(-1), out * gain.unsqueeze(-1), y)


class WaveBank:
    """Noise or speech files concatenated into one flat tensor, so a batch of crops is one gather."""

    def __init__(self, flat: torch.Tensor, lengths: torch.Tensor) -> None:
        self.lengths = lengths  # stays on the CPU: crop starts are drawn there
        self.flat, self.device_lengths = flat, lengths
        self.offsets = torch.cumsum(lengths, 0) - lengths

    def __len__(self) -> int:
        return len(self.lengths)

    def to(self, device: torch.device) -> WaveBank:
        self.flat, self.offsets = self.flat.to(device), self.offsets.to(device)
        self.device_lengths = self.lengths.to(device)
        return self

    def draw(self, b: int, crop: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Random files and random crop starts for crops of `crop` samples (files shorter than the
        crop start at 0 and are zero-padded, as in the original)."""
        file = torch.randint(len(self), (b,), generator=g)
        room = (self.lengths[file] - crop).clamp_min(0)
        start = (torch.rand(b, generator=g, dtype=torch.float64) * (room + 1)).long().clamp_max(room)
        return file, start

    def crops(self, file: torch.Tensor, start: torch.Tensor, shift: torch.Tensor, length: int
              ) -> torch.Tensor:
        """(B, length) signals that are zero before `shift` and the file from `start` after it."""
        dev = self.flat.device
        file, start, shift = file.to(dev), start.to(dev), shift.to(dev)
        src = start.unsqueeze(1) + torch.arange(length, device=dev) - shift.unsqueeze(1)
        n = self.device_lengths[file].unsqueeze(1)
        valid = (src >= start.unsqueeze(1)) & (src < n)
        idx = (self.offsets[file].unsqueeze(1) + src.clamp(0)).clamp_max(self.flat.numel() - 1)
        return torch.where(valid, self.flat[idx], torch.zeros((), device=dev))


class Reverb:
    """Convolution with a random impulse response, peak-delay compensated, energy renormalised.

    As in the original: y[n] = (x * h)[n + argmax|h|] for n < L, scaled by sqrt(Ex / Er) where Er
    is the energy of the whole convolution (tail beyond the chunk included).
    """

    def __init__(self, irs: TapBank) -> None:
        self.irs = irs

    def to(self, device: torch.device) -> Reverb:
        self.irs.to(device)
        return self

    def draw(self, b: int, length: int, g: torch.Generator) -> dict[str, torch.Tensor]:
        return {"ir": torch.randint(len(self.irs), (b,), generator=g)}

    def apply(self, y: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        out, e_full = self.irs.convolve(y, p["ir"].to(y.device))
        gain = torch.where(e_full > 0, torch.sqrt(energy(y) / e_full.clamp_min(1e-30)),
                           torch.ones_like(e_full))
        return out * gain.unsqueeze(-1)


class Overlap:
    """Interfering speech in the tail of the chunk: starts at a random shift < 0.75 L, mixed at a
    random SNR (optionally reverberated first), then renormalised to the chunk's energy."""

    def __init__(self, bank: WaveBank, snrs: list[float], reverb: Reverb | None) -> None:
        self.bank, self.snrs, self.reverb = bank, torch.tensor(snrs), reverb

    def to(self, device: torch.device) -> Overlap:
        self.bank.to(device)
        if self.reverb is not None:
            self.reverb.to(device)
        return self

    def draw(self, b: int, length: int, g: torch.Generator) -> dict[str, torch.Tensor]:
        shift = torch.randint(max(1, int(0.75 * length)), (b,), generator=g)
        file, start = self.bank.draw(b, length - shift, g)
        p = {"file": file, "start": start, "shift": shift,
             "snr": self.snrs[torch.randint(len(self.snrs), (b,), generator=g)]}
        if self.reverb is not None:
            p.update(self.reverb.draw(b, length, g))
        return p

    def apply(self, y: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        length = y.shape[-1]
        noise = self.bank.crops(p["file"], p["start"], p["shift"], length)
        if self.reverb is not None:
            # Reverberating the left-padded crop equals reverberating the crop, except for the
            # pre-peak taps leaking before the shift, which the original's crop-only
            # reverberation did not have: masked out.
            after = torch.arange(length, device=y.device) >= p["shift"].to(y.device).unsqueeze(1)
            noise = self.reverb.apply(noise, p) * after
        return mix_at_snr(y, noise, p["snr"].to(y.device))


class AdditiveNoise:
    """A random crop of a random noise file mixed at a random SNR, renormalised to Ex."""

    def __init__(self, bank: WaveBank, snrs: list[float]) -> None:
        self.bank, self.snrs = bank, torch.tensor(snrs)

    def to(self, device: torch.device) -> AdditiveNoise:
        self.bank.to(device)
        return self

    def draw(self, b: int, length: int, g: torch.Generator) -> dict[str, torch.Tensor]:
        file, start = self.bank.draw(b, torch.full((b,), length), g)
        return {"file": file, "start": start,
                "snr": self.snrs[torch.randint(len(self.snrs), (b,), generator=g)]}

    def apply(self, y: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        zero = torch.zeros_like(p["file"])
        noise = self.bank.crops(p["file"], p["start"], zero, y.shape[-1])
        return mix_at_snr(y, noise, p["snr"].to(y.device))


class Clipping:
    """x <- clamp(x, cf * min(x), cf * max(x)) with the signed min and max (the original's rule)."""

    def __init__(self, factors: list[float]) -> None:
        self.factors = torch.tensor(factors)

    def to(self, device: torch.device) -> Clipping:
        return self

    def draw(self, b: int, length: int, g: torch.Generator) -> dict[str, torch.Tensor]:
        return {"cf": self.factors[torch.randint(len(self.factors), (b,), generator=g)]}

    def apply(self, y: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        cf = p["cf"].to(y.device).unsqueeze(1)
        return torch.clamp(y, cf * y.amin(1, keepdim=True), cf * y.amax(1, keepdim=True))


class Codec2:
    """Codec2 at `kbps` bit/s: to 8 kHz, 16-bit PCM, encode/decode frame by frame, back to the
    input rate, energy renormalised. A fresh codec per sample keeps results independent of the
    rest of the batch (the codec is stateful across frames). The one distortion that is not
    bit-reproducible under a seed: libcodec2's decoder draws from its own process-global random
    generator, which cannot be reseeded from Python."""

    def __init__(self, module: Any, kbps: int, sample_rate: int) -> None:
        self.module, self.kbps, self.sample_rate = module, kbps, sample_rate

    def to(self, device: torch.device) -> Codec2:
        return self

    def draw(self, b: int, length: int, g: torch.Generator) -> dict[str, torch.Tensor]:
        return {}

    def apply(self, y: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        length = y.shape[-1]
        narrow = AF.resample(y, self.sample_rate, CODEC2_RATE)
        pcm = (narrow * 32768).round().clamp(-32768, 32767).to(torch.int16).cpu().numpy()
        n = pcm.shape[1]
        spf = self.module.Codec2(self.kbps).samples_per_frame()
        pcm = np.pad(pcm, ((0, 0), (0, -n % spf)))
        decoded = np.empty_like(pcm)
        for row, frames in enumerate(pcm):
            codec = self.module.Codec2(self.kbps)
            for s in range(0, frames.shape[0], spf):
                decoded[row, s:s + spf] = codec.decode(codec.encode(frames[s:s + spf]))
        back = torch.from_numpy(decoded[:, :n].astype(np.float32) / 32768).to(y.device)
        wide = AF.resample(back, CODEC2_RATE, self.sample_rate)
        wide = torch.nn.functional.pad(wide, (0, max(0, length - wide.shape[-1])))[:, :length]
        e = energy(wide)
        gain = torch.sqrt(energy(y) / e.clamp_min(torch.finfo(e.dtype).tiny))
        return torch.where((e > 0).unsqueeze(-1), wide * gain.unsqueeze(-1), y)


class Chop:
    """Zero out 1..max_chops random stretches of detected speech.

    A region is a run of speech frames of the energy VAD; each chop draws (mean, std) from the
    factor list, a duration mean + std * N(0, 1) seconds, and zeroes that much around the
    region's centre, never outside the region (negative durations chop nothing). Regions are
    chosen at random among all detected ones (the original always took the first ones and ran
    webrtcvad on mis-packed samples).
    """

    def __init__(self, factors: list[list[float]], max_chops: int, sample_rate: int) -> None:
        self.factors = torch.tensor(factors, dtype=torch.float64)
        self.max_chops, self.sample_rate = max_chops, sample_rate
        self.frame = round(VAD_FRAME_SECONDS * sample_rate)

    def to(self, device: torch.device) -> Chop:
        return self

    def draw(self, b: int, length: int, g: torch.Generator) -> dict[str, torch.Tensor]:
        c = self.max_chops
        return {"n": torch.randint(1, c + 1, (b,), generator=g),
                "keys": torch.rand(b, length // self.frame, generator=g),
                "pair": torch.randint(len(self.factors), (b, c), generator=g),
                "z": torch.randn(b, c, generator=g)}

    def apply(self, y: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        n_frames = y.shape[-1] // self.frame
        chops = min(self.max_chops, n_frames)
        if chops == 0:
            return y
        dev = y.device
        begin, end, valid = speech_regions(energy_vad(y, self.frame))
        keys = torch.where(valid, p["keys"].to(dev), torch.full((), -1.0, device=dev))
        rank_keys, slot = keys.topk(chops, dim=1)
        chosen = (rank_keys >= 0) & (torch.arange(chops, device=dev) < p["n"].to(dev).unsqueeze(1))
        lo_r = (begin.gather(1, slot) * self.frame).double()
        hi_r = (end.gather(1, slot) * self.frame).double()
        centre = (lo_r + hi_r) / 2
        mean_std = self.factors[p["pair"][:, :chops]].to(dev)
        dur = (mean_std[..., 0] + mean_std[..., 1] * p["z"][:, :chops].double().to(dev))
        dur = dur * self.sample_rate
        lo = torch.maximum(centre - dur / 2, lo_r).round().long().unsqueeze(-1)
        hi = torch.minimum(centre + dur / 2, hi_r).round().long().unsqueeze(-1)
        t = torch.arange(y.shape[-1], device=dev)
        zero = ((t >= lo) & (t < hi) & chosen.unsqueeze(-1)).any(1)
        return y.masked_fill(zero, 0.0)


class FilterDistortion:
    """Band-drop or downsample: FIR filtering with a random filter, renormalised to Ex.

    With a filter bank (files, as the original) the filter is drawn from it; band-drop without
    files designs a band-reject FIR per sample for a random band of random width.
    """

    def __init__(self, bank: TapBank | None, width_hz: tuple[float, float] | None = None,
                 sample_rate: int = 16000) -> None:
        self.bank, self.width_hz, self.sample_rate = bank, width_hz, sample_rate

    def to(self, device: torch.device) -> FilterDistortion:
        if self.bank is not None:
            self.bank.to(device)
        return self

    def draw(self, b: int, length: int, g: torch.Generator) -> dict[str, torch.Tensor]:
        if self.bank is not None:
            return {"filter": torch.randint(len(self.bank), (b,), generator=g)}
        lo, hi = self.width_hz
        width = lo + (hi - lo) * torch.rand(b, generator=g, dtype=torch.float64)
        room = self.sample_rate / 2 - 2 * BANDROP_EDGE_HZ - width
        low = BANDROP_EDGE_HZ + room * torch.rand(b, generator=g, dtype=torch.float64)
        return {"low_hz": low, "high_hz": low + width}

    def apply(self, y: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.bank is not None:
            return self.bank.filter(y, p["filter"].to(y.device))
        kernels = bandreject_fir(p["low_hz"].to(y.device), p["high_hz"].to(y.device),
                                 self.sample_rate)
        designed = TapBank(kernels, torch.full((len(kernels),), (FIR_TAPS - 1) // 2,
                                               device=y.device))
        return designed.filter(y, torch.arange(len(kernels), device=y.device))


def _file_taps(c: _Cfg, prefix: str, root: Path | None, mat_key: str, sample_rate: int,
               default_fmt: str) -> tuple[list[Path], list[np.ndarray]]:
    """Read the `<prefix>_data_root`/`_irfiles`/`_fmt` bank of the config."""
    if not c.has(f"{prefix}_data_root"):
        raise c.error(f"{prefix}_data_root", f"required when {prefix}_p > 0")
    fmt = c.fmt(f"{prefix}_fmt", default_fmt)
    data_root = resolve(root, c.string(f"{prefix}_data_root"))
    paths = list_files(f"{prefix}_irfiles", data_root, c.strings(f"{prefix}_irfiles"), fmt)
    return paths, [load_taps(f"{prefix}_irfiles", p, fmt, mat_key, sample_rate) for p in paths]


def _ir_bank(c: _Cfg, root: Path | None, sample_rate: int) -> TapBank:
    """IRs truncated to 1.5 s, divided by their maximum when it is positive (the original's rule),
    with the shift that compensates the delay of the peak of |h| (0 for a peak at 0, which
    crashed the original)."""
    _, taps = _file_taps(c, "reverb", root, "risp_imp", sample_rate, "imp")
    max_taps = round(MAX_IR_SECONDS * sample_rate)
    taps = [t[:max_taps] for t in taps]
    taps = [t / abs(t.max()) if t.max() > 0 else t for t in taps]
    peaks = torch.tensor([int(np.argmax(np.abs(t))) for t in taps])
    log.info("reverb: %d impulse responses (up to %d taps)", len(taps), max(len(t) for t in taps))
    return TapBank(tap_bank(taps), peaks)


def _filter_bank(c: _Cfg, prefix: str, root: Path | None, sample_rate: int) -> TapBank:
    """FIRs divided by |max|, shifted by round(len / 2) (Python's rounding, as the original)."""
    paths, taps = _file_taps(c, prefix, root, "filt_coeff", sample_rate, "npy")
    taps = [t / abs(t.max()) if t.max() != 0 else t for t in taps]
    log.info("%s: %d filters from %s", prefix, len(taps), paths[0].parent)
    return TapBank(tap_bank(taps), torch.tensor([round(len(t) / 2) for t in taps]))


def _noise_paths(c: _Cfg, root: Path | None) -> list[Path]:
    dirs = c.strings("noises_dir")
    if not dirs:
        raise c.error("noises_dir", "required (a directory or a list of directories of *.wav) "
                                    "when noises_p > 0")
    paths = []
    for d in dirs:
        paths += list_files("noises_dir", resolve(root, d), [], "wav")
    return paths


def _overlap_paths(c: _Cfg, root: Path | None) -> list[Path]:
    dirs = c.strings("overlap_dir")
    if len(dirs) != 1:
        raise c.error("overlap_dir", f"expected one directory when overlap_p > 0, got {dirs!r}")
    ovl_dir = resolve(root, dirs[0])
    names = read_list("overlap_list", resolve(root, c.string("overlap_list"))) \
        if c.has("overlap_list") else []
    return list_files("overlap_dir", ovl_dir, names, "wav")


def _codec2_module(c: _Cfg, kbps: int) -> Any:
    try:
        import pycodec2
    except ImportError as e:
        raise c.error("codec2_p", "codec2 is on (codec2_p > 0) but the pycodec2 package is not "
                                  "installed: pip install pycodec2, or set codec2_p to 0") from e
    try:
        pycodec2.Codec2(kbps)
    except (KeyError, ValueError) as e:
        raise c.error("codec2_kbps", f"codec2 has no {kbps} bit/s mode") from e
    return pycodec2


class Distortions:
    """The configured distortions, applied to a batch of anchor chunks.

    Banks live on one device and follow the input's device (moved on the first call on another
    device, or with `.to`). This is a plain object, not an nn.Module: the banks must not end up in
    checkpoints or be broadcast by DistributedDataParallel.
    """

    def __init__(self, cfg: Mapping[str, Any], *, sample_rate: int = 16000,
                 data_root: str | Path | None = None, where: str = "distortion config") -> None:
        check_distortion_keys(cfg, where)
        inert = sorted(INERT_KEYS & set(cfg))
        if inert:
            log.info("%s: keys with no effect here: %s", where, ", ".join(inert))
        c = _Cfg(cfg, where)
        self.sample_rate = sample_rate
        if data_root is None and c.has("data_root"):
            data_root = c.string("data_root")
        root = None if data_root is None else Path(data_root)
        probs = {name: c.prob(f"{name}_p") for name in DISTORTIONS}
        self.probs = {name: p for name, p in probs.items() if p > 0}
        self.ops: dict[str, Any] = {}

        reverb = None
        overlap_reverb = probs["overlap"] > 0 and c.flag("overlap_reverb", False)
        if probs["reverb"] > 0 or overlap_reverb:
            reverb = Reverb(_ir_bank(c, root, sample_rate))
        if probs["reverb"] > 0:
            self.ops["reverb"] = reverb
        if probs["overlap"] > 0:
            snrs = c.numbers("overlap_snrs", [0, 5, 10])
            bank = WaveBank(*load_waves("overlap_dir", _overlap_paths(c, root), sample_rate))
            self.ops["overlap"] = Overlap(bank, snrs, reverb if overlap_reverb else None)
        if probs["noises"] > 0:
            snrs = c.numbers("noises_snrs", [0, 5, 10])
            bank = WaveBank(*load_waves("noises_dir", _noise_paths(c, root), sample_rate))
            self.ops["noises"] = AdditiveNoise(bank, snrs)
        if probs["clip"] > 0:
            self.ops["clip"] = Clipping(c.numbers("clip_factors", positive=True))
        if probs["codec2"] > 0:
            kbps = c.integer("codec2_kbps", 1600, 1)
            self.ops["codec2"] = Codec2(_codec2_module(c, kbps), kbps, sample_rate)
        if probs["chop"] > 0:
            self.ops["chop"] = Chop(self._chop_factors(c), c.integer("max_chops", 5, 1), sample_rate)
        if probs["bandrop"] > 0:
            self.ops["bandrop"] = self._bandrop(c, root)
        if probs["downsample"] > 0:
            if c.has("downsample_data_root"):
                bank = _filter_bank(c, "downsample", root, sample_rate)
            else:  # the 4 kHz band of narrow-band speech, at the same rate
                bank = TapBank(lowpass_fir(torch.tensor([sample_rate / 4]), sample_rate),
                               torch.tensor([(FIR_TAPS - 1) // 2]))
            self.ops["downsample"] = FilterDistortion(bank)
        self.device = torch.device("cpu")
        log.info("distortions: %s", ", ".join(f"{n} p={p:g}" for n, p in self.probs.items())
                 or "none")

    @staticmethod
    def _chop_factors(c: _Cfg) -> list[list[float]]:
        v = c.cfg.get("chop_factors")
        ok = isinstance(v, list) and v and all(
            isinstance(pair, list) and len(pair) == 2 and all(
                not isinstance(e, bool) and isinstance(e, (int, float)) and math.isfinite(e)
                for e in pair) and pair[0] > 0 and pair[1] >= 0 for pair in v)
        if not ok:
            raise c.error("chop_factors", "expected a non-empty list of [mean, std] pairs in "
                                          f"seconds (mean > 0, std >= 0), got {v!r}")
        return [[float(m), float(s)] for m, s in v]

    def _bandrop(self, c: _Cfg, root: Path | None) -> FilterDistortion:
        if c.has("bandrop_data_root"):
            if c.has("bandrop_width_hz"):
                raise c.error("bandrop_width_hz", "only for designed filters; remove it or "
                                                  "bandrop_data_root")
            return FilterDistortion(_filter_bank(c, "bandrop", root, self.sample_rate))
        if c.has("bandrop_irfiles") and c.strings("bandrop_irfiles"):
            raise c.error("bandrop_irfiles", "given without bandrop_data_root")
        width = c.numbers("bandrop_width_hz", [400.0, 1200.0], positive=True)
        widest = self.sample_rate / 2 - 2 * BANDROP_EDGE_HZ
        if len(width) != 2 or not width[0] <= width[1] < widest:
            raise c.error("bandrop_width_hz", "expected [min, max] band widths in Hz with "
                          f"0 < min <= max < {widest:g}, got {width!r}")
        lo, hi = width
        return FilterDistortion(None, (lo, hi), self.sample_rate)

    def to(self, device: str | torch.device) -> Distortions:
        """Move the banks to `device` (done automatically when the input is elsewhere)."""
        self.device = torch.device(device)
        for op in self.ops.values():
            op.to(self.device)
        return self

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None, *,
                 return_applied: bool = False):
        return self.forward(x, generator, return_applied=return_applied)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, *,
                return_applied: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Distort a batch of chunks x (B, 1, L); `generator` (CPU) drives every random choice.

        With `return_applied`, also returns {name: bool tensor (B,)} telling which distortions
        were drawn for each sample (all names of DISTORTIONS; the disabled ones all False).
        Without a generator, torch's global CPU generator is used.
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[1] != 1 \
                or not x.is_floating_point():
            raise ValueError("distortions expect a floating-point tensor of shape (B, 1, L), got "
                             f"{type(x).__name__} {tuple(getattr(x, 'shape', ()))}")
        g = torch.default_generator if generator is None else generator
        if g.device.type != "cpu":
            raise ValueError(f"distortions draw on a CPU generator, got one on {g.device}")
        if x.device != self.device:
            self.to(x.device)
        b, length = x.shape[0], x.shape[-1]
        applied = {name: torch.zeros(b, dtype=torch.bool) for name in DISTORTIONS}
        y = x[:, 0].float()
        with torch.autocast(x.device.type, enabled=False):
            for name, op in self.ops.items():
                mask = torch.rand(b, generator=g) < self.probs[name]
                params = op.draw(b, length, g)
                applied[name] = mask
                if mask.any():
                    sel = mask.nonzero().squeeze(1)
                    out = op.apply(y[sel.to(y.device)], {k: v[sel] for k, v in params.items()})
                    y = y.index_copy(0, sel.to(y.device), out)
        y = y.to(x.dtype).unsqueeze(1)
        return (y, applied) if return_applied else y


def build_distortions(cfg: str | Path | Mapping[str, Any], *, sample_rate: int = 16000,
                      data_root: str | Path | None = None) -> Distortions:
    """Distortions from a config file (JSON or YAML, the original's `.cfg` included) or dict.

    Relative paths in the config resolve against `data_root` (this argument, else the config's
    `data_root` key, else the current directory, as in the original).
    """
    if isinstance(cfg, Mapping):
        return Distortions(cfg, sample_rate=sample_rate, data_root=data_root)
    return Distortions(load_config(cfg), sample_rate=sample_rate, data_root=data_root,
                       where=str(cfg))
