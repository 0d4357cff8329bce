"""Pretraining data: durations, chunk sampling, epoch samplers and speaker-held-out splits."""

from pase.data.chunks import ChunkDataset
from pase.data.durations import utterance_durations
from pase.data.sampler import (
    EpochSampler,
    batches_per_epoch_from_duration,
    collate_chunks,
    make_loader,
)
from pase.data.split import split_by_speaker

__all__ = [
    "ChunkDataset",
    "EpochSampler",
    "batches_per_epoch_from_duration",
    "collate_chunks",
    "make_loader",
    "split_by_speaker",
    "utterance_durations",
]
