"""Synthetic corpora: real LibriSpeech/TIMIT layouts, determinism, alignment quality, CLI."""
from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pase.bin import make_synthetic_corpus as cli
from pase.errors import PaseError
from pase.synth import (CORE_TEST_SPEAKERS, DEV_SPEAKERS, FEMALE_VARIANTS, MALE_VARIANTS,
                        SA_SENTENCES, TIMIT_PHONES, Voice, find_library, make_librispeech,
                        make_timit, synthesize, timit_alignment)
from pase.synth.espeak import as_recorded
from pase.synth.text import from_text, lexicon, random_sentence
from pase.synth.timit import timit_speakers

LS_SUBSETS = {"train-clean-5": (2, 2), "dev-clean-2": (1, 2)}
TIMIT_ARGS = dict(n_train_speakers=2, n_dev_speakers=1, n_test_speakers=2, utts_per_speaker=4)
VOWELS = {"iy", "ih", "eh", "ey", "ae", "aa", "aw", "ay", "ah", "ao", "oy", "ow", "uh", "uw",
          "er", "axr"}


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def ls_root(tmp_path_factory) -> Path:
    return make_librispeech(tmp_path_factory.mktemp("ls"), subsets=LS_SUBSETS, seed=0)


@pytest.fixture(scope="module")
def timit_root(tmp_path_factory) -> Path:
    return make_timit(tmp_path_factory.mktemp("timit"), **TIMIT_ARGS, seed=0)


def timit_utterances(root: Path) -> list[Path]:
    return sorted(root.glob("*/DR*/*/*.WAV"))


def read_labels(path: Path) -> list[tuple[int, int, str]]:
    return [(int(b), int(e), lab) for b, e, lab in
            (line.split(maxsplit=2) for line in path.read_text().splitlines())]


# ---------------------------------------------------------------- espeak-ng wrapper

def test_audio_is_what_the_espeak_ng_command_writes(tmp_path):
    voice = Voice("en-us+f2", pitch=61, rate=160, amplitude=120)
    text = "She had your dark suit in greasy wash water all year."
    speech = synthesize(text, voice, sample_rate=None)
    subprocess.run(["espeak-ng", *voice.cli_args(), "-w", str(tmp_path / "cli.wav"), text],
                   check=True)
    ref, rate = sf.read(tmp_path / "cli.wav", dtype="int16")
    assert rate == speech.sample_rate == 22050
    assert np.array_equal(np.round(speech.audio * 32768).astype(np.int16), ref)


def test_phones_cover_audio_and_merged_words_are_split():
    speech = synthesize("There were six apples on the hill.", Voice("en-us+m3"))
    assert speech.sample_rate == 16000
    assert speech.phones[0].start == 0 and speech.phones[-1].end == len(speech.audio)
    assert all(a.end == b.start for a, b in zip(speech.phones, speech.phones[1:]))
    # espeak-ng speaks "there were" and "on the" as single dictionary entries
    by_word = {w: "".join(p.symbol for p in speech.phones if p.word == i)
               for i, w in enumerate(speech.words)}
    assert by_word == {"There": "De@", "were": "w3:", "six": "sIks", "apples": "ap@Lz",
                       "on": "O2n", "the": "D@2", "hill": "hIl"}


def test_missing_espeak_ng_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"tools/install\.sh.*apt-get install espeak-ng"):
        find_library()
    with pytest.raises(PaseError, match="espeak-ng is not installed"):
        cli.main(["timit", str(tmp_path / "out"), "--speakers", "1", "0", "0"])
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.tmp").exists()


