"""Random fixed-size chunks of a Kaldi data dir for self-supervised pretraining.

Re-implements the original ``LibriSpeechSegTupleWavDataset`` + ``MIChunkWav``
(anchor chunk, context chunk, random chunk, random scaling) with the changes a
corpus-scale, resumable trainer needs:

* streaming: nothing is preloaded; each chunk reads only its own samples;
* O(1) work per item: speaker groupings are numpy arrays built once;
* the context chunk comes from another utterance of the same *speaker* and the
  random chunk from a *different* speaker (the original used file-name
  prefixes and any random file);
* randomness is a pure function of (seed, epoch, rank, draw key), so
  DataLoader workers never share a stream (the original forked one numpy
  state into every worker) and a run resumes exactly whatever the worker count
  (no worker id enters the seed: it would tie the draws to the worker count);
* an all-zero chunk stays zero under random scaling (the original gave NaN).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import torch
from torch.utils.data import Dataset

from pase.data.durations import utterance_durations
from pase.io import (SAMPLE_RATE, AudioError, DataDir, PaseInputError, Utterance, audio_info,
                     read_audio)

logger = logging.getLogger(__name__)

_IDS_IN_WARNING = 5


def _fit(wav: np.ndarray, size: int) -> np.ndarray:
    """Cut or right-pad to ``size``: reflect where the original's torch reflect pad worked, else 0."""
    n = len(wav)
    if n >= size:
        return wav[:size]
    mode = "reflect" if 2 * n > size else "constant"
    return np.pad(wav, (0, size - n), mode=mode)


def _random_scale(x: np.ndarray, gain: float) -> np.ndarray:
    """``x / max|x| * gain``; silence stays silence instead of becoming NaN."""
    peak = float(np.max(np.abs(x)))
    return x * np.float32(gain / peak) if peak > 0 else x


class _Strings:
    """Read-only strings packed in one UTF-8 buffer.

    A Python list of a million strings is copied page by page into every forked
    DataLoader worker as reference counts are touched; two numpy arrays are not.
    """

    def __init__(self, strings: Iterable[str]) -> None:
        encoded = [s.encode("utf-8") for s in strings]
        self._ends = np.cumsum([len(b) for b in encoded], dtype=np.int64)
        self._buf = np.frombuffer(b"".join(encoded), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, i: int) -> str:
        begin = self._ends[i - 1] if i > 0 else 0
        return self._buf[begin:self._ends[i]].tobytes().decode("utf-8")


