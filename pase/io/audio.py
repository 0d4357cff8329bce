"""Audio reading for Kaldi-style ``wav.scp`` entries.

A ``wav.scp`` value is either a file path (WAV, FLAC, NIST SPHERE, all read by
libsndfile through ``soundfile``) or a shell pipe ending in ``|`` whose stdout
is an audio file.  Everything is returned as 16 kHz mono float32 so that the
feature extractor never has to care where a waveform came from, and every
failure is an :class:`AudioError` naming the file (and utterance) so that one
broken recording in a corpus of thousands can be found immediately.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional

from pase.io.errors import AudioError

SAMPLE_RATE = 16000

logger = logging.getLogger(__name__)

# Kaldi's extract-segments tolerates a segment end slightly past the end of the
# recording (rounding in the segment times); we allow one 10 ms frame.
_END_TOLERANCE_S = 0.01
_STDERR_TAIL_CHARS = 500


def _is_pipe(source: str) -> bool:
    return source.rstrip().endswith("|")


def _label(source: str, name: str | None) -> str:
    """Describe the input for error messages: the file/command and the utterance."""
    label = f"command {source!r}" if _is_pipe(source) else f"file {source!r}"
    return f"{label} (utterance {name!r})" if name is not None else label


def _sf_info(path: str, label: str):
    """Header lookup with missing/corrupt files turned into AudioError."""
    if not os.path.exists(path):
        raise AudioError(f"{label}: file not found")
    try:
        return sf.info(path)
    except (sf.SoundFileError, RuntimeError) as exc:
        raise AudioError(f"{label}: cannot read audio header: {exc}") from exc


def _frame_range(
    num_frames: int, sr: int, start: float | None, end: float | None, label: str
) -> tuple[int, int]:
    """Convert segment times (seconds) to a frame range, validated like Kaldi."""
    start_s = 0.0 if start is None else start
    if start_s < 0:
        raise AudioError(f"{label}: negative segment start {start_s}")
    first = int(round(start_s * sr))
    if end is None or end == -1:
        last = num_frames
    else:
        if end <= start_s:
            raise AudioError(f"{label}: segment end {end} is not after start {start_s}")
        last = int(round(end * sr))
        if last > num_frames:
            if last - num_frames > int(round(_END_TOLERANCE_S * sr)):
                raise AudioError(
                    f"{label}: segment {start_s}-{end} s extends past the end of "
                    f"the audio ({num_frames / sr:.3f} s)"
                )
            last = num_frames
    if first >= num_frames:
        raise AudioError(
            f"{label}: segment start {start_s} s is at or past the end of the "
            f"audio ({num_frames / sr:.3f} s)"
        )
    return first, last


def _run_pipe(command: str, label: str) -> bytes:
    proc = subprocess.run(command.rstrip()[:-1], shell=True, capture_output=True)
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", errors="replace")[-_STDERR_TAIL_CHARS:]
        raise AudioError(f"{label}: exited with status {proc.returncode}: {tail.strip()}")
    return proc.stdout


def read_audio(
    source: str,
    *,
    sample_rate: int = SAMPLE_RATE,
    start: float | None = None,
    end: float | None = None,
    name: str | None = None,
) -> np.ndarray:
    """Read a ``wav.scp`` entry (path or ``cmd |``) as mono float32 at ``sample_rate``.

    ``start``/``end`` follow Kaldi ``segments`` semantics (seconds, ``end`` of
    ``None`` or ``-1`` meaning the end of the recording).  For plain files only
    the requested frames are read, so long recordings cut into many segments
    are not decoded in full for each segment.
    """
    label = _label(source, name)
    try:
        if _is_pipe(source):
            data, sr = sf.read(
                io.BytesIO(_run_pipe(source, label)), dtype="float32", always_2d=True
            )
            first, last = _frame_range(len(data), sr, start, end, label)
            data = data[first:last]
        else:
            info = _sf_info(source, label)
            sr = info.samplerate
            if info.frames == 0:
                raise AudioError(f"{label}: contains no samples")
            first, last = _frame_range(info.frames, sr, start, end, label)
            data, _ = sf.read(
                source, start=first, stop=last, dtype="float32", always_2d=True
            )
    except (sf.SoundFileError, RuntimeError) as exc:
        raise AudioError(f"{label}: cannot decode audio: {exc}") from exc
    if data.shape[0] == 0:
        raise AudioError(f"{label}: contains no samples")
    if data.shape[1] > 1:
        logger.info("%s: %d channels, keeping channel 0", label, data.shape[1])
    wav = np.ascontiguousarray(data[:, 0])
    if sr != sample_rate:
        logger.info("%s: resampling %d Hz -> %d Hz", label, sr, sample_rate)
        wav = torchaudio.functional.resample(torch.from_numpy(wav), sr, sample_rate).numpy()
    return wav.astype(np.float32, copy=False)


def audio_info(source: str) -> tuple[int, int] | None:
    """Return ``(num_frames, sample_rate)`` from the file header.

    Returns ``None`` for pipe commands: knowing their length requires running
    and decoding them, which is exactly the cost a header lookup should avoid.
    """
    if _is_pipe(source):
        return None
    info = _sf_info(source, _label(source, None))
    return info.frames, info.samplerate


def check_waveform(
    wav: np.ndarray, *, name: str, min_samples: int = 0, sample_rate: int = SAMPLE_RATE
) -> None:
    """Reject waveforms that would silently produce garbage features.

    ``name`` should identify the file/utterance; it starts every message.
    """
    if wav.size == 0:
        raise AudioError(f"{name}: empty audio (0 samples)")
    n_bad = int(np.count_nonzero(~np.isfinite(wav)))
    if n_bad:
        raise AudioError(f"{name}: {n_bad} non-finite (NaN/inf) samples")
    if not np.any(wav):
        raise AudioError(f"{name}: all-zero (silent) audio")
    if wav.size < min_samples:
        raise AudioError(
            f"{name}: too short: {wav.size} samples ({wav.size / sample_rate:.3f} s), "
            f"minimum is {min_samples} samples ({min_samples / sample_rate:.3f} s)"
        )


def peak_normalize(wav: np.ndarray, *, name: str | None = None) -> np.ndarray:
    """Scale to a peak absolute value of 1 so recordings at different gains match.

    ``name`` (file/utterance) is only used in the error message.
    """
    peak = float(np.max(np.abs(wav))) if wav.size else 0.0
    if peak == 0.0 or not np.isfinite(peak):
        what = "all-zero (silent) or empty" if peak == 0.0 else "non-finite"
        raise AudioError(f"{name or 'waveform'}: cannot peak-normalize {what} audio")
    return (wav / peak).astype(np.float32, copy=False)
