"""pase-train-gmm: GMM-HMM training and alignment (Kaldi's train_mono.sh / train_deltas.sh).

    pase-train-gmm mono --data data/train --lang data/lang --out exp/mono
    pase-train-gmm tri --data data/train --lang data/lang --out exp/tri1 --ali_from exp/mono \\
        --config conf/tri.yaml --align_data data/dev

Features (13 MFCC without energy, per-speaker mean normalisation, deltas and double deltas)
are computed once per data dir and cached as ``<out>/feats_<set>.{ark,scp}`` (a cache in the
``--ali_from`` dir is reused). Writes to ``--out``:

* ``final.npz``: the model (topology, tree, transitions, Gaussians; no pickle); ``final.mdl``
  and ``tree``: the same model and tree in Kaldi's binary formats (for Kaldi's own programs);
  ``num_pdfs``: the number of pdfs (MLP outputs);
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
from pathlib import Path
from typing import Any

from pase.asr.gmm_dir import train_gmm_dir
from pase.asr.gmm_train import MONO_REALIGN_ITERS, TRI_REALIGN_ITERS
from pase.bin.common import ArgumentParser, run_main
from pase.errors import PaseError

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


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    train_gmm_dir(args.stage, data=args.data, lang_dir=args.lang, out=args.out, opts=options(args),
                  ali_from=args.ali_from, align_data=args.align_data)


def cli() -> None:
    run_main(main, "pase-train-gmm")


if __name__ == "__main__":
    cli()
