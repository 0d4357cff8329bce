"""Utterance classifiers on PASE (or baseline) frame features, as in the original's downstream scripts.

The original speaker-id (spk_id/run_minivox_fast.py) and emotion (emorec/run_IEMOCAP_fast.py)
classifiers take every frame with the utterance mean appended (the encoder's 'avg_concat' mode),
z-normalise it with training-set statistics, and train a one-hidden-layer MLP (LayerNorm on the
input and the hidden layer, ReLU, dropout) on frames; an utterance is classified by summing its
frames' log-probabilities. `pooling="stats"` is the utterance-level alternative: each utterance's
frames pooled into their mean and standard deviation, the pooled rows z-normalised with training
statistics, one decision per utterance; with `hidden=0` the head is linear, i.e. the multinomial
logistic regression of a linear probe (pase-probe), which the frame MLP does not reach on
small corpora (egs/speakers/cls1/README.md).
`FinetuneClassifier` puts a PASE encoder in front of the same head to read waveforms: fine-tuned
with it, or frozen with a learnt weighted sum of its layers (pase.models.downstream).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pase.errors import PaseError
from pase.io import atomic_write
from pase.models.downstream import EncoderFront, FrontOptions
from pase.models.frontend import WaveFe, wf_builder

POOLINGS = ("frame", "stats")
FORMAT = "pase-cls/2"  # 2: stats pooling normalises the pooled rows; hidden 0 is a linear head
_STD_FLOOR = 1e-5  # a constant input dimension must not divide by zero


class ClassifierError(PaseError):
    """A classifier checkpoint that cannot be used."""


@dataclass(frozen=True)
class HeadConfig:
    """The classifier head; the defaults are the original speaker-id MLP's."""

    feat_dim: int
    num_classes: int
    hidden: int = 256            # 0: no hidden layer, a linear (logistic regression) head
    dropout: float = 0.15
    pooling: str = "frame"
    avg_concat: bool = True

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.feat_dim < 1 or self.num_classes < 2 or self.hidden < 0:
            raise ValueError(f"need feat_dim >= 1, num_classes >= 2, hidden >= 0: {self}")

    @property
    def in_dim(self) -> int:
        """Width of one MLP input row."""
        return self.feat_dim * (2 if self.pooling == "stats" or self.avg_concat else 1)


class ClassifierHead(nn.Module):
    """Utterance features (frames x feat_dim) -> MLP input rows -> class log-probabilities per row.

    An utterance gives one row per frame (`pooling="frame"`) or a single row (`"stats"`); its
    score is the sum of its rows' log-probabilities, its class the argmax of that sum.
    """

    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("mean", torch.zeros(cfg.in_dim))
        self.register_buffer("std", torch.ones(cfg.in_dim))
        if cfg.hidden == 0:  # no LayerNorm: it would undo the z-normalisation of the row
            self.mlp = nn.Sequential(nn.Linear(cfg.in_dim, cfg.num_classes), nn.LogSoftmax(dim=-1))
        else:
            self.mlp = nn.Sequential(nn.LayerNorm(cfg.in_dim), nn.Linear(cfg.in_dim, cfg.hidden),
                                     nn.LayerNorm(cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout),
                                     nn.Linear(cfg.hidden, cfg.num_classes), nn.LogSoftmax(dim=-1))

    def _prenorm(self, feats: torch.Tensor) -> torch.Tensor:
        """(..., T, feat_dim) -> (..., R, in_dim): the rows before z-normalisation."""
        if self.cfg.pooling == "stats":
            return torch.cat([feats.mean(-2, keepdim=True), feats.std(-2, unbiased=False, keepdim=True)], -1)
        if self.cfg.avg_concat:
            return torch.cat([feats, feats.mean(-2, keepdim=True).expand_as(feats)], -1)
        return feats

    def rows(self, feats: torch.Tensor) -> torch.Tensor:
        """(..., T, feat_dim) utterance features -> (..., R, in_dim) z-normalised MLP input rows."""
        return (self._prenorm(feats) - self.mean) / self.std

    @torch.no_grad()
    def fit_norm(self, train_feats: Iterable[torch.Tensor]) -> None:
        """Set the z-normalisation of the rows from training utterances only (never dev or test data).

        Pooled rows are normalised after pooling, as a probe standardises them: the spread of
        utterance means is far smaller than that of frames, so frame statistics leave them tiny.
        """
        total = sq = None
        count = 0
        for f in train_feats:
            x = self._prenorm(f.to(self.mean.device)).double().reshape(-1, self.cfg.in_dim)
            total = x.sum(0) if total is None else total + x.sum(0)
            sq = (x * x).sum(0) if sq is None else sq + (x * x).sum(0)
            count += x.shape[0]
        if not count:
            raise ValueError("fit_norm: no training frames")
        mean = total / count
        self.mean.copy_(mean.float())
        self.std.copy_((sq / count - mean * mean).clamp_min(0).sqrt().clamp_min(_STD_FLOOR).float())

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.mlp(rows)

    def utterance_scores(self, feats: torch.Tensor) -> torch.Tensor:
        """Summed row log-probabilities (num_classes,) of one utterance's (T, feat_dim) features."""
        return self(self.rows(feats)).sum(0)


