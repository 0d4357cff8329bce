"""TIMIT data prep, lang dirs, phone bigram, HCLG, decoding and PER scoring."""
import math
import re
import shutil
from pathlib import Path

import kaldi_hmm_gmm as khg
import kaldifst
import kaldi_decoder
import numpy as np
import pytest
import soundfile as sf

from pase.asr.decode import Decoder, decode_gmm, decode_matrix
from pase.asr.graph import load_hclg, make_hclg, save_hclg
from pase.asr.lang import Lang, make_G, make_lang, read_fst, train_bigram_arpa
from pase.asr.score import ScoreResult, load_phone_map, per, results_line, sweep, to39
from pase.bin import make_lang as make_lang_cli
from pase.bin import prep_timit as prep_timit_cli
from pase.errors import PaseError
from pase.io import DataDir, DataDirError, PaseInputError, read_kaldi_map
from pase.prep import timit as prep
from pase.synth import timit as synth

PHONES48 = set(prep.standard_phone_map()[1])


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def timit_root(tmp_path_factory) -> Path:
    return synth.make_timit(tmp_path_factory.mktemp("timit"), n_train_speakers=6,
                            n_dev_speakers=2, n_test_speakers=2, utts_per_speaker=4, seed=0,
                            jobs=1)


@pytest.fixture(scope="module")
def data(timit_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data")
    prep_timit_cli.main([str(timit_root.parent), str(out), "--allow-missing-speakers"])
    return out


@pytest.fixture(scope="module")
def langs(data, tmp_path_factory) -> tuple[Lang, Lang]:
    root = tmp_path_factory.mktemp("lang")
    make_lang_cli.main([str(data / "train"), str(root / "lang"), str(root / "lang_test_bg")])
    return Lang.load(root / "lang"), Lang.load(root / "lang_test_bg")


def mono_system(lang: Lang) -> tuple[khg.ContextDependency, khg.TransitionModel]:
    """gmm-init-mono's tree and transition model (no GMMs needed for the graph)."""
    topo = lang.topology()
    tree = khg.monophone_context_dependency(
        phones=topo.phones, phone2num_pdf_classes=topo.get_phone_to_num_pdf_classes())
    return tree, khg.TransitionModel(ctx_dep=tree, hmm_topo=topo)


@pytest.fixture(scope="module")
def system(langs):
    _, lang_test = langs
    tree, tm = mono_system(lang_test)
    return lang_test, tree, tm, make_hclg(lang_test, tree, tm)


def aligned_pdfs(lang: Lang, tree, tm, phones: list[str], frames: int) -> np.ndarray:
    """pdf-ids along an equal alignment of the training graph of ``phones``."""
    compiler = khg.TrainingGraphCompiler(
        trans_model=tm, ctx_dep=tree, lex_fst=lang.L, disambig_syms=lang.disambig_phone_ids,
        opts=khg.TrainingGraphCompilerOptions(transition_scale=0.0, self_loop_scale=0.0,
                                              reorder=True))
    graph = compiler.compile_graph_from_text(lang.word_seq_ids(phones))
    ok, path = kaldifst.equal_align(ifst=graph, length=frames, rand_seed=1, num_retries=10)
    assert ok
    ok, tids, _, _ = kaldifst.get_linear_symbol_sequence(path)
    return np.asarray(tm.transition_id_to_pdf_array())[tids]


def output_string(fst: kaldifst.StdVectorFst) -> list[int]:
    ok, _, olabels, _ = kaldifst.get_linear_symbol_sequence(kaldifst.shortest_path(fst))
    assert ok
    return list(olabels)


# ---------------------------------------------------------------- TIMIT prep

def test_standard_lists_and_map():
    assert prep.CORE_TEST_SPEAKERS == synth.CORE_TEST_SPEAKERS
    assert prep.DEV_SPEAKERS == synth.DEV_SPEAKERS
    map60, map48 = prep.standard_phone_map()
    assert set(map60) == set(synth.TIMIT_PHONES) and map60["q"] is None
    assert len(map48) == 48 and len(set(map48.values())) == 39
    assert map60["h#"] == map60["pau"] == "sil" and map60["epi"] == "epi"
    assert {map48[map60[p]] for p in ("bcl", "kcl", "epi", "h#")} == {"sil"}


def test_write_conf_round_trips(tmp_path):
    prep_timit_cli.main(["--write-conf", str(tmp_path)])
    assert prep.read_speaker_list(tmp_path / "test_spk.list") == list(prep.CORE_TEST_SPEAKERS)
    assert prep.read_speaker_list(tmp_path / "dev_spk.list") == list(prep.DEV_SPEAKERS)
    assert load_phone_map(tmp_path / "phones.60-48-39.map") == prep.standard_phone_map()
    assert "q\n" in (tmp_path / "phones.60-48-39.map").read_text().splitlines(keepends=True)


def test_prep_sets(data, timit_root):
    counts = {name: DataDir.load(data / name) for name in prep.SETS}
    assert {k: len(v) for k, v in counts.items()} == {"train": 12, "dev": 4, "test": 4}
    for name, speakers in (("dev", prep.DEV_SPEAKERS[:2]), ("test", prep.CORE_TEST_SPEAKERS[:2])):
        assert set(counts[name].utt2spk.values()) == set(speakers)
    for name in prep.SETS:
        d = data / name
        for utt, spk in read_kaldi_map(d / "utt2spk").items():
            assert re.fullmatch(rf"{spk}_s[ix]\d+", utt), utt   # no SA; lower-case <spk>_<utt>
        for f in ("wav.scp", "text", "utt2spk", "spk2utt", "spk2gender", "utt2dur"):
            keys = list(read_kaldi_map(d / f, allow_empty=True))
            assert keys == sorted(keys), f
        wavs = read_kaldi_map(d / "wav.scp")
        durs = read_kaldi_map(d / "utt2dur")
        for utt, path in wavs.items():
            assert Path(path).is_absolute() and path.endswith(".WAV")
            assert float(durs[utt]) == pytest.approx(sf.info(path).duration, abs=1e-6)
        for utt, text in read_kaldi_map(d / "text").items():
            phones = text.split()
            assert set(phones) <= PHONES48 and phones[0] == phones[-1] == "sil"
            assert all(not (a == b == "sil") for a, b in zip(phones, phones[1:]))
        assert read_kaldi_map(d / "spk2gender") == {s: s[0] for s in counts[name].utt2spk.values()}
    # the transcript is the .PHN folded to 48 phones
    utt = next(iter(read_kaldi_map(data / "test" / "text")))
    spk, base = utt.split("_")
    phn = next(timit_root.glob(f"TEST/*/{spk.upper()}/{base.upper()}.PHN"))
    assert read_kaldi_map(data / "test" / "text")[utt].split() == prep.read_phn(
        phn, prep.standard_phone_map()[0])


def test_read_phn_folds_61_to_48(tmp_path):
    phn = tmp_path / "X.PHN"
    phn.write_text("0 10 h#\n10 20 q\n20 30 pau\n30 40 bcl\n40 50 b\n50 60 ax-h\n60 70 q\n"
                   "70 80 epi\n80 90 nx\n90 100 h#\n")
    assert prep.read_phn(phn, prep.standard_phone_map()[0]) == ["sil", "vcl", "b", "ax", "epi",
                                                                 "n", "sil"]


def tiny_timit(root: Path, upper: bool) -> Path:
    """A hand-made TIMIT layout (silent audio) in upper or lower case."""
    case = str.upper if upper else str.lower
    utts = {("train", "dr1", "mtrn0"): ["sa1", "si10", "sx10"],
            ("test", "dr1", "mdab0"): ["sa1", "si20", "sx20"],
            ("test", "dr2", "faks0"): ["sx30"]}
    for parts, names in utts.items():
        folder = root.joinpath(*map(case, ("timit", *parts)))
        folder.mkdir(parents=True)
        for name in names:
            sf.write(folder / case(f"{name}.wav"), np.zeros(1600, np.int16), 16000,
                     format="NIST", subtype="PCM_16")
            (folder / case(f"{name}.phn")).write_text("0 800 h#\n800 1600 aa\n")
    (root / "dev.list").write_text("faks0\n")
    (root / "test.list").write_text("mdab0\n")
    return root


@pytest.mark.parametrize("upper", [True, False])
def test_prep_any_letter_case(tmp_path, upper):
    root = tiny_timit(tmp_path / "corpus", upper)
    counts = prep.prepare_timit(root, tmp_path / "data", dev_spk=root / "dev.list",
                                test_spk=root / "test.list")
    assert counts == {"train": 2, "dev": 1, "test": 2}
    assert list(read_kaldi_map(tmp_path / "data" / "test" / "text")) == ["mdab0_si20",
                                                                          "mdab0_sx20"]
    assert read_kaldi_map(tmp_path / "data" / "dev" / "text") == {"faks0_sx30": "sil aa"}


def test_prep_cli_reports_errors_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["pase-prep-timit", str(tmp_path), str(tmp_path / "data")])
    with pytest.raises(SystemExit) as exc:
        prep_timit_cli.cli()
    assert exc.value.code == 1
    assert capsys.readouterr().err.startswith("pase-prep-timit: error: ")


