"""espeak-ng synthesis with sample-exact phoneme timing.

The espeak-ng command line cannot report when each phoneme starts: ``-x``/``--ipa`` print the
phonemes without times and ``--pho`` (durations) needs an MBROLA voice, which Debian's package
does not ship. The library the command line is built on, libespeak-ng, does report them: with
``espeakINITIALIZE_PHONEME_EVENTS`` its synthesis callback receives a phoneme event carrying the
index of the output sample where that phoneme begins, and word events likewise. So each utterance
is synthesized by a short-lived child process (``python -c``) that loads libespeak-ng with
ctypes and sends back the 22.05 kHz samples and the events of that one run: audio and timing
come from the same synthesis, and the timing is exact, not estimated.

A fresh process per utterance is deliberate: libespeak-ng keeps state from one utterance to the
next (voice flutter, random noise of the breathy variants), so synthesizing in a long-lived
process would make each waveform depend on what was synthesized before it, i.e. on how work is
split across jobs. A fresh process reproduces exactly what the ``espeak-ng`` command writes with
the same options, run after run.
"""
from __future__ import annotations

import bisect
import ctypes.util
import glob
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Callable, Iterable, Sequence, TypeVar

import numpy as np

# torch is imported where audio is resampled, not here: the CLI's reuse check and the text
# grammar import this package and should not pay for it.

# espeak-ng variants (espeak-ng-data/voices/!v) by the sex they sound like; the robotic,
# whispering and otherwise odd ones are left out.
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "Andy", "Lee", "Denis",
                 "Michael", "john", "pedro", "norbert", "quincy", "robert", "rob", "gustave",
                 "marcelo", "travis", "victor", "iven3", "antonio", "Storm", "Jacky", "Gene", "ed",
                 "klatt", "klatt2", "klatt3")
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5", "Andrea", "Annie", "anika", "belinda", "linda",
                   "steph", "steph2", "steph3", "aunty", "Alicia")

_PUNCTUATION = ".,;:!?\"()"
INSTALL_HINT = "install it with tools/install.sh or `apt-get install espeak-ng`"

_CHILD = r"""
import ctypes, json, sys
lib = ctypes.CDLL(sys.argv[1])
class Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]
Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                            ctypes.POINTER(Event))
# AUDIO_OUTPUT_SYNCHRONOUS; espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_DONT_EXIT
rate = lib.espeak_Initialize(2, 0, None, 0x8001)
if rate <= 0:
    sys.exit("espeak_Initialize failed")
pcm, events = [], []
def on_synth(wav, n, ev):
    if n > 0:
        pcm.append(ctypes.string_at(wav, 2 * n))
    i = 0
    while ev[i].type != 0:
        e = ev[i]
        if e.type == 1:  # espeakEVENT_WORD
            events.append(["word", e.sample, e.text_position, e.length])
        elif e.type == 7:  # espeakEVENT_PHONEME
            events.append(["phoneme", e.sample, e.id.decode()])
        i += 1
    return 0
callback = Callback(on_synth)
lib.espeak_SetSynthCallback(callback)
if lib.espeak_SetVoiceByName(sys.argv[2].encode()) != 0:
    sys.exit("espeak-ng has no voice " + repr(sys.argv[2]))
# espeakRATE, espeakVOLUME, espeakPITCH, espeakRANGE
for parameter, value in zip((1, 2, 3, 4), sys.argv[3:7]):
    lib.espeak_SetParameter(parameter, int(value), 0)
text = sys.stdin.buffer.read()
# POS_CHARACTER; espeakCHARS_UTF8 | espeakPHONEMES | espeakENDPAUSE, as the espeak-ng command does
lib.espeak_Synth(text, len(text) + 1, 0, 1, 0, 0x1101, None, None)
lib.espeak_Synchronize()
sys.stdout.buffer.write(json.dumps({"rate": rate, "events": events}).encode() + b"\n")
sys.stdout.buffer.write(b"".join(pcm))
"""


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an espeak-ng voice+variant and the prosody options of the CLI."""

    name: str                # -v, e.g. "en-us+m3"
    pitch: int = 50          # -p, 0..99
    rate: int = 175          # -s, words per minute
    amplitude: int = 100     # -a, 0..200
    pitch_range: int = 50    # intonation range, 0..100 (no CLI option)

    def cli_args(self) -> list[str]:
        """The equivalent espeak-ng command-line options (the pitch range has none)."""
        return ["-v", self.name, "-p", str(self.pitch), "-s", str(self.rate),
                "-a", str(self.amplitude)]


@dataclass(frozen=True)
class Phone:
    """One espeak-ng phoneme and its samples ``[start, end)``.

    espeak-ng renders a stop's closure as silence at the end of the phoneme before it (the
    stop's own span is the burst); ``sounding_end`` is where such a trailing quiet stretch
    begins (``== end`` when there is none), so aligners can hand it to the stop.
    """

    symbol: str               # espeak-ng mnemonic, e.g. "aI", "@2", "_:" (pause)
    start: int
    end: int
    sounding_end: int
    word: int | None           # index into Speech.words; None for pauses and leading silence

    @property
    def is_pause(self) -> bool:
        return self.symbol.startswith("_")


@dataclass(frozen=True)
class Speech:
    """The audio of one utterance, its phonemes (covering it contiguously) and its words."""

    audio: np.ndarray          # float32 in [-1, 1]
    sample_rate: int
    phones: tuple[Phone, ...]
    words: tuple[str, ...]     # the text's words (whitespace tokens, punctuation stripped)


def find_library() -> str:
    """Path of the libespeak-ng that belongs to the ``espeak-ng`` command on PATH.

    The command is what tools/install.sh installs and checks for; its library is looked up
    beside it first (source builds under a prefix), then where the dynamic loader finds it.
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError(f"espeak-ng is not installed (no `espeak-ng` on PATH): {INSTALL_HINT}")
    prefix = os.path.dirname(os.path.dirname(os.path.realpath(exe)))
    for pattern in ("lib/libespeak-ng.so*", "lib/*/libespeak-ng.so*", "lib64/libespeak-ng.so*",
                    "lib/libespeak-ng*.dylib"):
        found = sorted(glob.glob(os.path.join(prefix, pattern)))
        if found:
            return found[0]
    lib = ctypes.util.find_library("espeak-ng")
    if lib is None:
        raise RuntimeError(f"{exe} is there but its library libespeak-ng is not: {INSTALL_HINT}")
    return lib


