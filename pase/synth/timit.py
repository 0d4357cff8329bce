"""A synthetic corpus in TIMIT's on-disk layout (LDC93S1), phone-aligned.

``<root>/TIMIT/{TRAIN,TEST}/DR<n>/<SPK>/<UTT>.{WAV,PHN,WRD,TXT}`` with NIST SPHERE audio
(16-bit PCM, 16 kHz) and TIMIT's 61-phone labels, so that TIMIT data preparation (Kaldi's
local/timit_data_prep.sh and ours) reads it unchanged. TEST holds speakers named after the
official core test and dev speakers, so Kaldi's conf/test_spk.list and conf/dev_spk.list select
them as on the real disc. Phone boundaries come from espeak-ng's own phoneme events (see
pase.synth.espeak), mapped to TIMIT's set with closures before stops.
"""
from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from pase.prep.timit import CORE_TEST_SPEAKERS, DEV_SPEAKERS  # Kaldi's official speaker lists
from pase.synth.espeak import (Phone, Speech, Voice, as_recorded, distinct_voices, map_in_pool,
                               synthesize, to_int16)
from pase.synth.text import SA_SENTENCES, from_text, random_sentence

log = logging.getLogger("pase.synth.timit")

TIMIT_PHONES = (
    "b", "d", "g", "p", "t", "k", "dx", "q",                       # stops, flap, glottal stop
    "bcl", "dcl", "gcl", "pcl", "tcl", "kcl",                      # closures
    "jh", "ch",                                                    # affricates
    "s", "sh", "z", "zh", "f", "th", "v", "dh",                    # fricatives
    "m", "n", "ng", "em", "en", "eng", "nx",                       # nasals
    "l", "r", "w", "y", "hh", "hv", "el",                          # semivowels and glides
    "iy", "ih", "eh", "ey", "ae", "aa", "aw", "ay", "ah", "ao",    # vowels
    "oy", "ow", "uh", "uw", "ux", "er", "ax", "ix", "axr", "ax-h",
    "pau", "epi", "h#")                                            # pauses, silence
assert len(set(TIMIT_PHONES)) == 61

# espeak-ng's American English phonemes (mnemonics, espeak-ng-data/phsource/ph_english_us and
# ph_english) -> TIMIT phones. An empty tuple merges the phoneme into the one before it (";" is
# espeak-ng's linking glide after "the", "carry" before a vowel). Pauses ("_", "_:", "_!", ...)
# are handled apart.
ESPEAK_TO_TIMIT: dict[str, tuple[str, ...]] = {
    "p": ("p",), "b": ("b",), "t": ("t",), "d": ("d",), "k": ("k",), "g": ("g",),
    "t#": ("dx",), "?": ("q",), "tS": ("ch",), "dZ": ("jh",),
    "f": ("f",), "v": ("v",), "T": ("th",), "D": ("dh",), "s": ("s",), "z": ("z",),
    "S": ("sh",), "Z": ("zh",), "h": ("hh",),
    "m": ("m",), "n": ("n",), "N": ("ng",), "m-": ("em",), "n-": ("en",),
    "l": ("l",), "@L": ("el",), "r": ("r",), "r-": ("r",), "w": ("w",), "j": ("y",),
    "i": ("iy",), "i:": ("iy",), "I": ("ih",), "I#": ("ix",), "I2": ("ix",),
    "e": ("eh",), "E": ("eh",), "eI": ("ey",), "a": ("ae",), "aa": ("ae",),
    "A:": ("aa",), "A": ("aa",), "0": ("aa",), "O": ("ao",), "O:": ("ao",), "O2": ("ao",),
    "V": ("ah",), "U": ("uh",), "u:": ("uw",), "oU": ("ow",), "OI": ("oy",),
    "aI": ("ay",), "aU": ("aw",), "@": ("ax",), "@2": ("ax",), "@5": ("ax",), "a#": ("ax",),
    "3": ("axr",), "3:": ("er",),
    "A@": ("aa", "r"), "O@": ("ao", "r"), "o@": ("ao", "r"), "e@": ("eh", "r"),
    "U@": ("uh", "r"), "i@": ("iy", "ax"), "i@3": ("ih", "r"), "aI@": ("ay", "ax"),
    "aI3": ("ay", "axr"), "aU@": ("aw", "axr"),
    ";": (),
}
CLOSURE = {"p": "pcl", "t": "tcl", "k": "kcl", "b": "bcl", "d": "dcl", "g": "gcl",
           "ch": "tcl", "jh": "dcl"}
