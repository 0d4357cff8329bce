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

import json
import logging
from pathlib import Path

import numpy as np

from pase.augment.banks import (PASE_PLUS_SETTINGS, make_filters, make_noises, make_overlap,
                                simulate_rirs, speech_like)
from pase.augment.openslr import openslr_rirs
from pase.bin.common import ArgumentParser, run_main
from pase.errors import PaseError
from pase.io import read_audio, read_kaldi_map

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


def speech_sources(scp: Path) -> list[str]:
    """Audio sources of a wav.scp ('utt path-or-pipe') or of a plain list of files."""
    lines = [line.strip() for line in scp.read_text().splitlines() if line.strip()]
    if lines and all(len(line.split()) == 1 for line in lines):
        return lines
    return list(read_kaldi_map(scp).values())


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    counts = ["rooms_per_type", "rirs_per_room", "num_noises", "num_overlap"]
    for name in counts + ([] if args.no_filters else ["num_bandrop_filters"]):
        if getattr(args, name) < 1:
            raise PaseError(f"--{name} must be >= 1")
    for name in ("noise_seconds", "overlap_seconds"):
        if not getattr(args, name) > 0:
            raise PaseError(f"--{name} must be > 0")
    rng = np.random.default_rng(args.seed)
    sr, out = args.sample_rate, args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    if args.speech_scp is None:
        def talker(n: int) -> np.ndarray:
            return speech_like(n / sr, rng, sr)
    else:
        recordings = [read_audio(s, sample_rate=sr) for s in speech_sources(args.speech_scp)]

        def talker(n: int) -> np.ndarray:
            wav = recordings[rng.integers(len(recordings))]
            start = rng.integers(max(1, len(wav) - n + 1))
            return np.pad(wav[start:start + n], (0, max(0, n - len(wav))))

    simulate_rirs(out, rng, args.rooms_per_type, args.rirs_per_room, sr)
    make_noises(out / "noises", rng, args.num_noises, args.noise_seconds, talker, sr)
    overlap_list = make_overlap(out / "overlap", args.num_overlap, args.overlap_seconds, talker,
                                sr)
    _, rirs = openslr_rirs(out, {}, args.seed)
    cfg = {"data_root": str(out.resolve()), **PASE_PLUS_SETTINGS,
           "reverb_data_root": ".", "reverb_fmt": "wav", "reverb_irfiles": rirs,
           "overlap_dir": "overlap", "overlap_list": str(overlap_list.relative_to(out)),
           "noises_dir": ["noises"]}
    if not args.no_filters:
        make_filters(out / "filters", rng, args.num_bandrop_filters, sample_rate=sr)
        cfg.update(bandrop_data_root="filters/bandrop", bandrop_fmt="npy", bandrop_irfiles=[],
                   downsample_data_root="filters", downsample_fmt="npy",
                   downsample_irfiles=["filter_16_to_8.npy"])
    out_cfg = args.out_cfg or out / "distortions.cfg"
    out_cfg.parent.mkdir(parents=True, exist_ok=True)
    out_cfg.write_text(json.dumps(cfg, indent=2) + "\n")
    log.info("distortion banks in %s; config %s", out, out_cfg)


def cli() -> None:
    run_main(main, "pase-make-distortion-banks")


if __name__ == "__main__":
    cli()
