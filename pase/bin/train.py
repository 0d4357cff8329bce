"""pase-train: self-supervised PASE / PASE+ training on Kaldi data dirs.

    pase-train --train_data data/pase_train --valid_data data/pase_valid --do_eval \\
        --fe_cfg cfg/frontend/PASE+.cfg --net_cfg cfg/workers/workers+.cfg \\
        --stats exp/pase+/stats.json --save_path exp/pase+ --batch_size 16 --epoch 400 \\
        --chunk_size 32000 --fe_lr 0.001 --min_lr 0.0005 --lr_mode poly --random_scale True

The original's flags keep their names and meanings (--data_cfg/--data_root are accepted for its
JSON data configs). Resuming from save_path/state.pt is the default; --no_continue starts over.
Multi-GPU / multi-node: launch with torchrun; each rank trains on its own share of every epoch.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from pathlib import Path

import torch
import torch.distributed as dist

from pase.augment import build_distortions
from pase.bin.common import (ArgumentParser, add_device_options, add_encoder_options, run_main, setup_device,
                             str2bool)
from pase.config import load_config
from pase.data.shards import is_shard_dir
from pase.io import DataDir
from pase.io.data_cfg import load_train_data, load_valid_data
from pase.train.model import PaseModel
from pase.train.schedule import LR_MODES
from pase.train.session import chunk_loader, open_run
from pase.train.trainer import AMP_MODES, BACKPROP_MODES, Trainer, TrainOptions

log = logging.getLogger("pase-train")


def build_parser() -> ArgumentParser:
    p = ArgumentParser("pase-train", __doc__)
    d = p.add_argument_group("data")
    d.add_argument("--train_data", type=Path, help="Kaldi data dir for training, or a shard dir (pase-make-shards)")
    d.add_argument("--valid_data", type=Path, help="Kaldi data dir for validation (held-out speakers)")
    d.add_argument("--data_cfg", type=Path, help="the original's data-cfg JSON (instead of data dirs)")
    d.add_argument("--data_root", type=Path, help="wav root for --data_cfg")
    d.add_argument("--chunk_size", type=int, default=16000, help="samples per chunk")
    d.add_argument("--random_scale", type=str2bool, default=False, help="True/False: peak-normalise and scale by U(0,1)")
    d.add_argument("--num_workers", type=int, default=2, help="DataLoader processes per rank")
    d.add_argument("--group_shards", type=int, default=4,
                   help="shard dir input: shards read together and shuffled as one group")
    d.add_argument("--batches_per_epoch", type=int, default=None,
                   help="override the original's rule (total train duration // chunk_size // batch_size)")
    m = p.add_argument_group("model")
    add_encoder_options(m, ckpt_help="initialise the encoder from a checkpoint")
    m.add_argument("--net_cfg", default="cfg/workers/workers+.cfg", help="workers config")
    m.add_argument("--stats", type=Path, help="target statistics (pase-compute-stats)")
    m.add_argument("--dtrans_cfg", type=Path, help="distortion config (PASE+): corrupts the encoder's input chunk")
    m.add_argument("--dtrans_root", type=Path, help="root for the distortion config's relative paths "
                   "(default: its data_root key)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--batch_size", type=int, default=100, help="chunks per batch per rank")
    o.add_argument("--epoch", type=int, default=1000, help="number of epochs")
    o.add_argument("--fe_lr", type=float, default=1e-4, help="encoder learning rate")
    o.add_argument("--min_lr", type=float, default=4e-4, help="learning rate of every worker")
    o.add_argument("--lr_mode", choices=LR_MODES, default="step")
    o.add_argument("--lrdec_step", type=int, default=30, help="epochs per decay in step mode")
    o.add_argument("--lrdecay", type=float, default=0.1, help="decay factor in step mode")
    o.add_argument("--warmup", type=int, default=None,
                   help="accepted and ignored, as in the original (the seed's PASE+ command passes 10000000)")
    o.add_argument("--warmup_steps", type=int, default=0, help="linear warm-up of every LR over N iterations")
    o.add_argument("--fe_freeze_steps", type=int, default=0,
                   help="keep the encoder fixed for the first N iterations while the workers learn")
    o.add_argument("--fe_warmup_steps", type=int, default=0,
                   help="then ramp the encoder LR up linearly over N iterations")
    o.add_argument("--backprop_mode", choices=BACKPROP_MODES, default="base")
    o.add_argument("--amp", choices=AMP_MODES, default="none", help="autocast: bf16 (CPU/GPU) or fp16 (GPU, with a scaler)")
    o.add_argument("--accum_grad", type=int, default=1,
                   help="micro-batches of --batch_size per optimiser step (steps, schedules and "
                   "--batches_per_epoch count optimiser steps)")
    o.add_argument("--ema_decay", type=float, default=0.0,
                   help="keep an exponential moving average of the encoder (e.g. 0.999), saved as FE_ema_e<N>.ckpt")
    o.add_argument("--grad_clip", type=float, default=0.0, help="clip the global gradient norm (0: off)")
    o.add_argument("--max_nonfinite", type=int, default=10, help="stop after this many non-finite losses in a row")
    o.add_argument("--seed", type=int, default=2)
    r = p.add_argument_group("run")
    r.add_argument("--save_path", type=Path, default=Path("ckpt"), help="output dir")
    r.add_argument("--do_eval", action="store_true", help="validate after every epoch")
    r.add_argument("--valid_batches", type=int, default=None, help="validation batches (default: by duration)")
    r.add_argument("--tensorboard", type=str2bool, default=True, help="True/False")
    r.add_argument("--log_freq", type=int, default=100, help="logging period (iterations)")
    r.add_argument("--save_every_steps", type=int, default=0,
                   help="also save the full state every N steps mid-epoch (states/state_s<step>.pt; 0: off)")
    r.add_argument("--save_every_minutes", type=float, default=0.0,
                   help="also save the full state every M minutes mid-epoch (0: off)")
    r.add_argument("--keep_states", type=int, default=2, help="mid-epoch states kept (the newest)")
    r.add_argument("--no_continue", action="store_true", help="start over instead of resuming")
    add_device_options(r)
    r.add_argument("--no_progress", action="store_true")
    return p


def setup_distributed(args: argparse.Namespace) -> tuple[torch.device, int, int]:
    """This process's device, rank and world size (torchrun sets WORLD_SIZE and LOCAL_RANK)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return setup_device(args), 0, 1
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = setup_device(args, local_rank=local)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(local)
    return device, dist.get_rank(), world


