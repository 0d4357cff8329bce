"""Worker target statistics: per-dimension global mean and std, stored as JSON (never pickle).

The original stored a "std of stds" (the spread of per-chunk standard deviations), which leaves
normalised targets with variance far above 1; here std is the global standard deviation over
every frame of every chunk, so z-normalised targets have unit variance.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterable

import torch

from pase.errors import PaseError
from pase.io import atomic_write

log = logging.getLogger(__name__)

STD_FLOOR = 1e-5


class StatsError(PaseError, ValueError):
    """A statistics file is missing, malformed, or lacks/mismatches a worker's target."""


class RunningMoments:
    """Per-dimension sums in float64 over (batch, time) of (B, F, T) tensors."""

    def __init__(self) -> None:
        self.sum: dict[str, torch.Tensor] = {}
        self.sumsq: dict[str, torch.Tensor] = {}
        self.count: dict[str, int] = {}

    def update(self, targets: dict[str, torch.Tensor]) -> None:
        for name, t in targets.items():
            t = t.detach().double()
            s, sq = t.sum(dim=(0, 2)), (t * t).sum(dim=(0, 2))
            if name in self.sum:
                self.sum[name] += s
                self.sumsq[name] += sq
                self.count[name] += t.size(0) * t.size(2)
            else:
                self.sum[name], self.sumsq[name], self.count[name] = s, sq, t.size(0) * t.size(2)

    def result(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        out = {}
        for name in self.sum:
            n = self.count[name]
            mean = self.sum[name] / n
            var = (self.sumsq[name] / n - mean * mean).clamp_min(0.0)
            out[name] = (mean.float().cpu(), var.sqrt().float().cpu())
        return out


def compute_stats(batches: Iterable[torch.Tensor], bank: torch.nn.Module,
                  max_batches: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Mean/std of every target of `bank` over up to `max_batches` waveform batches (B, T)."""
    moments = RunningMoments()
    n = 0
    with torch.no_grad():
        for wav in batches:
            moments.update(bank(wav))
            n += 1
            if n >= max_batches:
                break
    if n == 0:
        raise StatsError("no batches to compute statistics from (is the training data empty?)")
    return moments.result()


def save_stats(path: str | Path, stats: dict[str, tuple[torch.Tensor, torch.Tensor]], **meta) -> None:
    """Write stats as JSON {"targets": {name: {"mean": [...], "std": [...]}}, "meta": {...}}, atomically."""
    path = Path(path)
    doc = {"format": "pase-stats-v1", "meta": meta,
           "targets": {k: {"mean": m.tolist(), "std": s.tolist()} for k, (m, s) in sorted(stats.items())}}
    atomic_write(path, lambda f: f.write(json.dumps(doc)), text=True)


def load_stats(path: str | Path, dims: dict[str, int]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Read stats for the targets in `dims` (name -> channels), checking presence, size and values."""
    path = Path(path)
    if not path.is_file():
        raise StatsError(f"statistics file not found: {path} (make it with pase-compute-stats)")
    try:
        doc = json.loads(path.read_text())
        targets = doc["targets"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise StatsError(f"{path}: not a pase statistics file ({e})") from e
    out = {}
    for name, dim in dims.items():
        if name not in targets:
            raise StatsError(f"{path}: no statistics for worker {name!r} (has: {', '.join(sorted(targets))}); "
                             "recompute with pase-compute-stats and the same workers config")
        mean = torch.tensor(targets[name]["mean"], dtype=torch.float32)
        std = torch.tensor(targets[name]["std"], dtype=torch.float32)
        if mean.numel() != dim or std.numel() != dim:
            raise StatsError(f"{path}: {name!r} has {mean.numel()} dims but the target has {dim} "
                             "(different transform settings?)")
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all()):
            raise StatsError(f"{path}: {name!r} has non-finite values")
        low = int((std < STD_FLOOR).sum())
        if low:
            log.warning("%s: %s: %d constant dimension(s); std floored at %g", path, name, low, STD_FLOOR)
        out[name] = (mean, std.clamp_min(STD_FLOOR))
    return out


def describe(stats: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> str:
    """One line per target for logs."""
    return "; ".join(f"{k}: {m.numel()} dims, mean std {s.mean():.3g}" for k, (m, s) in sorted(stats.items()))
