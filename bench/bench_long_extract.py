"""Peak memory and speed of pase-extract on one long utterance (1, 20, 60 minutes by default).

    tools/venv/bin/python bench/bench_long_extract.py [--minutes 1 20 60] [--one_shot_up_to 1]

Each size is a synthetic speech-like 16 kHz WAV in a one-utterance data dir, extracted by the
real command (`pase-extract`, under jemalloc as its launcher runs it) in a fresh process with a
PASE+ encoder with non-trivial weights; the process's own peak RSS comes from wait4. Lengths up to
--one_shot_up_to minutes are also extracted in one pass (--max_chunk_seconds inf, the behaviour
before chunking) and the largest difference between the two feature matrices is printed.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import kaldiio
import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pase.launch import jemalloc_env  # noqa: E402
from pase.models import wf_builder  # noqa: E402

SR = 16000


def write_speechlike(path: Path, seconds: float, seed: int = 0, block: float = 10.0) -> None:
    """Harmonics of a gliding f0 with a syllable-rate envelope and noise, written block by block
    (phase kept continuous) so that generating an hour needs little memory."""
    rng = np.random.default_rng(seed)
    phase, done, total = 0.0, 0, int(seconds * SR)
    with sf.SoundFile(path, "w", samplerate=SR, channels=1, subtype="PCM_16") as f:
        while done < total:
            n = min(int(block * SR), total - done)
            t = (done + np.arange(n)) / SR
            f0 = 120 + 40 * np.sin(2 * np.pi * 0.3 * t)
            ph = phase + 2 * np.pi * np.cumsum(f0) / SR
            phase = float(ph[-1])
            x = sum(np.sin(k * ph) / k for k in range(1, 10)) * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t))
            f.write((0.3 * x / 2.9 + 0.01 * rng.standard_normal(n)).astype(np.float32))
            done += n


def checkpoint(path: Path) -> None:
    """A PASE+ encoder with BatchNorm statistics from forward passes and PReLU slopes > 0."""
    torch.manual_seed(0)
    model = wf_builder("cfg/frontend/PASE+.cfg").train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(2, 1, 16000) * 0.1)
        for m in model.modules():
            if isinstance(m, torch.nn.PReLU):
                m.weight.uniform_(0.0, 0.3)
    torch.save(model.state_dict(), path)


def extract(data: Path, dump: Path, ckpt: Path, chunk: str) -> tuple[float, float]:
    """Run pase-extract; returns (peak RSS in GiB, wall seconds)."""
    cmd = [sys.executable, "-c", "from pase.launch import extract; extract()", str(data), str(dump),
           "--fe_ckpt", str(ckpt), "--no_progress", "--max_chunk_seconds", chunk,
           "--out_data_dir", str(dump / "data")]
    env = jemalloc_env(dict(os.environ)) or dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"pase-extract failed: {proc.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss / 2**20, wall  # ru_maxrss is in KiB on Linux


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, nargs="+", default=[1, 20, 60])
    p.add_argument("--max_chunk_seconds", default="30")
    p.add_argument("--one_shot_up_to", type=float, default=1.0,
                   help="also extract inputs up to this many minutes in one pass and compare")
    p.add_argument("--workdir", type=Path, default=None, help="keep the audio and dumps here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        ckpt = root / "FE_e0.ckpt"
        checkpoint(ckpt)
        print(f"{'minutes':>7} {'mode':>12} {'peak RSS GiB':>12} {'wall s':>8} {'x real time':>11} {'max |diff|':>10}")
        for minutes in args.minutes:
            data = root / f"data_{minutes:g}min"
            data.mkdir(exist_ok=True)
            wav = root / f"long_{minutes:g}min.wav"
            # 155 samples past a multiple of the 160-sample hop: PASE+'s first dense skip then
            # pools groups of 159 samples, the harder case for chunking.
            write_speechlike(wav, minutes * 60 + 155 / SR)
            (data / "wav.scp").write_text(f"utt1 {wav}\n")
            (data / "utt2spk").write_text("utt1 spk1\n")
            modes = [("chunked", args.max_chunk_seconds)] + ([("one pass", "inf")] if minutes <= args.one_shot_up_to else [])
            feats = []
            for name, chunk in modes:
                dump = root / f"dump_{minutes:g}min_{chunk}"
                rss, wall = extract(data, dump, ckpt, chunk)
                feats.append(dict(kaldiio.load_scp(str(dump / "feats.scp")))["utt1"])
                diff = f"{np.abs(feats[-1] - feats[0]).max():.2e}" if len(feats) > 1 else ""
                print(f"{minutes:>7g} {name:>12} {rss:>12.2f} {wall:>8.1f} {minutes * 60 / wall:>11.1f} {diff:>10}",
                      flush=True)
            wav.unlink()


if __name__ == "__main__":
    main()
