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

import json
import logging
import time
from pathlib import Path

import kaldifst

from pase.asr.decode import Decoder
from pase.asr.features import load_features, mfcc_cmvn_deltas
from pase.asr.gmm import GmmSystem
from pase.asr.graph import load_hclg, make_hclg, save_hclg
from pase.asr.lang import Lang
from pase.asr.finetune import utterance_logprobs
from pase.asr.mlp import FrameSet, scaled_loglikes
from pase.asr.model_io import load_hybrid_model
from pase.asr.score import results_line, sweep
from pase.bin.common import ArgumentParser, add_device_options, run_main, setup_device
from pase.errors import PaseError
from pase.io import DataDir, peak_normalize, read_audio, read_kaldi_map, write_matrix_ark_scp

log = logging.getLogger("pase-decode")

LATGEN_DOC = """# The scaled log-likelihoods in loglikes.ark are what Kaldi's latgen-faster-mapped reads.
# With a Kaldi install (and the model in Kaldi's format), the original's decoding is:
#   latgen-faster-mapped --min-active=200 --max-active=7000 --max-mem=50000000 --beam=13.0 \\
#     --lattice-beam=8.0 --acoustic-scale={acwt} --allow-partial=true \\
#     --word-symbol-table={words} final.mdl {graph} ark:{ark} "ark:|gzip -c > lat.1.gz"
# then local/score.sh --min-lmwt 1 --max-lmwt 10 on the lattices.
"""


def parse_lmwt(spec: str) -> list[float]:
    """'1:10' (integers, inclusive) or a space/comma separated list."""
    if ":" in spec:
        a, b = spec.split(":")
        return [float(w) for w in range(int(a), int(b) + 1)]
    return [float(w) for w in spec.replace(",", " ").split()]


def graph_for(gmm: Path, lang_test: Path, system: GmmSystem) -> kaldifst.StdVectorFst:
    """<gmm>/graph/HCLG.fst, rebuilt when older than the model or G."""
    path = gmm / "graph" / "HCLG.fst"
    inputs = [gmm / "final.npz", lang_test / "G.fst"]
    if path.is_file() and all(path.stat().st_mtime >= p.stat().st_mtime for p in inputs):
        return load_hclg(path)
    start = time.time()
    hclg = make_hclg(lang_test, system.tree, system.trans_model)
    save_hclg(hclg, path)
    log.info("built %s (%d states) in %.1f s", path, hclg.num_states, time.time() - start)
    return hclg


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
    lmwts = parse_lmwt(args.lmwt)
    lang = Lang.load(args.lang_test)
    id2word = lang.id_to_word()
    system = GmmSystem.load(args.gmm / "final.npz")
    hclg = graph_for(args.gmm, args.lang_test, system)
    decoder = Decoder(hclg, system.trans_model, beam=args.beam, lattice_beam=args.lattice_beam)
    refs = {u: t.split() for u, t in read_kaldi_map(args.data / "text", allow_empty=True).items()}
    args.out.mkdir(parents=True, exist_ok=True)
    hyps: dict[float, dict[str, list[str]]] = {w: {} for w in lmwts}
    search_seconds, frames = 0.0, 0
    if args.kind == "hybrid":
        if args.model is None:
            raise PaseError("hybrid decoding needs --model (a pase-train-mlp dir)")
        hybrid = load_hybrid_model(args.model)
        if hybrid.num_pdfs != system.num_pdfs:
            raise PaseError(f"{args.model} has {hybrid.num_pdfs} outputs but {args.gmm} {system.num_pdfs} pdfs")
        model, priors = hybrid.model.to(device), hybrid.priors
        if hybrid.finetuned:  # encoder and MLP together, from the waveform
            loglikes = {u.utt_id: utterance_logprobs(model, peak_normalize(
                read_audio(u.source, start=u.start, end=u.end, name=u.utt_id), name=u.utt_id),
                device).numpy() - priors for u in DataDir.load(args.data).utterances}
        else:
            data = FrameSet(load_features(args.data), None, hybrid.options.context)
            loglikes = scaled_loglikes(model, data, priors, device)
        write_matrix_ark_scp((args.out / "loglikes.ark").resolve(), args.out / "loglikes.scp", sorted(loglikes.items()))
        (args.out / "latgen-faster-mapped.txt").write_text(LATGEN_DOC.format(
            acwt=args.acwt, words=args.lang_test / "words.txt", graph=args.gmm / "graph/HCLG.fst",
            ark=args.out / "loglikes.ark"))
        for utt, ll in loglikes.items():
            start = time.time()
            out = decoder.decode_matrix(ll, acoustic_scale=args.acwt, lm_weights=lmwts)
            search_seconds += time.time() - start
            frames += len(ll)
            for w in lmwts:
                hyps[w][utt] = [id2word[i] for i in out[w]]
    else:
        cache = args.gmm / f"feats_{args.data.name}.scp"  # pase-train-gmm's MFCC cache
        feats = load_features(cache) if cache.is_file() else mfcc_cmvn_deltas(DataDir.load(args.data))
        for utt, f in feats.items():
            start = time.time()
            for w in lmwts:
                hyps[w][utt] = [id2word[i] for i in decoder.decode_gmm(system.am, f, acoustic_scale=1.0 / w)]
            search_seconds += time.time() - start
            frames += len(f) * len(lmwts)
    scores = {}
    lines = []
    for lenient in (False, True):
        best, results = sweep(refs, hyps, lenient=lenient)
        name = "lenient" if lenient else "standard"
        scores[name] = {str(w): {"per": r.per, "ins": r.ins, "del": r.del_, "sub": r.sub, "ref_len": r.ref_len}
                        for w, r in results.items()}
        scores[name]["best_lmwt"] = best
        lines.append(results_line(results[best], f"{args.out}/score_{best:g} ({name} scoring)"))
    for w in lmwts:
        d = args.out / f"score_{w:g}"
        d.mkdir(exist_ok=True)
        (d / "hyp.txt").write_text("".join(f"{u} {' '.join(h)}\n" for u, h in sorted(hyps[w].items())))
    rtf = search_seconds / max(frames * 0.01, 1e-9)
    scores["decode_rtf"] = rtf
    (args.out / "scores.json").write_text(json.dumps(scores, indent=1))
    (args.out / "best_per").write_text("\n".join(lines) + "\n")
    for line in lines:
        print(line)
    log.info("decoding real-time factor %.4f (search only, %d frames)", rtf, frames)


def cli() -> None:
    run_main(main, "pase-decode")


if __name__ == "__main__":
    cli()
