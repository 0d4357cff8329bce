"""pase-extract: dump PASE/PASE+, MFCC or fbank features of a Kaldi data dir as ark/scp.

    pase-extract data/test dump/test --fe_cfg cfg/frontend/PASE+.cfg --fe_ckpt FE_e199.ckpt
    pase-extract data/test dump/mfcc/test --feats_type mfcc --feats_config conf/mfcc.yaml
    utils/run_local.sh JOB=1:4 log/extract.JOB.log pase-extract data/test dump/test ... --nj 4 --job JOB
    pase-extract data/test dump/test --nj 4 --merge

Every feature type gives the same outputs: dump/test/feats.{ark,scp}, dump/test/cmvn.{ark,scp}
(per speaker) and the data dir data/test_<feats_type>: a copy of data/test (with every utt2* and
spk2* file, e.g. utt2label) plus feats.scp, cmvn.scp and utt2num_frames. --feats_config holds
options of torchaudio.compliance.kaldi.mfcc / .fbank under Kaldi's names (num_ceps, num_mel_bins,
frame_length, dither, ...) and delta_order (Kaldi's add-deltas); without it Kaldi's defaults hold.

Jobs as in Kaldi: --nj N --job J extracts the J-th of N contiguous shards of the data dir
(feats.J.{ark,scp}), with its frame counts and per-speaker CMVN sums computed while writing;
--nj N --merge then joins the N jobs without reading any feature back. Without --job and
--merge, pase-extract runs the N jobs as local processes, then merges. Each of N > 1 jobs uses
CPUs/N torch threads unless --num_threads. A second pase-extract on the same dump dir fails at once.

--layers (feats_type pase): final (the default), all, or comma-separated forward_hidden layers by
0-based index or name (PASE+: 0-6 skip1..skip7, 7 rnn, 8 final). Any other choice than final
alone dumps each chosen layer on its own: dump_dir/<name>/{feats,cmvn}.{ark,scp} and the data
dir <out_data_dir>_<name>.
An encoder config given as --config (this command's older spelling) is still taken as --fe_cfg.
"""
from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import torch

from pase.bin.common import (ArgumentParser, add_device_options, add_encoder_options, run_main,
                             set_threads, setup_device)
from pase.config import load_config
from pase.dump import dump_lock, extract_job, merge_dump, run_jobs, threads_per_job
from pase.errors import PaseError
from pase.extraction import ExtractOptions, FeatureExtractor, reestimate_on_data
from pase.io import DataDir
from pase.kaldi_feats import FEATURE_FUNCTIONS, KaldiFeatureExtractor, feature_options
from pase.models.frontend import wf_builder

def build_parser() -> ArgumentParser:
    p = ArgumentParser("pase-extract", __doc__, legacy_config="fe_cfg")
    p.add_argument("data_dir", type=Path, help="Kaldi data dir (wav.scp, optional utt2spk, segments)")
    p.add_argument("dump_dir", type=Path, help="where feats.{ark,scp} and cmvn.{ark,scp} go")
    p.add_argument("--out_data_dir", type=Path, default=None,
                   help="output data dir (default: <data_dir>_<feats_type>)")
    p.add_argument("--feats_type", choices=("pase", *FEATURE_FUNCTIONS), default="pase",
                   help="pase: the encoder's features; mfcc / fbank: Kaldi's (torchaudio)")
    p.add_argument("--feats_config", "--feat_config", type=Path, default=None,
                   help="YAML of mfcc/fbank options (Kaldi's names, and delta_order)")
    add_encoder_options(p)
    p.add_argument("--random_init", action="store_true",
                   help="run an untrained encoder (pipeline checks only; the features mean nothing)")
    p.add_argument("--seed", type=int, default=2,
                   help="random-init seed, the same in every job (pase-train's default: its step 0)")
    add_device_options(p)
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CPU and GPU)")
    p.add_argument("--peak_norm", action="store_true",
                   help="scale each utterance to peak |x| = 1 (the original TIMIT recipe did)")
    p.add_argument("--bn_reestimate", action="store_true",
                   help="re-estimate the BatchNorm statistics on this data dir before extracting "
                        "(target-domain statistics instead of the pretraining ones)")
    p.add_argument("--batch_size", type=int, default=8, help="max utterances per batch")
    p.add_argument("--max_batch_seconds", type=float, default=120.0,
                   help="max padded audio per batch (bounds memory)")
    p.add_argument("--max_chunk_seconds", type=float, default=30.0,
                   help="encode longer utterances in pieces of this length (bounds memory; same features)")
    p.add_argument("--layers", default="final",
                   help="final, all, or comma-separated forward_hidden layer indices/names, each dumped "
                        "on its own (dump_dir/<name>, <out_data_dir>_<name>)")
    p.add_argument("--nj", type=int, default=1, help="number of jobs (shards of the data dir)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--job", type=int, default=None,
                      help="extract only shard JOB (1..nj) of the data dir; merge afterwards with --merge")
    mode.add_argument("--merge", action="store_true",
                      help="merge jobs 1..nj (run with --job) into feats.scp, cmvn and the output data dir")
    p.add_argument("--skip_bad", action="store_true",
                   help="log and skip unreadable/too-short utterances (listed in dump_dir/skipped) "
                        "instead of failing")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    return p


