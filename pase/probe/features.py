"""Utterance-level probe features: frame features of an encoder, mean+std pooled, per layer, cached.

Encoders: a PASE/PASE+ checkpoint, the same architecture at random init (seeded exactly as
pase-train seeds it), or the MFCC / fbank baselines (torchaudio's Kaldi-compatible functions).
Test audio can be corrupted with white noise at a given SNR, seeded per item, so a noisy
condition is the same on every run. Pooled features are cached per (encoder, data, condition):
rerunning a probe, or adding a condition, encodes only what is not cached yet.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pase.kaldi_feats import kaldi_features
from pase.config import ConfigError, load_config
from pase.errors import PaseError
from pase.extraction import estimated_samples, pad_waveforms, plan_batches
from pase.io import AudioError, DataDir, check_waveform, peak_normalize, read_audio
from pase.models.batchnorm import reestimate_batchnorm, reset_batchnorm
from pase.models.featurizer import layer_names
from pase.models.frontend import WaveFe, wf_builder
from pase.probe.split import Item, ProbeError

log = logging.getLogger(__name__)

FEATS = ("pase", "mfcc", "fbank")
BN_MODES = ("ckpt", "reset", "reestimate")
BASELINE_OPTIONS = {"mfcc": {"num_ceps": 13, "dither": 0.0}, "fbank": {"num_mel_bins": 40, "dither": 0.0}}


@dataclass(frozen=True)
class EncoderSpec:
    """What turns audio into frame features."""

    feats: str = "pase"
    fe_cfg: str | None = None      # None: the config next to the checkpoint (train.yaml), else PASE+
    ckpt: Path | None = None       # None: random init with `seed`
    seed: int = 2                  # pase-train's default seed, so random init = its step 0
    bn_stats: str = "ckpt"         # BatchNorm statistics: as saved, reset to init, or re-estimated

    def __post_init__(self) -> None:
        if self.feats not in FEATS:
            raise ConfigError(f"unknown --feats {self.feats!r}; choose one of {', '.join(FEATS)}")
        if self.bn_stats not in BN_MODES:
            raise ConfigError(f"unknown --bn_stats {self.bn_stats!r}; choose one of {', '.join(BN_MODES)}")
        if self.feats != "pase" and (self.ckpt is not None or self.bn_stats != "ckpt"):
            raise ConfigError(f"--feats {self.feats} is a fixed baseline: --ckpt and --bn_stats apply to pase only")

    def encoder_config(self) -> dict:
        if self.fe_cfg is not None:
            return load_config(self.fe_cfg)
        if self.ckpt is not None:
            saved = Path(self.ckpt).parent / "train.yaml"
            if saved.is_file():
                run = load_config(saved).get("run", {})
                if "fe_cfg" in run:
                    return dict(run["fe_cfg"])
        return load_config("cfg/frontend/PASE+.cfg")

    def describe(self) -> str:
        if self.feats != "pase":
            return self.feats
        what = str(self.ckpt) if self.ckpt is not None else f"random init (seed {self.seed})"
        return what + {"ckpt": "", "reset": ", BN stats reset", "reestimate": ", BN stats re-estimated"}[self.bn_stats]

    def identity(self) -> dict:
        """What the features depend on (for the cache key)."""
        if self.feats != "pase":
            return {"feats": self.feats, "options": BASELINE_OPTIONS[self.feats]}
        out: dict = {"feats": "pase", "cfg": self.encoder_config(), "bn": self.bn_stats}
        if self.ckpt is None:
            out["seed"] = self.seed
        else:
            p = Path(self.ckpt)
            if not p.is_file():
                raise ProbeError(f"{p}: checkpoint not found")
            st = p.stat()
            out["ckpt"] = [str(p.resolve()), st.st_size, st.st_mtime_ns]
        return out


def build_encoder(spec: EncoderSpec, device: str) -> WaveFe:
    torch.manual_seed(spec.seed)  # as pase-train does before building the model
    encoder = wf_builder(spec.encoder_config())
    if spec.ckpt is not None:
        encoder.load_pretrained(spec.ckpt, load_last=True, verbose=False)
    if spec.bn_stats == "reset":
        reset_batchnorm(encoder)
    return encoder.eval().to(device)


@dataclass(frozen=True)
class Condition:
    """How the audio of an item is prepared: optional white noise at `snr` dB, optional peak norm."""

    snr: float | None = None
    noise_seed: int = 0
    peak_norm: bool = False

    @property
    def name(self) -> str:
        return "clean" if self.snr is None else f"snr{self.snr:g}"


class ItemAudio:
    """Reads the audio of probe items from their data dir."""

    def __init__(self, data: DataDir, sample_rate: int = 16000, min_samples: int = 1) -> None:
        self.data, self.sample_rate, self.min_samples = data, sample_rate, min_samples

    def length(self, item: Item) -> int:
        return int(estimated_samples(self.data[item.utt], self.sample_rate) * (item.end - item.start))

    def load(self, item: Item, cond: Condition) -> np.ndarray:
        utt = self.data[item.utt]
        wav = read_audio(utt.source, sample_rate=self.sample_rate, start=utt.start, end=utt.end, name=utt.utt_id)
        if (item.start, item.end) != (0.0, 1.0):
            wav = wav[int(item.start * len(wav)):int(item.end * len(wav))]
        check_waveform(wav, name=f"item {item.item_id!r} ({utt.source})", min_samples=self.min_samples,
                       sample_rate=self.sample_rate)
        if cond.snr is not None:
            rng = np.random.default_rng([cond.noise_seed, zlib.crc32(item.item_id.encode())])
            power = float(np.mean(wav.astype(np.float64) ** 2))
            noise = rng.standard_normal(len(wav)) * np.sqrt(power / 10 ** (cond.snr / 10))
            wav = (wav + noise).astype(np.float32)
        return peak_normalize(wav, name=item.item_id) if cond.peak_norm else wav


def pooled(frames: np.ndarray) -> np.ndarray:
    """(frames, dims) -> (2 dims,): mean and standard deviation over time."""
    return np.concatenate([frames.mean(0), frames.std(0)]).astype(np.float32)


def _check_finite(x: np.ndarray, item: Item, what: str) -> np.ndarray:
    if not np.isfinite(x).all():
        raise PaseError(f"item {item.item_id!r}: non-finite {what} features (check the audio and the checkpoint)")
    return x


def encode_items(spec: EncoderSpec, encoder: WaveFe | None, audio: ItemAudio, items: Sequence[Item],
                 cond: Condition, *, device: str = "cpu", batch_size: int = 8, max_chunk_seconds: float = 30.0,
                 progress: Callable[[int], None] | None = None) -> list[np.ndarray]:
    """Pooled features of `items`: one (len(items), 2 dims) array per layer (baselines: one).

    Items longer than `max_chunk_seconds` are encoded in pieces (`pooled_chunked`).
    """
    if spec.feats != "pase":
        rows = []
        for it in items:
            f = kaldi_features(audio.load(it, cond), spec.feats, BASELINE_OPTIONS[spec.feats], audio.sample_rate)
            if spec.feats == "mfcc":  # 13 + deltas + delta-deltas
                t = torch.from_numpy(f.T.copy())
                d1 = _deltas(t)
                f = torch.cat([t, d1, _deltas(d1)]).T.numpy()
            rows.append(_check_finite(pooled(f), it, spec.feats))
            if progress:
                progress(1)
        return [np.stack(rows)]
    assert encoder is not None
    lengths = [max(audio.length(it), encoder.min_samples) for it in items]
    out: list[list[np.ndarray | None]] = [[None] * len(items) for _ in layer_names(encoder)]
    for batch in plan_batches(lengths, batch_size, 120 * audio.sample_rate):
        wavs = {i: audio.load(items[i], cond) for i in batch}
        rows = {i: pooled_chunked(encoder, w, max_chunk_seconds, device)
                for i, w in wavs.items() if len(w) > max_chunk_seconds * audio.sample_rate}
        short = [i for i in batch if i not in rows]
        if short:
            x, n = pad_waveforms([wavs[i] for i in short])
            with torch.inference_mode():
                _, frames, hidden = encoder.forward_padded(x.to(device), n, return_hidden=True)
            hidden = [h.float().cpu().numpy() for h in hidden]
            rows.update((i, [pooled(h[j, :, :int(frames[j])].T) for h in hidden]) for j, i in enumerate(short))
        for i, layers in rows.items():
            for k, row in enumerate(layers):
                out[k][i] = _check_finite(row, items[i], "encoder")
        if progress:
            progress(len(batch))
    return [np.stack(rows) for rows in out] if items else []


def pooled_chunked(encoder: WaveFe, wav: np.ndarray, chunk_seconds: float, device: str) -> list[np.ndarray]:
    """`pooled` of every layer of one long waveform encoded piece by piece (`WaveFe.iter_chunked`).

    Each piece's frame count, mean and sum of squared deviations are merged into the running
    ones (float64), so the layers' frames are never all held: memory stays bounded for any length.
    """
    x = torch.from_numpy(wav).view(1, 1, -1).to(device)
    stats: list[tuple[int, np.ndarray, np.ndarray]] = []
    with torch.inference_mode():
        for _, hidden in encoder.iter_chunked(x, chunk_seconds, return_hidden=True):
            new = []
            for h in hidden:
                f = h[0].double().cpu().numpy()  # (dims, frames)
                mean = f.mean(1)
                new.append((f.shape[1], mean, ((f - mean[:, None]) ** 2).sum(1)))
            stats = new if not stats else [_merge_moments(a, b) for a, b in zip(stats, new)]
    return [np.concatenate([m, np.sqrt(m2 / n)]).astype(np.float32) for n, m, m2 in stats]


def _merge_moments(a: tuple[int, np.ndarray, np.ndarray],
                   b: tuple[int, np.ndarray, np.ndarray]) -> tuple[int, np.ndarray, np.ndarray]:
    """(count, mean, sum of squared deviations) of two sets of frames together."""
    (na, ma, sa), (nb, mb, sb) = a, b
    n, d = na + nb, mb - ma
    return n, ma + d * (nb / n), sa + sb + d * d * (na * nb / n)


def _deltas(t: torch.Tensor) -> torch.Tensor:
    import torchaudio.functional as F
    return F.compute_deltas(t, win_length=5)


def data_identity(data: DataDir) -> str:
    h = hashlib.sha1()
    for name in ("wav.scp", "segments"):
        p = Path(data.path) / name
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def cache_key(*parts: object) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def load_cached(cache_dir: Path | None, key: str, n_items: int) -> list[np.ndarray] | None:
    if cache_dir is None:
        return None
    path = cache_dir / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            layers = [z[f"layer{i}"] for i in range(int(z["num_layers"]))]
    except Exception as e:  # a damaged cache entry is recomputed, never trusted
        log.warning("%s: unreadable cache entry (%s); recomputing", path, e)
        return None
    return layers if all(len(x) == n_items for x in layers) else None


def save_cached(cache_dir: Path | None, key: str, layers: list[np.ndarray]) -> None:
    if cache_dir is None:
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{key}.npz"
    tmp = cache_dir / f".{key}.{os.getpid()}.tmp.npz"
    try:
        np.savez(tmp, num_layers=len(layers), **{f"layer{i}": x for i, x in enumerate(layers)})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def bn_reestimate_audio(audio: ItemAudio, items: Sequence[Item], max_items: int = 512) -> list[np.ndarray]:
    """Clean audio of (at most `max_items` of) `items`, for BatchNorm re-estimation."""
    out = []
    for it in list(items)[:max_items]:
        try:
            out.append(audio.load(it, Condition()))
        except AudioError as e:
            raise ProbeError(f"BatchNorm re-estimation: {e}") from None
    return out


def reestimate(encoder: WaveFe, wavs: list[np.ndarray], device: str, where: str) -> None:
    n = reestimate_batchnorm(encoder, wavs, device=device, where=where)
    log.info("BatchNorm statistics re-estimated on %d chunks of %s", n, where)
