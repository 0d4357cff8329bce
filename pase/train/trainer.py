"""Training loop: one Adam per part, per-iteration LR schedules, AMP, DDP, exact resume.

Every random choice is derived from (seed, rank, epoch, item or step): chunk sampling in the
dataset, the worker subset of select_one/select_half, distortions. The only global RNG in use
(dropout) is saved in the training state. Resuming from `state.pt` therefore continues exactly
as if the run had not stopped.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from pase.errors import PaseError
from pase.train.model import PaseModel
from pase.train.schedule import fe_factor, lr_factor

log = logging.getLogger(__name__)

BACKPROP_MODES = ("base", "select_one", "select_half")
AMP_MODES = ("none", "bf16", "fp16")


class TrainingError(PaseError, RuntimeError):
    """Training cannot go on (e.g. too many non-finite losses in a row)."""


@dataclass
class TrainOptions:
    epochs: int = 1
    batches_per_epoch: int = 1
    valid_batches: int = 0
    fe_lr: float = 1e-3
    min_lr: float = 5e-4
    lr_mode: str = "poly"
    lrdec_step: int = 30
    lrdecay: float = 0.1
    warmup_steps: int = 0
    fe_freeze_steps: int = 0
    fe_warmup_steps: int = 0
    backprop_mode: str = "base"
    amp: str = "none"
    grad_clip: float = 0.0
    max_nonfinite: int = 10
    seed: int = 2
    log_freq: int = 10
    tensorboard: bool = True
    progress: bool = True


def step_generator(seed: int, rank: int, step: int, device: str = "cpu") -> torch.Generator:
    """The generator for one training step's random choices (independent of history)."""
    g = torch.Generator(device=device)
    g.manual_seed((seed * 1_000_003 + rank) * 1_000_000_007 + step)
    return g


