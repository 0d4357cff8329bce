"""Epoch-sized index streams, batching and the DataLoader for chunk pretraining.

The original defined an epoch as a number of batches derived from the total
audio duration, not as one pass over the files, and restarted its loader
whenever a pass ran out.  :class:`EpochSampler` reproduces that as one endless
sequence of shuffled passes cut into epochs, computed from (seed, epoch) alone
so that training can resume at any epoch, and shared out between DDP ranks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from pase.io import SAMPLE_RATE


def batches_per_epoch_from_duration(
    total_seconds: float,
    chunk_size: int,
    batch_size: int,
    world_size: int = 1,
    sample_rate: int = SAMPLE_RATE,
) -> int:
    """The original's ``(total_samples // chunk_size) // batch_size``, per rank, at least 1."""
    total_samples = round(total_seconds * sample_rate)
    return max(1, (total_samples // chunk_size) // (batch_size * world_size))


class EpochSampler(Sampler[int]):
    """Yields ``batches_per_epoch * batch_size`` draw keys per epoch for one rank.

    All ranks see the same global stream: consecutive passes, each a fresh
    permutation of ``range(num_items)`` seeded by (seed, pass).  Epoch ``e`` is
    the global slice ``[e * T, (e + 1) * T)`` with ``T`` the items per epoch of
    all ranks together, so a pass cut by an epoch boundary continues in the next
    epoch (as the original's restarted loader did); rank ``r`` takes global
    positions ``r, r + world_size, ...`` of that slice.

    A key ``k`` stands for item ``k % num_items`` in pass ``k // num_items``:
    :class:`~pase.data.ChunkDataset` seeds its draws by the key, so an item met
    in several passes of one epoch gets fresh chunks each time.
    """

    def __init__(
        self,
        num_items: int,
        *,
        batches_per_epoch: int,
        batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
    ) -> None:
        if num_items < 1 or batches_per_epoch < 1 or batch_size < 1:
            raise ValueError(
                f"num_items, batches_per_epoch and batch_size must be positive, got "
                f"{num_items}, {batches_per_epoch}, {batch_size}"
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size), got rank={rank}, "
                             f"world_size={world_size}")
        self.num_items = num_items
        self.batches_per_epoch = batches_per_epoch
        self.batch_size = batch_size
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Iterate epoch `epoch` from its batch `start_batch` on (a mid-epoch resume skips the
        batches already trained on without loading them)."""
        if not 0 <= start_batch <= self.batches_per_epoch:
            raise ValueError(f"start_batch {start_batch} outside [0, {self.batches_per_epoch}]")
        self.epoch, self.start = epoch, start_batch * self.batch_size

    def __len__(self) -> int:
        return self.batches_per_epoch * self.batch_size - self.start

    def _permutation(self, pass_index: int) -> np.ndarray:
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(pass_index,)))
        return rng.permutation(self.num_items)

    def __iter__(self) -> Iterator[int]:
        n, world = self.num_items, self.world_size
        per_epoch = self.batches_per_epoch * self.batch_size * world
        begin, end = self.epoch * per_epoch + self.start * world, (self.epoch + 1) * per_epoch
        for pass_index in range(begin // n, (end - 1) // n + 1):
            lo, hi = max(begin, pass_index * n), min(end, (pass_index + 1) * n)
            first = lo + (self.rank - lo) % world
            base = pass_index * n
            keys = self._permutation(pass_index)[first - base:hi - base:world] + base
            yield from keys.tolist()


def collate_chunks(items: Sequence[dict]) -> dict:
    """Stack each tensor field to ``(B, 1, L)``; other fields (``utt``) become lists."""
    return {
        key: torch.stack([it[key] for it in items])
        if isinstance(items[0][key], torch.Tensor) else [it[key] for it in items]
        for key in items[0]
    }


def _one_thread(_worker_id: int) -> None:
    # Each loader process decodes and crops one item at a time: intra-op threads would only
    # oversubscribe the cores the training process computes on.
    torch.set_num_threads(1)


def make_loader(
    dataset: Dataset,
    sampler: Sampler[int] | None,
    batch_size: int,
    num_workers: int,
    *,
    pin_memory: bool = False,
) -> DataLoader:
    """DataLoader over ``sampler`` (None for an iterable dataset) with full batches only and
    workers kept across epochs.

    No worker seeding is needed: :class:`ChunkDataset` derives each item's
    randomness from its index, not from process state.
    """
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_chunks,
        pin_memory=pin_memory,
        drop_last=True,
        persistent_workers=num_workers > 0,
        worker_init_fn=_one_thread if num_workers > 0 else None,
    )
