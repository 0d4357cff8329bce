"""pase-cls-train: train an utterance classifier on frame features or, through an encoder, on waveforms.

    pase-cls-train --config conf/cls.yaml --train data/train_mfcc --dev data/dev_mfcc --out exp/mfcc
    pase-cls-train --finetune --fe_cfg conf/PASE+.cfg --fe_ckpt FE_e199.ckpt \\
        --train data/train --dev data/dev --out exp/pase+_ft
    pase-cls-train --freeze_encoder --encoder_layers all --fe_cfg conf/PASE+.cfg --fe_ckpt FE_e199.ckpt \\
        --train data/train --dev data/dev --out exp/pase+_frozen_all

Each data dir needs utt2label, and feats.scp (pase-extract, any --feats_type) or, with
--finetune (the encoder trains with the head) or --freeze_encoder (it stays fixed), wav.scp.
--encoder_layers then mixes those encoder layers by softmax weights learnt with the head.
The classes are --classes (one label per line) or the training labels; every class needs
training examples. Writes out/model.pt (the epoch with the lowest dev error), out/history.json,
out/train.yaml and, for mixed layers, out/layer_weights (the learnt weights). Defaults are the
original speaker-id script's; its emotion script used --lr 0.0001 --halving_factor 0.8 --epochs 15.
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from pase.bin.common import (ArgumentParser, add_device_options, add_encoder_options, add_front_options,
                             run_main, setup_device, str2bool)
from pase.cls.experiment import ClsRun, train_classifier
from pase.cls.model import POOLINGS
from pase.cls.train import TrainOptions
from pase.config import ConfigError
from pase.models.downstream import EncoderSource, front_options

HEAD_OPTIONS = ("hidden", "dropout", "pooling", "avg_concat")  # the HeadConfig fields options set


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
    add_front_options(m)
    add_encoder_options(m, cfg_help="encoder config (--finetune, --freeze_encoder)",
                        ckpt_help="encoder checkpoint (--finetune, --freeze_encoder)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--lr", type=float, default=0.001, help="SGD learning rate")
    o.add_argument("--encoder_lr", type=float, default=None, help="encoder LR when fine-tuning (default: --lr; "
                   "the layer weights train at --lr)")
    o.add_argument("--momentum", type=float, default=0.0)
    o.add_argument("--epochs", type=int, default=24)
    o.add_argument("--batch_size", type=int, default=128, help="rows (frames or utterances) per batch; "
                   "utterance chunks when reading waveforms")
    o.add_argument("--chunk_size", type=int, default=32000, help="samples per training chunk (waveforms)")
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
    front = front_options(args.finetune, args.freeze_encoder, args.encoder_layers, args.encoder_layer_norm)
    run = ClsRun(args.train, args.dev, args.out, args.classes,
                 head={k: getattr(args, k) for k in HEAD_OPTIONS},
                 opts=TrainOptions(**{f.name: getattr(args, f.name) for f in fields(TrainOptions)}),
                 encoder=None if front is None else EncoderSource(args.fe_cfg, args.fe_ckpt, front),
                 settings={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()})
    return train_classifier(run, device)


def cli() -> None:
    run_main(main, "pase-cls-train")


if __name__ == "__main__":
    cli()
