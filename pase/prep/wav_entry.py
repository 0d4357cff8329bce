"""The wav.scp value corpus preparation writes for an audio file: its path, or a decoder pipe.

pase (libsndfile) reads FLAC and NIST SPHERE files directly, which is the fast default; Kaldi's
own wave reader takes RIFF WAV only ("expected RIFF or RIFX, got fLaC"), so for Kaldi tools the
entries must be the pipes Kaldi's recipes write (``flac -c -d -s X |``, ``sph2pipe -f wav X |``).
pase reads those too, through the pipe (decoding the whole file at every read).
"""
from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from pase.errors import PaseError

WAV_FORMATS = ("path", "pipe")
WAV_FORMAT_HELP = ("wav.scp entries: 'path' (the audio files, read directly by pase) or 'pipe' "
                   "(Kaldi-style decoder pipes, which Kaldi's own tools need)")

# Audio kind -> (decoder, how to get it, pipe template).
_DECODERS = {
    "flac": ("flac", "apt-get install flac", "flac -c -d -s {} |"),
    "sphere": ("sph2pipe", "Debian does not package it: build LDC's sph2pipe",
               "sph2pipe -f wav {} |"),
}


def check_decoder(kind: str, wav_format: str) -> None:
    """Fail in one line, before anything is written, when pipe entries name a missing decoder."""
    if wav_format not in WAV_FORMATS:
        raise PaseError(f"--wav_format must be one of {', '.join(WAV_FORMATS)}, got {wav_format!r}")
    tool, how, _ = _DECODERS[kind]
    if wav_format == "pipe" and shutil.which(tool) is None:
        raise PaseError(f"--wav_format pipe writes '{tool} ...' entries but {tool} is not on PATH "
                        f"({how}; or use --wav_format path)")


def wav_entry(path: Path, kind: str, wav_format: str) -> str:
    """The wav.scp value of the audio file ``path`` (absolute) of kind "flac" or "sphere"."""
    if wav_format == "path":
        return str(path)
    return _DECODERS[kind][2].format(shlex.quote(str(path)))
