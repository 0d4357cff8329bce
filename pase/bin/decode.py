"""pase-decode: decode a set with an HCLG graph and score the 39-phone PER both ways.

    pase-decode hybrid --model exp/mlp_pase --gmm exp/tri --lang_test data/lang_test_bg \\
        --data data/test_pase --out exp/mlp_pase/decode_test
    pase-decode gmm --gmm exp/tri --lang_test data/lang_test_bg --data data/test \\
        --out exp/tri/decode_test

The graph (<gmm>/graph/HCLG.fst, built from the GMM's tree and transition model and the test
lang's G) is made on first use and reused. hybrid (a model from pase-train-mlp --finetune runs
its encoder on the data dir's audio): the MLP's log-posteriors minus log-priors
are written to <out>/loglikes.{ark,scp} (what Kaldi's latgen-faster-mapped reads), decoded into
lattices at --acwt and scored for every LM weight (--lmwt, Kaldi's score.sh sweep). gmm: the
GMM's 1-best at acoustic scale 1/LMWT for each LM weight. Writes <out>/score_<LMWT>/hyp.txt,
<out>/scores.json and <out>/best_per (the best standard and lenient RESULTS lines).
"""
from __future__ import annotations

from pathlib import Path

from pase.asr.decode_dir import decode_dir
from pase.asr.score import parse_lmwt
from pase.bin.common import ArgumentParser, add_device_options, run_main, setup_device
from pase.errors import PaseError


def main(argv: list[str] | None = None) -> None:
    p = ArgumentParser("pase-decode", __doc__)
    p.add_argument("kind", choices=("hybrid", "gmm"))
    p.add_argument("--gmm", type=Path, required=True, help="GMM dir (tree, transition model; the MLP's targets)")
    p.add_argument("--lang_test", type=Path, required=True, help="test lang dir with G.fst")
    p.add_argument("--data", type=Path, required=True, help="data dir with text (and feats.scp for hybrid)")
    p.add_argument("--out", type=Path, required=True, help="decode dir")
    p.add_argument("--model", type=Path, help="hybrid: the pase-train-mlp dir")
    p.add_argument("--acwt", type=float, default=0.2, help="hybrid: acoustic scale of the lattices")
    p.add_argument("--lmwt", default="1:10", help="LM weights to score, e.g. 1:10 or '4 6 8'")
    p.add_argument("--beam", type=float, default=13.0)
    p.add_argument("--lattice_beam", type=float, default=8.0)
    add_device_options(p)
    args = p.parse_args(argv)
    device = setup_device(args)
    if args.kind == "hybrid" and args.model is None:
        raise PaseError("hybrid decoding needs --model (a pase-train-mlp dir)")
    lines = decode_dir(gmm=args.gmm, lang_test=args.lang_test, data=args.data, out=args.out,
                       lm_weights=parse_lmwt(args.lmwt), model=args.model if args.kind == "hybrid" else None,
                       acwt=args.acwt, beam=args.beam, lattice_beam=args.lattice_beam, device=device)
    for line in lines:
        print(line)


def cli() -> None:
    run_main(main, "pase-decode")


if __name__ == "__main__":
    cli()