def test_prep_errors(tmp_path):
    root = tiny_timit(tmp_path / "corpus", True)
    out = tmp_path / "data"
    lists = {"dev_spk": root / "dev.list", "test_spk": root / "test.list"}
    with pytest.raises(DataDirError, match="not a TIMIT directory"):
        prep.prepare_timit(root / "TIMIT" / "TRAIN", out, **lists)
    with pytest.raises(DataDirError, match="nope.list: speaker list not found"):
        prep.prepare_timit(root, out, dev_spk=root / "nope.list", test_spk=root / "test.list")
    (root / "dev2.list").write_text("faks0\nmzzz0\n")
    with pytest.raises(DataDirError, match=r"dev2.list: 1 of 2 listed speaker\(s\) not in .*mzzz0"):
        prep.prepare_timit(root, out, dev_spk=root / "dev2.list", test_spk=root / "test.list")
    assert prep.prepare_timit(root, out, dev_spk=root / "dev2.list", test_spk=root / "test.list",
                              allow_missing_speakers=True)["dev"] == 1
    phn = root / "TIMIT" / "TEST" / "DR2" / "FAKS0" / "SX30.PHN"
    phn.write_text("0 800 h#\n800 1600 xx\n")
    with pytest.raises(DataDirError, match=r"SX30.PHN:2: phone 'xx' is not in the phone map"):
        prep.prepare_timit(root, out, **lists)
    phn.write_text("0 800 h#\n800 aa\n")
    with pytest.raises(DataDirError, match=r"SX30.PHN:2: expected 'start end phone'"):
        prep.prepare_timit(root, out, **lists)
    phn.unlink()
    with pytest.raises(DataDirError, match=r"SX30.WAV: no matching .PHN"):
        prep.prepare_timit(root, out, **lists)
    bad_map = tmp_path / "bad.map"
    bad_map.write_text("aa aa aa\nao aa\n")
    with pytest.raises(DataDirError, match=r"bad.map:2: expected"):
        load_phone_map(bad_map)