def main(argv: list[str] | None = None) -> Trainer:
    args = build_parser().parse_args(argv)
    device, rank, world = setup_distributed(args)
    torch.manual_seed(args.seed)  # same initial weights for the same seed (DDP then syncs rank 0's)
    train = (args.train_data if args.train_data and is_shard_dir(args.train_data)
             else load_train_data(args.train_data, args.data_cfg, args.data_root))
    valid = load_valid_data(args.valid_data, args.data_cfg, args.data_root) if args.do_eval else None
    workers_cfg = load_config(args.net_cfg)
    model = PaseModel.build(args.fe_cfg, workers_cfg, args.stats, args.fe_ckpt)
    if args.dtrans_cfg is not None and str(args.dtrans_cfg) != "None":  # 'None' disabled it originally
        model.distort = build_distortions(args.dtrans_cfg, data_root=args.dtrans_root).to(device)
    loading = dict(chunk_size=args.chunk_size, batch_size=args.batch_size, accum_grad=args.accum_grad,
                   random_scale=args.random_scale, context=any(w.name in ("mi", "cmi") for w in model.workers()),
                   rank=rank, world_size=world, num_workers=args.num_workers, pin_memory=device.type == "cuda",
                   group_shards=args.group_shards)
    train_loader, bpe = chunk_loader(train, steps_per_epoch=args.batches_per_epoch, seed=args.seed, **loading)
    valid_loader, vbpe = (chunk_loader(valid, steps_per_epoch=args.valid_batches, seed=args.seed + 1,
                                       **{**loading, "accum_grad": 1}) if valid else (None, 0))
    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainOptions) if hasattr(args, f.name)}
    opts = TrainOptions(**{**options, "epochs": args.epoch, "batches_per_epoch": bpe, "valid_batches": vbpe,
                           "progress": not args.no_progress})
    if args.warmup is not None:
        log.info("--warmup %d ignored, as in the original (a real warm-up is --warmup_steps)", args.warmup)
    trainer = Trainer(model, opts, args.save_path, device, rank=rank, world_size=world)
    run_cfg = {"fe_cfg": model.encoder.config, "net_cfg": workers_cfg, "chunk_size": args.chunk_size,
               "dtrans_cfg": load_config(args.dtrans_cfg) if model.distort is not None else None,
               "batch_size": args.batch_size, "accum_grad": args.accum_grad, "world_size": world,
               "seed": args.seed, "batches_per_epoch": bpe,
               "shards": None if isinstance(train, DataDir) else {"group_shards": args.group_shards,
                                                                  "num_workers": args.num_workers}}
    if open_run(args.save_path, run_cfg, vars(args), resume=not args.no_continue, write=rank == 0):
        trainer.resume()
    log.info("training %s: %d steps/epoch x %d epochs, batch %d x %d micro-batches x %d ranks, device %s",
             args.save_path, bpe, args.epoch, args.batch_size, args.accum_grad, world, device)
    try:
        trainer.fit(train_loader, valid_loader)
    finally:
        if world > 1:
            dist.destroy_process_group()
    return trainer


def cli() -> None:
    run_main(main, "pase-train")


if __name__ == "__main__":
    cli()
