"""A synthetic corpus in LibriSpeech's on-disk layout (OpenSLR 12; Mini LibriSpeech, SLR 31).

``<root>/LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>-<utt:04d>.flac`` (16 kHz mono
FLAC), one ``<spk>-<chapter>.trans.txt`` per chapter and ``SPEAKERS.TXT``, so that LibriSpeech
data preparation (Kaldi's local/data_prep.sh and ours) reads it unchanged. Each speaker is one
espeak-ng voice; speakers of different subsets are different people, as in LibriSpeech.
"""
from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import soundfile as sf

from pase.synth.espeak import Voice, as_recorded, distinct_voices, map_in_pool, synthesize, to_int16
from pase.synth.text import person_name, random_sentence

log = logging.getLogger("pase.synth.librispeech")

# subset -> (speakers, utterances per speaker); the names are Mini LibriSpeech's.
DEFAULT_SUBSETS: Mapping[str, tuple[int, int]] = {"train-clean-5": (8, 12), "dev-clean-2": (3, 6)}
# LibriSpeech readers come from everywhere; so do these voices.
LANGUAGES = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan",
             "en-gb-x-gbcwmd", "en-us-nyc")
MIN_SECONDS, MAX_SECONDS = 1.5, 6.0
_MAX_TRIES = 50


@dataclass(frozen=True)
class LibriSpeaker:
    """A reader: LibriSpeech id, one chapter, the SPEAKERS.TXT fields, and the voice."""

    id: int
    chapter: int
    sex: str
    subset: str
    name: str
    voice: Voice
    n_utts: int


@dataclass(frozen=True)
class _Job:
    flac: Path
    voice: Voice
    seed: tuple[int, int]


def librispeech_speakers(subsets: Mapping[str, tuple[int, int]], seed: int) -> list[LibriSpeaker]:
    """Speakers for every subset, with distinct ids and chapters across subsets."""
    rng = np.random.default_rng([seed, 0])
    total = sum(n for n, _ in subsets.values())
    ids = rng.choice(np.arange(19, 9000), total, replace=False).tolist()
    chapters = rng.choice(np.arange(1000, 300000), total, replace=False).tolist()
    sexes = [("F", "M")[i % 2] for i in rng.permutation(total).tolist()]
    voices = distinct_voices(rng, sexes, LANGUAGES)
    speakers, k = [], 0
    for subset, (n_speakers, n_utts) in subsets.items():
        for i in sorted(range(k, k + n_speakers), key=lambda j: ids[j]):
            speakers.append(LibriSpeaker(ids[i], chapters[i], sexes[i], subset,
                                         person_name(rng, sexes[i]), voices[i], n_utts))
        k += n_speakers
    return speakers


def _render(job: _Job) -> tuple[str, str, float]:
    """Speak random sentences until one lasts 1.5-6 s; write its FLAC.

    Returns (utterance id, transcript, seconds)."""
    rng = np.random.default_rng(job.seed)
    for _ in range(_MAX_TRIES):
        sentence = random_sentence(rng)
        speech = as_recorded(synthesize(sentence.text, job.voice), rng)
        seconds = len(speech.audio) / speech.sample_rate
        if MIN_SECONDS <= seconds <= MAX_SECONDS:
            sf.write(job.flac, to_int16(speech.audio), speech.sample_rate, format="FLAC",
                     subtype="PCM_16")
            return job.flac.stem, sentence.transcript, seconds
    raise RuntimeError(f"{job.voice} produced no sentence of {MIN_SECONDS}-{MAX_SECONDS} s "
                       f"in {_MAX_TRIES} tries")


def _speakers_txt(speakers: list[LibriSpeaker], minutes: dict[int, float]) -> str:
    lines = ["; Synthetic readers (espeak-ng voices) made by pase.synth.librispeech.",
             "; Format as in LibriSpeech's SPEAKERS.TXT; MINUTES is the speaker's total audio.",
             ";ID  |SEX| SUBSET           |MINUTES| NAME"]
    for s in sorted(speakers, key=lambda s: s.id):
        lines.append(f"{s.id:<5}| {s.sex} | {s.subset:<17}| {minutes[s.id]:5.2f} | {s.name}")
    return "\n".join(lines) + "\n"


def make_librispeech(root: Path, *, subsets: Mapping[str, tuple[int, int]] | None = None,
                     seed: int = 0, jobs: int = 1) -> Path:
    """Write a LibriSpeech-layout corpus under ``root/LibriSpeech`` and return that directory.

    ``subsets`` maps a subset name to (speakers, utterances per speaker); the default is
    DEFAULT_SUBSETS. The output depends on the arguments only, never on ``jobs``.
    """
    subsets = dict(DEFAULT_SUBSETS if subsets is None else subsets)
    speakers = librispeech_speakers(subsets, seed)
    out = Path(root) / "LibriSpeech"
    todo = []
    for spk in speakers:
        chapter_dir = out / spk.subset / str(spk.id) / str(spk.chapter)
        chapter_dir.mkdir(parents=True, exist_ok=True)
        for u in range(spk.n_utts):
            utt = f"{spk.id}-{spk.chapter}-{u:04d}"
            todo.append(_Job(chapter_dir / f"{utt}.flac", spk.voice,
                             (seed, zlib.crc32(utt.encode()))))
    results = iter(map_in_pool(_render, todo, jobs))
    minutes: dict[int, float] = {}
    for spk in speakers:
        done = [next(results) for _ in range(spk.n_utts)]
        chapter_dir = out / spk.subset / str(spk.id) / str(spk.chapter)
        (chapter_dir / f"{spk.id}-{spk.chapter}.trans.txt").write_text(
            "".join(f"{utt} {text}\n" for utt, text, _ in done))
        minutes[spk.id] = sum(sec for _, _, sec in done) / 60
    (out / "SPEAKERS.TXT").write_text(_speakers_txt(speakers, minutes))
    log.info("LibriSpeech layout: %d speakers, %d utterances, %.1f minutes in %s", len(speakers),
             len(todo), sum(minutes.values()), out)
    return out
