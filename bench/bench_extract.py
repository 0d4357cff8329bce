"""Feature-extraction speed of the PASE+ encoder: real-time factors, bf16 accuracy, peak memory.

    tools/venv/bin/python bench/bench_extract.py [--device cuda] [--repeats 5]

Runs under jemalloc when installed (PASE_JEMALLOC=0 for glibc's allocator).
Prints real time factors (seconds of audio per wall second) for 10 s utterances one at a time and
for a batch of 16 x 2 s chunks, in fp32 and bf16 autocast, the cosine similarity of bf16 to fp32
features, and the peak resident memory for one 60 s utterance (measured in a fresh process).
The encoder gets non-trivial weights (BN statistics from forward passes, PReLU slopes > 0) so
that the bf16 comparison is not made on a degenerate network.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import os
import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))
from pase.launch import reexec_under_jemalloc  # noqa: E402  (before torch: the allocator is chosen at exec)

reexec_under_jemalloc(_sys.argv)

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pase.models import wf_builder  # noqa: E402


def speechlike(batch: int, samples: int, seed: int = 0) -> torch.Tensor:
    """Harmonic signals with a moving f0 and an envelope: closer to speech statistics than noise."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(samples) / 16000
    f0 = 100 + 150 * torch.rand(batch, 1, generator=g)
    phase = 2 * torch.pi * torch.cumsum(f0 * (1 + 0.1 * torch.sin(2 * torch.pi * 0.5 * t)), -1) / 16000
    x = sum(torch.sin(k * phase) / k for k in range(1, 10))
    x = x * (0.5 + 0.5 * torch.sin(2 * torch.pi * 2 * t).abs()) + 0.02 * torch.randn(batch, samples, generator=g)
    return (0.5 * x / x.abs().amax(-1, keepdim=True)).unsqueeze(1)


def encoder(device: str):
    torch.manual_seed(0)
    model = wf_builder("cfg/frontend/PASE+.cfg").train()
    with torch.no_grad():
        for _ in range(3):
            model(speechlike(4, 16000, seed=1))
        for m in model.modules():
            if isinstance(m, torch.nn.PReLU):
                m.weight.uniform_(0.0, 0.3)
    return model.eval().to(device)


def timed(model, x: torch.Tensor, bf16: bool, repeats: int) -> tuple[float, torch.Tensor]:
    ctx = torch.autocast(x.device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    times = []
    with torch.inference_mode(), ctx:
        y = model(x)  # warm-up
        for _ in range(repeats):
            if x.is_cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            y = model(x)
            if x.is_cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2], y.float()


def peak_memory_60s(device: str) -> None:
    """Run in a fresh process: print peak RSS (and CUDA peak) for one 60 s utterance."""
    model = encoder(device)
    x = speechlike(1, 60 * 16000).to(device)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.inference_mode():
        model(x)
    out = {"rss_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "rss_before_mib": base / 1024}
    if device.startswith("cuda"):
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        peak_memory_60s(args.device)
        return
    model = encoder(args.device)
    print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"allocator {'jemalloc' if 'jemalloc' in os.environ.get('LD_PRELOAD', '') else 'glibc'}")
    cases = {"1 x 10 s": speechlike(1, 160000), "16 x 2 s": speechlike(16, 32000, seed=2)}
    for name, x in cases.items():
        x = x.to(args.device)
        audio = x.size(0) * x.size(-1) / 16000
        t32, y32 = timed(model, x, False, args.repeats)
        t16, y16 = timed(model, x, True, args.repeats)
        cos = torch.nn.functional.cosine_similarity(y32, y16, dim=1)
        print(f"{name:9s} fp32 {audio / t32:7.1f}x real time ({t32 * 1000:7.1f} ms) | "
              f"bf16 {audio / t16:7.1f}x real time ({t16 * 1000:7.1f} ms) | "
              f"bf16 vs fp32 cosine mean {cos.mean():.5f} min {cos.min():.5f}")
    child = subprocess.run([sys.executable, __file__, "--device", args.device, "--memory-child"],
                           capture_output=True, text=True, check=True)
    mem = json.loads(child.stdout.strip().splitlines()[-1])
    line = (f"60 s utterance: peak RSS {mem['rss_peak_mib']:.0f} MiB "
            f"({mem['rss_peak_mib'] - mem['rss_before_mib']:.0f} MiB above the loaded model)")
    if "cuda_peak_mib" in mem:
        line += f", CUDA peak {mem['cuda_peak_mib']:.0f} MiB"
    print(line)


if __name__ == "__main__":
    main()
