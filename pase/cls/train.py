"""Training and scoring of the utterance classifiers (the original's schedule, made deterministic).

SGD on shuffled rows (frames, or pooled utterances) in batches of 128. After every epoch the dev
row error (frame error for the frame classifier) is measured; the best model so far is kept (of
epochs with equal dev error the later, longer-trained one: a dev set of a few hundred utterances
reaches its lowest error long before the model converges), and when the error improved by less than 0.25 % relative to the previous epoch the learning rate is
multiplied by the halving factor (0.5 for speaker id, 0.8 for emotion). Everything random draws
from generators seeded by `seed`, so a run repeats exactly on the same device and thread count.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from pase.cls.model import ClassifierHead, FinetuneClassifier
from pase.io import Utterance, check_waveform, read_audio
from pase.train.schedule import BestEpoch, newbob_factor

log = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, torch.Tensor]
_EVAL_ROWS = 8192  # rows per forward pass when measuring dev error


@dataclass
class TrainOptions:
    """Optimisation settings; the defaults are the original speaker-id script's."""

    lr: float = 0.001
    epochs: int = 24
    batch_size: int = 128
    halving_factor: float = 0.5
    improvement_threshold: float = 0.0025
    momentum: float = 0.0
    seed: int = 1234
    encoder_lr: float | None = None   # fine-tuning: the encoder's learning rate (None: lr)
    chunk_size: int = 32000           # waveforms: samples per training chunk
    layer_weights_lr: float = 0.01    # mixed encoder layers: their weights' Adam learning rate


def sentence_decision(scores: Mapping[str, np.ndarray], classes: Sequence[str]) -> dict[str, str]:
    """Each utterance's class: the argmax of its summed row log-probabilities (`score_*`)."""
    return {u: classes[int(np.argmax(s))] for u, s in scores.items()}


def fit(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: Callable[[int], Iterable[Batch]],
        dev_error: Callable[[], float], opts: TrainOptions,
        on_best: Callable[[torch.nn.Module], None], also: Sequence[torch.optim.Optimizer] = ()) -> list[dict]:
    """Train for opts.epochs; leaves the model at its best dev error and returns per-epoch records.

    `batches(epoch)` yields (input, targets): model(input) is (rows, classes) with a target per
    row, or (utterances, rows, classes) with a target per utterance (waveforms). The optimisers
    `also` step with `optimizer`, their learning rates left alone by its schedule.
    """
    optimizers = [optimizer, *also]
    history: list[dict] = []
    best, prev = BestEpoch(), None
    for epoch in range(opts.epochs):
        model.train()
        loss_sum, errors, rows = 0.0, 0, 0
        for x, y in batches(epoch):
            logp = model(x)
            if logp.dim() == 3:
                y = y[:, None].expand(logp.shape[:2])
            logp, y = logp.reshape(-1, logp.shape[-1]), y.reshape(-1)
            loss = F.nll_loss(logp, y)
            for o in optimizers:
                o.zero_grad(set_to_none=True)
            loss.backward()
            for o in optimizers:
                o.step()
            loss_sum += loss.item() * y.numel()
            errors += int((logp.argmax(-1) != y).sum())
            rows += y.numel()
        if not rows:
            raise ValueError("no training batch")
        model.eval()
        err = dev_error()
        lr = optimizer.param_groups[0]["lr"]
        record = {"epoch": epoch, "lr": lr, "train_loss": loss_sum / rows, "train_err": errors / rows,
                  "dev_err": err, "best": best.update(err, model)}
        if record["best"]:
            on_best(model)
        factor = newbob_factor(prev, err, halving_factor=opts.halving_factor, threshold=opts.improvement_threshold)
        for group in optimizer.param_groups:
            group["lr"] *= factor
        prev = err
        history.append(record)
        log.info("epoch %d: lr %.3g, train loss %.4f, train err %.4f, dev err %.4f%s", epoch, lr,
                 record["train_loss"], record["train_err"], err, " (best)" if record["best"] else "")
    best.restore(model)
    model.eval()
    return history


def _sgd(params: Iterable[dict], opts: TrainOptions) -> torch.optim.SGD:
    return torch.optim.SGD(list(params), lr=opts.lr, momentum=opts.momentum)


@torch.no_grad()
def _row_error(head: ClassifierHead, x: torch.Tensor, y: torch.Tensor) -> float:
    wrong = sum(int((head(x[i:i + _EVAL_ROWS]).argmax(-1) != y[i:i + _EVAL_ROWS]).sum())
                for i in range(0, len(x), _EVAL_ROWS))
    return wrong / len(x)


