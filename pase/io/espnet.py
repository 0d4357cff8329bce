"""Dump data dirs for ESPnet2's `asr.sh --feats_type extracted`.

What asr.sh reads (egs2/TEMPLATE/asr1/asr.sh, stages 3, 4, 10-11): `feats.scp`; `feats_type`
(the word `extracted`), `feats_dim` (D) and `feats_shape` (`<utt> <frames>,<D>` lines, which
stage 4 filters by length). Its stage 3 also replaces `wav.scp` by a dummy made from the keys
of `cmvn.scp`, and copy_data_dir.sh then maps those keys as utterances and `cmvn.scp`'s as
speakers: a Kaldi dir with speakers therefore breaks it ("undefined key <speaker>"). The ESPnet
copy made here has one "speaker" per utterance (as ESPnet's own data dirs without speaker
labels do) and per-utterance CMVN stats, so stage 3 runs on it unchanged; the speakers stay in
`utt2spk.orig` for tasks that need them.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from pase.io.datadir import DataDir, read_kaldi_map, write_kaldi_map
from pase.io.errors import DataDirError
from pase.io.kaldi_ark import compute_cmvn_stats, iter_matrix_blocks, write_matrix_ark_scp

FEATS_TYPE = "extracted"


def write_shape_files(data_dir: Path, frames: dict[str, str], dim: int) -> None:
    """feats_type, feats_dim and feats_shape of a dump data dir (from utt2num_frames: no feature
    is read). Kaldi's tools ignore these files."""
    (data_dir / "feats_type").write_text(FEATS_TYPE + "\n")
    (data_dir / "feats_dim").write_text(f"{dim}\n")
    write_kaldi_map(data_dir / "feats_shape", {utt: f"{n},{dim}" for utt, n in frames.items()})


def export_espnet(src: Path, out: Path) -> Path:
    """Copy the dump data dir `src` (feats.scp, utt2num_frames) to `out` in the form ESPnet's
    `--feats_type extracted` stage 3 accepts (see the module docstring). Reads every matrix once,
    block by block, for the per-utterance CMVN stats; written in a scratch dir renamed at the end."""
    data = DataDir.load(src)
    feats_file, frames_file = src / "feats.scp", src / "utt2num_frames"
    for need in (feats_file, frames_file):
        if not need.is_file():
            raise DataDirError(f"{need} not found: export a dir written by pase-extract")
    feats, frames = read_kaldi_map(feats_file), read_kaldi_map(frames_file)
    for path, table, what in ((feats_file, feats, "features"), (frames_file, frames, "frame count")):
        missing = [u for u in data.utt2spk if u not in table]
        if missing:
            raise DataDirError(f"{path}: no {what} for {len(missing)} utterance(s), e.g. {missing[0]!r}")
    if out.exists():
        raise DataDirError(f"{out}: exists; remove it or choose another output dir")
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for f in src.iterdir():
            if f.is_file() and f.name not in ("utt2spk", "spk2utt", "cmvn.scp", "spk2gender"):
                shutil.copy2(f, tmp / f.name)
        shutil.copy2(src / "utt2spk", tmp / "utt2spk.orig")
        identity = {u: u for u in data.utt2spk}
        write_kaldi_map(tmp / "utt2spk", identity)
        write_kaldi_map(tmp / "spk2utt", identity)
        stats, dim = [], 0
        for utt in data.utt2spk:
            blocks = list(iter_matrix_blocks(feats[utt]))
            dim = blocks[0].shape[1]
            stats.append((utt, compute_cmvn_stats(blocks)))
        write_matrix_ark_scp(tmp / "cmvn.ark", tmp / "cmvn.scp", stats, dtype=np.float64)
        # The scp names the ark where it will be once the scratch dir is renamed.
        final_ark = str((out / "cmvn.ark").resolve())
        write_kaldi_map(tmp / "cmvn.scp", {k: final_ark + ":" + v.rpartition(":")[2]
                                           for k, v in read_kaldi_map(tmp / "cmvn.scp").items()})
        write_shape_files(tmp, {u: frames[u] for u in data.utt2spk}, dim)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