def load_encoder(args: argparse.Namespace):
    torch.manual_seed(args.seed)  # as pase-train does before building the model
    encoder = wf_builder(args.fe_cfg)
    if args.fe_ckpt is not None:
        encoder.load_pretrained(args.fe_ckpt, load_last=True, verbose=True)
    elif not args.random_init:
        raise PaseError("give --fe_ckpt (or --random_init for an untrained encoder)")
    return encoder


def kaldi_options(args: argparse.Namespace) -> dict:
    """The checked --feats_config of an mfcc/fbank dump (empty: Kaldi's defaults)."""
    options = load_config(args.feats_config) if args.feats_config else {}
    return feature_options(args.feats_type, options)


def make_extractor(args: argparse.Namespace, data: DataDir) -> FeatureExtractor | KaldiFeatureExtractor:
    """The extractor of --feats_type; both write through the same `pase.dump.JobWriter`."""
    if args.feats_type != "pase":
        if args.layers not in ("final", "last"):
            raise PaseError(f"--layers {args.layers}: mfcc/fbank have one output; --layers is for --feats_type pase")
        set_threads(args)
        return KaldiFeatureExtractor(args.feats_type, kaldi_options(args), peak_norm=args.peak_norm,
                                     skip_bad=args.skip_bad, progress=not args.no_progress)
    if args.feats_config is not None:
        raise PaseError("--feats_config is for --feats_type mfcc/fbank; the encoder's config is --fe_cfg")
    opts = ExtractOptions(device=str(setup_device(args)), bf16=args.bf16, peak_norm=args.peak_norm,
                          batch_size=args.batch_size, max_batch_seconds=args.max_batch_seconds,
                          max_chunk_seconds=args.max_chunk_seconds, skip_bad=args.skip_bad,
                          progress=not args.no_progress)
    encoder = load_encoder(args)
    if args.bn_reestimate:
        reestimate_on_data(encoder, data, opts)
    return FeatureExtractor(encoder, opts, layers=args.layers)


def run_job(args: argparse.Namespace, job: int) -> None:
    data = DataDir.load(args.data_dir)
    extract_job(make_extractor(args, data), data, args.dump_dir, args.nj, job)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.nj < 1 or (args.job is not None and not 1 <= args.job <= args.nj):
        raise PaseError(f"need --nj >= 1 and 1 <= --job <= --nj (got {args.nj}, {args.job})")
    if args.nj > 1 and args.num_threads is None:  # the jobs share this machine's CPUs
        args.num_threads = threads_per_job(args.nj)
    with dump_lock(args.dump_dir, args.job):
        if args.job is not None:
            run_job(args, args.job)
            return
        if not args.merge and args.nj == 1:
            run_job(args, 1)
        elif not args.merge:
            args.no_progress = True  # N bars on one terminal
            run_jobs(functools.partial(run_job, args), args.nj)
        out_dir = args.out_data_dir or args.data_dir.parent / f"{args.data_dir.name}_{args.feats_type}"
        merge_dump(DataDir.load(args.data_dir), args.dump_dir, args.nj, out_dir)


def cli() -> None:
    run_main(main, "pase-extract")


if __name__ == "__main__":
    cli()