def test_grammar_is_deterministic_and_uppercase():
    a = [random_sentence(np.random.default_rng(3)) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(0)
    for s in (random_sentence(rng) for _ in range(200)):
        assert re.fullmatch(r"[A-Z']+( [A-Z']+)*", s.transcript)
        assert 4 <= len(s.words) <= 16
    assert 250 <= len(lexicon()) <= 600


def test_voices_follow_sex_and_are_distinct():
    speakers = timit_speakers(10, 20, 24, seed=0)
    assert len({(s.voice.name, s.voice.pitch, s.voice.rate) for s in speakers}) == len(speakers)
    for s in speakers:
        assert s.voice.name.split("+")[1] in (MALE_VARIANTS if s.sex == "M" else FEMALE_VARIANTS)


# ---------------------------------------------------------------- LibriSpeech layout

def test_librispeech_layout(ls_root):
    assert ls_root.name == "LibriSpeech"
    speakers = {}
    for subset, (n_spk, n_utt) in LS_SUBSETS.items():
        spk_dirs = sorted((ls_root / subset).iterdir())
        assert len(spk_dirs) == n_spk
        for spk_dir in spk_dirs:
            (chapter_dir,) = spk_dir.iterdir()
            spk, chapter = spk_dir.name, chapter_dir.name
            assert spk.isdigit() and chapter.isdigit()
            speakers[spk] = subset
            flacs = sorted(chapter_dir.glob("*.flac"))
            assert [f.stem for f in flacs] == [f"{spk}-{chapter}-{u:04d}" for u in range(n_utt)]
            trans = (chapter_dir / f"{spk}-{chapter}.trans.txt").read_text().splitlines()
            assert [line.split(" ", 1)[0] for line in trans] == [f.stem for f in flacs]
            for line in trans:
                assert re.fullmatch(r"\d+-\d+-\d{4} [A-Z']+( [A-Z']+)*", line)
            for f in flacs:
                info = sf.info(f)
                assert (info.format, info.subtype, info.samplerate, info.channels) == \
                       ("FLAC", "PCM_16", 16000, 1)
                assert 1.5 <= info.duration <= 6.0
    rows = [line for line in (ls_root / "SPEAKERS.TXT").read_text().splitlines()
            if not line.startswith(";")]
    assert len(rows) == len(speakers)
    for row in rows:
        spk, sex, subset, minutes, name = (f.strip() for f in row.split("|"))
        assert re.match(rf"^{spk}[ ]+\|", row)          # what Kaldi's data_prep.sh greps
        assert speakers[spk] == subset and sex in ("M", "F") and float(minutes) > 0 and name


def test_librispeech_is_deterministic(ls_root, tmp_path):
    again = make_librispeech(tmp_path / "same", subsets=LS_SUBSETS, seed=0, jobs=2)
    assert digest(again) == digest(ls_root)
    other = make_librispeech(tmp_path / "other", subsets={"dev-clean-2": (1, 1)}, seed=1)
    flac = next(other.rglob("*.flac")).read_bytes()
    assert all(flac != p.read_bytes() for p in ls_root.rglob("*.flac"))


# ---------------------------------------------------------------- TIMIT layout

def test_timit_layout_and_speakers(timit_root):
    assert timit_root.name == "TIMIT"
    spk_dirs = {p.name: p for p in timit_root.glob("*/DR[1-8]/*")}
    test_ids = {n.lower() for n, p in spk_dirs.items() if p.parts[-3] == "TEST"}
    train_ids = {n.lower() for n, p in spk_dirs.items() if p.parts[-3] == "TRAIN"}
    assert test_ids == set(CORE_TEST_SPEAKERS[:2]) | set(DEV_SPEAKERS[:1])
    assert len(train_ids) == 2 and not train_ids & (set(CORE_TEST_SPEAKERS) | set(DEV_SPEAKERS))
    for name, path in spk_dirs.items():
        assert re.fullmatch(r"[MF][A-Z]{3}\d", name)
        utts = sorted(p.stem for p in path.glob("*.WAV"))
        assert utts[:2] == ["SA1", "SA2"] and len(utts) == 4
        assert all(re.fullmatch(r"S[XI]\d+", u) for u in utts[2:])
        for u in utts:
            assert all((path / f"{u}{ext}").is_file() for ext in (".PHN", ".WRD", ".TXT"))
        assert (path / "SA1.TXT").read_text().split(" ", 2)[2].strip() == SA_SENTENCES[0]
        assert (path / "SA2.TXT").read_text().split(" ", 2)[2].strip() == SA_SENTENCES[1]


def test_timit_files(timit_root):
    for wav in timit_utterances(timit_root):
        header = wav.read_bytes()[:1024].decode("ascii")
        assert header.startswith("NIST_1A") and "sample_rate -i 16000" in header
        audio, rate = sf.read(wav, dtype="int16")
        assert rate == 16000 and audio.ndim == 1
        n = len(audio)
        assert f"sample_count -i {n}" in header
        phn = read_labels(wav.with_suffix(".PHN"))
        assert phn[0][0] == 0 and phn[-1][1] == n
        assert phn[0][2] == "h#" and phn[-1][2] == "h#"
        assert all(a[1] == b[0] for a, b in zip(phn, phn[1:]))
        assert all(b < e for b, e, _ in phn)
        assert {p for _, _, p in phn} <= set(TIMIT_PHONES)
        start, end, text = read_labels(wav.with_suffix(".TXT"))[0]
        assert (start, end) == (0, n)
        wrd = read_labels(wav.with_suffix(".WRD"))
        assert tuple(w for _, _, w in wrd) == from_text(text).words
        assert all(a[1] <= b[0] for a, b in zip(wrd, wrd[1:]))
        assert wrd[0][0] >= phn[1][0] and wrd[-1][1] <= phn[-1][0]
        bounds = {b for b, _, _ in phn} | {n}
        assert all(b in bounds and e in bounds for b, e, _ in wrd)


def test_timit_alignment_matches_the_audio(timit_root):
    """Silence labels sit on quiet audio, vowels on loud, /s/ on high-frequency noise."""
    levels: dict[str, list[float]] = {"sil": [], "closure": [], "vowel": []}
    hf_share: dict[str, list[float]] = {"s": [], "vowel": []}
    for wav in timit_utterances(timit_root):
        audio, _ = sf.read(wav)
        for b, e, p in read_labels(wav.with_suffix(".PHN")):
            seg = audio[b:e]
            power = np.mean(seg ** 2) + 1e-12
            kind = ("sil" if p in ("h#", "pau") else "closure" if p in ("pcl", "tcl", "kcl")
                    else "vowel" if p in VOWELS else None)
            if kind:
                levels[kind].append(power)
            if (p == "s" or p in VOWELS) and e - b >= 512:
                spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg)))) ** 2
                freqs = np.fft.rfftfreq(len(seg), 1 / 16000)
                hf_share["s" if p == "s" else "vowel"].append(spec[freqs > 4000].sum() / spec.sum())
    db = {k: 10 * np.log10(np.mean(v)) for k, v in levels.items()}
    assert db["vowel"] - db["sil"] > 25
    assert db["vowel"] - db["closure"] > 10
    assert np.median(hf_share["s"]) > 0.5
    assert np.median(hf_share["vowel"]) < 0.1


