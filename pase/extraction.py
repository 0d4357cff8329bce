"""Dump encoder features of a Kaldi data dir as Kaldi ark/scp, with per-speaker CMVN stats.

Utterances are sorted by length and run in right-padded batches through
`WaveFe.forward_padded`, which gives every utterance exactly the features it gets alone, so the
batch size changes speed, never the output. Utterances longer than `max_chunk_seconds` are
encoded and written in pieces (`WaveFe.iter_chunked`, equal to one pass up to float rounding), so
memory stays bounded for any length. Audio for the next batch is read on a background
thread while the current one is encoded. All outputs are written to temporary files and renamed
when complete: an interrupted or failing run leaves no partial ark and no scp pointing at data
that does not exist.
"""
from __future__ import annotations

import contextlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from pase.io import (ArkScpWriter, AudioError, DataDir, Utterance, audio_info, check_waveform,
                     compute_cmvn_stats, copy_data_dir, iter_matrix_blocks, peak_normalize, read_audio,
                     read_kaldi_map, utt2spk_to_spk2utt, write_kaldi_map, write_matrix_ark_scp)
from pase.models.batchnorm import reestimate_batchnorm
from pase.models.frontend import WaveFe

log = logging.getLogger(__name__)


@dataclass
class ExtractOptions:
    """How to run the encoder; none of these changes the features except `peak_norm` and `bf16`."""

    device: str = "cpu"
    bf16: bool = False
    peak_norm: bool = False
    batch_size: int = 8
    max_batch_seconds: float = 120.0
    max_chunk_seconds: float = 30.0
    skip_bad: bool = False
    progress: bool = True


def estimated_samples(utt: Utterance, sample_rate: int) -> int:
    """Cheap length estimate for grouping: segment times or the file header.

    0 for pipes and for unreadable files: those fail (or are skipped) when loaded, with the
    utterance named.
    """
    if utt.end is not None:
        return int(((utt.end - (utt.start or 0.0)) * sample_rate))
    try:
        info = audio_info(utt.source)
    except AudioError:
        return 0
    if info is None:
        return 0
    frames, sr = info
    return int(frames * sample_rate / sr) - int((utt.start or 0.0) * sample_rate)


def plan_batches(lengths: Sequence[int], batch_size: int, max_batch_samples: int) -> list[list[int]]:
    """Group indices sorted by length so padding stays small and batches fit a sample budget."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    for i in order:
        cur = batches[-1] if batches else None
        # Sorted ascending, so the newest item is the longest: padded size = len(cur+1) * lengths[i].
        if cur and len(cur) < batch_size and (len(cur) + 1) * lengths[i] <= max_batch_samples:
            cur.append(i)
        else:
            batches.append([i])
    return batches


def pad_waveforms(wavs: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad waveforms into a (B, 1, T_max) batch; returns (batch, lengths) for forward_padded.

    A single float32 waveform is wrapped without a copy (a long one is large).
    """
    lengths = torch.tensor([len(w) for w in wavs])
    if len(wavs) == 1 and wavs[0].dtype == np.float32:
        return torch.from_numpy(wavs[0]).view(1, 1, -1), lengths
    batch = torch.zeros(len(wavs), 1, int(lengths.max()))
    for i, w in enumerate(wavs):
        batch[i, 0, :len(w)] = torch.from_numpy(w)
    return batch, lengths


class FeatureExtractor:
    """Runs an encoder over utterances and writes frames x dims float32 matrices."""

    def __init__(self, encoder: WaveFe, options: ExtractOptions) -> None:
        self.encoder = encoder.eval().to(options.device)
        self.opts = options
        self.sample_rate = encoder.sample_rate

    def load(self, utt: Utterance) -> np.ndarray:
        wav = read_audio(utt.source, sample_rate=self.sample_rate, start=utt.start, end=utt.end,
                         name=utt.utt_id)
        check_waveform(wav, name=f"utterance {utt.utt_id!r} ({utt.source})",
                       min_samples=self.encoder.min_samples, sample_rate=self.sample_rate)
        return peak_normalize(wav, name=utt.utt_id) if self.opts.peak_norm else wav

    def _load_batch(self, utts: list[Utterance]) -> list[tuple[Utterance, np.ndarray | AudioError]]:
        out = []
        for utt in utts:
            try:
                out.append((utt, self.load(utt)))
            except AudioError as e:
                if not self.opts.skip_bad:
                    raise
                out.append((utt, e))
        return out

    def _modes(self) -> contextlib.ExitStack:
        """Inference mode, and bf16 autocast when asked."""
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.opts.bf16:
            stack.enter_context(torch.autocast(torch.device(self.opts.device).type, dtype=torch.bfloat16))
        return stack

    def encode(self, wavs: list[np.ndarray]) -> list[np.ndarray]:
        """Encode waveforms as one padded batch; returns (frames, dims) float32 arrays."""
        batch, lengths = pad_waveforms(wavs)
        with self._modes():
            y, frames, _ = self.encoder.forward_padded(batch.to(self.opts.device), lengths,
                                                       max_chunk_seconds=self.opts.max_chunk_seconds)
            y = y.float().transpose(1, 2).cpu().numpy()
        return [y[i, :n] for i, n in enumerate(frames.tolist())]

    def write_long(self, writer: ArkScpWriter, utt_id: str, wav: np.ndarray) -> int:
        """Encode one long utterance piece by piece (`WaveFe.iter_chunked`), writing each piece as
        it comes, so that neither the features nor the activations are ever held whole; returns
        the number of frames."""
        x = torch.from_numpy(wav).view(1, 1, -1).to(self.opts.device)
        rows = self.encoder.num_frames(len(wav))
        with self._modes():
            pieces = self.encoder.iter_chunked(x, self.opts.max_chunk_seconds)
            writer.write_pieces(utt_id, rows, self.encoder.emb_dim,
                                (y[0].float().T.cpu().numpy() for y, _ in pieces))
        return rows

    def run(self, utts: list[Utterance], ark: Path, scp: Path) -> tuple[dict[str, int], dict[str, str]]:
        """Write features of `utts` to ark/scp; returns (utt -> frames, utt -> error of skipped)."""
        lengths = [estimated_samples(u, self.sample_rate) for u in utts]
        batches = [[utts[i] for i in b] for b in plan_batches(
            lengths, self.opts.batch_size, int(self.opts.max_batch_seconds * self.sample_rate))]
        num_frames: dict[str, int] = {}
        skipped: dict[str, str] = {}
        bar = tqdm(total=len(utts), unit="utt", disable=not self.opts.progress, desc=ark.name)
        with ArkScpWriter(ark, scp) as writer, ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self._load_batch, batches[0]) if batches else None
            for k in range(len(batches)):
                loaded = pending.result()
                if k + 1 < len(batches):
                    pending = pool.submit(self._load_batch, batches[k + 1])
                good = [(u, w) for u, w in loaded if isinstance(w, np.ndarray)]
                for u, e in loaded:
                    if not isinstance(e, np.ndarray):
                        log.warning("skipping %s", e)
                        skipped[u.utt_id] = str(e)
                limit = self.opts.max_chunk_seconds * self.sample_rate
                short = [(u, w) for u, w in good if len(w) <= limit]
                for u, w in good:
                    if len(w) > limit:
                        num_frames[u.utt_id] = self.write_long(writer, u.utt_id, w)
                if short:
                    for (u, _), feats in zip(short, self.encode([w for _, w in short])):
                        writer.write(u.utt_id, feats)
                        num_frames[u.utt_id] = feats.shape[0]
                bar.update(len(loaded))
        bar.close()
        return num_frames, skipped