def select_workers(mode: str, names: list[str], g: torch.Generator) -> set[str] | None:
    """Which workers' losses are back-propagated this step (None: all)."""
    if mode == "base":
        return None
    if mode == "select_one":
        return {names[int(torch.randint(len(names), (1,), generator=g))]}
    if mode == "select_half":
        perm = torch.randperm(len(names), generator=g).tolist()
        return {names[i] for i in perm[:max(1, len(names) // 2)]}
    raise ValueError(f"unknown backprop_mode {mode!r}; choose one of {', '.join(BACKPROP_MODES)}")


def atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class PhaseTimer:
    """Wall time per phase (loading, targets, forward, backward, step); syncs CUDA when enabled.

    Disabled by default (marks cost a device sync); benchmarks enable it.
    """

    def __init__(self, enabled: bool, device: torch.device) -> None:
        self.enabled, self.cuda = enabled, device.type == "cuda"
        self.total: dict[str, float] = {}
        self._t = time.perf_counter()

    def mark(self, phase: str) -> None:
        if not self.enabled:
            return
        if self.cuda:
            torch.cuda.synchronize()
        now = time.perf_counter()
        self.total[phase] = self.total.get(phase, 0.0) + now - self._t
        self._t = now


class Throughput:
    """Seconds of (anchor) audio trained on per wall second, and the share of wall time spent
    waiting for the data loader, since the last report and over the epoch."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.epoch = [0.0, 0.0, 0.0]   # audio seconds, wall seconds, wait seconds
        self.window = [0.0, 0.0, 0.0]
        self._t = time.perf_counter()

    def start(self) -> None:
        self._t = time.perf_counter()

    def loaded(self) -> None:
        now = time.perf_counter()
        for acc in (self.epoch, self.window):
            acc[2] += now - self._t
        self._t = now

    def stepped(self, chunk: torch.Tensor) -> None:
        now = time.perf_counter()
        audio = chunk.shape[0] * chunk.shape[-1] / self.sample_rate
        for acc in (self.epoch, self.window):
            acc[0] += audio
            acc[1] += now - self._t
        self._t = now

    @staticmethod
    def _figures(acc: list[float]) -> tuple[float, float]:
        wall = acc[1] + acc[2]
        return (acc[0] / wall if wall else 0.0, acc[2] / wall if wall else 0.0)

    def report(self, epoch: bool = False) -> str:
        rate, wait = self._figures(self.epoch if epoch else self.window)
        if not epoch:
            self.window = [0.0, 0.0, 0.0]
        return f"{rate:.2f} s of audio per s, data wait {100 * wait:.0f}%"

    def summary(self) -> dict[str, float]:
        rate, wait = self._figures(self.epoch)
        return {"audio_s_per_s": rate, "data_wait_share": wait}


class Trainer:
    """Trains a `PaseModel` and writes checkpoints to `save_path`."""

    def __init__(self, model: PaseModel, opts: TrainOptions, save_path: str | Path,
                 device: torch.device, *, rank: int = 0, world_size: int = 1) -> None:
        for name, value, allowed in (("backprop_mode", opts.backprop_mode, BACKPROP_MODES),
                                     ("amp", opts.amp, AMP_MODES)):
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
        if opts.amp == "fp16" and device.type != "cuda":
            raise TrainingError(f"--amp fp16 needs a GPU (device {device}); use --amp bf16 on the CPU")
        self.opts, self.device, self.rank, self.world_size = opts, device, rank, world_size
        self.save_path = Path(save_path)
        self.model = model.to(device)
        self.net: nn.Module = self.model
        if world_size > 1:
            self.net = DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=opts.backprop_mode != "base")
        # One Adam per part, as in the original: the encoder, then each worker.
        self.parts = [("encoder", self.model.encoder, opts.fe_lr)] + \
            [(w.name, w, opts.min_lr) for w in self.model.workers()]
        self.optimizers = [torch.optim.Adam(m.parameters(), lr=lr) for _, m, lr in self.parts]
        self.scaler = torch.amp.GradScaler("cuda", enabled=opts.amp == "fp16")
        self.epoch, self.step, self.nonfinite = 0, 0, 0
        self.history: list[dict[str, float]] = []
        self.writer = None
        if opts.tensorboard and rank == 0:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(self.save_path / "tensorboard"))
        self.timer = PhaseTimer(False, device)
        self.model.mark = lambda phase: self.timer.mark(phase)

    # ---- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch, "step": self.step, "nonfinite": self.nonfinite,
            "model": self.model.state_dict(),
            "optimizers": [o.state_dict() for o in self.optimizers],
            "scaler": self.scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "history": self.history,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        for opt, s in zip(self.optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(s)
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step, self.nonfinite = state["epoch"], state["step"], state["nonfinite"]
        self.history = list(state["history"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    def resume(self) -> bool:
        """Load save_path/state.pt if present; returns whether it did."""
        path = self.save_path / "state.pt"
        if not path.exists():
            return False
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as e:  # truncated or foreign files fail inside torch/pickle in many ways
            raise TrainingError(f"{path}: cannot be read to resume ({type(e).__name__}: {str(e).splitlines()[0]}); "
                                "it may be truncated: use --no_continue to start over") from e
        self.load_state_dict(state)
        log.info("resumed from %s at epoch %d (step %d)", path, self.epoch, self.step)
        return True

    def save_epoch(self, epoch: int) -> None:
        """FE_e<N>.ckpt (raw encoder state_dict, the original's format), workers_e<N>.ckpt, state.pt,
        and history.json (per-epoch mean losses, for reports)."""
        if self.rank != 0:
            return
        self.save_path.mkdir(parents=True, exist_ok=True)
        atomic_save(self.model.encoder.state_dict(), self.save_path / f"FE_e{epoch}.ckpt")
        atomic_save({w.name: w.state_dict() for w in self.model.workers()},
                    self.save_path / f"workers_e{epoch}.ckpt")
        atomic_save(self.state_dict(), self.save_path / "state.pt")
        tmp = self.save_path / "history.json.tmp"
        tmp.write_text(json.dumps(self.history, indent=1))
        os.replace(tmp, self.save_path / "history.json")

    # ---- steps -------------------------------------------------------------------------------

    def _autocast(self):
        if self.opts.amp == "none":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.opts.amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _set_lr(self) -> float:
        total = self.opts.epochs * self.opts.batches_per_epoch
        f = lr_factor(self.opts.lr_mode, self.step, total, steps_per_epoch=self.opts.batches_per_epoch,
                      lrdec_step=self.opts.lrdec_step, lrdecay=self.opts.lrdecay, warmup=self.opts.warmup_steps)
        fe = fe_factor(self.step, freeze_steps=self.opts.fe_freeze_steps, warmup_steps=self.opts.fe_warmup_steps)
        self.fe_lr_now = self.opts.fe_lr * f * fe
        for opt, (name, _, base) in zip(self.optimizers, self.parts):
            for group in opt.param_groups:
                group["lr"] = base * f * (fe if name == "encoder" else 1.0)
        return f

    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                for k, v in batch.items()}

    def train_step(self, batch: dict[str, Any]) -> dict[str, float] | None:
        """One optimisation step; returns the losses, or None when skipped as non-finite."""
        self.model.train()
        factor = self._set_lr()
        batch = self._to_device(batch)
        g = step_generator(self.opts.seed, self.rank, self.step)
        selected = select_workers(self.opts.backprop_mode, self.model.worker_names, g)
        self.timer.mark("loading")
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        # BatchNorm statistics change in the forward pass: keep a copy so that a skipped
        # (non-finite) step cannot poison them.
        buffers = [b for b in self.model.buffers(recurse=True) if b.dtype != torch.bool]
        saved = [b.clone() for b in buffers]
        with self._autocast():
            losses = self.net(batch, selected, g)
        total = self._total(losses)
        self.timer.mark("forward")
        finite = torch.isfinite(total.detach()).float()
        if self.world_size > 1:  # all ranks skip together, or none does
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        self.step += 1
        if finite.item() < 1:
            with torch.no_grad():
                for b, v in zip(buffers, saved):
                    b.copy_(v)
            self.nonfinite += 1
            bad = [n for n, l in losses.items() if not torch.isfinite(l.detach())]
            log.warning("step %d: non-finite loss (%s); step skipped (%d in a row)",
                        self.step, ", ".join(bad) or "on another rank", self.nonfinite)
            if self.nonfinite >= self.opts.max_nonfinite:
                raise TrainingError(f"{self.nonfinite} non-finite losses in a row (last: {', '.join(bad)}); "
                                    "lower the learning rate, check the data and the statistics file")
            return None
        self.nonfinite = 0
        self.scaler.scale(total).backward()
        self.timer.mark("backward")
        if self.opts.grad_clip > 0:
            for opt in self.optimizers:
                self.scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.opts.grad_clip)
        # Workers first, then the encoder, as the original stepped them.
        for opt in self.optimizers[1:] + self.optimizers[:1]:
            self.scaler.step(opt)
        self.scaler.update()
        self.timer.mark("step")
        out = {n: float(l.detach()) for n, l in losses.items()}
        out["total"] = float(total.detach())
        out["lr_factor"] = factor
        return out

    def _total(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """The loss that is minimised (and reported as total): each worker's loss times its weight."""
        weights = {w.name: w.loss_weight for w in self.model.workers()}
        return sum(weights[n] * l for n, l in losses.items())

    @torch.no_grad()
    def validate(self, batches: Iterable[dict[str, Any]]) -> dict[str, float]:
        self.model.eval()
        sums: dict[str, float] = {}
        n = 0
        for i, batch in enumerate(batches):
            batch = self._to_device(batch)
            g = step_generator(self.opts.seed + 1, self.rank, i)
            with self._autocast():
                losses = self.model(batch, None, g)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            sums["total"] = sums.get("total", 0.0) + float(self._total(losses))
            n += 1
        out = {k: v / max(n, 1) for k, v in sums.items()}
        if self.world_size > 1:
            keys = sorted(out)
            t = torch.tensor([out[k] for k in keys], device=self.device)
            dist.all_reduce(t)
            out = dict(zip(keys, (t / self.world_size).tolist()))
        return out

    def fit(self, train_loader, valid_loader=None, *, on_epoch=None) -> None:
        """Train from self.epoch to opts.epochs; `train_loader` must yield batches_per_epoch batches."""
        from tqdm import tqdm

        for epoch in range(self.epoch, self.opts.epochs):
            for obj in (train_loader.sampler, train_loader.dataset):
                if hasattr(obj, "set_epoch"):
                    obj.set_epoch(epoch)
            sums: dict[str, float] = {}
            done = 0
            speed = Throughput(self.model.encoder.sample_rate)
            bar = tqdm(total=self.opts.batches_per_epoch, desc=f"epoch {epoch}",
                       disable=not self.opts.progress or self.rank != 0, unit="batch")
            self.timer.mark("loading")
            speed.start()
            for batch in train_loader:
                speed.loaded()
                losses = self.train_step(batch)
                speed.stepped(batch["chunk"])
                bar.update(1)
                if self.rank == 0 and self.step % self.opts.log_freq == 0:
                    log.info("step %d: %s%s", self.step,
                             "" if losses is None else f"total loss {losses['total']:.4g}, ", speed.report())
                if losses is None:
                    continue
                done += 1
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v
                if self.writer is not None and self.step % self.opts.log_freq == 0:
                    for k, v in losses.items():
                        tag = "train/lr_factor" if k == "lr_factor" else f"train/{k}_loss"
                        self.writer.add_scalar(tag, v, self.step)
                    self.writer.add_scalar("train/fe_lr", self.fe_lr_now, self.step)
                bar.set_postfix(total=f"{losses['total']:.3f}")
            bar.close()
            record = {"epoch": epoch, **{f"train_{k}": v / max(done, 1) for k, v in sums.items()}}
            if valid_loader is not None and self.opts.valid_batches > 0:
                valid = self.validate(valid_loader)
                record.update({f"valid_{k}": v for k, v in valid.items()})
                if self.writer is not None:
                    for k, v in valid.items():
                        self.writer.add_scalar(f"eval/{k}_loss", v, epoch)
            self.history.append(record)
            self.epoch = epoch + 1
            record.update(speed.summary())
            if self.rank == 0:
                log.info("epoch %d: %s; %s", epoch, ", ".join(f"{k} {v:.4g}" for k, v in record.items()
                                                             if k.endswith("total")), speed.report(epoch=True))
            self.save_epoch(epoch)
            if self.writer is not None:
                self.writer.flush()
            if on_epoch is not None:
                on_epoch(epoch, record)
        if self.writer is not None:
            self.writer.close()
