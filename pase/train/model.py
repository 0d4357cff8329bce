"""The self-supervised model: encoder + workers + on-device targets, one loss per worker.

Per step: targets are computed from the clean (randomly scaled) anchor chunk on the training
device and z-normalised; the anchor is then (optionally) distorted; the encoder runs once on the
stacked anchor, context and random chunks (BatchNorm statistics over all three, as in the
original); each worker computes its loss.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from pase.config import ConfigError, load_config
from pase.models.frontend import WaveFe, wf_builder
from pase.models.workers import SPCWorker, build_workers, target_specs
from pase.targets import TargetBank
from pase.train.stats import load_stats

Distort = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class PaseModel(nn.Module):
    """Holds every trainable part; `forward(batch)` returns {worker name: loss}."""

    def __init__(self, encoder: WaveFe, regression: nn.ModuleList, classification: nn.ModuleList,
                 bank: TargetBank, stats: dict[str, tuple[torch.Tensor, torch.Tensor]] | None) -> None:
        super().__init__()
        self.encoder = encoder
        self.regression = regression
        self.classification = classification
        self.bank = bank
        missing = [n for n in bank.dims if stats is None or n not in stats]
        if missing:
            raise ValueError(f"no normalisation statistics for worker(s) {missing}")
        for name, (mean, std) in (stats or {}).items():
            if name in bank.dims:
                self.register_buffer(f"mean_{name}", mean.view(1, -1, 1), persistent=False)
                self.register_buffer(f"std_{name}", std.view(1, -1, 1), persistent=False)
        self.distort: Distort | None = None
        self.mark: Callable[[str], None] = lambda phase: None  # the trainer's phase timer

    @classmethod
    def build(cls, fe_cfg: str | Path | dict[str, Any], workers_cfg: str | Path | dict[str, Any],
              stats: str | Path | dict[str, tuple[torch.Tensor, torch.Tensor]] | None,
              fe_ckpt: str | Path | None = None) -> "PaseModel":
        """Encoder (optionally initialised from `fe_ckpt`) -> target bank -> workers: the one
        assembly every trainer, test and benchmark uses. `stats` is a pase-compute-stats file or
        its loaded form; it may be None only when no worker needs normalised targets."""
        encoder = wf_builder(fe_cfg)
        if fe_ckpt:
            encoder.load_pretrained(fe_ckpt, load_last=True)
        wcfg = workers_cfg if isinstance(workers_cfg, dict) else load_config(workers_cfg)
        bank = TargetBank(target_specs(wcfg))
        regression, classification = build_workers(wcfg, encoder.emb_dim, bank.dims)
        if bank.dims and stats is None:
            raise ConfigError(f"workers {sorted(bank.dims)} need --stats (make them with pase-compute-stats)")
        if isinstance(stats, (str, Path)):
            stats = load_stats(stats, bank.dims)
        return cls(encoder, regression, classification, bank, stats if bank.dims else None)

    @property
    def worker_names(self) -> list[str]:
        return [w.name for w in self.regression] + [w.name for w in self.classification]

    def workers(self) -> list[nn.Module]:
        return list(self.regression) + list(self.classification)

    @torch.no_grad()
    def targets(self, chunk: torch.Tensor) -> dict[str, torch.Tensor]:
        """z-normalised targets of the clean anchor (B, 1, L), in float32 even under autocast."""
        with torch.autocast(chunk.device.type, enabled=False):
            raw = self.bank(chunk[:, 0].float())
        return {n: (t - getattr(self, f"mean_{n}")) / getattr(self, f"std_{n}") for n, t in raw.items()}

    def forward(self, batch: dict[str, torch.Tensor], selected: set[str] | None = None,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        chunk = batch["chunk"]
        want = set(self.worker_names) if selected is None else selected
        targets = self.targets(chunk)
        self.mark("targets")
        x = chunk
        if self.distort is not None:
            with torch.autocast(chunk.device.type, enabled=False):  # signal processing stays fp32
                x = self.distort(chunk.float(), generator)
        parts = [x] + [batch[k] for k in ("chunk_ctxt", "chunk_rand") if k in batch]
        emb = self.encoder(torch.cat(parts, 0)).chunk(len(parts), 0)
        losses = {}
        for w in self.regression:
            if w.name in want:
                target = chunk if w.name == "cchunk" else targets[w.name]
                losses[w.name] = w.loss(w(emb[0]), target)
        for w in self.classification:
            if w.name not in want:
                continue
            if isinstance(w, SPCWorker):
                losses[w.name] = w.loss(w(emb[0], generator))
            else:
                if len(emb) < 3:
                    raise ValueError(f"worker {w.name!r} needs context and random chunks in the batch")
                losses[w.name] = w.loss(w(*emb))
        return losses