# ---------------------------------------------------------------- lang

def test_lang_dir(langs, data):
    lang, lang_test = langs
    train_phones = {p for t in read_kaldi_map(data / "train" / "text").values() for p in t.split()}
    nonsil = sorted(train_phones - {"sil"})
    symbols = ["<eps>", "sil", *nonsil]
    assert lang.phone_ids == {p: i for i, p in enumerate(symbols + ["#0", "#1"])}
    assert lang.word_ids == {p: i for i, p in enumerate(symbols + ["#0", "<s>", "</s>"])}
    assert lang.phones == symbols[1:]
    assert lang.silence_phone_ids == [1] and lang.nonsilence_phone_ids == list(
        range(2, len(symbols)))
    n = len(symbols)
    assert lang.disambig_phone_ids == [n, n + 1] and lang.disambig_word_id == n
    assert (lang.path / "phones" / "disambig.csl").read_text() == f"{n}:{n + 1}\n"
    assert (lang.path / "phones" / "silence.txt").read_text() == "sil\n"
    assert (lang.path / "oov.txt").read_text() == "sil\n"
    topo = lang.topology()
    assert list(topo.phones) == list(range(1, n))
    assert list(topo.get_phone_to_num_pdf_classes())[1:] == [3] * (n - 1)
    assert lang.L.is_olabel_sorted and lang.L_disambig.is_olabel_sorted
    assert lang.L.num_arcs(0) == n - 1 and lang.L_disambig.num_arcs(0) == n
    assert lang.G is None and lang_test.G is not None
    assert lang_test.phone_ids == lang.phone_ids and lang_test.topo_text == lang.topo_text


