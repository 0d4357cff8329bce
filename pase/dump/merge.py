"""The cheap last step of an extraction: the jobs' outputs become the dump's and the data dir's.

Nothing here reads a feature: the shard scps are concatenated, the jobs' per-speaker CMVN sums
added, their utt2num_frames joined (see `pase.dump.layout` for the files).
"""
from __future__ import annotations

import logging
from pathlib import Path

import kaldiio
import numpy as np

from pase.dump.layout import DumpError, DumpLayout, absolute
from pase.dump.stats import add_sums
from pase.io import DataDir, copy_data_dir, read_kaldi_map, write_kaldi_map, write_matrix_ark_scp
from pase.io.espnet import write_shape_files

log = logging.getLogger(__name__)


def finished_layers(dump_dir: Path, nj: int) -> tuple[str, ...]:
    """The layers that jobs 1..nj wrote, from their done.J; a job not finished (or run with
    another --nj or other layers) is an error naming its file."""
    seen: dict[tuple[str, ...], int] = {}
    for job in range(1, nj + 1):
        done = DumpLayout(dump_dir, nj).done(job)
        if not done.is_file():
            raise DumpError(f"{done} not found: job {job} of {nj} has not finished "
                            f"(run pase-extract ... --nj {nj} --job {job} first; see its log)")
        manifest = read_kaldi_map(done)
        if manifest.get("nj") != str(nj) or "layers" not in manifest:
            raise DumpError(f"{done}: written by a job of --nj {manifest.get('nj')}, not --nj {nj}")
        seen.setdefault(tuple(manifest["layers"].split()), job)
    if len(seen) > 1:
        (a, ja), (b, jb) = list(seen.items())[:2]
        raise DumpError(f"{dump_dir}: job {ja} dumped layers {' '.join(a)}, job {jb} {' '.join(b)}: "
                        "run every job with the same --layers")
    return next(iter(seen))


def check_coverage(data: DataDir, dump_dir: Path, frames: dict[str, str], skipped: dict[str, str],
                   listed: int) -> None:
    """The jobs wrote or skipped every utterance of `data` exactly once (`listed`: lines read)."""
    done = frames.keys() | skipped.keys()
    missing = [u.utt_id for u in data.utterances if u.utt_id not in done]
    extra = sorted(done - data.utt2spk.keys())
    if missing or extra or listed != len(done):
        what = (f"{missing[0]!r} has no features" if missing else
                f"{extra[0]!r} is not in it" if extra else "some utterances are in two jobs")
        raise DumpError(f"{dump_dir}: its jobs do not match the {len(data)} utterances of {data.path} ({what}): "
                        "run every job with the same --nj on this data dir")


def read_matrices(scp: Path) -> dict[str, np.ndarray]:
    return {key: np.asarray(mat) for key, mat in kaldiio.load_scp(str(scp)).items()}


def merge_dump(data: DataDir, dump_dir: Path, nj: int, out_data_dir: Path) -> list[Path]:
    """Merge jobs 1..nj of `dump_dir`; returns the output data dir of every layer.

    Each layer gets feats.scp and per-speaker cmvn.{ark,scp} (Kaldi's compute-cmvn-stats
    --spk2utt layout) in its dump dir, and a data dir: a copy of `data` (every utt2*/spk2* file
    too, e.g. utt2label) restricted to the utterances with features, plus feats.scp,
    utt2num_frames and cmvn.scp: one contract for every feature type and layer; plus ESPnet's
    feats_type, feats_dim and feats_shape.
    """
    layout = DumpLayout(dump_dir, nj, finished_layers(dump_dir, nj))
    jobs = range(1, nj + 1)
    frames: dict[str, str] = {}
    skipped: dict[str, str] = {}
    listed = 0
    for job in jobs:
        job_frames, job_skipped = read_kaldi_map(layout.utt2num_frames(job)), read_kaldi_map(layout.skipped(job))
        frames.update(job_frames)
        skipped.update(job_skipped)
        listed += len(job_frames) + len(job_skipped)
    check_coverage(data, dump_dir, frames, skipped, listed)
    kept = [u.utt_id for u in data.utterances if u.utt_id in frames]
    outs = layout.out_data_dirs(out_data_dir)
    for layer_dir, out in zip(layout.layer_dirs(), outs):
        feats: dict[str, str] = {}
        for job in jobs:
            feats.update(read_kaldi_map(layout.feats(layer_dir, job)[1]))
        sums = add_sums(read_matrices(layout.cmvn_sums(layer_dir, job)[1]) for job in jobs)
        write_kaldi_map(layer_dir / "feats.scp", feats)
        write_matrix_ark_scp(absolute(layer_dir / "cmvn.ark"), layer_dir / "cmvn.scp", sorted(sums.items()),
                             dtype=np.float64)
        copy_data_dir(data.path, out, utt_ids=kept, carry_all=True)
        write_kaldi_map(out / "feats.scp", feats)
        write_kaldi_map(out / "utt2num_frames", frames)
        write_kaldi_map(out / "cmvn.scp", read_kaldi_map(layer_dir / "cmvn.scp"))
        dim = next(iter(sums.values())).shape[1] - 1 if sums else 0
        write_shape_files(out, {u: frames[u] for u in kept}, dim)  # ESPnet's feats_type/_dim/_shape
    if skipped:
        write_kaldi_map(dump_dir / "skipped", skipped)
    else:
        (dump_dir / "skipped").unlink(missing_ok=True)  # from an earlier run
    log.info("merged %d job(s): %d utterances, %d skipped -> %s", nj, len(kept), len(skipped),
             ", ".join(map(str, outs)))
    return outs
