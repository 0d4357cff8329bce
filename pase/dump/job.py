"""One extraction job: shard J of N of a data dir (Kaldi's JOB), its features written together
with, accumulated while writing, their frame counts and per-speaker CMVN sums."""
from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol

import numpy as np

from pase.dump.layout import DumpLayout
from pase.dump.stats import SpeakerSums
from pase.io import ArkScpWriter, DataDir, Utterance, write_kaldi_map, write_matrix_ark_scp

log = logging.getLogger(__name__)


class JobWriter:
    """Writes job `job`'s features, one ark/scp per layer of `layout`, and accumulates each
    utterance's frames and every layer's per-speaker CMVN sums as it goes.

    Entering removes the job's done.J; a clean exit completes the arks and scps, then writes
    the sums, utt2num_frames.J, skipped.J and last done.J. After a failure done.J is missing,
    so the merge refuses the job's stale or partial files.
    """

    def __init__(self, layout: DumpLayout, job: int, utt2spk: Mapping[str, str]) -> None:
        self.layout, self.job, self.utt2spk = layout, job, utt2spk
        self.frames: dict[str, int] = {}
        self.skipped: dict[str, str] = {}
        self._sums = [SpeakerSums() for _ in layout.layers]
        self._writers: list[ArkScpWriter] = []
        self._stack = contextlib.ExitStack()  # the open ArkScpWriters

    def __enter__(self) -> JobWriter:
        self.layout.done(self.job).unlink(missing_ok=True)
        with contextlib.ExitStack() as stack:  # a failure here removes the arks already opened
            for layer_dir in self.layout.layer_dirs():
                layer_dir.mkdir(parents=True, exist_ok=True)
                self._writers.append(stack.enter_context(ArkScpWriter(*self.layout.feats(layer_dir, self.job))))
            self._stack = stack.pop_all()
        return self

    def write(self, utt_id: str, mats: Sequence[np.ndarray]) -> None:
        """Write one utterance's (frames, dims) matrix of every layer, in layout order."""
        self._check_layers(mats)
        speaker = self.utt2spk[utt_id]
        for writer, sums, mat in zip(self._writers, self._sums, mats):
            mat = np.asarray(mat, dtype=np.float32)  # the stats of what the ark holds
            writer.write(utt_id, mat)
            sums.add(speaker, mat)
        self.frames[utt_id] = len(mats[0])

    def write_pieces(self, utt_id: str, rows: int, pieces: Iterable[Sequence[np.ndarray]]) -> None:
        """Write one utterance of `rows` frames given as consecutive row blocks of every layer,
        each block written (and summed) as it comes."""
        pieces = iter(pieces)
        first = next(pieces)
        self._check_layers(first)
        speaker = self.utt2spk[utt_id]
        with contextlib.ExitStack() as stack:
            appends = [stack.enter_context(w.matrix(utt_id, rows, m.shape[1])) for w, m in zip(self._writers, first)]
            for piece in itertools.chain([first], pieces):
                for append, sums, block in zip(appends, self._sums, piece):
                    block = np.asarray(block, dtype=np.float32)
                    append(block)
                    sums.add(speaker, block)
        self.frames[utt_id] = rows

    def skip(self, utt_id: str, error: str) -> None:
        self.skipped[utt_id] = error.replace("\n", " ")

    def _check_layers(self, mats: Sequence[np.ndarray]) -> None:
        if len(mats) != len(self._writers):
            raise ValueError(f"{len(mats)} layer matrices for {len(self._writers)} layers")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stack.__exit__(exc_type, exc, tb)
        if exc_type is not None:
            return
        for layer_dir, sums in zip(self.layout.layer_dirs(), self._sums):
            write_matrix_ark_scp(*self.layout.cmvn_sums(layer_dir, self.job), sorted(sums.sums.items()),
                                 dtype=np.float64)
        write_kaldi_map(self.layout.utt2num_frames(self.job), {u: str(n) for u, n in self.frames.items()})
        write_kaldi_map(self.layout.skipped(self.job), self.skipped)
        write_kaldi_map(self.layout.done(self.job), {"nj": str(self.layout.nj), "layers": list(self.layout.layers)})


class Extractor(Protocol):
    """What a job runs: `FeatureExtractor` (the encoder) or `KaldiFeatureExtractor` (mfcc/fbank)."""

    layer_names: tuple[str, ...]

    def run(self, utts: list[Utterance], writer: JobWriter) -> None: ...


def extract_job(extractor: Extractor, data: DataDir, dump_dir: Path, nj: int, job: int) -> JobWriter:
    """Write job `job` of `nj` (`DataDir.shard`: contiguous, nearly equal parts) into `dump_dir`."""
    layout = DumpLayout(dump_dir, nj, tuple(extractor.layer_names))
    with JobWriter(layout, job, data.utt2spk) as writer:
        extractor.run(data.shard(nj, job), writer)
    log.info("job %d/%d: %d utterances, %d frames -> %s (%d skipped)", job, nj, len(writer.frames),
             sum(writer.frames.values()), layout.done(job).parent, len(writer.skipped))
    return writer
