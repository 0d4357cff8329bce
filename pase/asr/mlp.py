"""The hybrid acoustic model: an MLP from spliced frame features to HMM pdf posteriors.

As the original TIMIT experiment: the input is the frame with +-8 neighbours (17 x 256 for
PASE+), five Linear(1024) -> BatchNorm(momentum 0.05) -> ReLU -> Dropout(0.15) layers, a linear
output over the pdfs with log-softmax; SGD (lr 0.036, no momentum), batches of 128 frames
shuffled over the whole training set, and the learning rate halved whenever the relative
improvement of the dev frame error falls under 0.25%; the best epoch by dev frame error is kept.
Context windows are built per utterance (edges repeat the first/last frame), so no window mixes
two utterances; the original spliced across the concatenated training set.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch import nn

from pase.errors import PaseError
from pase.train.schedule import BestEpoch, newbob_factor

log = logging.getLogger(__name__)


class AlignmentError(PaseError, ValueError):
    """Features and alignments disagree in more than the encoder's known few frames."""


def match_lengths(feats: np.ndarray, labels: np.ndarray, utt: str, max_extra: int = 3) -> np.ndarray:
    """Trim features to the label count.

    PASE yields floor(ceil(T/10)/16) frames and Kaldi's MFCC (snip_edges) floor((T-400)/160)+1,
    so PASE features carry 0-3 more frames than MFCC-based alignments: those are cut from the end,
    as the original did. Anything else means the two do not belong together.
    """
    extra = len(feats) - len(labels)
    if not 0 <= extra <= max_extra:
        raise AlignmentError(f"utterance {utt!r}: {len(feats)} feature frames vs {len(labels)} "
                             f"alignment frames (allowed: 0 to {max_extra} more features)")
    return feats[:len(labels)]


class FrameSet:
    """All frames of a set in one matrix, with per-frame utterance bounds for context windows."""

    def __init__(self, feats: dict[str, np.ndarray], labels: dict[str, np.ndarray] | None = None,
                 context: int = 8) -> None:
        utts = sorted(feats)
        if labels is not None:
            missing = [u for u in utts if u not in labels]
            if missing:
                raise AlignmentError(f"no alignment for {len(missing)} utterance(s), e.g. {missing[:3]}")
            mats = [match_lengths(feats[u], labels[u], u) for u in utts]
            self.labels = torch.from_numpy(np.concatenate([labels[u] for u in utts]).astype(np.int64))
        else:
            mats = [feats[u] for u in utts]
            self.labels = None
        self.utts = utts
        self.lengths = [len(m) for m in mats]
        self.x = torch.from_numpy(np.concatenate(mats).astype(np.float32))
        starts = np.cumsum([0] + self.lengths[:-1])
        self.offsets = dict(zip(utts, starts.tolist()))
        self.length_of = dict(zip(utts, self.lengths))
        self.first = torch.from_numpy(np.repeat(starts, self.lengths))
        self.last = torch.from_numpy(np.repeat(starts + np.array(self.lengths) - 1, self.lengths))
        self.context = context
        self.shifts = torch.arange(-context, context + 1)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def input_dim(self) -> int:
        return self.x.size(1) * (2 * self.context + 1)

    def windows(self, idx: torch.Tensor) -> torch.Tensor:
        """Spliced inputs (len(idx), (2c+1) * D) for frame indices `idx`."""
        pos = (idx[:, None] + self.shifts[None]).clamp(self.first[idx, None], self.last[idx, None])
        return self.x[pos].flatten(1)

    def utterance(self, utt: str) -> torch.Tensor:
        start = self.offsets[utt]
        return self.windows(torch.arange(start, start + self.length_of[utt]))


class HybridMLP(nn.Module):
    """Five Linear -> BatchNorm -> ReLU -> Dropout layers and a log-softmax output."""

    def __init__(self, input_dim: int, num_pdfs: int, hidden: int = 1024, layers: int = 5,
                 dropout: float = 0.15, bn_momentum: float = 0.05) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        dim = input_dim
        for _ in range(layers):
            blocks += [nn.Linear(dim, hidden), nn.BatchNorm1d(hidden, momentum=bn_momentum), nn.ReLU(),
                       nn.Dropout(dropout)]
            dim = hidden
        self.hidden = nn.Sequential(*blocks)
        self.out = nn.Linear(dim, num_pdfs)
        for m in self.modules():  # the original's (pytorch-kaldi) initialisation
            if isinstance(m, nn.Linear):
                bound = math.sqrt(0.01 / (m.in_features + m.out_features))
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.out(self.hidden(x)), dim=-1)


