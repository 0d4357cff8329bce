"""pase-split-data: split a data dir into train/valid data dirs by held-out speakers.

    pase-split-data data/train data/pase_train data/pase_valid --valid_fraction 0.1 --seed 3
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from pase.bin.common import ArgumentParser, run_main
from pase.data.split import split_by_speaker
from pase.io import DataDir, copy_data_dir

log = logging.getLogger("pase-split-data")


def build_parser() -> ArgumentParser:
    p = ArgumentParser("pase-split-data", __doc__)
    p.add_argument("data_dir", type=Path, help="Kaldi data dir to split")
    p.add_argument("train_dir", type=Path, help="output data dir for the training speakers")
    p.add_argument("valid_dir", type=Path, help="output data dir for the held-out speakers")
    p.add_argument("--valid_fraction", type=float, default=0.1,
                   help="fraction of the speakers held out (default 0.1)")
    p.add_argument("--num_valid_speakers", type=int, default=None,
                   help="hold out exactly this many speakers (overrides --valid_fraction)")
    p.add_argument("--seed", type=int, default=3, help="speaker shuffle seed (default 3)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    data = DataDir.load(args.data_dir)
    train, valid = split_by_speaker(data, args.valid_fraction,
                                    num_valid_speakers=args.num_valid_speakers, seed=args.seed)
    for out_dir, ids in ((args.train_dir, train), (args.valid_dir, valid)):
        copy_data_dir(args.data_dir, out_dir, utt_ids=ids)
        log.info("%s: %d utterances, %d speakers", out_dir, len(ids),
                 len({data.utt2spk[u] for u in ids}))


def cli() -> None:
    run_main(main, "pase-split-data")


if __name__ == "__main__":
    cli()
