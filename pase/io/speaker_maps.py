"""Kaldi's utt2spk_to_spk2utt.pl and spk2utt_to_utt2spk.pl on file contents."""
from __future__ import annotations

from pase.io.datadir import WS, utt2spk_to_spk2utt
from pase.io.errors import DataDirError
from pase.io.file_specs import SPECS, scan_text


def utt2spk_text_to_spk2utt(source: str, content: str) -> dict[str, list[str]]:
    """spk2utt of utt2spk ``content``; its first bad line is an error naming ``source``."""
    return utt2spk_to_spk2utt(scan_text(source, content, SPECS["utt2spk"]).strict())


def spk2utt_text_to_utt2spk(source: str, content: str) -> dict[str, str]:
    """utt2spk of spk2utt ``content``; an utterance under two speakers is an error."""
    utt2spk: dict[str, str] = {}
    for spk, utts in scan_text(source, content, SPECS["spk2utt"]).strict().items():
        for utt in WS.split(utts):
            if utt2spk.setdefault(utt, spk) != spk:
                raise DataDirError(f"{source}: utterance {utt!r} under speakers "
                                   f"{utt2spk[utt]!r} and {spk!r}")
    return utt2spk
