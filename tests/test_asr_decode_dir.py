"""pase-decode on a small synthetic TIMIT: the decode dir's files hold what the decoder and the
scorer give for the set, for a GMM and for a hybrid MLP."""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import kaldialign
import kaldi_native_io
import numpy as np
import pytest
import torch

from conftest import small_timit
from pase.asr.decode import Decoder
from pase.asr.features import mfcc_cmvn_deltas, read_feats, write_feats
from pase.asr.gmm import GmmSystem
from pase.asr.gmm_train import train_mono
from pase.asr.graph import graph_for, load_hclg
from pase.asr.kaldi_model import read_model
from pase.asr.lang import Lang, make_G, train_bigram_arpa
from pase.asr.mlp import FrameSet, HybridMLP, MlpOptions, log_priors, scaled_loglikes
from pase.asr.model_io import save_hybrid_model
from pase.asr.score import parse_lmwt, per, results_line, sweep
from pase.bin import decode
from pase.errors import PaseError
from pase.io import DataDir, read_kaldi_map


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    """A briefly trained monophone GMM dir, a bigram test lang and the test set."""
    root = tmp_path_factory.mktemp("decode_dir")
    lang, train, texts = small_timit(root)
    make_G(lang, train_bigram_arpa([t.split() for t in train.text.values()]), root / "lang_test")
    mono = train_mono(mfcc_cmvn_deltas(train), texts, lang, num_iters=4, max_iter_inc=2,
                      tot_gauss=150, realign_iters=(1, 2))
    (root / "mono").mkdir()
    mono.system.save(root / "mono" / "final.npz")
    return {"gmm": root / "mono", "lang_test": root / "lang_test", "data": root / "data" / "test"}


def run_decode(capsys, kind: str, setup: dict[str, Path], out: Path, *extra: str) -> list[str]:
    decode.main([kind, "--gmm", str(setup["gmm"]), "--lang_test", str(setup["lang_test"]),
                 "--data", str(setup["data"]), "--out", str(out), *extra])
    return capsys.readouterr().out.splitlines()


def reference_hyps(setup: dict[str, Path], search) -> tuple[dict, dict]:
    """References of the test set and ``search(decoder, system, words)``'s hypotheses."""
    lang = Lang.load(setup["lang_test"])
    system = GmmSystem.load(setup["gmm"] / "final.npz")
    decoder = Decoder(load_hclg(setup["gmm"] / "graph" / "HCLG.fst"), system.trans_model)
    refs = {u: t.split() for u, t in read_kaldi_map(setup["data"] / "text").items()}
    return refs, search(decoder, system, lang.id_to_word())


def read_hyps(out: Path, lmwt: float) -> dict[str, list[str]]:
    lines = (out / f"score_{lmwt:g}" / "hyp.txt").read_text().splitlines()
    return {ln.split()[0]: ln.split()[1:] for ln in lines}


def check_scores(out: Path, printed: list[str], refs: dict, hyps: dict[float, dict]) -> None:
    """scores.json and best_per say what the scorer makes of the hypotheses, both ways."""
    scores = json.loads((out / "scores.json").read_text())
    lines = []
    for name, lenient in (("standard", False), ("lenient", True)):
        best, results = sweep(refs, hyps, lenient=lenient)
        assert scores[name]["best_lmwt"] == best
        for w, hyp in hyps.items():
            assert scores[name][str(w)]["per"] == pytest.approx(per(refs, hyp, lenient=lenient).per)
        lines.append(results_line(results[best], f"{out}/score_{best:g} ({name} scoring)"))
    assert printed == lines == (out / "best_per").read_text().splitlines()
    assert scores["decode_rtf"] > 0


