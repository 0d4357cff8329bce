"""pase-average-checkpoints: the mean of a run's last or best K encoder checkpoints.

    pase-average-checkpoints exp/pase+ --last 5          # -> exp/pase+/FE_avg_last5.ckpt
    pase-average-checkpoints exp/pase+ --best 5 --ema    # FE_ema_e*.ckpt ranked by valid_total

The result is an encoder state_dict like FE_e<N>.ckpt: `load_pretrained`, pase-extract,
pase-probe and pase.load read it.
"""
from __future__ import annotations

import logging
from pathlib import Path

from pase.bin.common import ArgumentParser, run_main
from pase.train.average import average_state_dicts, select_checkpoints
from pase.train.trainer import atomic_save

log = logging.getLogger("pase-average-checkpoints")


def build_parser() -> ArgumentParser:
    p = ArgumentParser("pase-average-checkpoints", __doc__)
    p.add_argument("exp_dir", type=Path, help="a pase-train --save_path")
    p.add_argument("--last", type=int, default=None, help="average the last K epochs")
    p.add_argument("--best", type=int, default=None,
                   help="average the K epochs with the lowest valid_total (train_total without validation)")
    p.add_argument("--ema", action="store_true", help="average the FE_ema_e<N>.ckpt checkpoints (--ema_decay)")
    p.add_argument("--out_file", type=Path, default=None,
                   help="output (default: <exp_dir>/FE_[ema_]avg_{last,best}<K>.ckpt)")
    return p


def main(argv: list[str] | None = None) -> Path:
    args = build_parser().parse_args(argv)
    paths = select_checkpoints(args.exp_dir, last=args.last, best=args.best, ema=args.ema)
    kind = f"last{args.last}" if args.last is not None else f"best{args.best}"
    out = args.out_file or args.exp_dir / f"FE_{'ema_' if args.ema else ''}avg_{kind}.ckpt"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(average_state_dicts(paths), out)
    log.info("%s: mean of %s", out, ", ".join(p.name for p in paths))
    return out


def cli() -> None:
    run_main(main, "pase-average-checkpoints")


if __name__ == "__main__":
    cli()
