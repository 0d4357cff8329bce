"""Sharded corpora: a data dir packed into WebDataset tar shards, and a loader streaming them.

On network storage, opening one file per chunk is what makes an epoch slow; a shard is one
sequential read of a few hundred utterances. The layout is WebDataset's (POSIX tar, one
`<key>.flac` + `<key>.json` pair per utterance, written and read with the `webdataset`
library), plus our `shards.json` index (utterances and samples per shard), which lets the loader
size epochs and seek without reading a byte.

Streaming order, per rank: each pass over the corpus permutes the shards (seeded by the pass),
deals them to the ranks round-robin, and cuts each rank's list into groups of `group_shards`
shards; a group is read whole and its utterances emitted in a seeded random order (the shuffle
buffer is the group). The context chunk is another utterance of the same speaker in the group,
the random chunk an utterance of another speaker in it (packing shuffles the corpus, so a group
of a few hundred utterances holds most speakers). Every draw is seeded by (seed, rank, pass,
group, item), so a resume at any batch is exact: whole groups are skipped by their counts in
the index, and only the current group is read again.

Loader processes: group g of a rank goes to "stream" g mod W (W = the loader processes, at
least 1), and rank batch B comes from stream B mod W, which is the order a DataLoader collects
its workers' batches in; so the data depend on the number of loader processes (pase-train
checks it on resume), not on where an epoch was interrupted.
"""
from __future__ import annotations

import io
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
import torch
import webdataset as wds
from torch.utils.data import IterableDataset, get_worker_info

from pase.io import SAMPLE_RATE, DataDir, PaseInputError, read_audio

log = logging.getLogger(__name__)

INDEX = "shards.json"
FORMAT = "pase-shards"


class ShardError(PaseInputError):
    """A shard directory is missing, malformed, or too small for the ranks and loader processes."""


@dataclass(frozen=True)
class ShardInfo:
    file: str
    utts: int
    samples: int


def is_shard_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / INDEX).is_file()


