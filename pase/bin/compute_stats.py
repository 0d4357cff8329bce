"""pase-compute-stats: per-dimension mean and std of every worker target over N batches.

    pase-compute-stats --train_data data/pase_train --net_cfg cfg/workers/workers+.cfg \\
        --out_file exp/pase+/stats.json --chunk_size 32000 --max_batches 20 [--train_config conf/train.yaml]

    pase-compute-stats --data_root data/LibriSpeech/wavs --data_cfg data/librispeech_data.cfg \
        --out_file data/librispeech_stats.pkl          # the seed's command, as given

The defaults are the original script's (1 s chunks, no random scaling, whatever the training
used); std is the global one (see pase/train/stats.py). --train_config takes chunk_size,
random_scale, num_workers and seed from pase-train's --config file (its other keys are ignored),
so that the chunks are drawn and scaled as in training; --config and the command line win.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pase.bin.common import ArgumentParser, add_device_options, run_main, setup_device, str2bool
from pase.config import ConfigError, load_config
from pase.data import ChunkDataset, EpochSampler, make_loader, utterance_durations
from pase.io.data_cfg import load_train_data
from pase.models.workers import target_specs
from pase.targets import TargetBank
from pase.train.stats import compute_stats, describe, save_stats

log = logging.getLogger("pase-compute-stats")


TRAIN_KEYS = ("chunk_size", "random_scale", "num_workers", "seed")


def build_parser() -> ArgumentParser:
    p = ArgumentParser("pase-compute-stats", __doc__)
    p.add_argument("--train_data", type=Path, help="Kaldi data dir")
    p.add_argument("--data_cfg", type=Path, help="the original's data-cfg JSON (its train split), instead of --train_data")
    p.add_argument("--data_root", type=Path, help="wav root for --data_cfg")
    p.add_argument("--net_cfg", default="cfg/workers/workers+.cfg", help="workers config")
    p.add_argument("--out_file", type=Path, required=True, help="statistics JSON to write")
    p.add_argument("--train_config", type=Path, default=None,
                   help=f"pase-train's --config file: its {', '.join(TRAIN_KEYS)} are used")
    p.add_argument("--chunk_size", type=int, default=16000, help="samples per chunk (the original's 1 s)")
    p.add_argument("--random_scale", type=str2bool, default=False, help="True/False (the original: False)")
    p.add_argument("--batch_size", type=int, default=100)
    p.add_argument("--max_batches", type=int, default=20)
    p.add_argument("--num_workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=2)
    add_device_options(p)
    return p


def main(argv: list[str] | None = None) -> None:
    p = build_parser()
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--train_config", "--train-config", type=Path)
    train_config = pre.parse_known_args(argv)[0].train_config
    if train_config is not None:  # before parsing, so that --config and the command line win
        p.apply_config(train_config, only=TRAIN_KEYS)
    args = p.parse_args(argv)
    device = setup_device(args)
    data = load_train_data(args.train_data, args.data_cfg, args.data_root)
    bank = TargetBank(target_specs(load_config(args.net_cfg))).to(device)
    if not bank.dims:
        raise ConfigError(f"{args.net_cfg} has no worker with a computed target")
    ds = ChunkDataset(data, args.chunk_size, random_scale=args.random_scale, context=False,
                      durations=utterance_durations(data), seed=args.seed)
    sampler = EpochSampler(len(ds), batches_per_epoch=args.max_batches, batch_size=args.batch_size, seed=args.seed)
    loader = make_loader(ds, sampler, args.batch_size, args.num_workers)
    stats = compute_stats((b["chunk"][:, 0].to(device) for b in loader), bank, args.max_batches)
    args.out_file.parent.mkdir(parents=True, exist_ok=True)
    save_stats(args.out_file, stats, chunk_size=args.chunk_size, batches=args.max_batches,
               batch_size=args.batch_size, random_scale=args.random_scale, data=str(args.train_data or args.data_cfg))
    log.info("wrote %s: %s", args.out_file, describe(stats))


def cli() -> None:
    run_main(main, "pase-compute-stats")


if __name__ == "__main__":
    cli()
