"""Per-speaker CMVN sums accumulated while features are written, and added across jobs.

Kaldi's compute-cmvn-stats layout, float64 (2, D+1): row 0 the sums and, in column D, the frame
count; row 1 the sums of squares. Sums add, so the jobs' partial sums per speaker add up to the
stats of the whole data dir, whatever the sharding, and no feature is read back.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from pase.io import compute_cmvn_stats


class SpeakerSums:
    """CMVN sums per speaker, fed block by block (a long utterance is never held whole)."""

    def __init__(self) -> None:
        self.sums: dict[str, np.ndarray] = {}

    def add(self, speaker: str, block: np.ndarray) -> None:
        stats = compute_cmvn_stats([block])
        if speaker in self.sums:
            self.sums[speaker] += stats
        else:
            self.sums[speaker] = stats


def add_sums(parts: Iterable[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Speaker -> the sum of that speaker's stats over `parts` (e.g. one mapping per job)."""
    total: dict[str, np.ndarray] = {}
    for part in parts:
        for speaker, stats in part.items():
            if speaker in total:
                total[speaker] = total[speaker] + stats
            else:
                total[speaker] = np.asarray(stats, dtype=np.float64)
    return total