def test_mapping_covers_what_espeak_says_for_the_lexicon():
    words = lexicon()
    rng = np.random.default_rng(0)
    text = ", ".join(words) + ". " + " ".join(random_sentence(rng).text for _ in range(30))
    sentence = from_text(text)
    speech = as_recorded(synthesize(text, Voice("en-us")), rng)
    phn, wrd = timit_alignment(speech, sentence.words)   # raises on unmapped phonemes
    assert [w for _, _, w in wrd] == list(sentence.words)
    assert {p for _, _, p in phn} <= set(TIMIT_PHONES)


def test_timit_is_deterministic(timit_root, tmp_path):
    again = make_timit(tmp_path / "same", **TIMIT_ARGS, seed=0, jobs=2)
    assert digest(again) == digest(timit_root)
    other = make_timit(tmp_path / "other", n_train_speakers=1, n_dev_speakers=0,
                       n_test_speakers=0, utts_per_speaker=2, seed=1)
    sa1 = next(other.rglob("SA1.WAV")).read_bytes()
    assert all(sa1 != p.read_bytes() for p in timit_root.rglob("SA1.WAV"))


# ---------------------------------------------------------------- CLI

def test_cli_builds_via_tmp_and_reuses(tmp_path, monkeypatch):
    out = tmp_path / "corpus"
    argv = ["timit", str(out), "--speakers", "1", "0", "0", "--utts-per-speaker", "2"]
    (tmp_path / "corpus.tmp" / "TIMIT").mkdir(parents=True)           # an interrupted run
    (tmp_path / "corpus.tmp" / "TIMIT" / "junk").write_text("half")
    cli.main(argv)
    assert not (tmp_path / "corpus.tmp").exists()
    assert not (out / "TIMIT" / "junk").exists()
    assert len(list(out.glob("TIMIT/TRAIN/DR*/*/*.WAV"))) == 2
    assert cli.read_stamp(out)["speakers"] == [1, 0, 0]
    before = digest(out)

    def no_build(*a, **k):
        raise AssertionError("rebuilt a complete corpus")
    monkeypatch.setattr(cli, "build", no_build)
    cli.main(argv)                                                        # reused
    assert digest(out) == before
    with pytest.raises(AssertionError, match="rebuilt"):
        cli.main(argv + ["--seed", "1"])                                  # other params: rebuild
    assert digest(out) == before                     # the interrupted rebuild left OUT intact


def test_cli_refuses_foreign_dirs_and_bad_counts(tmp_path):
    (tmp_path / "mine").mkdir()
    with pytest.raises(PaseError, match="not a synthetic corpus"):
        cli.main(["librispeech", str(tmp_path / "mine")])
    with pytest.raises(PaseError, match="takes 3"):
        cli.main(["timit", str(tmp_path / "x"), "--speakers", "1", "2"])
