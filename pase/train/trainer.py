"""Training loop: one Adam per part, per-iteration LR schedules, AMP, DDP, gradient
accumulation, an encoder EMA, exact resume from epoch ends and from mid-epoch states.

Every random choice is derived from (seed, rank, epoch, item or step): chunk sampling in the
dataset, the worker subset of select_one/select_half, distortions. The only global RNG in use
(dropout) is saved in the training state, and creating a loader iterator does not advance it.
Resuming from `state.pt` or a mid-epoch `states/state_s<step>.pt` (the sampler skips the
batches already trained on) therefore continues exactly as if the run had not stopped.
"""
from __future__ import annotations

import contextlib
import copy
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from pase.data import EpochSampler
from pase.errors import PaseError
from pase.io import atomic_write
from pase.models.precision import bf16_native, warn_if_bf16_emulated
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
    accum_grad: int = 1            # micro-batches per optimiser step (steps and schedules count steps)
    save_every_steps: int = 0      # mid-epoch state every N steps (0: off)
    save_every_minutes: float = 0  # mid-epoch state every M minutes (0: off)
    keep_states: int = 2           # mid-epoch states kept (newest first)
    ema_decay: float = 0.0         # EMA of the encoder weights, saved as FE_ema_e<N>.ckpt (0: off)
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
    atomic_write(path, lambda f: torch.save(obj, f))


PHASES = ("targets", "forward", "backward", "step")


