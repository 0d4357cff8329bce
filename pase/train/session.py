"""What a pretraining run needs around the Trainer: chunk loaders (data dir or shards) sized in
optimiser steps, and the run directory's settings file, which decides whether a rerun may resume."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from torch.utils.data import DataLoader

from pase.config import ConfigError
from pase.data import ChunkDataset, EpochSampler, batches_per_epoch_from_duration, make_loader, utterance_durations
from pase.data.shards import ShardStream, read_index
from pase.io import SAMPLE_RATE, DataDir


def chunk_loader(data: DataDir | Path, *, chunk_size: int, batch_size: int, accum_grad: int = 1,
                 steps_per_epoch: int | None, random_scale: bool, context: bool, seed: int, rank: int = 0,
                 world_size: int = 1, num_workers: int = 0, pin_memory: bool = False,
                 group_shards: int = 4) -> tuple[DataLoader, int]:
    """A loader of micro-batches of `batch_size` chunks and the optimiser steps per epoch, from a
    data dir (random access) or a shard dir (`pase-make-shards`, streamed).

    Steps per epoch: `steps_per_epoch`, else the original's rule (the data's duration in chunks
    over the chunks one step sees on all ranks: batch_size x accum_grad x world_size); the loader
    yields accum_grad micro-batches per step.
    """
    if accum_grad < 1:
        raise ConfigError(f"--accum_grad {accum_grad}: must be >= 1")
    if isinstance(data, DataDir):
        durations = utterance_durations(data, write=rank == 0 and isinstance(data.path, Path) and data.path.is_dir())
        ds = ChunkDataset(data, chunk_size, random_scale=random_scale, context=context, durations=durations,
                          seed=seed, rank=rank)
        total = sum(durations[u.utt_id] for u in ds.utterances)
    else:
        total = sum(s.samples for s in read_index(data)) / SAMPLE_RATE
    steps = steps_per_epoch or batches_per_epoch_from_duration(total, chunk_size, batch_size * accum_grad, world_size)
    if isinstance(data, DataDir):
        sampler = EpochSampler(len(ds), batches_per_epoch=steps * accum_grad, batch_size=batch_size, rank=rank,
                               world_size=world_size, seed=seed)
        return make_loader(ds, sampler, batch_size, num_workers, pin_memory=pin_memory), steps
    stream = ShardStream(data, chunk_size=chunk_size, batch_size=batch_size, batches_per_epoch=steps * accum_grad,
                         group_shards=group_shards, random_scale=random_scale, context=context, seed=seed,
                         rank=rank, world_size=world_size, num_workers=num_workers)
    return make_loader(stream, None, batch_size, num_workers, pin_memory=pin_memory), steps


def open_run(save_path: Path, run_cfg: dict[str, Any], args: dict[str, Any], *, resume: bool,
             write: bool) -> bool:
    """Check that a run to resume in `save_path` had the same `run_cfg` (whatever changes the
    data stream or the model), then (on rank 0: `write`) record run_cfg and the arguments in
    train.yaml. Returns whether there is a saved state to resume. Starting over (not `resume`)
    removes the saved states (the FE_e*.ckpt checkpoints stay)."""
    cfg_file = save_path / "train.yaml"
    states = [save_path / "state.pt"] + sorted((save_path / "states").glob("state_s*.pt"))
    states = [p for p in states if p.exists()]
    resuming = resume and bool(states)
    if resuming:
        if not cfg_file.exists():
            raise ConfigError(f"{save_path}: {states[0].relative_to(save_path)} without its train.yaml, so the saved "
                              "run's settings are unknown; use --no_continue to start over or another --save_path")
        saved = yaml.safe_load(cfg_file.read_text()) or {}
        changed = [k for k in run_cfg if saved.get("run", {}).get(k) != run_cfg[k]]
        if changed:
            raise ConfigError(f"{save_path}: cannot resume, {', '.join(changed)} changed since the "
                              "saved run; use --no_continue to start over or another --save_path")
    if write:
        if not resume:  # starting over: a stale state must not be resumed by a later rerun
            for path in states:
                path.unlink()
        save_path.mkdir(parents=True, exist_ok=True)
        doc = {"run": run_cfg, "args": {k: str(v) if isinstance(v, Path) else v for k, v in args.items()}}
        tmp = cfg_file.with_name(cfg_file.name + ".tmp")
        tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
        tmp.replace(cfg_file)
    return resuming
