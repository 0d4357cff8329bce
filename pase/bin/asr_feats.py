"""pase-asr-feats: MFCC (or fbank) + per-speaker mean normalisation + deltas as ark/scp.

    pase-asr-feats data/test dump/mfcc/test --out_data_dir data/test_mfcc [--type fbank]

The GMM systems' features (pase.asr.features), written in pase-extract's layout so that the
hybrid MLP can use them as its MFCC baseline input: dump/.../feats.{ark,scp} and a copy of the
data dir with feats.scp.
"""
from __future__ import annotations

from pathlib import Path

from pase.asr.features import mfcc_cmvn_deltas, write_feats
from pase.bin.common import ArgumentParser, run_main
from pase.extraction import absolute
from pase.io import DataDir, copy_data_dir, read_kaldi_map, write_kaldi_map


def main(argv: list[str] | None = None) -> None:
    p = ArgumentParser("pase-asr-feats", __doc__)
    p.add_argument("data_dir", type=Path)
    p.add_argument("dump_dir", type=Path)
    p.add_argument("--out_data_dir", type=Path, required=True)
    p.add_argument("--type", choices=("mfcc", "fbank"), default="mfcc", help="13 MFCCs or 40 filterbanks")
    args = p.parse_args(argv)
    data = DataDir.load(args.data_dir)
    feats = mfcc_cmvn_deltas(data, args.type)
    args.dump_dir.mkdir(parents=True, exist_ok=True)
    write_feats(feats, absolute(args.dump_dir / "feats.ark"), args.dump_dir / "feats.scp")
    copy_data_dir(args.data_dir, args.out_data_dir, utt_ids=sorted(feats))
    write_kaldi_map(args.out_data_dir / "feats.scp", read_kaldi_map(args.dump_dir / "feats.scp"))


def cli() -> None:
    run_main(main, "pase-asr-feats")


if __name__ == "__main__":
    cli()
