"""LibriSpeech layout (`<subset>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac` + `*.trans.txt`)
-> Kaldi data dirs.

Speakers are LibriSpeech's reader ids (the utterance ids start with them, as Kaldi requires), so
held-out-speaker splits and same-speaker context chunks use real speakers, not chapters.
"""
from __future__ import annotations

import logging
from pathlib import Path

from pase.io import DataDirError, utt2spk_to_spk2utt, write_kaldi_map
from pase.prep.wav_entry import check_decoder, wav_entry

log = logging.getLogger(__name__)


def read_speakers_txt(path: Path) -> dict[str, str]:
    """Speaker id -> gender ('m'/'f') from LibriSpeech's SPEAKERS.TXT ('ID | SEX | SUBSET | ...')."""
    genders = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) < 2 or fields[1].upper() not in ("M", "F"):
            raise DataDirError(f"{path}:{lineno}: expected 'ID | SEX | ...', got {line!r}")
        genders[fields[0]] = fields[1].lower()
    return genders


def prepare_subset(subset_dir: Path, out_dir: Path, *, wav_format: str = "path") -> int:
    """Write wav.scp, utt2spk, spk2utt, text when the subset has transcripts (and spk2gender
    when SPEAKERS.TXT is there).

    wav.scp holds the FLAC paths, or with ``wav_format="pipe"`` the ``flac -c -d -s X |``
    entries Kaldi's tools need (see :mod:`pase.prep.wav_entry`).

    Returns the number of utterances. With transcripts, every transcript line must have its audio
    file and every audio file its transcript line; a violation names the file and line. A subset
    with no `*.trans.txt` at all (audio only) gives a data dir without `text`: pretraining and
    speaker tasks need none.
    """
    check_decoder("flac", wav_format)
    if not subset_dir.is_dir():
        raise DataDirError(f"LibriSpeech subset not found: {subset_dir} (expected <root>/LibriSpeech/<subset>)")
    trans_files = sorted(subset_dir.glob("*/*/*.trans.txt"))
    if trans_files:
        wav, text, utt2spk = _with_transcripts(trans_files)
    else:
        wav, utt2spk = _audio_only(subset_dir)
        text = None
        log.info("%s: no *.trans.txt transcripts; writing a data dir without text "
                 "(enough for pretraining and speaker tasks)", subset_dir.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_kaldi_map(out_dir / "wav.scp", {u: wav_entry(path, "flac", wav_format) for u, path in wav.items()})
    if text is not None:
        write_kaldi_map(out_dir / "text", text)
    write_kaldi_map(out_dir / "utt2spk", utt2spk)
    write_kaldi_map(out_dir / "spk2utt", utt2spk_to_spk2utt(utt2spk))
    speakers_txt = subset_dir.parent / "SPEAKERS.TXT"
    if speakers_txt.is_file():
        genders = read_speakers_txt(speakers_txt)
        write_kaldi_map(out_dir / "spk2gender", {s: genders[s] for s in set(utt2spk.values()) if s in genders})
    log.info("%s: %d utterances, %d speakers -> %s", subset_dir.name, len(wav), len(set(utt2spk.values())), out_dir)
    return len(wav)


def _with_transcripts(trans_files: list[Path]) -> tuple[dict[str, Path], dict[str, str], dict[str, str]]:
    wav, text, utt2spk = {}, {}, {}
    for trans in trans_files:
        chapter_dir = trans.parent
        spk = chapter_dir.parent.name
        listed = set()
        for lineno, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            utt, _, words = line.partition(" ")
            if not utt.startswith(f"{spk}-{chapter_dir.name}-"):
                raise DataDirError(f"{trans}:{lineno}: utterance {utt!r} does not belong to "
                                   f"speaker {spk} chapter {chapter_dir.name}")
            audio = chapter_dir / f"{utt}.flac"
            if not audio.is_file():
                raise DataDirError(f"{trans}:{lineno}: transcript of {utt!r} but no audio file {audio}")
            if utt in wav:
                raise DataDirError(f"{trans}:{lineno}: duplicate utterance {utt!r}")
            wav[utt], text[utt], utt2spk[utt] = audio.resolve(), words.strip(), spk
            listed.add(utt)
        orphans = sorted(p.stem for p in chapter_dir.glob("*.flac") if p.stem not in listed)
        if orphans:
            raise DataDirError(f"{trans}: no transcript for audio file(s) {', '.join(orphans[:5])}")
    return wav, text, utt2spk


def _audio_only(subset_dir: Path) -> tuple[dict[str, Path], dict[str, str]]:
    wav, utt2spk = {}, {}
    for audio in sorted(subset_dir.glob("*/*/*.flac")):
        spk, chapter = audio.parent.parent.name, audio.parent.name
        if not audio.stem.startswith(f"{spk}-{chapter}-"):
            raise DataDirError(f"{audio}: file name does not start with its speaker and chapter "
                               f"'{spk}-{chapter}-'")
        wav[audio.stem], utt2spk[audio.stem] = audio.resolve(), spk
    if not wav:
        raise DataDirError(f"{subset_dir}: no <spk>/<chapter>/<spk>-<chapter>-<utt>.flac files; "
                           "is this a LibriSpeech subset directory?")
    return wav, utt2spk