class ChunkDataset(Dataset):
    """Random chunks anchored on each utterance (see the module docstring).

    Items are dicts of float32 tensors of shape ``(1, chunk_size)``: ``chunk``
    and, with ``context``, ``chunk_ctxt`` and ``chunk_rand``; plus ``utt``, the
    anchor's id.  Utterances shorter than ``min_samples`` (default
    ``chunk_size // 4``) are left out and listed in ``.skipped``; the others
    shorter than a chunk are right-padded.  Call :meth:`set_epoch` before each
    epoch (it reaches running DataLoader workers through shared memory) and set
    ``rank`` before the first iteration.
    """

    def __init__(
        self,
        data: DataDir,
        chunk_size: int = 32000,
        *,
        random_scale: bool = True,
        context: bool = True,
        min_samples: int | None = None,
        durations: dict[str, float] | None = None,
        seed: int = 0,
        rank: int = 0,
    ) -> None:
        if chunk_size < 2:
            raise ValueError(f"chunk_size must be at least 2, got {chunk_size}")
        self.chunk_size = chunk_size
        self.random_scale = random_scale
        self.context = context
        self.min_samples = chunk_size // 4 if min_samples is None else min_samples
        self.seed = seed
        self.rank = rank
        if durations is None:
            durations = utterance_durations(data)
        lacking = [u.utt_id for u in data.utterances if u.utt_id not in durations]
        if lacking:
            raise PaseInputError(
                f"{data.path}: no duration for {len(lacking)} utterance(s), e.g. "
                f"{', '.join(lacking[:_IDS_IN_WARNING])}"
            )
        kept: list[Utterance] = []
        self.skipped: list[str] = []
        for utt in data.utterances:
            if round(durations[utt.utt_id] * SAMPLE_RATE) < self.min_samples:
                self.skipped.append(utt.utt_id)
            else:
                kept.append(utt)
        if self.skipped:
            logger.warning(
                "%s: skipping %d utterance(s) shorter than %d samples (%.3f s): %s%s",
                data.path, len(self.skipped), self.min_samples, self.min_samples / SAMPLE_RATE,
                ", ".join(self.skipped[:_IDS_IN_WARNING]),
                ", ..." if len(self.skipped) > _IDS_IN_WARNING else "",
            )
        if not kept:
            raise PaseInputError(
                f"{data.path}: no utterance has at least {self.min_samples} samples"
            )
        # Everything per utterance lives in numpy arrays (see _Strings).  Speaker
        # groups: utterances of speaker s are _by_speaker[_spk_start[s] :
        # _spk_start[s] + _spk_count[s]]; utterance i is at _pos_in_spk[i] in it.
        self._ids = _Strings(u.utt_id for u in kept)
        source_index: dict[str, int] = {}
        self._source = np.array([source_index.setdefault(u.source, len(source_index))
                                 for u in kept], dtype=np.int64)
        self._sources = _Strings(source_index)
        self._start = np.array([np.nan if u.start is None else u.start for u in kept])
        self._end = np.array([np.nan if u.end is None else u.end for u in kept])
        speakers, spk = np.unique(np.array([u.speaker for u in kept]), return_inverse=True)
        self._speakers = _Strings(speakers.tolist())
        self._spk = spk.astype(np.int64)
        self._by_speaker = np.argsort(self._spk, kind="stable")
        self._spk_count = np.bincount(self._spk)
        self._spk_start = np.concatenate([[0], np.cumsum(self._spk_count)[:-1]])
        self._pos_in_spk = np.empty(len(kept), dtype=np.int64)
        self._pos_in_spk[self._by_speaker] = (
            np.arange(len(kept)) - self._spk_start[self._spk[self._by_speaker]]
        )
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def __len__(self) -> int:
        return len(self._ids)

    def utterance(self, index: int) -> Utterance:
        """The utterance item ``index`` is anchored on."""
        start, end = float(self._start[index]), float(self._end[index])
        return Utterance(self._ids[index], self._sources[int(self._source[index])],
                         None if np.isnan(start) else start, None if np.isnan(end) else end,
                         self._speakers[int(self._spk[index])])

    @property
    def utterances(self) -> list[Utterance]:
        """The kept utterances in item order (built on each access: O(N))."""
        return [self.utterance(i) for i in range(len(self))]

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's random streams (shared with already running workers)."""
        self._epoch.fill_(epoch)

    def rng(self, key: int) -> np.random.Generator:
        """The generator behind draw ``key`` in the current epoch and rank."""
        seq = np.random.SeedSequence(self.seed, spawn_key=(self.epoch, self.rank, key))
        return np.random.default_rng(seq)

    def _context_index(self, i: int, rng: np.random.Generator) -> int:
        """Another utterance of the same speaker, or ``i`` itself if it is the only one."""
        s = self._spk[i]
        count = int(self._spk_count[s])
        if count == 1:
            return i
        r = int(rng.integers(count - 1))
        r += r >= self._pos_in_spk[i]
        return int(self._by_speaker[self._spk_start[s] + r])

    def _random_index(self, i: int, rng: np.random.Generator) -> int:
        """An utterance of another speaker; any other utterance when there is one speaker."""
        s = self._spk[i]
        count, start = int(self._spk_count[s]), int(self._spk_start[s])
        n = len(self)
        if n > count:
            r = int(rng.integers(n - count))
            return int(self._by_speaker[r + count if r >= start else r])
        if n == 1:
            return i
        r = int(rng.integers(n - 1))
        return r + (r >= i)

    def _read_chunk(self, i: int, rng: np.random.Generator) -> np.ndarray:
        """A ``chunk_size`` slice of utterance ``i`` at a uniform offset in [0, len - chunk_size].

        16 kHz files are read from the exact frame range; pipes, resampled
        files and utterances not longer than a chunk are read whole.
        """
        utt = self.utterance(i)
        size = self.chunk_size
        u = rng.random()
        try:
            info = audio_info(utt.source)
        except AudioError as exc:
            raise AudioError(f"utterance {utt.utt_id!r}: {exc}") from exc
        if info is not None and info[1] == SAMPLE_RATE:
            frames, sr = info
            first = round((utt.start or 0.0) * sr)
            last = frames if utt.end is None else min(round(utt.end * sr), frames)
            if last - first > size:
                offset = first + min(int(u * (last - first - size + 1)), last - first - size)
                return read_audio(utt.source, start=offset / sr, end=(offset + size) / sr,
                                  name=utt.utt_id)
        wav = read_audio(utt.source, start=utt.start, end=utt.end, name=utt.utt_id)
        span = max(len(wav) - size, 0)
        offset = min(int(u * (span + 1)), span)
        return _fit(wav[offset:offset + size], size)

    def _chunk(self, i: int, rng: np.random.Generator) -> torch.Tensor:
        x = self._read_chunk(i, rng)
        n_bad = int(np.count_nonzero(~np.isfinite(x)))
        if n_bad:  # else every loss of the batch turns NaN, far from the cause
            utt = self.utterance(i)
            raise AudioError(f"utterance {utt.utt_id!r} ({utt.source}): {n_bad} non-finite (NaN/inf) samples; "
                             "fix the file or leave the utterance out of the data dir")
        gain = rng.random()  # drawn either way: random_scale must not change which samples are cut
        if self.random_scale:
            x = _random_scale(x, gain)
        return torch.from_numpy(np.array(x, dtype=np.float32)).unsqueeze(0)

    def __getitem__(self, key: int) -> dict[str, torch.Tensor | str]:
        """Chunks anchored on utterance ``key % len(self)``, drawn from :meth:`rng` ``(key)``.

        Keys past ``len(self)`` (from :class:`~pase.data.EpochSampler`) repeat
        utterances with fresh random draws.
        """
        rng = self.rng(key)
        i = key % len(self)
        item: dict[str, torch.Tensor | str] = {"utt": self._ids[i], "chunk": self._chunk(i, rng)}
        if self.context:
            item["chunk_ctxt"] = self._chunk(self._context_index(i, rng), rng)
            item["chunk_rand"] = self._chunk(self._random_index(i, rng), rng)
        return item