def kaldi_lang_problems(path: Path) -> list[str]:
    """What Kaldi's utils/validate_lang.pl would complain about in lang dir ``path`` (its rules,
    for lang dirs without word-position phones), one line each; [] for a valid dir."""
    problems: list[str] = []

    def table(name: str) -> dict[str, int]:
        rows = [ln.split() for ln in (path / name).read_text().splitlines()]
        if any(len(r) != 2 for r in rows) or len({r[1] for r in rows}) != len(rows):
            problems.append(f"{name}: not 2 columns with unique ids")
        return {r[0]: int(r[1]) for r in rows if len(r) == 2}

    phones, words = table("phones.txt"), table("words.txt")

    def rows(stem: str, ids: dict[str, int], prefix: str = "") -> list[list[str]]:
        txt = [ln.removeprefix(prefix).split()
               for ln in (path / f"{stem}.txt").read_text().splitlines()]
        ints = [ln.removeprefix(prefix).split()
                for ln in (path / f"{stem}.int").read_text().splitlines()]
        if ints != [[str(ids.get(s)) for s in r] for r in txt]:
            problems.append(f"{stem}.int does not correspond to {stem}.txt")
        return txt

    def phone_list(name: str) -> list[str]:
        listed = [r[0] for r in rows(f"phones/{name}", phones) if len(r) == 1]
        csl = (path / "phones" / f"{name}.csl").read_text().splitlines()
        if csl != [":".join(str(phones[p]) for p in listed)]:
            problems.append(f"phones/{name}.csl does not correspond to phones/{name}.txt")
        return listed

    lists = {n: phone_list(n) for n in ("silence", "nonsilence", "disambig", "context_indep",
                                        "optional_silence")}
    sil, nonsil, disambig = (set(lists[n]) for n in ("silence", "nonsilence", "disambig"))
    if sil & nonsil or sil & disambig or nonsil & disambig:
        problems.append("silence, nonsilence and disambig are not disjoint")
    if sil | nonsil | disambig | {"<eps>"} != set(phones):
        problems.append("phones.txt has phones in none of silence, nonsilence, disambig")
    for name, prefix in (("sets", ""), ("roots", "shared split ")):
        used = [p for r in rows(f"phones/{name}", phones, prefix) for p in r]
        if sorted(used) != sorted(sil | nonsil):
            problems.append(f"phones/{name}: not every real phone exactly once")
    rows("phones/extra_questions", phones)
    if len(lists["optional_silence"]) != 1 or lists["optional_silence"][0] not in sil:
        problems.append("phones/optional_silence: not one silence phone")
    if not {"#0", "#1"} <= disambig:
        problems.append("phones/disambig: no #0 and #1")
    topo = [int(x) for ln in (path / "topo").read_text().splitlines()
            if not re.fullmatch(r"<.*>\s*", ln) for x in ln.split()]
    if sorted(topo) != sorted(phones[p] for p in sil | nonsil):
        problems.append("topo does not cover each real phone once")
    wdisambig = (path / "phones" / "wdisambig.txt").read_text().split()
    for name, ids in (("words", words), ("phones", phones)):
        if (path / "phones" / f"wdisambig_{name}.int").read_text().split() != [
                str(ids[w]) for w in wdisambig]:
            problems.append(f"phones/wdisambig_{name}.int does not match wdisambig.txt")
    rows("oov", words)
    for fst in ("L.fst", "L_disambig.fst"):
        if not read_fst(path / fst).is_olabel_sorted:
            problems.append(f"{fst} is not olabel sorted")
    if (path / "G.fst").exists():
        g = read_fst(path / "G.fst")
        if not g.is_ilabel_sorted or g.num_states == 0:
            problems.append("G.fst is empty or not ilabel sorted")
        forbidden = {words["<s>"], words["</s>"]}
        for state in kaldifst.StateIterator(g):
            for arc in kaldifst.ArcIterator(g, state):
                if {arc.ilabel, arc.olabel} & forbidden or arc.ilabel == 0 or (
                        arc.ilabel != arc.olabel and not (
                            arc.ilabel == words["#0"] and arc.olabel == 0)):
                    problems.append(f"G.fst arc {arc.ilabel}:{arc.olabel} not allowed")
        lg = kaldifst.compose(read_fst(path / "L_disambig.fst"), g)
        if kaldifst.determinize_star(g) or kaldifst.determinize_star(lg) or lg.num_states == 0:
            problems.append("G.fst or L_disambig o G does not determinize")
    return problems


