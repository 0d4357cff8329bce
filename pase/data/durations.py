"""Utterance durations, cached in the data dir's ``utt2dur`` as Kaldi does.

Chunk sampling needs every utterance's length up front (to skip too-short ones
and to size epochs).  Reading it from headers is an O(N) scan over the corpus,
so the result is stored in ``utt2dur`` (Kaldi's ``get_utt2dur.sh`` file) and
the scan happens once per data dir.
"""

from __future__ import annotations

import logging

from pase.io import (SAMPLE_RATE, AudioError, DataDir, Utterance, audio_info, read_audio,
                     read_kaldi_map, write_kaldi_map)

logger = logging.getLogger(__name__)


def _recording_seconds(utt: Utterance) -> float:
    """Length of the whole recording behind ``utt``: header for files, one decode for pipes."""
    try:
        info = audio_info(utt.source)
    except AudioError as exc:
        raise AudioError(f"utterance {utt.utt_id!r}: {exc}") from exc
    if info is None:
        return len(read_audio(utt.source, name=utt.utt_id)) / SAMPLE_RATE
    frames, sr = info
    return frames / sr


def _format_seconds(seconds: float) -> str:
    return f"{seconds:.6f}".rstrip("0").rstrip(".")


def utterance_durations(data: DataDir, *, write: bool = True) -> dict[str, float]:
    """Seconds per utterance of ``data``, in utterance order.

    Taken from ``utt2dur`` when it covers every utterance; otherwise the missing
    ones come from ``segments`` (end - start) or, for whole recordings and
    ``end == -1`` segments, from the audio header (a pipe is decoded once per
    recording).  Computed values are cached on ``data.utt2dur`` and, with
    ``write``, merged into ``<data dir>/utt2dur``.  An unwritable data dir only
    costs a warning: the durations are still returned.
    """
    known = data.utt2dur or {}
    missing = [u for u in data.utterances if u.utt_id not in known]
    if not missing:
        return {u.utt_id: known[u.utt_id] for u in data.utterances}
    logger.info("%s: computing durations of %d utterance(s)", data.path, len(missing))
    recording_seconds: dict[str, float] = {}
    computed: dict[str, float] = {}
    for utt in missing:
        start = utt.start or 0.0
        if utt.end is not None:
            computed[utt.utt_id] = utt.end - start
            continue
        if utt.source not in recording_seconds:
            recording_seconds[utt.source] = _recording_seconds(utt)
        total = recording_seconds[utt.source]
        if total <= start:
            raise AudioError(
                f"utterance {utt.utt_id!r}: segment start {start} s is at or past the end "
                f"of {utt.source!r} ({total:.3f} s)"
            )
        computed[utt.utt_id] = total - start
    durations = {u.utt_id: known[u.utt_id] if u.utt_id in known else computed[u.utt_id]
                 for u in data.utterances}
    data.utt2dur = durations
    if write:
        path = data.path / "utt2dur"
        try:
            on_disk = read_kaldi_map(path, n_fields=2) if path.exists() else {}
            write_kaldi_map(path, on_disk | {k: _format_seconds(v) for k, v in durations.items()})
        except OSError as exc:
            logger.warning("%s: cannot write (%s); durations will be recomputed next time",
                           path, exc)
    return durations
