"""pase-extract: dump PASE/PASE+, MFCC or fbank features of a Kaldi data dir as ark/scp.

    pase-extract data/test dump/test --fe_cfg cfg/frontend/PASE+.cfg --fe_ckpt FE_e199.ckpt
    pase-extract data/test dump/mfcc/test --feats_type mfcc --feats_config conf/mfcc.yaml

Every feature type gives the same outputs: dump/test/feats.{ark,scp}, dump/test/cmvn.{ark,scp}
(per speaker) and the data dir data/test_<feats_type>: a copy of data/test (with every utt2* and
spk2* file, e.g. utt2label) plus feats.scp, cmvn.scp and utt2num_frames. --feats_config holds
options of torchaudio.compliance.kaldi.mfcc / .fbank under Kaldi's names (num_ceps, num_mel_bins,
frame_length, dither, ...) and delta_order (Kaldi's add-deltas); without it Kaldi's defaults hold.
With --nj N it runs N local jobs, each on a contiguous shard, writing feats.JOB.{ark,scp};
--job J runs only shard J (for external schedulers such as Slurm arrays) and skips the merge.
An encoder config given as --config (this command's older spelling) is still taken as --fe_cfg.
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

from pase.bin.common import (ArgumentParser, add_device_options, add_encoder_options, run_main,
                             set_threads, setup_device)
from pase.errors import PaseError
from pase.extraction import (ExtractOptions, FeatureExtractor, absolute, finalize_dump, reestimate_on_data,
                             shard_paths)
from pase.config import load_config
from pase.io import DataDir, read_kaldi_map, write_kaldi_map
from pase.kaldi_feats import FEATURE_FUNCTIONS, KaldiFeatureExtractor, feature_options
from pase.models.frontend import wf_builder

log = logging.getLogger("pase-extract")


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
    p.add_argument("--nj", type=int, default=1, help="number of jobs (shards)")
    p.add_argument("--job", type=int, default=None, help="run only this shard (1-based) and do not merge")
    p.add_argument("--skip_bad", action="store_true",
                   help="log and skip unreadable/too-short utterances (listed in dump_dir/skipped) "
                        "instead of failing")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    return p


def load_encoder(args: argparse.Namespace):
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
    """The extractor of --feats_type; both write ark/scp through the same `run`."""
    if args.feats_type != "pase":
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
    return FeatureExtractor(encoder, opts)


def run_job(args: argparse.Namespace, data: DataDir, job: int) -> dict[str, str]:
    utts = data.shard(args.nj, job) if args.nj > 1 else data.utterances
    ark, scp = shard_paths(args.dump_dir, args.nj, job)
    frames, skipped = make_extractor(args, data).run(utts, absolute(ark), scp)
    log.info("job %d/%d: %d utterances, %d frames -> %s (%d skipped)", job, args.nj, len(frames),
             sum(frames.values()), ark, len(skipped))
    return skipped


def spawn_jobs(args: argparse.Namespace, argv: list[str]) -> dict[str, str]:
    """Run --nj local jobs in parallel, each `pase-extract ... --job J`, logging to dump_dir/log."""
    threads = args.num_threads or max(1, (os.cpu_count() or 1) // args.nj)
    logdir = args.dump_dir / "log"
    logdir.mkdir(parents=True, exist_ok=True)
    procs = []
    for job in range(1, args.nj + 1):
        (args.dump_dir / f"skipped.{job}").unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "pase.bin.extract", *argv, "--job", str(job),
               "--num_threads", str(threads), "--no_progress"]
        logf = open(logdir / f"extract.{job}.log", "w")
        procs.append((job, subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT), logf))
    failed = []
    for job, proc, logf in procs:
        proc.wait()
        logf.close()
        if proc.returncode != 0:
            failed.append(job)
    if failed:
        tail = (logdir / f"extract.{failed[0]}.log").read_text().strip().splitlines()[-1:]
        raise PaseError(f"job(s) {failed} failed; see {logdir}/extract.JOB.log; job {failed[0]} ended with: "
                        + "".join(tail))
    skipped: dict[str, str] = {}
    for job in range(1, args.nj + 1):
        path = args.dump_dir / f"skipped.{job}"
        if path.exists():
            skipped.update(read_kaldi_map(path))
    return skipped


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.nj < 1 or (args.job is not None and not 1 <= args.job <= args.nj):
        raise PaseError(f"need --nj >= 1 and 1 <= --job <= --nj (got {args.nj}, {args.job})")
    data = DataDir.load(args.data_dir)
    args.dump_dir.mkdir(parents=True, exist_ok=True)
    if args.job is not None:
        skipped = run_job(args, data, args.job)
        if skipped:  # read back by the parent for dump_dir/skipped
            write_kaldi_map(args.dump_dir / f"skipped.{args.job}",
                            {u: e.replace("\n", " ") for u, e in skipped.items()})
        return
    if args.nj == 1:
        skipped = run_job(args, data, 1)
    else:
        if args.feats_type == "pase":  # fail fast on a bad config/checkpoint before spawning jobs
            load_encoder(args)
        else:
            kaldi_options(args)
        skipped = spawn_jobs(args, argv)
    out_dir = args.out_data_dir or args.data_dir.parent / f"{args.data_dir.name}_{args.feats_type}"
    scps = [shard_paths(args.dump_dir, args.nj, j)[1] for j in range(1, args.nj + 1)]
    finalize_dump(data, args.dump_dir, out_dir, scps, skipped)
    log.info("features: %s; data dir: %s", args.dump_dir / "feats.scp", out_dir)


def cli() -> None:
    run_main(main, "pase-extract")


if __name__ == "__main__":
    cli()