class FinetuneClassifier(EncoderFront):
    """A PASE encoder (fine-tuned or frozen, see `FrontOptions`) followed by a `ClassifierHead`,
    trained from waveforms."""

    def __init__(self, encoder: WaveFe, head: ClassifierHead, front: FrontOptions | None = None) -> None:
        if head.cfg.feat_dim != encoder.emb_dim:
            raise ValueError(f"head expects {head.cfg.feat_dim}-dim features, the encoder gives {encoder.emb_dim}")
        super().__init__(encoder, front)
        self.head = head

    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) waveforms -> (B, frames, emb_dim)."""
        return self.encode(wav).transpose(1, 2)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) equal-length chunks -> (B, R, num_classes) row log-probabilities."""
        return self.head(self.head.rows(self.features(wav)))

    def utterance_scores(self, wav: torch.Tensor) -> torch.Tensor:
        """Summed log-probabilities of one whole (T,) waveform."""
        return self.head.utterance_scores(self.features(wav.view(1, 1, -1))[0])


Classifier = ClassifierHead | FinetuneClassifier


def build_finetune(pase_cfg: str | Path, pase_ckpt: str | Path | None, num_classes: int,
                   front: FrontOptions | None = None, **head_options: Any) -> FinetuneClassifier:
    """The encoder of `pase_cfg` with `pase_ckpt`'s weights (the original's FE_e*.ckpt or ours) + a head.

    `head_options` are the other HeadConfig fields; the feature width is the encoder's.
    """
    encoder = wf_builder(pase_cfg)
    if pase_ckpt is not None:
        encoder.load_pretrained(pase_ckpt, load_last=True, verbose=True)
    head = ClassifierHead(HeadConfig(encoder.emb_dim, num_classes, **head_options))
    return FinetuneClassifier(encoder, head, front)


def save_classifier(path: Path, model: Classifier, classes: list[str], meta: dict[str, Any]) -> None:
    """Write the model, its class names and `meta` (how it was trained) atomically."""
    waveforms = isinstance(model, FinetuneClassifier)
    head = model.head if waveforms else model
    doc = {"format": FORMAT, "head": asdict(head.cfg), "classes": list(classes), "meta": meta,
           "encoder": model.encoder.config if waveforms else None,
           "front": asdict(model.front) if waveforms else None,
           "state": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    atomic_write(path, lambda f: torch.save(doc, f))


def load_classifier(path: Path) -> tuple[Classifier, list[str], dict[str, Any]]:
    """(model in eval mode, class names, meta) from a `save_classifier` file."""
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ClassifierError(f"{path}: not found; train a classifier first (pase-cls-train)") from None
    if isinstance(doc, dict) and str(doc.get("format", "")).startswith("pase-cls/") and doc["format"] != FORMAT:
        raise ClassifierError(f"{path}: written by an older pase-cls-train ({doc['format']}); train it again")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ClassifierError(f"{path}: not a pase-cls-train model")
    head = ClassifierHead(HeadConfig(**doc["head"]))
    front = FrontOptions(**doc["front"]) if doc.get("front") else None  # files before frozen fronts: fine-tuned
    model: Classifier = head if doc["encoder"] is None else FinetuneClassifier(wf_builder(doc["encoder"]), head, front)
    model.load_state_dict(doc["state"])
    return model.eval(), doc["classes"], doc["meta"]
