"""pase-train-gmm: GMM-HMM training and alignment (Kaldi's train_mono.sh / train_deltas.sh).

    pase-train-gmm mono --data data/train --lang data/lang --out exp/mono
    pase-train-gmm tri --data data/train --lang data/lang --out exp/tri1 --ali_from exp/mono \\
        --config conf/tri.yaml --align_data data/dev

Features (13 MFCC without energy, per-speaker mean normalisation, deltas and double deltas)
are computed once per data dir and cached as ``<out>/feats_<set>.{ark,scp}`` (a cache in the
``--ali_from`` dir is reused). Writes to ``--out``:

* ``final.npz``: the model (topology, tree, transitions, Gaussians; no pickle), ``tree``: the
  tree in Kaldi's binary format, ``num_pdfs``: the number of pdfs (MLP outputs);
* ``ali.ark`` / ``pdf_ali.ark``: transition-id and pdf-id alignments of the training data with
  the final model, as Kaldi int32-vector archives; for each ``--align_data`` set ``<set>``,
  ``ali_<set>.ark`` and ``pdf_ali_<set>.ark``; utterances that failed to align are listed in
  ``ali_failed`` / ``ali_failed_<set>``;
* ``log``: one line per EM iteration (frames, avg log-likelihood per frame, Gaussians, time).

Options come from ``--config`` (YAML, keys: the option names) and are overridden by the command
line; the defaults are Kaldi's (TIMIT's for tri: 2500 leaves,
15000 Gaussians).
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from pase.asr.align import align, read_alignments, write_alignments
from pase.asr.features import mfcc_cmvn_deltas, read_feats, write_feats
from pase.asr.gmm import (MONO_REALIGN_ITERS, TRI_REALIGN_ITERS, GmmSystem, TrainResult,
                          train_mono, train_tri)
from pase.asr.lang import Lang
from pase.bin.common import ArgumentParser, run_main
from pase.errors import PaseError
from pase.io import DataDir

log = logging.getLogger("pase-train-gmm")

DEFAULTS: dict[str, dict[str, Any]] = {
    "mono": {"num_iters": 40, "max_iter_inc": 30, "tot_gauss": 1000,
             "realign_iters": list(MONO_REALIGN_ITERS), "power": 0.25, "beam": 10.0,
             "retry_beam": 40.0},
    "tri": {"num_iters": 35, "max_iter_inc": 25, "tot_gauss": 15000, "num_leaves": 2500,
            "min_leaf_count": 50.0, "realign_iters": list(TRI_REALIGN_ITERS), "power": 0.25,
            "beam": 10.0, "retry_beam": 40.0},
}


def build_parser() -> ArgumentParser:
    p = ArgumentParser("pase-train-gmm", __doc__)
    p.add_argument("stage", choices=sorted(DEFAULTS), help="monophone or triphone training")
    p.add_argument("--data", type=Path, required=True, help="training data dir (with text)")
    p.add_argument("--lang", type=Path, required=True, help="lang dir (pase.asr.lang)")
    p.add_argument("--out", type=Path, required=True, help="experiment dir, e.g. exp/mono")
    p.add_argument("--ali_from", type=Path, default=None,
                   help="tri: dir of the system whose final.npz and ali.ark seed the tree")
    p.add_argument("--align_data", type=Path, action="append", default=[],
                   help="also align this data dir with the final model (repeatable)")
    p.add_argument("--num_iters", type=int)
    p.add_argument("--max_iter_inc", type=int, help="iterations over which Gaussians increase")
    p.add_argument("--tot_gauss", type=int, help="target total number of Gaussians")
    p.add_argument("--num_leaves", type=int, help="tri: target number of tree leaves (pdfs)")
    p.add_argument("--min_leaf_count", type=float, help="tri: minimum frames per tree leaf")
    p.add_argument("--realign_iters", type=int, nargs="+", help="iterations that realign first")
    p.add_argument("--power", type=float, help="exponent of occupancy for Gaussian allocation")
    p.add_argument("--beam", type=float)
    p.add_argument("--retry_beam", type=float)
    return p


def options(args: argparse.Namespace) -> dict[str, Any]:
    """Kaldi defaults < --config < command-line flags; an option of the other stage is an error."""
    opts = dict(DEFAULTS[args.stage])
    for key in set().union(*DEFAULTS.values()):
        value = getattr(args, key)
        if value is None:
            continue
        if key not in opts:
            raise PaseError(f"--{key} does not apply to {args.stage} training")
        opts[key] = value
    return opts


def features(data: DataDir, out: Path, cache_dirs: list[Path]) -> dict[str, np.ndarray]:
    """The data dir's 39-dim features, from a cache holding exactly its utterances or computed
    and cached in ``out``."""
    name = f"feats_{data.path.name}"
    utts = {u.utt_id for u in data.utterances}
    for d in [out, *cache_dirs]:
        scp = d / f"{name}.scp"
        if scp.is_file():
            feats = read_feats(scp)
            if set(feats) == utts:
                log.info("features: %s", scp)
                return feats
            log.info("%s: other utterances than %s; recomputing", scp, data.path)
    start = time.perf_counter()
    feats = mfcc_cmvn_deltas(data)
    write_feats(feats, out / f"{name}.ark", out / f"{name}.scp")
    log.info("features: %d utterances, %d frames in %.1fs -> %s", len(feats),
             sum(len(f) for f in feats.values()), time.perf_counter() - start, out / f"{name}.scp")
    return feats


def transcripts(data: DataDir, lang: Lang) -> dict[str, list[int]]:
    if data.text is None:
        raise PaseError(f"{data.path}: no text file (transcripts are needed for alignment)")
    return {utt: lang.word_seq_ids(text.split()) for utt, text in data.text.items()}


def write_outputs(system: GmmSystem, alignments: dict[str, np.ndarray], out: Path,
                  suffix: str, failed: list[str]) -> None:
    write_alignments(out / f"ali{suffix}.ark", alignments)
    write_alignments(out / f"pdf_ali{suffix}.ark",
                     {u: system.pdf_alignment(a) for u, a in alignments.items()})
    failed_path = out / f"ali_failed{suffix}"
    if failed:
        failed_path.write_text("".join(f"{u}\n" for u in sorted(failed)))
    else:
        failed_path.unlink(missing_ok=True)


def write_log(result: TrainResult, path: Path, opts: dict[str, Any], seconds: float) -> None:
    lines = [f"# {k}={v}" for k, v in sorted(opts.items())]
    lines.append("iter realigned frames like_per_frame num_gauss failed seconds")
    lines += [f"{h.iteration} {int(h.realigned)} {h.frames} {h.like_per_frame:.5f} {h.num_gauss} "
              f"{h.failed} {h.seconds:.2f}" for h in result.history]
    lines.append(f"# pdfs={result.system.num_pdfs} gaussians={result.system.num_gauss} "
                 f"aligned={len(result.alignments)} total_seconds={seconds:.1f}")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    opts = options(args)
    if args.stage == "tri" and args.ali_from is None:
        raise PaseError("tri needs --ali_from (the monophone system dir)")
    lang = Lang.load(args.lang)
    data = DataDir.load(args.data)
    args.out.mkdir(parents=True, exist_ok=True)
    caches = [args.ali_from] if args.ali_from else []
    feats = features(data, args.out, caches)
    texts = transcripts(data, lang)
    start = time.perf_counter()
    if args.stage == "mono":
        result = train_mono(feats, texts, lang, **opts)
    else:
        src = GmmSystem.load(args.ali_from / "final.npz")
        src_ali = read_alignments(args.ali_from / "ali.ark")
        result = train_tri(feats, texts, lang, src_ali, src,
                           no_split_phones=lang.silence_phone_ids, **opts)
    seconds = time.perf_counter() - start
    system = result.system
    system.save(args.out / "final.npz")
    system.tree.write(True, str(args.out / "tree"))
    (args.out / "num_pdfs").write_text(f"{system.num_pdfs}\n")
    write_outputs(system, result.alignments, args.out, "",
                  sorted(set(texts) - set(result.alignments)))
    write_log(result, args.out / "log", opts, seconds)
    log.info("%s: %d pdfs, %d Gaussians, %d/%d utterances aligned, %.1fs", args.out,
             system.num_pdfs, system.num_gauss, len(result.alignments), len(texts), seconds)
    for other in args.align_data:
        other_data = DataDir.load(other)
        res = align(system, features(other_data, args.out, caches), transcripts(other_data, lang),
                    lang, beam=opts["beam"], retry_beam=opts["retry_beam"])
        write_outputs(system, res.alignments, args.out, f"_{other_data.path.name}", res.failed)
        log.info("%s: %d aligned, %d failed, avg like/frame %.3f", other,
                 len(res.alignments), len(res.failed), res.like_per_frame)


def cli() -> None:
    run_main(main, "pase-train-gmm")


if __name__ == "__main__":
    cli()