@torch.no_grad()
def _stack_rows(head: ClassifierHead, feats: Sequence[torch.Tensor],
                labels: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """All MLP input rows of some utterances, with each row's label."""
    rows = [head.rows(f) for f in feats]
    y = torch.cat([torch.full((len(r),), lab, dtype=torch.long, device=r.device) for r, lab in zip(rows, labels)])
    return torch.cat(rows), y


def train_frozen(head: ClassifierHead, train: Sequence[tuple[torch.Tensor, int]],
                 dev: Sequence[tuple[torch.Tensor, int]], opts: TrainOptions,
                 on_best: Callable[[torch.nn.Module], None], device: torch.device) -> list[dict]:
    """Train `head` on fixed features: (frames x dims tensor, class index) per utterance."""
    torch.manual_seed(opts.seed)
    head.to(device)
    head.fit_norm(f for f, _ in train)
    x, y = _stack_rows(head, [f.to(device) for f, _ in train], [lab for _, lab in train])
    dx, dy = _stack_rows(head, [f.to(device) for f, _ in dev], [lab for _, lab in dev])
    gen = torch.Generator().manual_seed(opts.seed)
    log.info("training on %d rows of %d utterances, dev %d rows", len(x), len(train), len(dx))

    def batches(_: int) -> Iterator[Batch]:
        order = torch.randperm(len(x), generator=gen).to(device)
        for i in range(0, len(x), opts.batch_size):
            idx = order[i:i + opts.batch_size]
            yield x[idx], y[idx]

    return fit(head, _sgd([{"params": head.parameters()}], opts), batches,
               lambda: _row_error(head, dx, dy), opts, on_best)


def load_waveform(utt: Utterance, min_samples: int) -> torch.Tensor:
    """One utterance's waveform, checked to be long enough for the encoder."""
    wav = read_audio(utt.source, start=utt.start, end=utt.end, name=utt.utt_id)
    check_waveform(wav, name=f"utterance {utt.utt_id!r} ({utt.source})", min_samples=min_samples)
    return torch.from_numpy(wav)


def train_finetune(model: FinetuneClassifier, train: Sequence[tuple[Utterance, int]],
                   dev: Sequence[tuple[Utterance, int]], opts: TrainOptions,
                   on_best: Callable[[torch.nn.Module], None], device: torch.device) -> list[dict]:
    """Train the head (SGD), any layer weights (Adam) and, unless frozen, the encoder (SGD at
    encoder_lr) from waveforms: random equal-length chunks of batch_size utterances.

    The z-normalisation comes from the pretrained encoder's features of the training set (layers
    mixed with equal weights) and stays fixed, as it would have for frozen features.
    """
    torch.manual_seed(opts.seed)
    model.to(device).eval()
    min_samples = model.encoder.min_samples
    with torch.no_grad():
        model.head.fit_norm(model.features(load_waveform(u, min_samples).view(1, 1, -1).to(device))[0]
                            for u, _ in train)
    rng = np.random.default_rng(opts.seed)
    groups = [{"params": model.head.parameters()}]
    if not model.front.freeze_encoder:
        groups.append({"params": model.encoder.parameters(), "lr": opts.encoder_lr or opts.lr})
    optimizer = _sgd(groups, opts)

    def batches(_: int) -> Iterator[Batch]:
        order = rng.permutation(len(train))
        for i in range(0, len(order), opts.batch_size):
            items = [train[j] for j in order[i:i + opts.batch_size]]
            wavs = [load_waveform(u, min_samples) for u, _ in items]
            size = min(opts.chunk_size, *(len(w) for w in wavs))
            starts = [int(rng.integers(0, len(w) - size + 1)) for w in wavs]
            chunk = torch.stack([w[s:s + size] for w, s in zip(wavs, starts)]).unsqueeze(1)
            yield chunk.to(device), torch.tensor([lab for _, lab in items], device=device)

    @torch.no_grad()
    def dev_error() -> float:
        wrong = rows = 0
        for u, lab in dev:
            feats = model.features(load_waveform(u, min_samples).view(1, 1, -1).to(device))[0]
            logp = model.head(model.head.rows(feats))
            wrong += int((logp.argmax(-1) != lab).sum())
            rows += len(logp)
        return wrong / rows

    weights = model.layer_weights_optimizer(opts.layer_weights_lr)
    return fit(model, optimizer, batches, dev_error, opts, on_best, [] if weights is None else [weights])


@torch.no_grad()
def score_features(head: ClassifierHead, feats: dict[str, np.ndarray],
                   device: torch.device) -> dict[str, np.ndarray]:
    """Per utterance, the summed row log-probabilities (the sentence decision is their argmax)."""
    head.to(device).eval()
    return {u: head.utterance_scores(torch.from_numpy(m).to(device)).cpu().numpy() for u, m in feats.items()}


@torch.no_grad()
def score_waveforms(model: FinetuneClassifier, utts: Sequence[Utterance],
                    device: torch.device) -> dict[str, np.ndarray]:
    """Like `score_features`, from whole waveforms through the (fine-tuned) encoder."""
    model.to(device).eval()
    return {u.utt_id: model.utterance_scores(load_waveform(u, model.encoder.min_samples).to(device)).cpu().numpy()
            for u in utts}