@dataclass
class MlpOptions:
    hidden: int = 1024
    layers: int = 5
    dropout: float = 0.15
    context: int = 8
    lr: float = 0.036
    momentum: float = 0.0
    batch_size: int = 128
    epochs: int = 24
    halving_factor: float = 0.5
    improvement_threshold: float = 0.0025
    seed: int = 1234


def log_priors(labels: Iterable[np.ndarray], num_pdfs: int) -> np.ndarray:
    """log(count / total) of every pdf in the training alignments (unseen pdfs get count 1)."""
    counts = np.ones(num_pdfs)
    for lab in labels:
        counts += np.bincount(lab, minlength=num_pdfs)[:num_pdfs]
    return np.log(counts / counts.sum())


def load_priors(path: Path, num_pdfs: int) -> np.ndarray:
    """The log-priors `log_priors` wrote (a float vector of num_pdfs entries, no pickle)."""
    try:
        priors = np.load(path)
    except (OSError, ValueError) as e:  # missing, truncated, or an object (pickled) array
        raise PaseError(f"{path}: not a log-prior vector ({str(e).splitlines()[0]}); rerun pase-train-mlp") from e
    if priors.dtype.kind != "f" or priors.shape != (num_pdfs,) or not np.isfinite(priors).all():
        raise PaseError(f"{path}: expected {num_pdfs} finite log-priors, got a {priors.dtype} array of shape "
                        f"{priors.shape}; rerun pase-train-mlp")
    return priors


@torch.no_grad()
def frame_error(model: HybridMLP, data: FrameSet, device: torch.device, batch: int = 4096) -> float:
    model.eval()
    wrong = 0
    for start in range(0, len(data), batch):
        idx = torch.arange(start, min(start + batch, len(data)))
        pred = model(data.windows(idx).to(device)).argmax(-1).cpu()
        wrong += int((pred != data.labels[idx]).sum())
    return wrong / max(len(data), 1)


class NewbobSchedule:
    """The original's learning-rate rule and model selection, shared by the frozen and the
    fine-tuning trainers: halve the LR when the relative dev-error improvement falls under the
    threshold, and keep the weights of the best dev epoch."""

    def __init__(self, opts: MlpOptions, optimizer: torch.optim.Optimizer) -> None:
        self.opts, self.optimizer = opts, optimizer
        self.lr = opts.lr
        self.prev: float | None = None
        self.best = BestEpoch()

    def update(self, err: float, model: nn.Module) -> None:
        self.best.update(err, model)
        self.lr *= newbob_factor(self.prev, err, halving_factor=self.opts.halving_factor,
                                 threshold=self.opts.improvement_threshold)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        self.prev = err

    def restore_best(self, model: nn.Module) -> None:
        self.best.restore(model)


def train_mlp(train: FrameSet, dev: FrameSet, num_pdfs: int, opts: MlpOptions,
              device: torch.device) -> tuple[HybridMLP, list[dict[str, float]]]:
    """Train with the halving schedule; returns the best model (by dev frame error) and the history."""
    torch.manual_seed(opts.seed)
    model = HybridMLP(train.input_dim, num_pdfs, opts.hidden, opts.layers, opts.dropout).to(device)
    optim = torch.optim.SGD(model.parameters(), lr=opts.lr, momentum=opts.momentum)
    schedule = NewbobSchedule(opts, optim)
    g = torch.Generator().manual_seed(opts.seed)
    history: list[dict[str, float]] = []
    for epoch in range(opts.epochs):
        model.train()
        perm = torch.randperm(len(train), generator=g)
        total, n = 0.0, 0
        for start in range(0, len(perm) - opts.batch_size + 1, opts.batch_size):
            idx = perm[start:start + opts.batch_size]
            loss = nn.functional.nll_loss(model(train.windows(idx).to(device)), train.labels[idx].to(device))
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            total += float(loss.detach()) * len(idx)
            n += len(idx)
        err = frame_error(model, dev, device)
        history.append({"epoch": epoch, "lr": schedule.lr, "train_loss": total / max(n, 1), "dev_frame_error": err})
        log.info("epoch %d: lr %.4g, train loss %.4f, dev frame error %.2f%%", epoch, schedule.lr,
                 total / max(n, 1), 100 * err)
        schedule.update(err, model)
    schedule.restore_best(model)
    return model, history


@torch.no_grad()
def scaled_loglikes(model: HybridMLP, data: FrameSet, priors: np.ndarray, device: torch.device) -> dict[str, np.ndarray]:
    """Per utterance (frames x pdfs): log-posterior minus log-prior, the hybrid pseudo log-likelihood."""
    model.eval()
    prior = torch.from_numpy(priors).float()
    return {u: (model(data.utterance(u).to(device)).cpu() - prior).numpy() for u in data.utts}
