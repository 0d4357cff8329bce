"""Checkpoint averaging: the element-wise mean of several encoder checkpoints of one run.

Averaging the last (or best-validated) epochs' weights smooths out the noise of the final
steps, as fairseq/ESPnet/icefall do for their models. BatchNorm's running mean and variance are
averaged like the weights (each is already an average over recent batches); integer buffers
(num_batches_tracked) are taken from the newest checkpoint.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import torch

from pase.errors import PaseError
from pase.models.checkpoint import CheckpointError, read_state_dict

EPOCH_RE = re.compile(r"FE_(ema_)?e(\d+)\.ckpt")


class AverageError(PaseError):
    """The checkpoints cannot be selected or averaged."""


def epoch_checkpoints(exp_dir: Path, ema: bool = False) -> dict[int, Path]:
    """epoch -> FE_e<N>.ckpt (or FE_ema_e<N>.ckpt) of a pase-train run."""
    found = {}
    for path in Path(exp_dir).glob("FE_*.ckpt"):
        m = EPOCH_RE.fullmatch(path.name)
        if m and bool(m.group(1)) == ema:
            found[int(m.group(2))] = path
    return dict(sorted(found.items()))


def select_checkpoints(exp_dir: Path, *, last: int | None = None, best: int | None = None,
                       ema: bool = False) -> list[Path]:
    """The `last` K epochs' checkpoints, or the `best` K by validation total in history.json
    (training total when the run did not validate)."""
    if (last is None) == (best is None):
        raise AverageError("give exactly one of --last K and --best K")
    k = last if last is not None else best
    if k < 1:
        raise AverageError(f"--{'last' if last is not None else 'best'} {k}: must be >= 1")
    ckpts = epoch_checkpoints(exp_dir, ema)
    if len(ckpts) < k:
        raise AverageError(f"{exp_dir}: {len(ckpts)} {'FE_ema_e*' if ema else 'FE_e*'}.ckpt checkpoint(s), "
                           f"fewer than the {k} asked for")
    if last is not None:
        return list(ckpts.values())[-k:]
    history_file = Path(exp_dir) / "history.json"
    try:
        history = json.loads(history_file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise AverageError(f"{history_file}: cannot be read to rank the epochs ({e})") from e
    key = "valid_total" if all("valid_total" in r for r in history) else "train_total"
    # a diverged epoch (NaN or inf total) is never among the best
    scores = {r["epoch"]: r[key] for r in history
              if key in r and r["epoch"] in ckpts and math.isfinite(r[key])}
    if len(scores) < k:
        raise AverageError(f"{history_file}: {len(scores)} epoch(s) with a finite {key} and a checkpoint, "
                           f"fewer than {k}")
    chosen = sorted(sorted(scores, key=lambda e: scores[e])[:k])
    return [ckpts[e] for e in chosen]


def average_state_dicts(paths: list[Path]) -> dict[str, torch.Tensor]:
    """The mean of the checkpoints' floating-point tensors (accumulated in float64); other
    tensors from the last one. Every checkpoint must hold the same keys and shapes."""
    if not paths:
        raise AverageError("no checkpoints to average")
    acc: dict[str, torch.Tensor] = {}
    ref: dict[str, torch.Tensor] = {}
    for path in paths:
        try:  # raw state_dicts, the original Saver's files, DDP-prefixed keys
            state = read_state_dict(path)
        except CheckpointError as e:
            raise AverageError(str(e)) from e
        if ref and (state.keys() != ref.keys() or any(state[k].shape != ref[k].shape for k in ref)):
            raise AverageError(f"{path}: its tensors differ from {paths[0]}'s (another model?)")
        for name, t in state.items():
            if t.is_floating_point():
                acc[name] = acc.get(name, 0) + t.double()
        ref = state
    return {name: (acc[name] / len(paths)).to(t.dtype) if t.is_floating_point() else t.clone()
            for name, t in ref.items()}
