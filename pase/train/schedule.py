"""Learning-rate schedules, evaluated every iteration (the original only updated every 100)."""
from __future__ import annotations

import math

import torch
from torch import nn

LR_MODES = ("poly", "step", "cos", "constant")


def lr_factor(mode: str, step: int, total_steps: int, *, steps_per_epoch: int, lrdec_step: int = 30,
              lrdecay: float = 0.1, warmup: int = 0, power: float = 0.9) -> float:
    """Multiplier of the base LR at iteration `step` (0-based) of `total_steps`.

    poly: (1 - t/N)^0.9; step: lrdecay^floor(epoch / lrdec_step) (the original hard-coded 0.1 and
    ignored --lrdecay); cos: half cosine to 0; constant: 1. A linear warmup over the first
    `warmup` iterations multiplies any of them (the original's --warmup did nothing).
    """
    if mode not in LR_MODES:
        raise ValueError(f"unknown lr_mode {mode!r}; choose one of {', '.join(LR_MODES)}")
    frac = min(step / max(total_steps, 1), 1.0)
    if mode == "poly":
        f = (1.0 - frac) ** power
    elif mode == "step":
        f = lrdecay ** (step // max(steps_per_epoch, 1) // max(lrdec_step, 1))
    elif mode == "cos":
        f = 0.5 * (1.0 + math.cos(math.pi * frac))
    else:
        f = 1.0
    if warmup > 0 and step < warmup:
        f *= (step + 1) / warmup
    return f


def fe_factor(step: int, *, freeze_steps: int = 0, warmup_steps: int = 0) -> float:
    """Extra multiplier of the encoder's LR: 0 for the first `freeze_steps` iterations (the
    workers learn on the random-init features first), then a linear ramp over `warmup_steps`.

    Why: at step 0 the workers are random, so the gradients they send into the encoder carry no
    information about the targets, yet Adam moves every encoder weight by ~lr per step whatever
    the gradient's size; with lr 1e-3 this scrambles the random-init features within tens of steps.
    """
    if step < freeze_steps:
        return 0.0
    if warmup_steps > 0 and step - freeze_steps < warmup_steps:
        return (step - freeze_steps + 1) / warmup_steps
    return 1.0


def newbob_factor(prev_err: float | None, err: float, *, halving_factor: float, threshold: float) -> float:
    """LR multiplier after an epoch with dev error `err` (the "newbob" rule of the original's
    TIMIT and classification scripts): `halving_factor` when the error improved by less than
    `threshold` relative to the previous epoch's, else 1.

    One rule for the asr and cls trainers, edge cases included: the first epoch (no previous
    error) keeps the LR; from an error of 0 nothing can improve, and a non-finite error is no
    improvement, so both scale it.
    """
    if prev_err is None:
        return 1.0
    improved = prev_err > 0 and math.isfinite(err) and (prev_err - err) / prev_err >= threshold
    return 1.0 if improved else halving_factor


class BestEpoch:
    """The weights of the epoch with the lowest dev error so far, one rule for the asr and cls
    trainers: an epoch with an error equal to the best replaces it (it trained longer on the
    same data; small dev sets tie often), a non-finite error never does."""

    def __init__(self) -> None:
        self.err = math.inf
        self.state: dict[str, torch.Tensor] | None = None

    def update(self, err: float, model: nn.Module) -> bool:
        """Keep `model`'s weights if `err` is the best so far; returns whether it was."""
        if not (math.isfinite(err) and err <= self.err):
            return False
        self.err = err
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return True

    def restore(self, model: nn.Module) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)
