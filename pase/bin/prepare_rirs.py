"""pase-prepare-rirs: put openSLR simulated room impulse responses into a distortion config.

    pase-prepare-rirs --data_root RIRS_NOISES/simulated_rirs_16k \\
        --existing_cfg cfg/distortions/pase+.cfg --out_cfg conf/distortions.cfg

reads {smallroom,mediumroom,largeroom}/rir_list (the 5th field of each line is the wav path),
keeps a random fraction of each room type, and writes the existing config with reverb_irfiles
(sorted), reverb_fmt 'wav' and reverb_data_root replaced. The room ratios are floats (the
original parsed the small-room ratio as an integer).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from pase.augment.distortions import check_distortion_keys
from pase.augment.openslr import openslr_rirs
from pase.bin.common import ArgumentParser, run_main
from pase.config import load_config

log = logging.getLogger("pase-prepare-rirs")


def build_parser() -> ArgumentParser:
    p = ArgumentParser("pase-prepare-rirs", __doc__)
    p.add_argument("--data_root", type=Path, required=True,
                   help="the simulated_rirs_16k (or simulated_rirs) directory, or a directory "
                        "holding it")
    p.add_argument("--existing_cfg", default=None,
                   help="distortion config to start from (default: an empty one)")
    p.add_argument("--out_cfg", "--out_file", type=Path, required=True,
                   help="config to write (JSON); --out_file is the seed's data/prep spelling")
    for room in ("small", "medium", "large"):
        p.add_argument(f"--{room}_room_ratio", f"--{room}-room-ratio", type=float, default=1.0,
                       help=f"fraction of the {room}-room RIRs to keep (default 1.0)")
    p.add_argument("--reverb_p", type=float, default=None,
                   help="reverb probability (default: the existing config's, else 0.5 as PASE+)")
    p.add_argument("--seed", type=int, default=1, help="seed of the random subsampling")
    return p


def reverb_root_for(cfg: dict, base: Path) -> str:
    """base relative to the config's data_root when it lies inside it (configs stay relocatable)."""
    base, root = base.resolve(), cfg.get("data_root")
    if isinstance(root, str) and base.is_relative_to(Path(root).resolve()):
        return os.path.relpath(base, Path(root).resolve())
    return str(base)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    cfg = {} if args.existing_cfg is None else load_config(args.existing_cfg)
    check_distortion_keys(cfg, str(args.existing_cfg))
    base, rirs = openslr_rirs(args.data_root, {"smallroom": args.small_room_ratio,
                                               "mediumroom": args.medium_room_ratio,
                                               "largeroom": args.large_room_ratio}, args.seed)
    cfg.update(reverb_irfiles=rirs, reverb_fmt="wav", reverb_data_root=reverb_root_for(cfg, base))
    if args.reverb_p is not None:
        cfg["reverb_p"] = args.reverb_p
    cfg.setdefault("reverb_p", 0.5)
    args.out_cfg.parent.mkdir(parents=True, exist_ok=True)
    args.out_cfg.write_text(json.dumps(cfg, indent=2) + "\n")
    log.info("%d RIRs under %s -> %s", len(rirs), base, args.out_cfg)


def cli() -> None:
    run_main(main, "pase-prepare-rirs")


if __name__ == "__main__":
    cli()