VOICED_STOPS = frozenset({"b", "d", "g", "jh"})
SILENCES = frozenset({"h#", "pau", "epi"})

_QUIET, _PAUSE = "<quiet>", "<pause>"


@dataclass
class _Piece:
    start: int
    end: int
    label: str
    word: int | None


def _expand(phones: tuple[Phone, ...], sr: int) -> list[_Piece]:
    """TIMIT phones over each espeak-ng phoneme; a quiet tail (a closure or gap) kept apart."""
    unknown = sorted({p.symbol for p in phones
                      if not p.is_pause and p.symbol not in ESPEAK_TO_TIMIT})
    if unknown:
        raise ValueError(f"espeak-ng phonemes without a TIMIT mapping: {' '.join(unknown)}; "
                         "add them to pase.synth.timit.ESPEAK_TO_TIMIT")
    pieces: list[_Piece] = []
    for p in phones:
        if p.is_pause:
            if pieces and pieces[-1].label in (_QUIET, _PAUSE):
                pieces[-1].end, pieces[-1].label = p.end, _PAUSE
            else:
                pieces.append(_Piece(p.start, p.end, _PAUSE, None))
            continue
        labels = ESPEAK_TO_TIMIT[p.symbol]
        if not labels:
            if pieces:
                pieces[-1].end = p.end
            else:
                pieces.append(_Piece(p.start, p.end, _PAUSE, None))
            continue
        # A quiet tail is split off only when the phoneme keeps >= 10 ms of sound: some (a short
        # dark l) are quiet throughout and are phones all the same.
        sound_end = p.sounding_end if p.sounding_end - p.start >= sr // 100 else p.end
        weights = np.array([2.0] + [1.0] * (len(labels) - 1))
        cuts = p.start + np.round(np.cumsum(weights) / weights.sum() * (sound_end - p.start))
        start = p.start
        for label, cut in zip(labels, cuts.astype(int).tolist()):
            pieces.append(_Piece(start, cut, label, p.word))
            start = cut
        if sound_end < p.end:
            pieces.append(_Piece(sound_end, p.end, _QUIET, None))
    return pieces


def _add_closures(pieces: list[_Piece], sr: int) -> list[_Piece]:
    """Give every stop and affricate its closure, from the silence espeak-ng put before it.

    That silence is the quiet tail of the previous phoneme (used whole, up to 100 ms) or the
    end of a pause (up to 50 ms, half the pause at most). Voiced stops also hold their voice
    bar before a ~25 ms burst, which becomes closure too. A stop left without closure gets the
    first half of its span.
    """
    out: list[_Piece] = []
    for piece in pieces:
        closure = CLOSURE.get(piece.label)
        if closure is None:
            out.append(piece)
            continue
        start = piece.start
        prev = out[-1] if out else None
        if prev is not None and prev.end == piece.start and prev.label in (_QUIET, _PAUSE):
            cap = sr // 10 if prev.label == _QUIET else min(sr // 20, (prev.end - prev.start) // 2)
            start = max(prev.start, prev.end - cap)
            prev.end = start
            if prev.end == prev.start:
                out.pop()
        split = piece.start
        release = sr // 40
        if piece.label in VOICED_STOPS and piece.end - piece.start > release + sr // 200:
            split = piece.end - release
        if split == start:
            split = (piece.start + piece.end) // 2
        out.append(_Piece(start, split, closure, piece.word))
        out.append(_Piece(split, piece.end, piece.label, piece.word))
    return [p for p in out if p.end > p.start]


_SILENCE_RANK = {"epi": 0, "pau": 1, "h#": 2}


