"""pase-make-shards: pack a data dir into WebDataset tar shards for streamed training.

    pase-make-shards data/train_960 dump/shards/train_960 --shard_size 256
    pase-train --train_data dump/shards/train_960 ...

Each shard holds `--shard_size` utterances (segments cut out) as 16-bit FLAC with their id and
speaker, in a seeded random order; shards.json indexes them. See pase/data/shards.py.
"""
from __future__ import annotations

import logging
from pathlib import Path

from pase.bin.common import ArgumentParser, run_main
from pase.data.shards import ShardInfo, write_shards
from pase.io import DataDir

log = logging.getLogger("pase-make-shards")


def build_parser() -> ArgumentParser:
    p = ArgumentParser("pase-make-shards", __doc__)
    p.add_argument("data_dir", type=Path, help="Kaldi data dir (wav.scp, utt2spk, optional segments)")
    p.add_argument("out_dir", type=Path, help="shard dir to create")
    p.add_argument("--shard_size", type=int, default=256, help="utterances per shard")
    p.add_argument("--seed", type=int, default=0, help="seed of the packing order")
    return p


def main(argv: list[str] | None = None) -> list[ShardInfo]:
    args = build_parser().parse_args(argv)
    shards = write_shards(DataDir.load(args.data_dir), args.out_dir, shard_size=args.shard_size, seed=args.seed)
    log.info("%s: %d shard(s), %d utterances, %.1f h", args.out_dir, len(shards), sum(s.utts for s in shards),
             sum(s.samples for s in shards) / 16000 / 3600)
    return shards


def cli() -> None:
    run_main(main, "pase-make-shards")


if __name__ == "__main__":
    cli()
