"""pase-make-synthetic-corpus: an espeak-ng corpus in LibriSpeech's or TIMIT's real layout.

    pase-make-synthetic-corpus librispeech corpora/ls    # corpora/ls/LibriSpeech/<subset>/...
    pase-make-synthetic-corpus timit corpora/timit --jobs 2   # corpora/timit/TIMIT/{TRAIN,TEST}

--speakers and --utts_per_speaker take one number per set: LibriSpeech TRAIN DEV
(train-clean-5, dev-clean-2), TIMIT TRAIN DEV TEST (TEST speakers are core-test ids, DEV ones
dev-list ids, both filed under TIMIT/TEST as on the disc); TIMIT takes a single
--utts_per_speaker. The corpus is built in OUT.tmp and renamed to OUT when complete, with a
stamp of its parameters: rerunning with the same parameters returns at once, with others it
rebuilds. Same parameters and seed give byte-identical files, whatever --jobs.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

from pase.bin.common import ArgumentParser, run_main
from pase.errors import PaseError
from pase.synth.espeak import find_library
from pase.synth.librispeech import DEFAULT_SUBSETS, make_librispeech
from pase.synth.timit import make_timit

log = logging.getLogger("pase-make-synthetic-corpus")

PROG = "pase-make-synthetic-corpus"
STAMP = "synthetic_corpus.json"
FORMAT_VERSION = 1   # bump when the generator's output changes, so stale corpora get rebuilt
DEFAULTS = {
    "librispeech": {"speakers": [n for n, _ in DEFAULT_SUBSETS.values()],
                    "utts_per_speaker": [u for _, u in DEFAULT_SUBSETS.values()]},
    "timit": {"speakers": [24, 8, 24], "utts_per_speaker": [8]},
}


def build_parser() -> ArgumentParser:
    p = ArgumentParser(PROG, __doc__)
    p.add_argument("corpus", choices=sorted(DEFAULTS), help="which layout to write")
    p.add_argument("out_dir", type=Path, help="output directory (the corpus goes inside)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--speakers", type=int, nargs="+", default=None,
                   help="speakers per set: librispeech TRAIN DEV (default 8 3), "
                        "timit TRAIN DEV TEST (default 24 8 24)")
    p.add_argument("--utts_per_speaker", type=int, nargs="+", default=None,
                   help="utterances per speaker: librispeech TRAIN DEV (default 12 6), "
                        "timit N (default 8)")
    p.add_argument("--jobs", type=int, default=1, help="parallel synthesis processes")
    return p


def corpus_params(args: argparse.Namespace) -> dict:
    """The parameters that determine the output (what the stamp records)."""
    defaults = DEFAULTS[args.corpus]
    params = {"corpus": args.corpus, "seed": args.seed, "format": FORMAT_VERSION,
              "speakers": args.speakers or defaults["speakers"],
              "utts_per_speaker": args.utts_per_speaker or defaults["utts_per_speaker"]}
    for key in ("speakers", "utts_per_speaker"):
        if len(params[key]) != len(defaults[key]) or min(params[key]) < 0:
            raise PaseError(f"{args.corpus} takes {len(defaults[key])} non-negative "
                            f"number(s) for --{key}, got {params[key]}")
    return params


def build(params: dict, root: Path, jobs: int) -> None:
    if params["corpus"] == "librispeech":
        names = list(DEFAULT_SUBSETS)
        make_librispeech(root, subsets={name: (n, u) for name, n, u in
                                        zip(names, params["speakers"], params["utts_per_speaker"])},
                         seed=params["seed"], jobs=jobs)
    else:
        train, dev, test = params["speakers"]
        make_timit(root, n_train_speakers=train, n_dev_speakers=dev, n_test_speakers=test,
                   utts_per_speaker=params["utts_per_speaker"][0], seed=params["seed"], jobs=jobs)


def read_stamp(out_dir: Path) -> dict | None:
    try:
        return json.loads((out_dir / STAMP).read_text())
    except (OSError, ValueError):
        return None


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    params = corpus_params(args)
    out = args.out_dir
    if out.exists():
        stamp = read_stamp(out)
        if stamp == params:
            log.info("%s: complete corpus with these parameters, reused", out)
            return
        if stamp is None:
            raise PaseError(f"{out} exists and is not a synthetic corpus (no {STAMP}); "
                            "remove it or choose another directory")
        log.info("%s was made with other parameters (%s); rebuilding", out, stamp)
    try:
        find_library()
    except RuntimeError as e:
        raise PaseError(str(e)) from None
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        log.info("removing %s, left over by an interrupted run", tmp)
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    t0 = time.time()
    build(params, tmp, max(1, args.jobs))
    (tmp / STAMP).write_text(json.dumps(params, indent=1) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    log.info("%s corpus in %s (%.1f s)", args.corpus, out, time.time() - t0)


def cli() -> None:
    run_main(main, PROG)


if __name__ == "__main__":
    cli()