def _label_silences(pieces: list[_Piece], sr: int) -> list[_Piece]:
    """Silence before the first and after the last phone -> h#; pauses and gaps of 100 ms or
    more -> pau; shorter gaps (between words, mostly) -> epi. Adjacent silences merge."""
    sounding = [i for i, p in enumerate(pieces) if p.label not in (_QUIET, _PAUSE)]
    out: list[_Piece] = []
    for i, p in enumerate(pieces):
        if i < sounding[0] or i > sounding[-1]:
            label = "h#"
        elif p.label == _PAUSE or (p.label == _QUIET and p.end - p.start >= sr // 10):
            label = "pau"
        elif p.label == _QUIET:
            label = "epi"
        else:
            label = p.label
        if out and label in SILENCES and out[-1].label in SILENCES:
            out[-1].end = p.end
            out[-1].label = max(label, out[-1].label, key=_SILENCE_RANK.__getitem__)
        else:
            out.append(_Piece(p.start, p.end, label, p.word))
    return out


def timit_alignment(speech: Speech, words: tuple[str, ...]
                    ) -> tuple[list[tuple[int, int, str]], list[tuple[int, int, str]]]:
    """The .PHN and .WRD entries ``(start, end, label)`` of an utterance spoken by espeak-ng.

    ``words`` are the sentence's words (lower case); espeak-ng must have spoken exactly those.
    """
    spoken = tuple(w.lower() for w in speech.words)
    if spoken != words:
        raise ValueError(f"espeak-ng split {' '.join(words)!r} into other words: {spoken}")
    sr = speech.sample_rate
    pieces = _label_silences(_add_closures(_expand(speech.phones, sr), sr), sr)
    phn = [(p.start, p.end, p.label) for p in pieces]
    wrd = []
    for i, word in enumerate(words):
        spans = [(p.start, p.end) for p in pieces if p.word == i and p.label not in SILENCES]
        if not spans:
            raise ValueError(f"espeak-ng gave the word {word!r} no phones")
        wrd.append((spans[0][0], spans[-1][1], word))
    return phn, wrd


@dataclass(frozen=True)
class TimitSpeaker:
    """A speaker as TIMIT files it: ``<split>/DR<region>/<id>``, sex from the id's first letter."""

    id: str           # upper case, e.g. "MDAB0"
    region: int       # dialect region 1..8
    split: str        # "TRAIN" or "TEST"
    voice: Voice

    @property
    def sex(self) -> str:
        return self.id[0]


@dataclass(frozen=True)
class _Job:
    stem: Path        # .../DR1/MDAB0/SA1, suffixes added
    text: str
    voice: Voice
    seed: tuple[int, int]


def _train_ids(rng: np.random.Generator, n: int) -> list[str]:
    """TIMIT-style ids (sex, three initials, a digit) that clash with no core-test/dev id."""
    taken = {s.upper() for s in CORE_TEST_SPEAKERS + DEV_SPEAKERS}
    ids: list[str] = []
    while len(ids) < n:
        letters = "".join(chr(ord("A") + int(i)) for i in rng.integers(26, size=3))
        spk = f"{'M' if rng.random() < 0.7 else 'F'}{letters}{int(rng.choice(3, p=[.9, .08, .02]))}"
        if spk not in taken:
            taken.add(spk)
            ids.append(spk)
    return sorted(ids)


def timit_speakers(n_train: int, n_dev: int, n_test: int, seed: int) -> list[TimitSpeaker]:
    """TRAIN speakers with made-up ids; TEST speakers: the first ``n_test`` core-test and the
    first ``n_dev`` dev ids, in the dialect regions the lists are ordered by."""
    if not (0 <= n_test <= len(CORE_TEST_SPEAKERS) and 0 <= n_dev <= len(DEV_SPEAKERS)):
        raise ValueError(f"TIMIT has {len(CORE_TEST_SPEAKERS)} core test and {len(DEV_SPEAKERS)} "
                         f"dev speakers; asked for {n_test} and {n_dev}")
    rng = np.random.default_rng([seed, 0])
    placed = ([(spk, 1 + int(rng.integers(8)), "TRAIN") for spk in _train_ids(rng, n_train)]
              + [(spk.upper(), 1 + i * 8 // len(DEV_SPEAKERS), "TEST")
                 for i, spk in enumerate(DEV_SPEAKERS[:n_dev])]
              + [(spk.upper(), 1 + i // 3, "TEST")
                 for i, spk in enumerate(CORE_TEST_SPEAKERS[:n_test])])
    voices = distinct_voices(rng, [spk[0] for spk, _, _ in placed], ["en-us"])
    return [TimitSpeaker(spk, region, split, voice)
            for (spk, region, split), voice in zip(placed, voices)]


def _sentence_ids(n: int) -> tuple[int, int]:
    """How many SX and SI sentences go with SA1+SA2 in ``n`` (TIMIT's 10 = 2 + 5 + 3)."""
    rest = max(0, n - 2)
    n_sx = round(rest * 5 / 8)
    return n_sx, rest - n_sx


def _render(job: _Job) -> float:
    """Synthesize one utterance and write its .WAV, .PHN, .WRD and .TXT; returns seconds."""
    sentence = from_text(job.text)
    speech = as_recorded(synthesize(sentence.text, job.voice), np.random.default_rng(job.seed))
    phn, wrd = timit_alignment(speech, sentence.words)
    pcm = to_int16(speech.audio)
    job.stem.parent.mkdir(parents=True, exist_ok=True)
    sf.write(job.stem.with_suffix(".WAV"), pcm, speech.sample_rate, format="NIST", subtype="PCM_16")
    job.stem.with_suffix(".PHN").write_text("".join(f"{b} {e} {p}\n" for b, e, p in phn))
    job.stem.with_suffix(".WRD").write_text("".join(f"{b} {e} {w}\n" for b, e, w in wrd))
    job.stem.with_suffix(".TXT").write_text(f"0 {len(pcm)} {sentence.text}\n")
    return len(pcm) / speech.sample_rate


def make_timit(root: Path, *, n_train_speakers: int = 24, n_dev_speakers: int = 8,
               n_test_speakers: int = 24, utts_per_speaker: int = 8, seed: int = 0,
               jobs: int = 1) -> Path:
    """Write a TIMIT-layout corpus under ``root/TIMIT`` and return that directory.

    Each speaker reads SA1 and SA2 (the same two sentences for everybody, as in TIMIT), then
    SX sentences (an SX number always has the same text, whoever reads it) and SI sentences
    (each SI number read once). The output depends on the arguments only, never on ``jobs``.
    """
    if utts_per_speaker < 2:
        raise ValueError("a TIMIT speaker reads at least SA1 and SA2 (utts_per_speaker >= 2)")
    n_sx, n_si = _sentence_ids(utts_per_speaker)
    speakers = timit_speakers(n_train_speakers, n_dev_speakers, n_test_speakers, seed)
    si_pool = np.arange(453, 2343)   # TIMIT's SI numbers; each is read by one speaker only
    if n_si * len(speakers) > len(si_pool):
        raise ValueError(f"{len(speakers)} speakers x {n_si} SI sentences exceed TIMIT's "
                         f"{len(si_pool)} SI numbers")
    rng = np.random.default_rng([seed, 1])
    si_numbers = iter(rng.permutation(si_pool).tolist())
    out = Path(root) / "TIMIT"
    todo = []
    for spk in speakers:
        texts = {"SA1": SA_SENTENCES[0], "SA2": SA_SENTENCES[1]}
        for n in sorted(rng.choice(np.arange(3, 453), n_sx, replace=False).tolist()):
            texts[f"SX{n}"] = random_sentence(np.random.default_rng([seed, 2, n])).text
        for n in sorted(next(si_numbers) for _ in range(n_si)):
            texts[f"SI{n}"] = random_sentence(np.random.default_rng([seed, 3, n])).text
        folder = out / spk.split / f"DR{spk.region}" / spk.id
        todo += [_Job(folder / utt, text, spk.voice, (seed, zlib.crc32(f"{spk.id}/{utt}".encode())))
                 for utt, text in texts.items()]
    seconds = map_in_pool(_render, todo, jobs)
    log.info("TIMIT layout: %d speakers, %d utterances, %.1f minutes in %s", len(speakers),
             len(todo), sum(seconds) / 60, out)
    return out