def test_lang_dirs_pass_kaldi_validate_lang(langs, tmp_path):
    lang, lang_test = langs
    assert kaldi_lang_problems(lang.path) == []
    assert kaldi_lang_problems(lang_test.path) == []
    phones = lang.path / "phones"
    nonsil = (phones / "nonsilence.txt").read_text().split()
    # what prepare_lang.sh --position-dependent-phones false writes for TIMIT's dict
    for name in ("context_indep", "optional_silence"):
        assert (phones / f"{name}.txt").read_text() == "sil\n"
        assert (phones / f"{name}.csl").read_text() == "1\n"
    assert (phones / "sets.txt").read_text().split("\n")[:3] == ["sil", nonsil[0], nonsil[1]]
    assert (phones / "roots.int").read_text().splitlines()[:2] == ["shared split 1",
                                                                   "shared split 2"]
    assert (phones / "extra_questions.txt").read_text() == f"sil\n{' '.join(nonsil)}\n"
    align = (phones / "align_lexicon.txt").read_text().splitlines()
    assert align[0] == "<eps> <eps> sil" and f"{nonsil[0]} {nonsil[0]} {nonsil[0]}" in align
    assert len(align) == len(nonsil) + 2
    assert not (phones / "word_boundary.txt").exists()  # not word-position dependent
    # the checker sees what validate_lang.pl sees
    broken = tmp_path / "broken"
    shutil.copytree(lang.path, broken)
    (broken / "phones" / "roots.txt").write_text("shared split sil\n")
    (broken / "phones" / "optional_silence.txt").write_text(f"{nonsil[0]}\n")
    assert kaldi_lang_problems(broken) == [
        "phones/optional_silence.int does not correspond to phones/optional_silence.txt",
        "phones/optional_silence.csl does not correspond to phones/optional_silence.txt",
        "phones/roots.int does not correspond to phones/roots.txt",
        "phones/roots: not every real phone exactly once",
        "phones/optional_silence: not one silence phone"]


def test_L_transduces_a_transcript(langs, data):
    lang, _ = langs
    transcript = next(iter(read_kaldi_map(data / "train" / "text").values())).split()
    ids = [lang.phone_ids[p] for p in transcript]
    for lex, extra in ((lang.L, []), (lang.L_disambig, [lang.disambig_phone_ids[0]])):
        acceptor = kaldifst.make_linear_acceptor(ids[:2] + extra + ids[2:])
        out = output_string(kaldifst.compose(acceptor, lex))
        assert [lang.id_to_word()[i] for i in out if i != lang.disambig_word_id] == transcript
    with pytest.raises(PaseInputError, match="no word 'zz'"):
        lang.word_seq_ids(["sil", "zz"])


def test_make_lang_rejects_bad_phones(tmp_path):
    with pytest.raises(PaseInputError, match="silence phone 'sil'"):
        make_lang(["aa", "b"], tmp_path)
    with pytest.raises(PaseInputError, match="invalid phone"):
        make_lang(["sil", "#2"], tmp_path)
    with pytest.raises(PaseInputError, match="duplicate"):
        make_lang(["sil", "a", "a"], tmp_path)


TOY = [["a", "b"], ["a"]]


