"""Energy-based speech segmentation, as the original's LibriSpeech pre-segmentation did.

Peak-normalise; frame energy = mean |x| over 3200-sample windows every 80 samples; speech where
the energy exceeds 0.3 x its utterance mean; smoothed over the next 40 frames; a segment starts
when the smoothed activity exceeds 0.6 and stops when it falls below 0.25; segments shorter than
1.5 s are dropped. The result is a Kaldi `segments` file instead of cut wav files.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pase.io import (DataDir, DataDirError, read_audio, read_kaldi_map, read_segments, utt2spk_to_spk2utt,
                     write_kaldi_map)

log = logging.getLogger(__name__)

WIN, SHIFT, SMOOTH = 3200, 80, 40


def speech_segments(wav: np.ndarray, *, sample_rate: int = 16000, min_seconds: float = 1.5,
                    threshold: float = 0.3, start_level: float = 0.6,
                    stop_level: float = 0.25) -> list[tuple[int, int]]:
    """(start, end) sample ranges of speech in `wav`."""
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    if peak == 0.0 or wav.size < WIN:
        return []
    x = np.abs(wav / peak).astype(np.float64)
    c = np.concatenate([[0.0], np.cumsum(x)])
    starts = np.arange(0, wav.size - WIN + 1, SHIFT)
    energy = (c[starts + WIN] - c[starts]) / WIN
    active = (energy > threshold * energy.mean()).astype(np.float64)
    a = np.concatenate([active, np.zeros(SMOOTH)])
    ca = np.concatenate([[0.0], np.cumsum(a)])
    smooth = (ca[SMOOTH:SMOOTH + len(active)] - ca[:len(active)]) / SMOOTH
    segments, begin = [], None
    for i, level in enumerate(smooth):
        if begin is None and level > start_level:
            begin = i
        elif begin is not None and level < stop_level:
            segments.append((begin, i))
            begin = None
    if begin is not None:
        segments.append((begin, len(smooth)))
    out = []
    for b, e in segments:
        s0, s1 = int(starts[b]), min(int(starts[e - 1]) + WIN, wav.size)
        if s1 - s0 > min_seconds * sample_rate:
            out.append((s0, s1))
    return out


def segment_data_dir(src: Path, dst: Path, *, min_seconds: float = 1.5, sample_rate: int = 16000) -> int:
    """Write a data dir whose utterances are the speech segments of `src`'s utterances.

    Segment `<utt>-<k>` keeps its utterance's speaker; times are relative to the recording, so
    an already segmented `src` is refined, not re-based. Transcripts cannot follow and are dropped.
    """
    data = DataDir.load(src)
    recording = ({u: r for u, (r, _, _) in read_segments(src / "segments").items()}
                 if (src / "segments").exists() else {})
    segments, utt2spk, utt2dur, used = {}, {}, {}, set()
    for utt in data.utterances:
        wav = read_audio(utt.source, sample_rate=sample_rate, start=utt.start, end=utt.end, name=utt.utt_id)
        reco = recording.get(utt.utt_id, utt.utt_id)
        base = utt.start or 0.0
        for k, (s0, s1) in enumerate(speech_segments(wav, sample_rate=sample_rate, min_seconds=min_seconds)):
            seg = f"{utt.utt_id}-{k}"
            segments[seg] = [reco, f"{base + s0 / sample_rate:.3f}", f"{base + s1 / sample_rate:.3f}"]
            utt2spk[seg], utt2dur[seg] = utt.speaker, f"{(s1 - s0) / sample_rate:.3f}"
            used.add(reco)
    if not segments:
        raise DataDirError(f"{src}: no speech segment longer than {min_seconds} s found")
    wav_scp = {r: v for r, v in read_kaldi_map(src / "wav.scp").items() if r in used}
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("text", "feats.scp", "cmvn.scp", "utt2num_frames"):
        (dst / name).unlink(missing_ok=True)
    write_kaldi_map(dst / "wav.scp", wav_scp)
    write_kaldi_map(dst / "segments", segments)
    write_kaldi_map(dst / "utt2spk", utt2spk)
    write_kaldi_map(dst / "spk2utt", utt2spk_to_spk2utt(utt2spk))
    write_kaldi_map(dst / "utt2dur", utt2dur)
    log.info("%s: %d utterances -> %d speech segments in %s", src, len(data), len(segments), dst)
    return len(segments)