def test_gmm_decode_dir_and_graph_cache(setup, tmp_path, capsys):
    out = tmp_path / "decode"
    printed = run_decode(capsys, "gmm", setup, out, "--lmwt", "2,10")
    feats = mfcc_cmvn_deltas(DataDir.load(setup["data"]))
    refs, hyps = reference_hyps(setup, lambda dec, system, words: {
        w: {u: [words[i] for i in dec.decode_gmm(system.am, f, acoustic_scale=1 / w)]
            for u, f in feats.items()} for w in (2.0, 10.0)})
    for w in (2.0, 10.0):
        assert read_hyps(out, w) == hyps[w]
    assert sum(map(len, hyps[10.0].values())) > 0.5 * sum(map(len, refs.values()))
    check_scores(out, printed, refs, hyps)
    assert not (out / "loglikes.ark").exists()
    # The graph is reused while newer than the model, rebuilt once the model is newer.
    graph = setup["gmm"] / "graph" / "HCLG.fst"
    built = graph.stat().st_mtime_ns
    run_decode(capsys, "gmm", setup, tmp_path / "again", "--lmwt", "10")
    assert graph.stat().st_mtime_ns == built and read_hyps(tmp_path / "again", 10) == hyps[10.0]
    os.utime(setup["gmm"] / "final.npz", ns=(built + 10**9, built + 10**9))
    run_decode(capsys, "gmm", setup, tmp_path / "again", "--lmwt", "10")
    assert graph.stat().st_mtime_ns > built
    # Another test lang (here a copy whose G.fst is older than the graph) gets its own build.
    stamp = setup["gmm"] / "graph" / "lang_test"
    assert stamp.read_text().strip() == str(setup["lang_test"].resolve())
    other = shutil.copytree(setup["lang_test"], tmp_path / "lang_test_other")  # mtimes kept
    built = graph.stat().st_mtime_ns
    graph_for(setup["gmm"], other, GmmSystem.load(setup["gmm"] / "final.npz"))
    assert graph.stat().st_mtime_ns > built and stamp.read_text().strip() == str(other.resolve())


def test_hybrid_decode_dir(setup, tmp_path, capsys):
    """An (untrained) MLP on the test set's MFCCs: loglikes.ark is its log-posteriors minus
    log-priors, hyp.txt the lattice's best path for each LM weight at --acwt."""
    data = tmp_path / "test_mfcc"
    shutil.copytree(setup["data"], data)
    write_feats(mfcc_cmvn_deltas(DataDir.load(data)), data / "feats.ark", data / "feats.scp")
    num_pdfs = GmmSystem.load(setup["gmm"] / "final.npz").num_pdfs
    opts = MlpOptions(hidden=32, layers=2, context=2)
    torch.manual_seed(0)
    model = HybridMLP(39 * 5, num_pdfs, opts.hidden, opts.layers, opts.dropout).eval()
    priors = log_priors([np.arange(num_pdfs) % 7], num_pdfs)
    save_hybrid_model(tmp_path / "mlp", model, priors, opts, 39 * 5, num_pdfs, {})
    out = tmp_path / "decode"
    printed = run_decode(capsys, "hybrid", setup, out, "--model", str(tmp_path / "mlp"),
                         "--acwt", "0.5", "--lmwt", "1:3", "--data", str(data))
    expected = scaled_loglikes(model, FrameSet(read_feats(data / "feats.scp"), None, 2), priors,
                               torch.device("cpu"))
    loglikes = read_feats(out / "loglikes.scp")
    assert list(loglikes) == sorted(expected)
    for u, ll in expected.items():
        np.testing.assert_allclose(loglikes[u], ll, rtol=1e-6, atol=1e-5)
    assert "--acoustic-scale=0.5 " in (out / "latgen-faster-mapped.txt").read_text()
    refs, hyps = reference_hyps(setup, lambda dec, system, words: {
        w: {u: [words[i] for i in dec.decode_matrix(ll, acoustic_scale=0.5, lm_weights=[w])[w]]
            for u, ll in expected.items()} for w in (1.0, 2.0, 3.0)})
    for w in (1.0, 2.0, 3.0):
        assert read_hyps(out, w) == hyps[w]
    check_scores(out, printed, refs, hyps)
    check_kaldi_commands(out, setup, data, expected)
    check_score_sh_folding(out, setup, data, [1, 2, 3])


RECIPE = Path(__file__).resolve().parents[1] / "egs" / "timit" / "hybrid1"


