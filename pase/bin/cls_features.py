"""pase-cls-features: MFCC or fbank baseline features of a Kaldi data dir, laid out as pase-extract's.

    pase-cls-features data/test dump/mfcc/test --type mfcc --feat_config conf/mfcc.yaml

writes dump/mfcc/test/feats.{ark,scp}, cmvn.{ark,scp} and the data dir data/test_mfcc (a copy
of data/test with feats.scp, cmvn.scp, utt2num_frames, and utt2label when data/test has one).
The --feat_config file (older recipes give it as --config, still accepted) holds options of
torchaudio.compliance.kaldi.mfcc / .fbank under Kaldi's names (num_ceps, num_mel_bins,
frame_length, frame_shift, dither, ...).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from pase.bin.common import ArgumentParser, add_threads_option, run_main, set_threads
from pase.cls.features import FEATURE_FUNCTIONS, dump_features
from pase.config import load_config
from pase.io import DataDir

log = logging.getLogger("pase-cls-features")


def build_parser() -> ArgumentParser:
    p = ArgumentParser("pase-cls-features", __doc__, legacy_config="feat_config")
    p.add_argument("data_dir", type=Path, help="Kaldi data dir (wav.scp, optional segments, utt2label)")
    p.add_argument("dump_dir", type=Path, help="where feats.{ark,scp} and cmvn.{ark,scp} go")
    p.add_argument("--type", choices=sorted(FEATURE_FUNCTIONS), default="mfcc", help="feature type")
    p.add_argument("--feat_config", type=Path, default=None, help="YAML of torchaudio/Kaldi feature options")
    p.add_argument("--out_data_dir", type=Path, default=None, help="output data dir (default: <data_dir>_<type>)")
    p.add_argument("--skip_bad", action="store_true",
                   help="log and skip unreadable/too-short utterances instead of failing")
    add_threads_option(p)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    set_threads(args)
    options = load_config(args.feat_config) if args.feat_config else {}
    out = args.out_data_dir or args.data_dir.parent / f"{args.data_dir.name}_{args.type}"
    n = dump_features(DataDir.load(args.data_dir), args.type, options, args.dump_dir, out,
                      skip_bad=args.skip_bad)
    log.info("%s features of %d utterances: %s; data dir: %s", args.type, n, args.dump_dir / "feats.scp", out)


def cli() -> None:
    run_main(main, "pase-cls-features")


if __name__ == "__main__":
    cli()