def arpa_model(text: str) -> tuple[dict[str, tuple[float, float]], dict[tuple[str, str], float]]:
    """Unigrams ``w -> (log10 p, log10 backoff)`` and bigrams of an ARPA text."""
    uni, bi, section = {}, {}, ""
    for line in text.splitlines():
        if line.startswith("\\"):
            section = line
        elif line and section == "\\1-grams:":
            f = line.split()
            uni[f[1]] = (float(f[0]), float(f[2]) if len(f) > 2 else 0.0)
        elif line and section == "\\2-grams:":
            f = line.split()
            bi[(f[1], f[2])] = float(f[0])
    return uni, bi


def bigram_prob(uni, bi, h: str, w: str) -> float:
    if (h, w) in bi:
        return 10 ** bi[(h, w)]
    return 10 ** (uni[h][1] + uni[w][0])


def test_bigram_hand_computed():
    uni, bi = arpa_model(train_bigram_arpa(TOY, discount=0.5))
    # tokens a b </s> a </s>: p(a)=2/5, p(b)=1/5, p(</s>)=2/5
    assert {w: round(10 ** p, 6) for w, (p, _) in uni.items() if w != "<s>"} == {
        "a": 0.4, "b": 0.2, "</s>": 0.4}
    assert uni["<s>"][0] == -99
    # history a: c=2, 2 followers -> backoff 0.5*2/2 = 0.5; p(b|a) = 0.5/2 + 0.5*0.2 = 0.35
    assert 10 ** uni["a"][1] == pytest.approx(0.5, abs=1e-6)
    assert bigram_prob(uni, bi, "a", "b") == pytest.approx(0.35, abs=1e-6)
    assert bigram_prob(uni, bi, "<s>", "a") == pytest.approx(1.5 / 2 + 0.25 * 0.4, abs=1e-6)
    assert bigram_prob(uni, bi, "b", "a") == pytest.approx(0.5 * 0.4, abs=1e-6)  # backed off
    assert set(bi) == {("<s>", "a"), ("a", "b"), ("a", "</s>"), ("b", "</s>")}


def test_bigram_normalized(data):
    texts = [t.split() for t in read_kaldi_map(data / "train" / "text").values()]
    for discount in (0.1, 0.5, 0.9):
        uni, bi = arpa_model(train_bigram_arpa(texts, discount=discount))
        words = [w for w in uni if w != "<s>"]
        for h in uni:
            if h != "</s>":
                assert sum(bigram_prob(uni, bi, h, w) for w in words) == pytest.approx(1, abs=1e-5)
    with pytest.raises(PaseInputError, match="discount"):
        train_bigram_arpa(TOY, discount=1.0)
    with pytest.raises(PaseInputError, match="reserved"):
        train_bigram_arpa([["a", "</s>"]])


def test_G_scores_sentences_as_the_arpa(tmp_path):
    lang = make_lang(["sil", "a", "b"], tmp_path / "lang")
    texts = [["sil", "a", "b", "sil"], ["sil", "a", "sil"], ["sil", "b", "a", "b", "sil"]]
    arpa = train_bigram_arpa(texts)
    lang_test = make_G(lang, arpa, tmp_path / "lang_test")
    assert lang_test.G.is_ilabel_sorted and (tmp_path / "lang_test" / "G.arpa").exists()
    uni, bi = arpa_model(arpa)
    sentence = ["sil", "a", "b", "a", "sil"]
    expected = -sum(math.log(bigram_prob(uni, bi, h, w))
                    for h, w in zip(["<s>", *sentence], [*sentence, "</s>"]))
    path = kaldifst.shortest_path(kaldifst.compose(
        kaldifst.make_linear_acceptor(lang.word_seq_ids(sentence)), lang_test.G))
    ok, _, words, weight = kaldifst.get_linear_symbol_sequence(path)
    assert ok and words == lang.word_seq_ids(sentence)
    assert weight.value == pytest.approx(expected, abs=1e-3)
    with pytest.raises(PaseInputError, match=r"not in .*words.txt: \['c'\]"):
        make_G(lang, train_bigram_arpa([["sil", "c"]]), tmp_path / "lang_bad")


# ---------------------------------------------------------------- graph and decoding

