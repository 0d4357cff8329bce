"""Where one extraction's files go in its dump dir: the jobs and the merge name them here only.

For nj jobs, job J (1-based, Kaldi's JOB) writes, in this order:

    <layer dir>/feats.J.{ark,scp}   features (nj == 1: feats.{ark,scp}, the final names)
    <layer dir>/cmvn.J.{ark,scp}    the job's per-speaker CMVN sums (Kaldi's 2 x (D+1) layout)
    utt2num_frames.J, skipped.J     frames of its utterances, those it skipped (often empty)
    done.J                          last: nj and the layers it wrote

The merge writes <layer dir>/feats.scp, <layer dir>/cmvn.{ark,scp}, skipped and the output data
dir(s). A layer dir is the dump dir itself when only the final output is dumped (the layout every
consumer reads), else <dump dir>/<layer name> for each layer, with one output data dir each,
<out data dir>_<layer name>.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pase.errors import PaseError

FINAL = ("final",)


class DumpError(PaseError):
    """A dump dir that cannot be written or merged as asked (the message names the dir or file)."""


def absolute(path: str | os.PathLike) -> Path:
    """Absolute path without resolving symlinks, as Kaldi's make_absolute.sh does."""
    return Path(os.path.abspath(path))


@dataclass(frozen=True)
class DumpLayout:
    """The files of an `nj`-job extraction of `layers` (their names) into `dump_dir`."""

    dump_dir: Path
    nj: int
    layers: tuple[str, ...] = FINAL

    def layer_dirs(self) -> list[Path]:
        if self.layers == FINAL:
            return [self.dump_dir]
        return [self.dump_dir / name for name in self.layers]

    def out_data_dirs(self, out_data_dir: Path) -> list[Path]:
        if self.layers == FINAL:
            return [out_data_dir]
        return [out_data_dir.with_name(f"{out_data_dir.name}_{name}") for name in self.layers]

    def feats(self, layer_dir: Path, job: int) -> tuple[Path, Path]:
        """Ark (absolute: the scp points into it) and scp of one job's features."""
        stem = "feats" if self.nj == 1 else f"feats.{job}"
        return absolute(layer_dir / f"{stem}.ark"), layer_dir / f"{stem}.scp"

    def cmvn_sums(self, layer_dir: Path, job: int) -> tuple[Path, Path]:
        return absolute(layer_dir / f"cmvn.{job}.ark"), layer_dir / f"cmvn.{job}.scp"

    def utt2num_frames(self, job: int) -> Path:
        return self.dump_dir / f"utt2num_frames.{job}"

    def skipped(self, job: int) -> Path:
        return self.dump_dir / f"skipped.{job}"

    def done(self, job: int) -> Path:
        return self.dump_dir / f"done.{job}"
