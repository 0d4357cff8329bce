"""pase-cls-train: train an utterance classifier on frame features or, fine-tuning, on waveforms.

    pase-cls-train --config conf/cls.yaml --train data/train_mfcc --dev data/dev_mfcc --out exp/mfcc
    pase-cls-train --finetune --fe_cfg conf/PASE+.cfg --fe_ckpt FE_e199.ckpt \\
        --train data/train --dev data/dev --out exp/pase+_ft

Each data dir needs utt2label, and feats.scp (pase-extract, any --feats_type) or, with
--finetune, wav.scp. The classes are --classes (one label per line) or the training labels;
every class needs training examples. Writes out/model.pt (the epoch with the lowest dev error),
out/history.json and out/train.yaml. Defaults are the original speaker-id script's; its emotion
script used --lr 0.0001 --halving_factor 0.8 --epochs 15.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
import yaml

from pase.bin.common import (ArgumentParser, add_device_options, add_encoder_options, run_main,
                             setup_device, str2bool)
from pase.cls.features import class_inventory, load_features, read_classes, read_labels
from pase.cls.model import POOLINGS, ClassifierHead, HeadConfig, build_finetune, save_classifier
from pase.cls.train import TrainOptions, train_finetune, train_frozen
from pase.config import ConfigError
from pase.io import DataDir, DataDirError

log = logging.getLogger("pase-cls-train")


def build_parser() -> ArgumentParser:
    p = ArgumentParser("pase-cls-train", __doc__)
    d = p.add_argument_group("data")
    d.add_argument("--train", type=Path, help="training data dir (utt2label + feats.scp, or wav.scp)")
    d.add_argument("--dev", type=Path, help="dev data dir: model selection and the LR schedule")
    d.add_argument("--classes", type=Path, default=None, help="class list, one label per line")
    d.add_argument("--out", type=Path, help="output dir")
    m = p.add_argument_group("model")
    m.add_argument("--pooling", choices=POOLINGS, default="frame",
                   help="frame: frame MLP, summed log-probs (the original); stats: mean+std pooling")
    m.add_argument("--avg_concat", type=str2bool, default=True, help="True/False: append the utterance mean (frame)")
    m.add_argument("--hidden", type=int, default=256, help="hidden units")
    m.add_argument("--dropout", type=float, default=0.15)
    m.add_argument("--finetune", action="store_true", help="train the PASE encoder too, from waveforms")
    add_encoder_options(m, cfg_help="encoder config (fine-tuning)", ckpt_help="encoder checkpoint (fine-tuning)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--lr", type=float, default=0.001, help="SGD learning rate")
    o.add_argument("--encoder_lr", type=float, default=None, help="encoder LR when fine-tuning (default: --lr)")
    o.add_argument("--momentum", type=float, default=0.0)
    o.add_argument("--epochs", type=int, default=24)
    o.add_argument("--batch_size", type=int, default=128, help="rows (frames or utterances) per batch; "
                   "utterance chunks when fine-tuning")
    o.add_argument("--chunk_size", type=int, default=32000, help="samples per training chunk (fine-tuning)")
    o.add_argument("--halving_factor", type=float, default=0.5, help="LR factor when dev error stalls")
    o.add_argument("--improvement_threshold", type=float, default=0.0025,
                   help="relative dev error improvement below which the LR is scaled")
    o.add_argument("--seed", type=int, default=1234)
    r = p.add_argument_group("run")
    add_device_options(r)
    return p


def main(argv: list[str] | None = None) -> list[dict]:
    args = build_parser().parse_args(argv)
    for name in ("train", "dev", "out"):
        if getattr(args, name) is None:
            raise ConfigError(f"--{name} is required")
    device = setup_device(args)
    if args.finetune:
        train_data, dev_data = DataDir.load(args.train), DataDir.load(args.dev)
        train_ids, dev_ids = list(train_data.utt2spk), list(dev_data.utt2spk)
    else:
        train_feats, dev_feats = load_features(args.train), load_features(args.dev)
        train_ids, dev_ids = list(train_feats), list(dev_feats)
        dims = next(iter(train_feats.values())).shape[1], next(iter(dev_feats.values())).shape[1]
        if dims[0] != dims[1]:
            raise DataDirError(f"{args.train}/feats.scp has {dims[0]}-dim features, {args.dev}/feats.scp {dims[1]}")
    train_labels, dev_labels = read_labels(args.train, train_ids), read_labels(args.dev, dev_ids)
    classes = class_inventory(train_labels, args.train, read_classes(args.classes) if args.classes else None,
                              {args.dev: dev_labels})
    index = {c: i for i, c in enumerate(classes)}
    opts = TrainOptions(lr=args.lr, epochs=args.epochs, batch_size=args.batch_size,
                        halving_factor=args.halving_factor, improvement_threshold=args.improvement_threshold,
                        momentum=args.momentum, seed=args.seed, encoder_lr=args.encoder_lr,
                        chunk_size=args.chunk_size)
    args.out.mkdir(parents=True, exist_ok=True)
    saved_args = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    (args.out / "train.yaml").write_text(yaml.safe_dump(saved_args, sort_keys=False))
    meta = {"args": saved_args, "train": str(args.train)}
    torch.manual_seed(args.seed)  # same initial weights for the same seed

    head_opts = dict(num_classes=len(classes), hidden=args.hidden, dropout=args.dropout, pooling=args.pooling,
                     avg_concat=args.avg_concat)
    if args.finetune:
        model = build_finetune(args.fe_cfg, args.fe_ckpt, **head_opts)
        train = [(train_data[u], index[train_labels[u]]) for u in train_ids]
        dev = [(dev_data[u], index[dev_labels[u]]) for u in dev_ids]
        trainer = train_finetune
    else:
        model = ClassifierHead(HeadConfig(feat_dim=dims[0], **head_opts))
        train = [(torch.from_numpy(train_feats[u]), index[train_labels[u]]) for u in train_ids]
        dev = [(torch.from_numpy(dev_feats[u]), index[dev_labels[u]]) for u in dev_ids]
        trainer = train_frozen
    log.info("%s: %d classes, %d train / %d dev utterances, %s pooling%s", args.out, len(classes), len(train),
             len(dev), args.pooling, ", fine-tuning the encoder" if args.finetune else "")
    history = trainer(model, train, dev, opts, lambda m: save_classifier(args.out / "model.pt", m, classes, meta),
                      device)
    (args.out / "history.json").write_text(json.dumps(history, indent=1) + "\n")
    best = min(history, key=lambda r: r["dev_err"])
    log.info("best dev error %.4f (epoch %d) -> %s", best["dev_err"], best["epoch"], args.out / "model.pt")
    return history


def cli() -> None:
    run_main(main, "pase-cls-train")


if __name__ == "__main__":
    cli()