def check_kaldi_commands(out: Path, setup: dict[str, Path], data: Path,
                         loglikes: dict[str, np.ndarray]) -> None:
    """latgen-faster-mapped.txt is a shell script whose commands name files that exist and
    hold this decode's model, graph, symbols and scores, in Kaldi's formats."""
    script = out / "latgen-faster-mapped.txt"
    subprocess.run(["bash", "-n", str(script)], check=True)
    lines = [shlex.split(ln, comments=True)
             for ln in script.read_text().replace("\\\n", " ").splitlines()]
    latgen, echo, score = [ln for ln in lines if ln]
    assert latgen[0] == "latgen-faster-mapped" and echo == ["echo", "1", ">", str(out / "num_jobs")]
    opts = dict(a.split("=", 1) for a in latgen[1:] if a.startswith("--"))
    assert (opts["--acoustic-scale"], opts["--beam"], opts["--lattice-beam"]) == ("0.5", "13", "8")
    model, graph, ark, lattices = [a for a in latgen[1:] if not a.startswith("--")]
    assert opts["--word-symbol-table"] == str(setup["lang_test"] / "words.txt")
    system = GmmSystem.load(setup["gmm"] / "final.npz")
    assert model == str(setup["gmm"] / "final.mdl")
    assert str(read_model(model, system.tree).trans_model) == str(system.trans_model)
    assert load_hclg(graph).to_str() == load_hclg(setup["gmm"] / "graph" / "HCLG.fst").to_str()
    assert ark == f"ark:{out / 'loglikes.ark'}"
    read = {k: np.array(v) for k, v in kaldi_native_io.SequentialFloatMatrixReader(ark)}
    assert read.keys() == loglikes.keys()
    assert lattices == f"ark:|gzip -c > {out / 'lat.1.gz'}"
    assert score == ["local/score.sh", "--min-lmwt", "1", "--max-lmwt", "3", str(data),
                     str(setup["lang_test"]), str(out)]
    assert (RECIPE / "local" / "score.sh").is_file()


def check_score_sh_folding(out: Path, setup: dict[str, Path], data: Path,
                           lm_weights: list[int]) -> None:
    """local/score.sh's awk stage on this decode's best paths (as lattice-best-path writes
    them, word ids) folds references and hypotheses to what pase-decode scored."""
    words = Lang.load(setup["lang_test"]).word_ids
    scoring = out / "scoring"
    scoring.mkdir()
    for w in lm_weights:
        (scoring / f"{w}.tra").write_text("".join(
            f"{u} {' '.join(str(words[p]) for p in hyp)}\n"
            for u, hyp in read_hyps(out, w).items()))
    subprocess.run(["bash", "local/score.sh", "--stage", "1", "--stop-stage", "1", "--min-lmwt",
                    str(lm_weights[0]), "--max-lmwt", str(lm_weights[-1]), str(data),
                    str(setup["lang_test"]), str(out)], cwd=RECIPE, check=True)
    scores = json.loads((out / "scores.json").read_text())
    for mode in ("standard", "lenient"):
        refs = read_kaldi_map(scoring / f"ref.{mode}.txt", allow_empty=True)
        for w in lm_weights:
            hyps = read_kaldi_map(scoring / f"{w}.{mode}.txt", allow_empty=True)
            assert hyps.keys() == refs.keys()
            totals = Counter()
            for u, ref in refs.items():
                totals.update(kaldialign.edit_distance(ref.split(), hyps[u].split()))
            expected = scores[mode][str(float(w))]
            assert (totals["ins"], totals["del"], totals["sub"]) == (
                expected["ins"], expected["del"], expected["sub"]), (mode, w)
    assert not list(out.glob("wer_*"))  # stage 2 (compute-wer) not run
    (scoring / f"{lm_weights[0]}.tra").write_text("utt1 9999\n")
    run = subprocess.run(["bash", "local/score.sh", "--stage", "1", "--stop-stage", "1",
                          str(data), str(setup["lang_test"]), str(out)], cwd=RECIPE,
                         capture_output=True, text=True)
    assert run.returncode == 1 and run.stderr == (
        f"local/score.sh: {scoring}/{lm_weights[0]}.tra:1: word id 9999 not in "
        f"{setup['lang_test']}/words.txt\n")


def test_decode_user_errors(setup, tmp_path, capsys):
    with pytest.raises(PaseError, match="hybrid decoding needs --model"):
        run_decode(capsys, "hybrid", setup, tmp_path / "d")
    save_hybrid_model(tmp_path / "mlp", HybridMLP(39, 3, 8, 1), log_priors([], 3),
                      MlpOptions(hidden=8, layers=1, context=0), 39, 3, {})
    with pytest.raises(PaseError, match=r"mlp has 3 outputs but .*mono \d+ pdfs"):
        run_decode(capsys, "hybrid", setup, tmp_path / "d", "--model", str(tmp_path / "mlp"))
    with pytest.raises(PaseError, match="LM weights '1:x'"):
        run_decode(capsys, "gmm", setup, tmp_path / "d", "--lmwt", "1:x")


def test_parse_lmwt():
    assert parse_lmwt("1:4") == [1.0, 2.0, 3.0, 4.0]
    assert parse_lmwt("4 6,8.5") == [4.0, 6.0, 8.5]
    for bad in ("1:2:3", "10:1", "", " , ", "nan"):  # an empty sweep failed only after decoding
        with pytest.raises(PaseError, match="expected A:B"):
            parse_lmwt(bad)
