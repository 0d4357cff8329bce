"""Kaldi's split_data.sh: a data dir cut into per-job parts, whole speakers per part."""
from __future__ import annotations

import bisect
import itertools
import logging
import os
import shutil
from pathlib import Path

from pase.io.datadir import DataDir, utt2spk_to_spk2utt
from pase.io.errors import DataDirError
from pase.io.subset import write_subsets

log = logging.getLogger(__name__)


def partition(sizes: list[int], nj: int) -> list[int]:
    """Cut ``sizes`` into ``nj`` non-empty contiguous runs of nearly equal sums.

    Returns the start index of each run: run j ends where the running total comes nearest
    to j/nj of the whole, so every run is within the largest item of the mean.  Contiguous
    runs of C-sorted speakers keep each part sorted and the parts, in order, equal to the
    whole, as with Kaldi's split.
    """
    cumulative = list(itertools.accumulate(sizes, initial=0))
    starts = [0]
    for j in range(1, nj):
        target = cumulative[-1] * j / nj
        i = bisect.bisect_left(cumulative, target)
        if i > 0 and target - cumulative[i - 1] <= cumulative[i] - target:
            i -= 1
        # Leave at least one item to every run, this one and those after it.
        starts.append(min(max(i, starts[-1] + 1), len(sizes) - (nj - j)))
    return starts


def _split_is_current(d: Path, out: Path, nj: int) -> bool:
    parts = [out / str(j) for j in range(1, nj + 1)]
    if not all((p / "utt2spk").is_file() for p in parts):
        return False
    newest_src = max(f.stat().st_mtime_ns for f in d.iterdir() if f.is_file())
    oldest_split = min(f.stat().st_mtime_ns for p in parts for f in p.iterdir() if f.is_file())
    return oldest_split > newest_src


def split_data_dir(d: Path, nj: int) -> Path:
    """Write ``d/split<nj>/{1..nj}``: whole speakers per part, parts balanced by utterances.

    A split newer than every file of ``d`` is reused as it is.
    """
    out = d / f"split{nj}"
    data = DataDir.load(d)
    spk2utt = utt2spk_to_spk2utt(data.utt2spk)
    if not 1 <= nj <= len(spk2utt):
        raise DataDirError(f"{d}: cannot split {len(spk2utt)} speaker(s) into {nj} parts "
                           "(speakers are not split across parts)")
    if _split_is_current(d, out, nj):
        log.info("%s: newer than %s; reusing it", out, d)
        return out
    utt_lists = list(spk2utt.values())
    starts = partition([len(u) for u in utt_lists], nj) + [len(utt_lists)]
    # Built aside and renamed so that a concurrent or interrupted split never leaves half a split.
    tmp = d / f".split{nj}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write_subsets(data, [(tmp / str(j + 1), [u for utts in utt_lists[starts[j]:starts[j + 1]]
                                                 for u in utts]) for j in range(nj)])
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sizes = [sum(map(len, utt_lists[starts[j]:starts[j + 1]])) for j in range(nj)]
    log.info("%s: %d parts of %d-%d utterances", out, nj, min(sizes), max(sizes))
    return out
