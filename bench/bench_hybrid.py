"""TIMIT hybrid recipe speed: MLP training frames/s, decoding real-time factor, and an estimate of
the full TIMIT run from these measured rates.

    tools/venv/bin/python bench/bench_hybrid.py [--device cuda] [--timit-exp egs/timit/hybrid1]

MLP: the original's size (17 x 256 inputs, 5 x 1024, 1973 pdfs), SGD steps on batches of 128
frames. Decoding: the demo recipe's triphone graph and hybrid log-likelihoods when egs/demo has
been run (decode RTF = search time / audio time, from pase-decode's scores.json). Full TIMIT
estimate: 1.12 M training frames (3696 utterances, 3.14 h), 24 epochs; 5.4 h of audio to encode.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pase.launch import reexec_under_jemalloc  # noqa: E402  (before torch: the allocator is chosen at exec)

reexec_under_jemalloc(sys.argv)

import torch  # noqa: E402

from pase.asr.mlp import HybridMLP  # noqa: E402

TIMIT_TRAIN_FRAMES = 1_124_823  # 3696 SI+SX utterances at 100 frames/s
TIMIT_AUDIO_HOURS = 5.4         # train + dev + test audio to encode


def mlp_frames_per_second(device: torch.device, steps: int) -> float:
    torch.manual_seed(0)
    model = HybridMLP(17 * 256, 1973).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.036)
    x = torch.randn(128, 17 * 256, device=device)
    y = torch.randint(0, 1973, (128,), device=device)
    for i in range(steps + 3):
        if i == 3:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        loss = torch.nn.functional.nll_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * 128 / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--timit-exp", type=Path, default=Path(__file__).resolve().parents[1] / "egs/timit/hybrid1")
    p.add_argument("--extract-rtf", type=float, default=50.0,
                   help="PASE+ extraction speed in x real time (bench/bench_extract.py's fp32 figure)")
    args = p.parse_args()
    device = torch.device(args.device)
    rate = mlp_frames_per_second(device, args.steps)
    epoch = TIMIT_TRAIN_FRAMES / rate
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"MLP training (17x256 -> 5x1024 -> 1973, batch 128): {rate:,.0f} frames/s; "
          f"full TIMIT epoch {epoch / 60:.1f} min, 24 epochs {24 * epoch / 3600:.2f} h")
    extract_h = TIMIT_AUDIO_HOURS / args.extract_rtf
    print(f"PASE+ features of all TIMIT audio at {args.extract_rtf:.0f}x real time: {extract_h * 60:.1f} min")
    rtfs = []
    for scores in sorted(args.timit_exp.glob("exp/mlp_*/decode_*/scores.json")):
        rtf = json.loads(scores.read_text())["decode_rtf"]
        rtfs.append(rtf)
        print(f"decoding {scores.parent}: real-time factor {rtf:.4f} (search only)")
    if rtfs:
        print(f"decoding dev+test (about 0.4 h of audio): {max(rtfs) * 0.4 * 60:.1f} min")
    else:
        print(f"no decode results under {args.timit_exp}/exp: run egs/demo/run.sh for decoding figures")
    total = 24 * epoch / 3600 + extract_h
    print(f"estimated full TIMIT hybrid run on this {device.type}: {total:.1f} h "
          "(MLP training + feature extraction; GMM stages and decoding add minutes)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