def test_hclg(system, tmp_path):
    lang, tree, tm, hclg = system
    labels = [(a.ilabel, a.olabel) for s in kaldifst.StateIterator(hclg)
              for a in kaldifst.ArcIterator(hclg, s)]
    assert max(i for i, _ in labels) <= tm.num_transition_ids      # no disambiguation tids
    real_words = set(lang.word_seq_ids(lang.phones))
    assert {o for _, o in labels} - {0} == real_words
    save_hclg(hclg, tmp_path / "graph" / "HCLG.fst")
    assert load_hclg(tmp_path / "graph" / "HCLG.fst").to_str() == hclg.to_str()
    (tmp_path / "bad.fst").write_text("not an fst")
    with pytest.raises(DataDirError, match="bad.fst: not an OpenFst"):
        load_hclg(tmp_path / "bad.fst")
    with pytest.raises(DataDirError, match="no G.fst"):
        make_hclg(Lang.load(lang.path.parent / "lang"), tree, tm)


def test_decode_matrix_recovers_the_aligned_string(system, data):
    lang, tree, tm, hclg = system
    decoder = Decoder(hclg, tm)
    lmwts = [1, 2, 5, 10, 20]
    rng = np.random.default_rng(0)
    phones = lang.phones
    transcripts = [next(iter(read_kaldi_map(data / "train" / "text").values())).split(),
                   ["sil", *rng.choice(phones[1:], 8).tolist(), "sil"]]   # unseen bigrams
    for transcript in transcripts:
        frames = 5 * len(transcript)
        pdfs = aligned_pdfs(lang, tree, tm, transcript, frames)
        loglikes = rng.normal(-30, 1, (frames, tm.num_pdfs)).astype(np.float32)
        loglikes[np.arange(frames), pdfs] = 0.0
        expected = lang.word_seq_ids(transcript)
        assert decoder.decode_matrix(loglikes, acoustic_scale=0.2, lm_weights=lmwts) == {
            w: expected for w in lmwts}
    assert decode_matrix(hclg, tm, loglikes, acoustic_scale=0.1, lm_weights=[3.0]) == {
        3.0: expected}
    with pytest.raises(PaseInputError, match="num_pdfs"):
        decoder.decode_matrix(loglikes[:, 1:], acoustic_scale=0.2, lm_weights=[1])


def test_lmwt_sweep_matches_rescaled_1best(system):
    """The LMWT w path is the best path of graph + acoustic/w: a FasterDecoder on loglikes/w."""
    lang, tree, tm, hclg = system
    rng = np.random.default_rng(1)
    loglikes = rng.normal(0, 3, (60, tm.num_pdfs)).astype(np.float32)
    lmwts = [0.5, 2.0, 8.0]
    hyps = decode_matrix(hclg, tm, loglikes, acoustic_scale=0.2, beam=30, lattice_beam=30,
                         lm_weights=lmwts)
    tid2pdf = np.asarray(tm.transition_id_to_pdf_array()[1:])
    for w in lmwts:
        ref = kaldi_decoder.FasterDecoder(hclg, kaldi_decoder.FasterDecoderOptions(beam=30))
        ref.decode(kaldi_decoder.DecodableCtc(np.ascontiguousarray(loglikes[:, tid2pdf] / w)))
        ok, best = ref.get_best_path()
        assert ok
        assert hyps[w] == list(kaldifst.get_linear_symbol_sequence(best)[2])
    assert hyps[0.5] != hyps[8.0]   # the LM weight matters on these noisy scores


def test_decode_gmm(system, data):
    lang, tree, tm, hclg = system
    rng = np.random.default_rng(2)
    dim = 8
    means = rng.normal(0, 6, (tm.num_pdfs, dim))
    am = khg.AmDiagGmm()
    for mean in means:
        gmm = khg.DiagGmm(nmix=1, dim=dim)
        gmm.set_weights(np.ones(1))
        gmm.set_means(mean[None])
        gmm.set_invvars(np.ones((1, dim)))
        gmm.compute_gconsts()
        am.add_pdf(gmm)
    transcript = list(read_kaldi_map(data / "train" / "text").values())[-1].split()
    pdfs = aligned_pdfs(lang, tree, tm, transcript, 6 * len(transcript))
    feats = (means[pdfs] + rng.normal(0, 0.1, (len(pdfs), dim))).astype(np.float32)
    assert decode_gmm(hclg, tm, am, feats) == lang.word_seq_ids(transcript)