class PhaseTimer:
    """Time per step phase (targets, forward, backward, optimiser step), read every log period.

    On a GPU each mark records a CUDA event instead of synchronising, so timing is always on and
    costs nothing; the events are resolved when `take` is called.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.total: dict[str, float] = {}
        self._pending: list[tuple[str, Any, Any]] = []
        self._last: Any = None

    def _now(self) -> Any:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def start(self) -> None:
        self._last = self._now()

    def stop(self) -> None:
        """Marks are ignored until the next start (validation runs the model's forward too)."""
        self._last = None

    def mark(self, phase: str) -> None:
        if self._last is None:
            return
        now = self._now()
        if self.cuda:
            self._pending.append((phase, self._last, now))
        else:
            self.total[phase] = self.total.get(phase, 0.0) + now - self._last
        self._last = now

    def take(self) -> dict[str, float]:
        """Seconds per phase since the previous call."""
        for phase, a, b in self._pending:
            b.synchronize()
            self.total[phase] = self.total.get(phase, 0.0) + a.elapsed_time(b) / 1000
        self._pending = []
        out, self.total = self.total, {}
        return out


class Throughput:
    """Seconds of (anchor) audio trained on per wall second, and the share of wall time spent
    waiting for the data loader, since the last report and over the epoch."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.epoch = [0.0, 0.0, 0.0]   # audio seconds, wall seconds, wait seconds
        self.window = [0.0, 0.0, 0.0]
        self.last = (0.0, 0.0)        # the last report's figures
        self._t = time.perf_counter()

    def start(self) -> None:
        self._t = time.perf_counter()

    def loaded(self) -> None:
        now = time.perf_counter()
        for acc in (self.epoch, self.window):
            acc[2] += now - self._t
        self._t = now

    def stepped(self, samples: int) -> None:
        now = time.perf_counter()
        audio = samples / self.sample_rate
        for acc in (self.epoch, self.window):
            acc[0] += audio
            acc[1] += now - self._t
        self._t = now

    @staticmethod
    def _figures(acc: list[float]) -> tuple[float, float]:
        wall = acc[1] + acc[2]
        return (acc[0] / wall if wall else 0.0, acc[2] / wall if wall else 0.0)

    def report(self, epoch: bool = False) -> str:
        rate, wait = self.last = self._figures(self.epoch if epoch else self.window)
        if not epoch:
            self.window = [0.0, 0.0, 0.0]
        return f"{rate:.2f} s of audio per s, data wait {100 * wait:.0f}%"

    def summary(self) -> dict[str, float]:
        rate, wait = self._figures(self.epoch)
        return {"audio_s_per_s": rate, "data_wait_share": wait}


STATE_RE = re.compile(r"state_s(\d+)\.pt")


class Trainer:
    """Trains a `PaseModel` and writes checkpoints to `save_path`."""

    def __init__(self, model: PaseModel, opts: TrainOptions, save_path: str | Path,
                 device: torch.device, *, rank: int = 0, world_size: int = 1) -> None:
        for name, value, allowed in (("backprop_mode", opts.backprop_mode, BACKPROP_MODES),
                                     ("amp", opts.amp, AMP_MODES)):
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
        if opts.amp == "fp16" and device.type != "cuda":
            raise TrainingError(f"--amp fp16 needs a GPU (device {device}); use --amp "
                                f"{'bf16' if bf16_native(device) else 'none'} on this CPU")
        if opts.amp == "bf16":
            warn_if_bf16_emulated(device, "--amp bf16")
        for name, value, ok in (("accum_grad", opts.accum_grad, opts.accum_grad >= 1),
                                ("keep_states", opts.keep_states, opts.keep_states >= 1),
                                ("log_freq", opts.log_freq, opts.log_freq >= 1),
                                ("ema_decay", opts.ema_decay, 0.0 <= opts.ema_decay < 1.0)):
            if not ok:
                raise TrainingError(f"--{name} {value}: must be {'in [0, 1)' if name == 'ema_decay' else '>= 1'}")
        if opts.warmup_steps >= opts.epochs * opts.batches_per_epoch > 0:
            log.warning("--warmup_steps %d >= the run's %d iterations: the LR never reaches its base value",
                        opts.warmup_steps, opts.epochs * opts.batches_per_epoch)
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
        self.ema: nn.Module | None = None
        if opts.ema_decay > 0:
            self.ema = copy.deepcopy(self.model.encoder).eval().requires_grad_(False)
        # Position: optimiser steps overall and within the current epoch, and the epoch's running
        # loss sums (all in the state, so that a mid-epoch resume writes the same history).
        self.epoch, self.step, self.batch, self.nonfinite = 0, 0, 0, 0
        self.epoch_sums: dict[str, float] = {}
        self.epoch_done = 0
        self.history: list[dict[str, float]] = []
        self.writer = None
        if opts.tensorboard and rank == 0:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(self.save_path / "tensorboard"))
        self.timer = PhaseTimer(device)
        self.model.mark = lambda phase: self.timer.mark(phase)
        self._saved_at = time.monotonic()

    # ---- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch, "step": self.step, "batch": self.batch, "nonfinite": self.nonfinite,
            "epoch_sums": dict(self.epoch_sums), "epoch_done": self.epoch_done,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
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
        self.batch = state.get("batch", 0)
        self.epoch_sums, self.epoch_done = dict(state.get("epoch_sums", {})), state.get("epoch_done", 0)
        if self.ema is not None:
            if state.get("ema") is not None:
                self.ema.load_state_dict(state["ema"])
            else:  # the saved run had no EMA: start it from the resumed weights
                self.ema.load_state_dict(self.model.encoder.state_dict())
                log.info("--ema_decay: the saved state has no EMA; it starts from the resumed encoder")
        self.history = list(state["history"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    def _step_states(self) -> list[tuple[int, Path]]:
        """Mid-epoch states in save_path/states, newest first."""
        found = [(int(m.group(1)), p) for p in (self.save_path / "states").glob("state_s*.pt")
                 if (m := STATE_RE.fullmatch(p.name))]
        return sorted(found, reverse=True)

    def _read_state(self, path: Path) -> dict[str, Any]:
        try:
            # on the CPU: the RNG states must stay CPU ByteTensors (set_rng_state refuses CUDA
            # ones); load_state_dict copies weights and optimiser moments to their devices
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated or foreign files fail inside torch/pickle in many ways
            raise TrainingError(f"{path}: cannot be read to resume ({type(e).__name__}: {str(e).splitlines()[0]}); "
                                "it may be truncated: use --no_continue to start over") from e
        missing = [k for k in ("model", "optimizers", "step", "epoch") if not isinstance(state, dict) or k not in state]
        if missing:
            raise TrainingError(f"{path}: not a pase-train state (no {', '.join(missing)}); "
                                "use --no_continue to start over")
        return state

    def resume(self) -> bool:
        """Load the newest readable state: save_path/state.pt (epoch end) or a newer mid-epoch
        states/state_s<step>.pt; an unreadable one is skipped while an older one remains."""
        candidates = self._step_states()
        best: dict[str, Any] | None = None
        where = None
        epoch_state = self.save_path / "state.pt"
        if epoch_state.exists():
            try:
                best, where = self._read_state(epoch_state), epoch_state
            except TrainingError as e:
                if not candidates:
                    raise
                log.warning("%s; trying the mid-epoch states", e)
        for step, path in candidates:
            if best is not None and step <= best["step"]:
                break
            try:
                best, where = self._read_state(path), path
                break
            except TrainingError as e:
                if best is None and path == candidates[-1][1]:
                    raise
                log.warning("%s; trying an older state", e)
        if best is None:
            return False
        self.load_state_dict(best)
        log.info("resumed from %s at epoch %d, batch %d (step %d)", where, self.epoch, self.batch, self.step)
        return True

    def save_epoch(self, epoch: int) -> None:
        """FE_e<N>.ckpt (raw encoder state_dict, the original's format), workers_e<N>.ckpt, state.pt,
        FE_ema_e<N>.ckpt with --ema_decay, and history.json (per-epoch mean losses, for reports).
        The mid-epoch states of the epoch are superseded and removed."""
        if self.rank != 0:
            return
        self.save_path.mkdir(parents=True, exist_ok=True)
        atomic_save(self.model.encoder.state_dict(), self.save_path / f"FE_e{epoch}.ckpt")
        if self.ema is not None:
            atomic_save(self.ema.state_dict(), self.save_path / f"FE_ema_e{epoch}.ckpt")
        atomic_save({w.name: w.state_dict() for w in self.model.workers()},
                    self.save_path / f"workers_e{epoch}.ckpt")
        atomic_save(self.state_dict(), self.save_path / "state.pt")
        history = json.dumps(self.history, indent=1)
        atomic_write(self.save_path / "history.json", lambda f: f.write(history), text=True)
        for _, path in self._step_states():
            path.unlink()
        self._saved_at = time.monotonic()

    def save_state(self) -> Path | None:
        """A mid-epoch state, states/state_s<step>.pt (atomic); keeps the newest opts.keep_states."""
        if self.rank != 0:
            return None
        states = self.save_path / "states"
        states.mkdir(parents=True, exist_ok=True)
        path = states / f"state_s{self.step}.pt"
        atomic_save(self.state_dict(), path)
        # states newer than this step are ones resume() skipped as unreadable: they go, and of
        # the rest (this one first) the newest keep_states stay
        found = self._step_states()
        newer = [p for step, p in found if step > self.step]
        for old in newer + [p for step, p in found if step <= self.step][self.opts.keep_states:]:
            old.unlink()
        self._saved_at = time.monotonic()
        return path

    def _state_due(self) -> bool:
        if self.batch >= self.opts.batches_per_epoch:  # the epoch's own save follows
            return False
        every, minutes = self.opts.save_every_steps, self.opts.save_every_minutes
        return bool((every > 0 and self.step % every == 0)
                    or (minutes > 0 and time.monotonic() - self._saved_at >= 60 * minutes))

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

    def _all_finite(self, total: torch.Tensor) -> bool:
        finite = torch.isfinite(total.detach()).float()
        if self.world_size > 1:  # all ranks skip together, or none does
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        return finite.item() >= 1

    def train_step(self, batches: dict[str, Any] | Sequence[dict[str, Any]]) -> dict[str, float] | None:
        """One optimisation step over one batch or a list of micro-batches (gradient accumulation:
        each micro-batch's loss is divided by their number, so N micro-batches of B chunks give
        the gradient of one batch of N x B, BatchNorm's batch statistics aside). Returns the mean
        losses, or None when the step was skipped for a non-finite loss."""
        micro = [batches] if isinstance(batches, dict) else list(batches)
        self.model.train()
        factor = self._set_lr()
        g = step_generator(self.opts.seed, self.rank, self.step)
        selected = select_workers(self.opts.backprop_mode, self.model.worker_names, g)
        self.timer.start()
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        # BatchNorm statistics change in the forward pass: keep a copy so that a skipped
        # (non-finite) step cannot poison them.
        buffers = [b for b in self.model.buffers(recurse=True) if b.dtype != torch.bool]
        saved = [b.clone() for b in buffers]
        out: dict[str, float] = {}
        bad: list[str] | None = None
        for i, batch in enumerate(micro):
            batch = self._to_device(batch)
            # DDP all-reduces the gradients in the last micro-batch's backward only.
            sync = self.world_size == 1 or i == len(micro) - 1
            with contextlib.nullcontext() if sync else self.net.no_sync():
                with self._autocast():
                    losses = self.net(batch, selected, g)
                total = self._total(losses)
                self.timer.mark("forward")
                if not self._all_finite(total):
                    bad = [n for n, l in losses.items() if not torch.isfinite(l.detach())]
                    break
                self.scaler.scale(total / len(micro)).backward()
                self.timer.mark("backward")
            for n, l in losses.items():
                out[n] = out.get(n, 0.0) + float(l.detach()) / len(micro)
            out["total"] = out.get("total", 0.0) + float(total.detach()) / len(micro)
        self.step += 1
        if bad is not None:
            with torch.no_grad():
                for b, v in zip(buffers, saved):
                    b.copy_(v)
            for opt in self.optimizers:
                opt.zero_grad(set_to_none=True)
            self.nonfinite += 1
            log.warning("step %d: non-finite loss (%s); step skipped (%d in a row)",
                        self.step, ", ".join(bad) or "on another rank", self.nonfinite)
            if self.nonfinite >= self.opts.max_nonfinite:
                raise TrainingError(f"{self.nonfinite} non-finite losses in a row (last: {', '.join(bad)}); "
                                    "lower the learning rate, check the data and the statistics file")
            return None
        self.nonfinite = 0
        if self.opts.grad_clip > 0:
            for opt in self.optimizers:
                self.scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.opts.grad_clip)
        # Workers first, then the encoder, as the original stepped them.
        for opt in self.optimizers[1:] + self.optimizers[:1]:
            self.scaler.step(opt)
        self.scaler.update()
        if self.ema is not None:
            self._update_ema()
        self.timer.mark("step")
        out["lr_factor"] = factor
        return out

    @torch.no_grad()
    def _update_ema(self) -> None:
        params = list(self.model.encoder.parameters())
        torch._foreach_lerp_(list(self.ema.parameters()), params, 1.0 - self.opts.ema_decay)
        for e, b in zip(self.ema.buffers(), self.model.encoder.buffers()):
            e.copy_(b)  # BatchNorm statistics: the current ones (they are averages already)

    def _total(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """The loss that is minimised (and reported as total): each worker's loss times its weight."""
        weights = {w.name: w.loss_weight for w in self.model.workers()}
        return sum(weights[n] * l for n, l in losses.items())

    @torch.no_grad()
    def validate(self, batches: Iterable[dict[str, Any]]) -> dict[str, float]:
        self.model.eval()
        self.timer.stop()  # else validation and checkpointing would count as the next step's targets
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

    def _start_epoch(self, loader, epoch: int):
        """Position the loader at (epoch, self.batch) and return its iterator."""
        sampler, dataset, start = loader.sampler, loader.dataset, self.batch * self.opts.accum_grad
        if hasattr(dataset, "set_position"):  # a stream that seeks itself (ShardStream)
            dataset.set_position(epoch, start)
        else:
            if start and not isinstance(sampler, EpochSampler):
                raise TrainingError("a mid-epoch resume needs the EpochSampler (it skips the trained batches)")
            if isinstance(sampler, EpochSampler):
                sampler.set_epoch(epoch, start_batch=start)
            elif hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
        # A new loader iterator draws its base seed from the global RNG; keep the dropout stream
        # independent of it, or a mid-epoch resume (one more iterator) would shift it.
        rng = torch.get_rng_state()
        it = iter(loader)
        torch.set_rng_state(rng)
        return it

    def _log_step(self, losses: dict[str, float] | None, speed: Throughput) -> None:
        phases = self.timer.take()
        rate = speed.report()
        if self.rank != 0:
            return
        total = sum(phases.values())
        shares = ", ".join(f"{p} {100 * phases.get(p, 0.0) / total:.0f}%" for p in PHASES) if total else ""
        log.info("step %d: %s%s; compute %s", self.step,
                 "" if losses is None else f"total loss {losses['total']:.4g}, ", rate, shares)
        if self.writer is not None:
            if losses is not None:
                for k, v in losses.items():
                    tag = "train/lr_factor" if k == "lr_factor" else f"train/{k}_loss"
                    self.writer.add_scalar(tag, v, self.step)
            self.writer.add_scalar("train/fe_lr", self.fe_lr_now, self.step)
            self.writer.add_scalar("speed/audio_s_per_s", speed.last[0], self.step)
            self.writer.add_scalar("speed/data_wait_share", speed.last[1], self.step)
            steps = self.opts.log_freq
            for p in PHASES:
                self.writer.add_scalar(f"speed/{p}_s_per_step", phases.get(p, 0.0) / steps, self.step)

    def fit(self, train_loader, valid_loader=None, *, on_epoch=None) -> None:
        """Train from (self.epoch, self.batch) to opts.epochs; `train_loader` must yield
        batches_per_epoch x accum_grad batches per epoch."""
        from tqdm import tqdm

        accum = self.opts.accum_grad
        for epoch in range(self.epoch, self.opts.epochs):
            it = self._start_epoch(train_loader, epoch)
            speed = Throughput(self.model.encoder.sample_rate)
            bar = tqdm(total=self.opts.batches_per_epoch, initial=self.batch, desc=f"epoch {epoch}",
                       disable=not self.opts.progress or self.rank != 0, unit="step")
            speed.start()
            group: list[dict[str, Any]] = []
            for batch in it:
                group.append(batch)
                if len(group) < accum:
                    continue
                speed.loaded()
                losses = self.train_step(group)
                self.batch += 1
                speed.stepped(sum(b["chunk"].shape[0] * b["chunk"].shape[-1] for b in group))
                group = []
                bar.update(1)
                if self.step % self.opts.log_freq == 0:
                    self._log_step(losses, speed)
                if losses is not None:
                    self.epoch_done += 1
                    for k, v in losses.items():
                        self.epoch_sums[k] = self.epoch_sums.get(k, 0.0) + v
                    bar.set_postfix(total=f"{losses['total']:.3f}")
                if self._state_due():
                    self.save_state()
            bar.close()
            done = max(self.epoch_done, 1)
            record = {"epoch": epoch, **{f"train_{k}": v / done for k, v in self.epoch_sums.items()}}
            if valid_loader is not None and self.opts.valid_batches > 0:
                valid = self.validate(valid_loader)
                record.update({f"valid_{k}": v for k, v in valid.items()})
                if self.writer is not None:
                    for k, v in valid.items():
                        self.writer.add_scalar(f"eval/{k}_loss", v, epoch)
            self.history.append(record)
            self.epoch, self.batch, self.epoch_sums, self.epoch_done = epoch + 1, 0, {}, 0
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