def read_index(shard_dir: str | os.PathLike) -> list[ShardInfo]:
    path = Path(shard_dir) / INDEX
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != FORMAT:
            raise ValueError(f"format is {doc.get('format')!r}, not {FORMAT!r}")
        shards = [ShardInfo(s["file"], int(s["utts"]), int(s["samples"])) for s in doc["shards"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ShardError(f"{path}: not a shard index made by pase-make-shards ({e})") from e
    missing = [s.file for s in shards if not (Path(shard_dir) / s.file).is_file()]
    if missing:
        raise ShardError(f"{path}: {len(missing)} shard(s) missing, e.g. {missing[0]}")
    if not shards:
        raise ShardError(f"{path}: no shards")
    return shards


def write_shards(data: DataDir, out_dir: Path, *, shard_size: int = 256, seed: int = 0) -> list[ShardInfo]:
    """Pack every utterance of `data` (segments cut out) into tar shards of `shard_size`
    utterances, in a seeded random order, as 16-bit FLAC at 16 kHz (lossless for 16-bit
    sources). Written into a scratch dir renamed at the end: a failed run leaves nothing."""
    if shard_size < 1:
        raise ShardError(f"--shard_size {shard_size}: must be >= 1")
    if out_dir.exists():
        raise ShardError(f"{out_dir}: exists; remove it or choose another output dir")
    utts = data.utterances
    if not utts:
        raise ShardError(f"{data.path}: no utterances")
    order = np.random.default_rng(seed).permutation(len(utts))
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shards: list[ShardInfo] = []
    try:
        for first in range(0, len(utts), shard_size):
            name = f"shard-{len(shards):06d}.tar"
            samples = 0
            members = order[first:first + shard_size]
            with open(tmp / name, "wb") as f:
                writer = wds.TarWriter(f, encoder=False)
                try:
                    for n, i in enumerate(members):
                        utt = utts[int(i)]
                        wav = read_audio(utt.source, start=utt.start, end=utt.end, name=utt.utt_id)
                        buf = io.BytesIO()
                        sf.write(buf, wav, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
                        meta = {"utt": utt.utt_id, "spk": utt.speaker, "samples": len(wav)}
                        writer.write({"__key__": f"{first + n:09d}", "flac": buf.getvalue(),
                                      "json": json.dumps(meta).encode()})
                        samples += len(wav)
                finally:
                    writer.close()
            shards.append(ShardInfo(name, len(members), samples))
        doc = {"format": FORMAT, "version": 1, "sample_rate": SAMPLE_RATE, "source": str(data.path),
               "utterances": len(utts), "seconds": sum(s.samples for s in shards) / SAMPLE_RATE,
               "shards": [s.__dict__ for s in shards]}
        (tmp / INDEX).write_text(json.dumps(doc, indent=1))
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return shards


def _random_scale(x: np.ndarray, gain: float) -> np.ndarray:
    peak = float(np.max(np.abs(x)))
    return x * np.float32(gain / peak) if peak > 0 else x


class ShardStream(IterableDataset):
    """Items like `ChunkDataset`'s (`chunk`, and with `context` `chunk_ctxt`, `chunk_rand`;
    `utt`) streamed from a shard dir; see the module docstring for the order. Iterating yields
    the items of one epoch's batches for this rank (`batches_per_epoch` of `batch_size`), from
    the position set by `set_position`."""

    def __init__(self, shard_dir: str | os.PathLike, *, chunk_size: int, batch_size: int, batches_per_epoch: int,
                 group_shards: int = 4, random_scale: bool = True, context: bool = True, seed: int = 0,
                 rank: int = 0, world_size: int = 1, num_workers: int = 0) -> None:
        self.dir = Path(shard_dir)
        self.shards = read_index(self.dir)
        self.chunk_size, self.batch_size, self.batches_per_epoch = chunk_size, batch_size, batches_per_epoch
        self.group_shards, self.random_scale, self.context = group_shards, random_scale, context
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.streams = max(num_workers, 1)
        if group_shards < 1:
            raise ShardError(f"--group_shards {group_shards}: must be >= 1")
        per_rank = len(self.shards) // world_size
        groups = -(-per_rank // group_shards) if per_rank else 0
        if groups < self.streams:
            raise ShardError(f"{self.dir}: {len(self.shards)} shard(s) give {groups} group(s) of {group_shards} per rank "
                             f"for {world_size} rank(s) x {self.streams} loader process(es); make smaller shards "
                             "(pase-make-shards --shard_size) or lower --group_shards / --num_workers")
        self.per_rank = per_rank  # shards beyond world_size x per_rank wait for the next pass's deal
        self._position = torch.zeros(2, dtype=torch.int64).share_memory_()  # epoch, first batch

    def set_position(self, epoch: int, start_batch: int = 0) -> None:
        """Start the next iteration at batch `start_batch` of epoch `epoch` (reaches running
        loader processes through shared memory)."""
        if not 0 <= start_batch <= self.batches_per_epoch:
            raise ValueError(f"start_batch {start_batch} outside [0, {self.batches_per_epoch}]")
        self._position[0], self._position[1] = epoch, start_batch

    def set_epoch(self, epoch: int) -> None:
        self.set_position(epoch, 0)

    def total_seconds(self) -> float:
        return sum(s.samples for s in self.shards) / SAMPLE_RATE

    # ---- the deterministic order --------------------------------------------------------------

    def _groups(self, pass_index: int) -> list[list[int]]:
        """This rank's shard groups in pass `pass_index`."""
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(pass_index,)))
        mine = rng.permutation(len(self.shards))[self.rank::self.world_size][:self.per_rank].tolist()
        return [mine[i:i + self.group_shards] for i in range(0, len(mine), self.group_shards)]

    def _stream_groups(self, stream: int) -> Iterator[tuple[int, int, list[int], int]]:
        """(pass, group index, shards, items) of one stream, forever."""
        pass_index = 0
        while True:
            for g, shards in enumerate(self._groups(pass_index)):
                if g % self.streams == stream:
                    yield pass_index, g, shards, sum(self.shards[s].utts for s in shards)
            pass_index += 1

    def _read_group(self, shards: list[int]) -> list[dict]:
        files = [str(self.dir / self.shards[s].file) for s in shards]
        records = []
        for sample in wds.WebDataset(files, shardshuffle=False, nodesplitter=None, workersplitter=None,
                                     empty_check=False):
            meta = json.loads(sample["json"])
            records.append({"utt": meta["utt"], "spk": meta["spk"], "samples": int(meta["samples"]),
                            "flac": sample["flac"]})
        return records

    def _chunk(self, rec: dict, rng: np.random.Generator) -> torch.Tensor:
        size, n = self.chunk_size, rec["samples"]
        u, gain = rng.random(), rng.random()
        offset = min(int(u * (max(n - size, 0) + 1)), max(n - size, 0))
        with sf.SoundFile(io.BytesIO(rec["flac"])) as f:
            f.seek(offset)
            x = f.read(min(size, n), dtype="float32")
        if len(x) < size:
            x = np.pad(x, (0, size - len(x)), mode="reflect" if 2 * len(x) > size else "constant")
        if self.random_scale:
            x = _random_scale(x, gain)
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(0)

    def _items(self, pass_index: int, g: int, records: list[dict]) -> Iterator[dict]:
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(self.rank, pass_index, g)))
        order = rng.permutation(len(records))
        spk = np.array([r["spk"] for r in records])
        for k, i in enumerate(order):
            draw = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(self.rank, pass_index, g, k)))
            rec = records[i]
            item = {"utt": rec["utt"], "chunk": self._chunk(rec, draw)}
            if self.context:
                same = np.flatnonzero(spk == spk[i])
                same = same[same != i]
                other = np.flatnonzero(spk != spk[i])
                if not len(other):
                    other = np.delete(np.arange(len(records)), i) if len(records) > 1 else np.array([i])
                ctxt = int(same[draw.integers(len(same))]) if len(same) else int(i)
                item["chunk_ctxt"] = self._chunk(records[ctxt], draw)
                item["chunk_rand"] = self._chunk(records[int(other[draw.integers(len(other))])], draw)
            yield item

    def _stream(self, stream: int, first_item: int, count: int) -> Iterator[dict]:
        """Items [first_item, first_item + count) of one stream; skipped groups are not read."""
        if count <= 0:
            return
        pos = 0
        for pass_index, g, shards, items in self._stream_groups(stream):
            if pos + items <= first_item:
                pos += items
                continue
            for k, item in enumerate(self._items(pass_index, g, self._read_group(shards))):
                if pos + k < first_item:
                    continue
                yield item
                count -= 1
                if count == 0:
                    return
            pos += items

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        workers = 1 if info is None else info.num_workers
        worker = 0 if info is None else info.id
        if workers != self.streams:
            raise ShardError(f"the loader has {workers} process(es) but the stream was made for {self.streams}")
        epoch, start = int(self._position[0]), int(self._position[1])
        first = epoch * self.batches_per_epoch + start  # this iteration's first rank batch
        n = self.batches_per_epoch - start
        batches = len(range(worker, n, workers))  # the DataLoader takes batch j from worker j mod W
        stream = (first + worker) % workers
        yield from self._stream(stream, (first + worker) // workers * self.batch_size, batches * self.batch_size)