# ---------------------------------------------------------------- scoring

def test_to39():
    assert to39(["sil", "cl", "vcl", "epi", "ax", "zh", "ix", "el", "en", "ao"]) == [
        "sil", "sil", "sil", "sil", "ah", "sh", "ih", "l", "n", "aa"]
    with pytest.raises(PaseInputError, match="'q'"):
        to39(["q"])


def test_per_standard_and_lenient():
    refs = {"u1": "sil dh ax cl k ae t sil".split(),   # 39: sil dh ah sil k ae t sil
            "u2": "sil aa b sil".split(),
            "u3": "b d".split(),
            "u4": "zh iy".split(),
            "u5": "aa".split()}
    hyps = {"u1": "sil dh ah k ae t".split(),           # two sil deleted; ax == ah in 39
            "u2": "sil ae b sil sil".split(),           # aa -> ae substituted; sil runs merge
            "u3": "b d sil f".split(),                  # sil and f inserted
            "u4": "sh iy".split()}                      # zh == sh in 39; u5 missing: 1 deletion
    std = per(refs, hyps, lenient=False)
    assert (std.ins, std.del_, std.sub, std.ref_len) == (2, 3, 1, 8 + 4 + 2 + 2 + 1)
    assert (std.errors, std.num_utts, std.sentence_errors) == (6, 5, 4)
    assert std.per == pytest.approx(100 * 6 / 17)
    lenient = per(refs, hyps, lenient=True)
    assert (lenient.ins, lenient.del_, lenient.sub, lenient.ref_len) == (1, 1, 1, 5 + 2 + 2 + 2 + 1)
    assert lenient.sentence_errors == 3
    with pytest.raises(PaseInputError, match="without a reference"):
        per(refs, {"zz": ["aa"]}, lenient=False)


def test_sweep_and_results_line():
    refs = {"u": "sil aa b sil".split()}
    hyps = {1.0: {"u": "sil aa sil".split()}, 2.0: {"u": "sil aa b sil".split()},
            3.0: {"u": "sil aa b sil".split()}, 4.0: {"u": "b".split()}}
    best, results = sweep(refs, hyps)
    assert best == 2.0 and results[1.0].del_ == 1 and results[4.0].errors == 3
    line = results_line(ScoreResult(ins=150, del_=450, sub=735, ref_len=7215, num_utts=192,
                                    sentence_errors=180), "exp/mlp/decode_test/score_5 (standard)")
    assert line == ("%PER 18.50 [ 1335 / 7215, 150 ins, 450 del, 735 sub ] "
                    "exp/mlp/decode_test/score_5 (standard)")


def test_check_names_everything_missing(tmp_path):
    root = tiny_timit(tmp_path / "corpus", True)
    lists = ["--dev_spk", str(root / "dev.list"), "--test_spk", str(root / "test.list")]
    assert prep.check_timit(root, dev_spk=root / "dev.list", test_spk=root / "test.list") == []
    prep_timit_cli.main([str(root), "--check", *lists])
    (root / "dev2.list").write_text("faks0\nmzzz0\nmyyy0\n")
    problems = prep.check_timit(root, dev_spk=root / "dev2.list", test_spk=root / "test.list")
    assert len(problems) == 1 and re.fullmatch(r".*TEST: 2 of the 3 dev speakers \(.*dev2.list\) missing: mzzz0 myyy0",
                                               problems[0]), problems
    assert prep.check_timit(root, dev_spk=root / "dev2.list", test_spk=root / "test.list",
                            allow_missing_speakers=True) == []
    assert prep.check_timit(tmp_path / "nowhere") == [f"{tmp_path / 'nowhere'}: TIMIT directory not found"]
    with pytest.raises(PaseError, match=r"TIMIT is incomplete: .*49 of the 50 dev speakers \(built-in list\) missing: fdac1 .*; .*23 of the 24 test"):
        prep_timit_cli.main([str(root), "--check"])   # the standard lists: most speakers absent
