"""Encoder features of utterances, written through a `pase.dump.JobWriter` (ark/scp per layer).

Utterances are sorted by length and run in right-padded batches through
`WaveFe.forward_padded`, which gives every utterance exactly the features it gets alone, so the
batch size changes speed, never the output. Utterances longer than `max_chunk_seconds` are
encoded and written in pieces (`WaveFe.iter_chunked`, equal to one pass up to float rounding), so
memory stays bounded for any length. Audio for the next batch is read on a background
thread while the current one is encoded. Any `forward_hidden` layers can be written instead of
the final output alone (`layers`), each to its own ark.
"""
from __future__ import annotations

import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from pase.dump import JobWriter
from pase.io import AudioError, DataDir, Utterance, audio_info, check_waveform, peak_normalize, read_audio
from pase.models.batchnorm import reestimate_batchnorm
from pase.models.featurizer import layer_names, select_layers
from pase.models.frontend import WaveFe
from pase.models.precision import warn_if_bf16_emulated

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
    """Runs an encoder over utterances and writes frames x dims float32 matrices of the layers
    `layers` selects (`select_layers`: 'final', 'all', indices or names of `layer_names`)."""

    def __init__(self, encoder: WaveFe, options: ExtractOptions, layers: str = "final") -> None:
        self.encoder = encoder.eval().to(options.device)
        self.opts = options
        if options.bf16:
            warn_if_bf16_emulated(options.device, "--bf16")
        self.sample_rate = encoder.sample_rate
        names = layer_names(encoder)
        chosen = list(dict.fromkeys(select_layers(layers, names)))
        self.layer_names = tuple(names[i] for i in chosen)
        # None: the final output alone, by the plain forward pass (no hidden layers kept).
        self.layers = None if chosen == [len(names) - 1] else chosen

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

    def _selected(self, y: torch.Tensor, hidden: list[torch.Tensor]) -> list[np.ndarray]:
        """The chosen layers of an encoder output, each (B, frames, dims) float32 on the CPU."""
        outs = [y] if self.layers is None else [hidden[i] for i in self.layers]
        return [o.float().transpose(1, 2).cpu().numpy() for o in outs]

    def encode(self, wavs: list[np.ndarray]) -> list[list[np.ndarray]]:
        """Encode waveforms as one padded batch; returns per waveform its layers' (frames, dims) arrays."""
        batch, lengths = pad_waveforms(wavs)
        with self._modes():
            y, frames, hidden = self.encoder.forward_padded(batch.to(self.opts.device), lengths,
                                                            return_hidden=self.layers is not None,
                                                            max_chunk_seconds=self.opts.max_chunk_seconds)
            outs = self._selected(y, hidden)
        return [[o[i, :n] for o in outs] for i, n in enumerate(frames.tolist())]

    def write_long(self, writer: JobWriter, utt_id: str, wav: np.ndarray) -> None:
        """Encode one long utterance piece by piece (`WaveFe.iter_chunked`), writing each piece as
        it comes, so that neither the features nor the activations are ever held whole."""
        x = torch.from_numpy(wav).view(1, 1, -1).to(self.opts.device)
        with self._modes():
            pieces = self.encoder.iter_chunked(x, self.opts.max_chunk_seconds, return_hidden=self.layers is not None)
            writer.write_pieces(utt_id, self.encoder.num_frames(len(wav)),
                                ([o[0] for o in self._selected(y, hidden)] for y, hidden in pieces))

    def run(self, utts: list[Utterance], writer: JobWriter) -> None:
        """Write the features of `utts` (or, with `skip_bad`, skip those that cannot be read)."""
        lengths = [estimated_samples(u, self.sample_rate) for u in utts]
        batches = [[utts[i] for i in b] for b in plan_batches(
            lengths, self.opts.batch_size, int(self.opts.max_batch_seconds * self.sample_rate))]
        bar = tqdm(total=len(utts), unit="utt", disable=not self.opts.progress, desc="extract")
        limit = self.opts.max_chunk_seconds * self.sample_rate
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self._load_batch, batches[0]) if batches else None
            for k in range(len(batches)):
                loaded = pending.result()
                if k + 1 < len(batches):
                    pending = pool.submit(self._load_batch, batches[k + 1])
                good = [(u, w) for u, w in loaded if isinstance(w, np.ndarray)]
                for u, e in loaded:
                    if not isinstance(e, np.ndarray):
                        log.warning("skipping %s", e)
                        writer.skip(u.utt_id, str(e))
                short = [(u, w) for u, w in good if len(w) <= limit]
                for u, w in good:
                    if len(w) > limit:
                        self.write_long(writer, u.utt_id, w)
                if short:
                    for (u, _), feats in zip(short, self.encode([w for _, w in short])):
                        writer.write(u.utt_id, feats)
                bar.update(len(loaded))
        bar.close()


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
