"""pase-probe: few-shot linear probe of frozen features (speaker, or any utterance label).

    pase-probe data/test_other --fe_ckpt exp/pase+/FE_e9.ckpt --few 5 --test_per_class 5 \
        --test_snr clean 5 --out_json exp/pase+/probe/FE_e9.json
    pase-probe data/test_other --seed 2              # the same encoder at random init
    pase-probe data/test_other --feats mfcc          # MFCC 13 + deltas baseline

Each item (utterance, or one of --chop equal time pieces of it) is encoded once, mean+std pooled
over time; a logistic regression on --few standardised training items per class is scored on the
test items (white noise at --test_snr dB added to the test audio, seeded). --draws few-shot draws
give mean and spread. Pooled features are cached (--cache_dir), so reruns and new conditions cost
no repeated encoding. Prints a table; --out_json writes the full record.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path


from pase.bin.common import ArgumentParser, add_device_options, add_encoder_options, run_main, setup_device
from pase.config import ConfigError
from pase.probe import EncoderSpec, ProbeOptions, format_table, run_probe
from pase.probe.features import BN_MODES, FEATS

log = logging.getLogger("pase-probe")


def snr_value(v: str) -> float | None:
    if v.lower() in ("clean", "inf", "none"):
        return None
    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of dB or 'clean', got {v!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"expected a finite number of dB or 'clean', got {v!r}")
    return x


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pase" / "probe"


def build_parser() -> ArgumentParser:
    p = ArgumentParser("pase-probe", __doc__)
    p.add_argument("data_dir", type=Path, help="Kaldi data dir (wav.scp, optional segments) with labels")
    a = p.add_argument
    a("--labels", default="utt2spk", help="label file in the data dir (utt2spk, utt2label, ...) or a path")
    a("--chop", type=int, default=1, help="cut every utterance into this many equal pieces (items)")
    a("--feats", choices=FEATS, default="pase", help="pase (encoder) or a baseline")
    add_encoder_options(p, cfg_default=None,
                        cfg_help="encoder config (default: the run's train.yaml next to --fe_ckpt, else PASE+)",
                        ckpt_help="encoder checkpoint (default: random init with --seed)")
    a("--seed", type=int, default=2, help="random-init seed (pase-train's default: its step 0)")
    a("--bn_stats", choices=BN_MODES, default="ckpt",
      help="BatchNorm statistics: as saved, reset to init, or re-estimated on --bn_data")
    a("--bn_data", type=Path, default=None,
      help="data dir for --bn_stats reestimate (default: the probe's training-pool audio)")
    a("--few", type=int, default=5, help="training items per class")
    a("--test_per_class", type=int, default=5, help="test items per class")
    a("--test_list", type=Path, default=None, help="file of test item ids (instead of --test_per_class)")
    a("--split_seed", type=int, default=0, help="seed of the test split and the draws")
    a("--draws", type=int, default=5, help="few-shot training draws")
    a("--test_snr", type=snr_value, nargs="+", default=[None],
      help="test conditions: 'clean' and/or SNRs in dB of added white noise")
    a("--noise_seed", type=int, default=0)
    a("--peak_norm", action="store_true", help="peak-normalise every item's audio")
    a("--layers", default="final", help="final, all, or comma-separated layer indices/names")
    a("--C", dest="c", type=float, default=1.0, help="inverse L2 strength of the logistic regression")
    add_device_options(p)
    a("--batch_size", type=int, default=8)
    a("--max_chunk_seconds", type=float, default=30.0,
      help="encode longer items in pieces of this length (bounds memory; same features)")
    a("--cache_dir", type=Path, default=None, help=f"feature cache (default: {default_cache()})")
    a("--no_cache", action="store_true", help="do not read or write the cache")
    a("--out_json", type=Path, default=None, help="write the result record here")
    a("--no_progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.feats != "pase" and args.fe_ckpt is not None:
        raise ConfigError("--fe_ckpt applies to --feats pase only")
    device = str(setup_device(args))
    spec = EncoderSpec(feats=args.feats, fe_cfg=args.fe_cfg, ckpt=args.fe_ckpt, seed=args.seed,
                       bn_stats=args.bn_stats)
    opts = ProbeOptions(labels=args.labels, chop=args.chop, few=args.few, test_per_class=args.test_per_class,
                        test_list=args.test_list, split_seed=args.split_seed, draws=args.draws,
                        test_snr=tuple(args.test_snr), noise_seed=args.noise_seed, peak_norm=args.peak_norm,
                        layers=args.layers, c=args.c, bn_data=args.bn_data, device=device,
                        batch_size=args.batch_size, max_chunk_seconds=args.max_chunk_seconds,
                        progress=not args.no_progress,
                        cache_dir=None if args.no_cache else (args.cache_dir or default_cache()))
    result = run_probe(args.data_dir, spec, opts)
    print(format_table(result))
    if args.out_json is not None:
        args.out_json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out_json.with_name(args.out_json.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, args.out_json)
    return result


def cli() -> None:
    run_main(main, "pase-probe")


if __name__ == "__main__":
    cli()
