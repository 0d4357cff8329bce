"""Loader throughput from tar shards vs from wav.scp, on the same audio.

    tools/venv/bin/python bench/bench_shards.py [--utts 240] [--seconds 12] [--workers 0 2]

Writes a LibriSpeech-like corpus (FLAC files of `--seconds` s, 12 speakers) and its shards
(pase-make-shards, 64 utterances each), then times full PASE+ items (anchor, context and random
2 s chunks) in batches of 16 through each loader, cold page cache not guaranteed (local disk:
the figure that matters on network storage is the opens per batch, printed too).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pase.data import ChunkDataset, EpochSampler, make_loader  # noqa: E402
from pase.data.shards import ShardStream, write_shards  # noqa: E402
from pase.io import DataDir  # noqa: E402


def corpus(root: Path, utts: int, seconds: float) -> Path:
    rng = np.random.default_rng(0)
    (root / "flac").mkdir(parents=True)
    wav_scp, utt2spk = [], []
    for i in range(utts):
        spk = f"s{i % 12:02d}"
        utt = f"{spk}-{i:05d}"
        path = root / "flac" / f"{utt}.flac"
        sf.write(path, (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32), 16000,
                 subtype="PCM_16")
        wav_scp.append(f"{utt} {path}")
        utt2spk.append(f"{utt} {spk}")
    (root / "data").mkdir()
    (root / "data" / "wav.scp").write_text("\n".join(sorted(wav_scp)) + "\n")
    (root / "data" / "utt2spk").write_text("\n".join(sorted(utt2spk)) + "\n")
    return root / "data"


def timed(loader, batches: int) -> float:
    it = iter(loader)
    next(it)  # process start-up and the first group read are not the steady state
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--utts", type=int, default=240)
    p.add_argument("--seconds", type=float, default=12.0)
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = p.parse_args()
    batch, chunk = 16, 32000
    with tempfile.TemporaryDirectory() as tmp:
        data = DataDir.load(corpus(Path(tmp), args.utts, args.seconds))
        t0 = time.perf_counter()
        write_shards(data, Path(tmp) / "shards", shard_size=64)
        print(f"{args.utts} utterances x {args.seconds:.0f} s; packing into shards {time.perf_counter() - t0:.1f} s")
        for workers in args.workers:
            n = args.batches + 1
            ds = ChunkDataset(data, chunk, seed=0)
            scp = make_loader(ds, EpochSampler(len(ds), batches_per_epoch=n, batch_size=batch, seed=0), batch, workers)
            stream = ShardStream(Path(tmp) / "shards", chunk_size=chunk, batch_size=batch, batches_per_epoch=n,
                                 group_shards=1, seed=0, num_workers=workers)
            shards = make_loader(stream, None, batch, workers)
            rates = {}
            for name, loader in (("wav.scp", scp), ("shards", shards)):
                wall = timed(loader, args.batches)
                rates[name] = args.batches * batch * chunk / 16000 / wall
            print(f"loader processes {workers}: wav.scp {rates['wav.scp']:8.1f} s of audio/s (3 file opens per item, "
                  f"{3 * batch} per batch), shards {rates['shards']:8.1f} s/s (1 open per 64 utterances); "
                  f"ratio {rates['shards'] / rates['wav.scp']:.2f}")


if __name__ == "__main__":
    main()
