"""pase-make-distortion-banks: simulate the banks the PASE+ distortions need, and a config for them.

    pase-make-distortion-banks data/distortion_banks --seed 0

writes, under the output directory:
  simulated_rirs_16k/{smallroom,mediumroom,largeroom}/RoomNNN/*.wav + rir_list  (pyroomacoustics
      shoebox rooms; the openSLR layout, so pase-prepare-rirs reads it too)
  noises/*.wav             white, pink, brown, babble, hum and machine-like noise
  overlap/*.wav, overlap/overlap.lst   interfering speech (speech-like, or crops of --speech_scp)
  filters/bandrop/filter_<i>_<f1>_<f2>.npy, filters/filter_16_to_8.npy   (unless --no_filters)
  distortions.cfg          every PASE+ distortion with the original probabilities, codec2 off
The same --seed gives the same files.
"""
from __future__ import annotations

import logging
from dataclasses import fields
from pathlib import Path

from pase.augment.bank_dir import BankSizes, make_distortion_banks
from pase.bin.common import ArgumentParser, run_main
from pase.errors import PaseError

log = logging.getLogger("pase-make-distortion-banks")


def build_parser() -> ArgumentParser:
    p = ArgumentParser("pase-make-distortion-banks", __doc__)
    p.add_argument("out_dir", type=Path, help="where the banks and distortions.cfg go")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rooms_per_type", type=int, default=2,
                   help="simulated rooms per room type (small, medium, large)")
    p.add_argument("--rirs_per_room", type=int, default=5,
                   help="microphone positions (RIRs) per room")
    p.add_argument("--num_noises", type=int, default=10)
    p.add_argument("--noise_seconds", type=float, default=5.0)
    p.add_argument("--num_overlap", type=int, default=10,
                   help="interfering-speech files")
    p.add_argument("--overlap_seconds", type=float, default=4.0)
    p.add_argument("--speech_scp", type=Path, default=None,
                   help="wav.scp (or list of audio files) of real speech for babble and overlap "
                        "(default: synthetic speech-like signals)")
    p.add_argument("--num_bandrop_filters", type=int, default=20)
    p.add_argument("--no_filters", action="store_true",
                   help="write no filter files: the config then designs band-drop and low-pass "
                        "filters on the fly")
    p.add_argument("--out_cfg", type=Path, default=None,
                   help="config to write (default: OUT_DIR/distortions.cfg)")
    p.add_argument("--sample_rate", type=int, default=16000)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    counts = ["rooms_per_type", "rirs_per_room", "num_noises", "num_overlap"]
    for name in counts + ([] if args.no_filters else ["num_bandrop_filters"]):
        if getattr(args, name) < 1:
            raise PaseError(f"--{name} must be >= 1")
    for name in ("noise_seconds", "overlap_seconds"):
        if not getattr(args, name) > 0:
            raise PaseError(f"--{name} must be > 0")
    sizes = BankSizes(**{f.name: getattr(args, f.name) for f in fields(BankSizes)})
    cfg = make_distortion_banks(args.out_dir, sizes, seed=args.seed, speech_scp=args.speech_scp,
                                filters=not args.no_filters, out_cfg=args.out_cfg,
                                sample_rate=args.sample_rate)
    log.info("distortion banks in %s; config %s", args.out_dir, cfg)


def cli() -> None:
    run_main(main, "pase-make-distortion-banks")


if __name__ == "__main__":
    cli()