def _raw_synthesis(text: str, voice: Voice) -> tuple[np.ndarray, int, list]:
    """Run the child: int16 samples at espeak-ng's rate, that rate, and the events."""
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _CHILD, find_library(), voice.name, str(voice.rate),
         str(voice.amplitude), str(voice.pitch), str(voice.pitch_range)],
        input=text.encode(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"espeak-ng failed on {text!r} with voice {voice}: "
                           f"{proc.stderr.decode(errors='replace').strip()}")
    header, _, pcm = proc.stdout.partition(b"\n")
    meta = json.loads(header)
    return np.frombuffer(pcm, dtype="<i2"), meta["rate"], meta["events"]


def _short_power(x: np.ndarray, rate: int) -> np.ndarray:
    """Mean power over a centred 10 ms window (about one pitch period or more)."""
    win = max(1, rate // 100)
    return np.convolve(x.astype(np.float64) ** 2, np.ones(win) / win, mode="same")


def _quiet_start(pcm: np.ndarray, start: int, end: int, rate: int, threshold: float) -> int:
    """Start of the quiet stretch (>= 5 ms) that ends ``pcm[start:end]``; ``end`` if none.

    The power is taken inside the phoneme only, so the next phoneme's burst does not leak in.
    """
    loud = np.flatnonzero(_short_power(pcm[start:end], rate) >= threshold)
    first = start + int(loud[-1]) + 1 if len(loud) else start
    return first if end - first >= rate // 200 else end


def phonemize(words: Sequence[str], voice: str = "en-us") -> list[list[str]]:
    """Citation phonemes (espeak-ng mnemonics, stress marks dropped) of each word alone."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError(f"espeak-ng is not installed (no `espeak-ng` on PATH): {INSTALL_HINT}")
    proc = subprocess.run([exe, "-q", "-x", "--sep= ", "-v", voice], input="\n".join(words) + "\n",
                          capture_output=True, text=True, check=True)
    lines = [line.split() for line in proc.stdout.splitlines() if line.strip()]
    if len(lines) != len(words):
        raise RuntimeError(f"espeak-ng -x gave {len(lines)} lines for {len(words)} words")
    return [[p.lstrip("',%=") for p in line if p.lstrip("',%=")] for line in lines]


def _edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def _split_group(symbols: list[str], citations: list[list[str]]) -> list[int]:
    """Which of the k words each phoneme of a merged group belongs to.

    Cuts the group into k consecutive (non-empty where possible) runs whose phonemes are
    closest, by edit distance, to the words' citation forms.
    """
    k = len(citations)
    cuts_options = (itertools.combinations(range(1, len(symbols)), k - 1) if len(symbols) >= k
                    else [tuple(min(i, len(symbols)) for i in range(1, k))])
    best = min(cuts_options, key=lambda cuts: sum(
        _edit_distance(symbols[a:b], cit)
        for (a, b), cit in zip(zip((0,) + cuts, cuts + (len(symbols),)), citations)))
    bounds = (0,) + tuple(best) + (len(symbols),)
    return [w for w in range(k) for _ in range(bounds[w + 1] - bounds[w])]


def _text_words(text: str) -> tuple[list[int], list[str]]:
    """Start offsets and words (whitespace tokens without surrounding punctuation) of text."""
    starts, words = [], []
    for m in re.finditer(r"\S+", text):
        word = m.group().strip(_PUNCTUATION)
        if word:
            starts.append(m.start() + m.group().index(word))
            words.append(word)
    return starts, words


def synthesize(text: str, voice: Voice, sample_rate: int | None = 16000) -> Speech:
    """Speak ``text`` with ``voice``; resampled to ``sample_rate`` (None: espeak-ng's 22.05 kHz).

    Phones carry the index of the word of ``text`` they belong to. espeak-ng speaks some
    word pairs ("in the", "there were") as one dictionary entry with one word event; such a
    group is cut between its words where the phonemes best match each word said alone.
    """
    pcm, rate, events = _raw_synthesis(text, voice)
    n = len(pcm)
    starts, words = _text_words(text)
    heads: set[int] = set()
    word: int | None = None
    marks: list[tuple[int, str, int | None]] = []   # (start sample, symbol, word index)
    for event in events:
        if event[0] == "word":
            if event[3] > 0:   # zero-length word events sit on punctuation
                word = max(0, bisect.bisect_right(starts, event[2] - 1) - 1)
                heads.add(word)
        else:
            _, sample, symbol = event
            marks.append((min(sample, n), symbol, None if symbol.startswith("_") else word))
    groups = [[h] + list(itertools.takewhile(lambda w: w not in heads, range(h + 1, len(words))))
              for h in sorted(heads)]
    merged = [g for g in groups if len(g) > 1]
    if merged:
        citations = iter(phonemize([words[w] for g in merged for w in g], voice.name))
        for group in merged:
            at = [i for i, m in enumerate(marks) if m[2] == group[0]]
            owner = _split_group([marks[i][1] for i in at], [next(citations) for _ in group])
            for i, w in zip(at, owner):
                marks[i] = (marks[i][0], marks[i][1], group[w])
    if not marks or marks[0][0] > 0:
        marks.insert(0, (0, "_", None))
    # A post-vocalic "l" sometimes comes out inside the vowel, its event at the vowel's end:
    # it gets the vowel's last third rather than nothing.
    for i in range(1, len(marks)):
        nxt = marks[i + 1][0] if i + 1 < len(marks) else n
        start, symbol, w = marks[i]
        prev_start, prev_symbol, _ = marks[i - 1]
        if nxt == start and not symbol.startswith("_") and not prev_symbol.startswith("_"):
            marks[i] = (prev_start + 2 * (start - prev_start) // 3, symbol, w)
    bounds = [m[0] for m in marks[1:]] + [n]
    # Most variants render closures as exact zeros, breathy ones (f2-f5, m2, Alicia) as noise
    # 25-45 dB down: "quiet" is 25 dB below the utterance's loud (95th percentile) level.
    threshold = np.percentile(_short_power(pcm, rate), 95) * 10 ** -2.5 if n else 0.0
    native = [(symbol, start, end, _quiet_start(pcm, start, end, rate, threshold), w)
              for (start, symbol, w), end in zip(marks, bounds) if end > start]

    audio = pcm.astype(np.float32) / 32768.0
    out_rate = rate if sample_rate is None else sample_rate
    if out_rate != rate:
        import torch
        import torchaudio.functional as AF
        audio = AF.resample(torch.from_numpy(audio), rate, out_rate).numpy()

    def scale(i: int) -> int:
        return min(round(i * out_rate / rate), len(audio)) if i < n else len(audio)

    phones = []
    for symbol, start, end, silent_from, w in native:
        s, e = scale(start), scale(end)
        if e > s:
            phones.append(Phone(symbol, s, e, max(s, min(e, scale(silent_from))), w))
    return Speech(audio, out_rate, tuple(phones), tuple(words))


_PITCH = {"M": (20, 61), "F": (35, 76)}   # -p ranges per sex: each variant sets the base


def distinct_voices(rng: np.random.Generator, sexes: Sequence[str],
                    languages: Sequence[str]) -> list[Voice]:
    """One voice per speaker (sex "M" or "F"), no two alike.

    Variants are dealt round-robin from a per-sex shuffled deck, so a handful of speakers never
    share a timbre; pitch, speed and intonation range are drawn on top.
    """
    decks = {sex: [pool[i] for i in rng.permutation(len(pool))]
             for sex, pool in (("M", MALE_VARIANTS), ("F", FEMALE_VARIANTS))}
    dealt = {"M": 0, "F": 0}
    seen: set[tuple[str, int, int]] = set()
    voices = []
    for sex in sexes:
        deck = decks[sex]
        while True:
            voice = Voice(f"{languages[int(rng.integers(len(languages)))]}+"
                          f"{deck[dealt[sex] % len(deck)]}",
                          pitch=int(rng.integers(*_PITCH[sex])), rate=int(rng.integers(140, 196)),
                          pitch_range=int(rng.integers(30, 81)))
            dealt[sex] += 1
            if (voice.name, voice.pitch, voice.rate) not in seen:
                break
        seen.add((voice.name, voice.pitch, voice.rate))
        voices.append(voice)
    return voices


def as_recorded(speech: Speech, rng: np.random.Generator, lead: tuple[float, float] = (0.1, 0.3),
                trail: tuple[float, float] = (0.02, 0.15), snr_db: tuple[float, float] = (35, 50),
                peak: tuple[float, float] = (0.3, 0.9)) -> Speech:
    """Silence before and after (seconds), a faint noise floor and a level, drawn from ``rng``.

    (espeak-ng already ends an utterance with a ~0.3 s pause, hence the shorter trail.)

    espeak-ng's output starts and stops abruptly and is digitally silent between words; real
    recordings (and the models trained on them) have room tone and varying levels. The added
    edges become pause phones, so the phones still cover the audio.
    """
    sr = speech.sample_rate
    head, tail = int(rng.uniform(*lead) * sr), int(rng.uniform(*trail) * sr)
    audio = np.concatenate([np.zeros(head), speech.audio, np.zeros(tail)])
    level = float(np.sqrt(np.mean(speech.audio.astype(np.float64) ** 2)))
    audio += rng.standard_normal(len(audio)) * level * 10 ** (-rng.uniform(*snr_db) / 20)
    audio *= rng.uniform(*peak) / max(float(np.abs(audio).max()), 1e-9)
    n = len(speech.audio)
    phones = ((Phone("_", 0, head, 0, None),)
              + tuple(Phone(p.symbol, p.start + head, p.end + head, p.sounding_end + head, p.word)
                      for p in speech.phones)
              + (Phone("_", head + n, len(audio), head + n, None),))
    return Speech(audio.astype(np.float32), sr, tuple(p for p in phones if p.end > p.start),
                  speech.words)


def to_int16(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)


T = TypeVar("T")
R = TypeVar("R")


def _one_thread() -> None:
    """Resampling an utterance is milliseconds of work: more torch threads only add hand-off
    costs (5x slower on a busy 2-core machine), and the jobs already fill the cores."""
    import torch
    torch.set_num_threads(1)


def map_in_pool(fn: Callable[[T], R], items: Iterable[T], jobs: int = 1) -> list[R]:
    """``[fn(x) for x in items]`` over ``jobs`` worker processes, results in input order.

    Every item is independent (its own seed, its own espeak-ng process), so the results do not
    depend on ``jobs``. Workers are spawned (torch and fork do not mix), so a script calling
    this with jobs > 1 needs the usual ``if __name__ == "__main__":`` guard.
    """
    items = list(items)
    if jobs <= 1 or len(items) <= 1:
        import torch
        threads = torch.get_num_threads()
        _one_thread()
        try:
            return [fn(x) for x in items]
        finally:
            torch.set_num_threads(threads)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                             initializer=_one_thread) as pool:
        return list(pool.map(fn, items, chunksize=max(1, len(items) // (8 * jobs))))
