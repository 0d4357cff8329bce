"""PASE+ pretraining throughput: seconds of audio trained per wall second, with a breakdown.

    tools/venv/bin/python bench/bench_train.py [--device cuda] [--steps 3] [--amp none bf16]

Full PASE+ (cfg/frontend/PASE+.cfg, cfg/workers/workers+.cfg: 12 workers), batches of
16 x 32000-sample chunks read by the real loader from a synthetic corpus on disk, targets
computed on the training device. Runs under jemalloc when installed (PASE_JEMALLOC=0 for
glibc's allocator). Prints per phase (targets, forward, backward,
optimiser step) the mean seconds per step, the audio seconds per wall second counting the anchor
chunks (16 x 2 s per step, as the original's figures did), and peak memory.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import os
import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))
from pase.launch import reexec_under_jemalloc  # noqa: E402  (before torch: the allocator is chosen at exec)

reexec_under_jemalloc(_sys.argv)

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pase.augment import build_distortions  # noqa: E402
from pase.config import load_config  # noqa: E402
from pase.data import ChunkDataset, EpochSampler, make_loader  # noqa: E402
from pase.io import DataDir  # noqa: E402
from pase.models.workers import target_specs  # noqa: E402
from pase.targets import TargetBank  # noqa: E402
from pase.train.model import PaseModel  # noqa: E402
from pase.train.stats import compute_stats  # noqa: E402
from pase.train.trainer import PHASES, Trainer, TrainOptions  # noqa: E402


def corpus(root: Path, n: int = 24, seconds: float = 6.0) -> Path:
    """Harmonic 'speech' with moving pitch and pauses, 4 speakers."""
    rng = np.random.default_rng(0)
    (root / "wav").mkdir(parents=True)
    lines, spk = [], []
    for i in range(n):
        t = np.arange(int(seconds * 16000)) / 16000
        f0 = 100 + 40 * (i % 4) + 20 * np.sin(2 * np.pi * 0.7 * t)
        ph = 2 * np.pi * np.cumsum(f0) / 16000
        x = sum(np.sin(k * ph) / k for k in range(1, 20)) * (np.sin(2 * np.pi * 3 * t) > -0.4)
        x = x + 0.02 * rng.standard_normal(t.size)
        path = root / "wav" / f"u{i:03d}.wav"
        sf.write(path, (0.4 * x / np.abs(x).max()).astype(np.float32), 16000)
        lines.append(f"s{i % 4}-u{i:03d} {path}")
        spk.append(f"s{i % 4}-u{i:03d} s{i % 4}")
    (root / "data").mkdir()
    (root / "data" / "wav.scp").write_text("\n".join(sorted(lines)) + "\n")
    (root / "data" / "utt2spk").write_text("\n".join(sorted(spk)) + "\n")
    return root / "data"


def banks(root: Path) -> Path:
    """Simulated RIRs, noises, interferers and filters (pase-make-distortion-banks), made once."""
    cfg = root / "banks" / "distortions.cfg"
    if not cfg.exists():
        from pase.bin.make_distortion_banks import main as make_banks
        make_banks([str(root / "banks"), "--seed", "0"])
    return cfg


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--num_workers", type=int, default=1)
    p.add_argument("--amp", nargs="+", default=["none", "bf16"])
    p.add_argument("--distortions", action="store_true",
                   help="also apply the full PASE+ distortion set (simulated banks) to the anchors")
    args = p.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        data = DataDir.load(corpus(Path(tmp)))
        wcfg = load_config("cfg/workers/workers+.cfg")
        bank = TargetBank(target_specs(wcfg)).to(device)
        ds = ChunkDataset(data, 32000, seed=0)
        stats_loader = make_loader(ds, EpochSampler(len(ds), batches_per_epoch=2, batch_size=16, seed=9), 16, 0)
        stats = compute_stats((b["chunk"][:, 0].to(device) for b in stats_loader), bank, 2)
        print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
              f"allocator {'jemalloc' if 'jemalloc' in os.environ.get('LD_PRELOAD', '') else 'glibc'}, "
              f"batch {args.batch_size} x 32000 samples, loader processes {args.num_workers}")
        for amp in args.amp:
            torch.manual_seed(0)
            model = PaseModel.build("cfg/frontend/PASE+.cfg", wcfg, stats)
            if args.distortions:
                model.distort = build_distortions(banks(Path(tmp)), data_root=None).to(device)
            steps = args.steps + 1
            opts = TrainOptions(epochs=1, batches_per_epoch=steps, amp=amp, tensorboard=False, progress=False)
            trainer = Trainer(model, opts, Path(tmp) / f"exp_{amp}", device)
            loader = make_loader(ds, EpochSampler(len(ds), batches_per_epoch=steps, batch_size=args.batch_size,
                                                  seed=1), args.batch_size, args.num_workers,
                                 pin_memory=device.type == "cuda")
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            it = iter(loader)
            trainer.train_step(next(it))  # warm-up (allocations, oneDNN/cuDNN kernel choice)
            trainer.timer.take()
            t0 = time.perf_counter()
            for batch in it:
                trainer.train_step(batch)
            wall = time.perf_counter() - t0
            per = {k: v / args.steps for k, v in trainer.timer.take().items()}
            audio = args.batch_size * 2.0
            phases = ", ".join(f"{k} {per.get(k, 0.0):.2f}" for k in PHASES)
            mem = f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
            if device.type == "cuda":
                mem += f", CUDA peak {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
            print(f"amp {amp:4s}{' +distortions' if args.distortions else ''}: {audio * args.steps / wall:6.2f} s of audio per second "
                  f"({wall / args.steps:.2f} s/step: {phases}); {mem}")


if __name__ == "__main__":
    main()
