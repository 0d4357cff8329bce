"""One pase-cls-train run: data dirs -> classes -> classifier -> trained model dir.

Writes out/train.yaml (the run's settings) first, out/model.pt whenever the dev error is the
best so far, then out/history.json and, when encoder layers are mixed, out/layer_weights.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from pase.cls.features import class_inventory, load_features, read_classes, read_labels
from pase.cls.model import ClassifierHead, FinetuneClassifier, HeadConfig, build_finetune, save_classifier
from pase.cls.train import TrainOptions, train_finetune, train_frozen
from pase.errors import PaseError
from pase.io import DataDir, DataDirError
from pase.models.downstream import LAYER_WEIGHTS, EncoderSource, write_layer_weights

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClsRun:
    """What pase-cls-train was asked to do."""

    train: Path
    dev: Path
    out: Path
    classes: Path | None           # class list file; None: the training labels
    head: dict[str, Any]           # HeadConfig fields but feat_dim and num_classes
    opts: TrainOptions
    encoder: EncoderSource | None  # None: the data dirs' feats.scp features
    settings: dict[str, Any]       # the command's options: train.yaml and the model's meta


def read_sets(run: ClsRun) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Train and dev, utterance -> what the trainer reads (an Utterance, or its features), and the
    feature width (0 for waveforms: the encoder's)."""
    if run.encoder is not None:
        train, dev = DataDir.load(run.train), DataDir.load(run.dev)
        return {u: train[u] for u in train.utt2spk}, {u: dev[u] for u in dev.utt2spk}, 0
    train_feats, dev_feats = load_features(run.train), load_features(run.dev)
    dims = next(iter(train_feats.values())).shape[1], next(iter(dev_feats.values())).shape[1]
    if dims[0] != dims[1]:
        raise DataDirError(f"{run.train}/feats.scp has {dims[0]}-dim features, {run.dev}/feats.scp {dims[1]}")
    return ({u: torch.from_numpy(m) for u, m in train_feats.items()},
            {u: torch.from_numpy(m) for u, m in dev_feats.items()}, dims[0])


def describe(encoder: EncoderSource | None) -> str:
    if encoder is None:
        return ""
    front = encoder.front
    mode = ", frozen encoder" if front.freeze_encoder else ", fine-tuning the encoder"
    return mode + ("" if front.encoder_layers in ("final", "last") else f", layers {front.encoder_layers} mixed")


def train_classifier(run: ClsRun, device: torch.device) -> list[dict]:
    """Train the classifier `run` describes, write its dir; returns the per-epoch records."""
    if run.encoder is not None and run.encoder.front.freeze_encoder and run.encoder.ckpt is None:
        # as pase-train-mlp: a frozen random-init encoder is a mistake here (pase-probe --seed
        # measures that baseline); --finetune from random init stays allowed (training from scratch)
        raise PaseError("--freeze_encoder needs --fe_ckpt (the pretrained encoder to keep fixed)")
    train, dev, feat_dim = read_sets(run)
    train_labels, dev_labels = read_labels(run.train, train), read_labels(run.dev, dev)
    classes = class_inventory(train_labels, run.train, read_classes(run.classes) if run.classes else None,
                              {run.dev: dev_labels})
    index = {c: i for i, c in enumerate(classes)}
    run.out.mkdir(parents=True, exist_ok=True)
    (run.out / "train.yaml").write_text(yaml.safe_dump(run.settings, sort_keys=False))
    torch.manual_seed(run.opts.seed)  # same initial weights for the same seed
    if run.encoder is None:
        model: ClassifierHead | FinetuneClassifier = ClassifierHead(HeadConfig(feat_dim, len(classes), **run.head))
        trainer = train_frozen
    else:
        model = build_finetune(run.encoder.cfg, run.encoder.ckpt, len(classes), run.encoder.front, **run.head)
        trainer = train_finetune
    log.info("%s: %d classes, %d train / %d dev utterances, %s pooling%s", run.out, len(classes), len(train),
             len(dev), run.head["pooling"], describe(run.encoder))
    meta = {"args": run.settings, "train": str(run.train)}
    history = trainer(model, [(x, index[train_labels[u]]) for u, x in train.items()],
                      [(x, index[dev_labels[u]]) for u, x in dev.items()], run.opts,
                      lambda m: save_classifier(run.out / "model.pt", m, classes, meta), device)
    (run.out / "history.json").write_text(json.dumps(history, indent=1) + "\n")
    weights = model.layer_weights() if isinstance(model, FinetuneClassifier) else {}
    write_layer_weights(run.out / LAYER_WEIGHTS, weights)
    if weights:
        log.info("learnt layer weights: %s", ", ".join(f"{k} {w:.3f}" for k, w in weights.items()))
    kept = [r for r in history if r["best"]]  # the last one is what model.pt holds (ties go to the later)
    if kept:
        log.info("best dev error %.4f (epoch %d) -> %s", kept[-1]["dev_err"], kept[-1]["epoch"], run.out / "model.pt")
    return history