def finalize_dump(data_dir: DataDir, dump_dir: Path, out_data_dir: Path, shard_scps: list[Path],
                  skipped: dict[str, str]) -> None:
    """Merge shard scps, write per-speaker CMVN stats and the output data dir.

    The output data dir is a copy of the input (every utt2*/spk2* file too, e.g. utt2label)
    restricted to the utterances that have features, plus feats.scp, utt2num_frames and cmvn.scp
    (Kaldi's compute-cmvn-stats --spk2utt layout): one contract for every feature type.
    """
    merged: dict[str, str] = {}
    for scp in shard_scps:
        merged.update(read_kaldi_map(scp))
    feats_scp = dump_dir / "feats.scp"
    write_kaldi_map(feats_scp, merged)
    if skipped:
        write_kaldi_map(dump_dir / "skipped", {u: e.replace("\n", " ") for u, e in skipped.items()})
    kept = [u.utt_id for u in data_dir.utterances if u.utt_id in merged]
    num_frames: dict[str, str] = {}
    cmvn: dict[str, np.ndarray] = {}
    for spk, utts in utt2spk_to_spk2utt({u: data_dir.utt2spk[u] for u in kept}).items():
        # Read in row blocks: an hour-long utterance's features are never loaded whole.
        stats = [compute_cmvn_stats(iter_matrix_blocks(merged[u])) for u in utts]
        num_frames.update((u, str(int(st[0, -1]))) for u, st in zip(utts, stats))
        cmvn[spk] = np.sum(stats, axis=0)
    write_matrix_ark_scp(absolute(dump_dir / "cmvn.ark"), dump_dir / "cmvn.scp", sorted(cmvn.items()),
                         dtype=np.float64)
    copy_data_dir(data_dir.path, out_data_dir, utt_ids=kept, carry_all=True)
    write_kaldi_map(out_data_dir / "feats.scp", merged)
    write_kaldi_map(out_data_dir / "utt2num_frames", num_frames)
    write_kaldi_map(out_data_dir / "cmvn.scp", read_kaldi_map(dump_dir / "cmvn.scp"))


def shard_paths(dump_dir: Path, nj: int, job: int) -> tuple[Path, Path]:
    """Ark/scp of one job: feats.ark/scp for a single job, feats.JOB.ark/scp otherwise."""
    stem = "feats" if nj == 1 else f"feats.{job}"
    return dump_dir / f"{stem}.ark", dump_dir / f"{stem}.scp"


def absolute(path: str | os.PathLike) -> Path:
    """Absolute path without resolving symlinks, as Kaldi's make_absolute.sh does."""
    return Path(os.path.abspath(path))


def reestimate_on_data(encoder: WaveFe, data: DataDir, options: ExtractOptions, max_utts: int = 256) -> int:
    """Re-estimate the encoder's BatchNorm statistics on (up to `max_utts` evenly spaced
    utterances of) the data dir about to be extracted; returns the number of 2 s chunks used.

    The choice depends on the data dir only, so every shard of an --nj extraction gets the same
    statistics, hence the same features as one job would give.
    """
    utts = data.utterances
    step = max(1, len(utts) // max_utts)
    loader = FeatureExtractor(encoder, options)
    wavs = [loader.load(u) for u in utts[::step][:max_utts]]
    n = reestimate_batchnorm(encoder, wavs, device=options.device, where=str(data.path))
    log.info("BatchNorm statistics re-estimated on %d chunks of %d utterances of %s", n, len(wavs), data.path)
    return n
