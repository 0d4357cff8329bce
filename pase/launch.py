"""Console-script launcher: runs each `pase-*` command under jemalloc when it is installed.

PyTorch on CPU allocates and frees tensors of hundreds of MB every training step; glibc serves
each from a fresh mmap, so every page faults again. jemalloc keeps them: a PASE+ training step
on 2 CPU cores gets 1.6-1.8x faster (bench/bench_train.py). The library must be preloaded before
the interpreter starts, so the launcher re-executes the command once with LD_PRELOAD set.
PASE_JEMALLOC=0 disables it; tools/install.sh installs Debian's libjemalloc2. This module is
the one place that knows how: the benchmarks call `reexec_under_jemalloc`, and the recipes'
path.sh evaluates `python -m pase.launch` (shell exports, for torchrun-launched processes).
"""
from __future__ import annotations

import importlib
import os
import shlex
import sys
from pathlib import Path

# Settings Intel and PyTorch recommend for deep-learning workloads: never return memory to the
# OS between steps, background purging, transparent huge pages for metadata.
MALLOC_CONF = "oversize_threshold:1,background_thread:true,metadata_thp:auto,dirty_decay_ms:-1,muzzy_decay_ms:-1"
CANDIDATES = ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
              "/usr/lib64/libjemalloc.so.2", "/usr/local/lib/libjemalloc.so.2", "/usr/lib/libjemalloc.so.2")


def jemalloc_path() -> str | None:
    return next((p for p in CANDIDATES if Path(p).is_file()), None)


def jemalloc_env(env: dict[str, str]) -> dict[str, str] | None:
    """`env` with jemalloc preloaded, or None when disabled, missing or already active."""
    lib = jemalloc_path()
    if env.get("PASE_JEMALLOC", "1") == "0" or lib is None or "jemalloc" in env.get("LD_PRELOAD", ""):
        return None
    out = dict(env)
    out["LD_PRELOAD"] = ":".join(filter(None, [lib, env.get("LD_PRELOAD")]))
    out.setdefault("MALLOC_CONF", MALLOC_CONF)
    return out


def reexec_under_jemalloc(argv: list[str]) -> None:
    """Re-execute this interpreter with `argv` under jemalloc when possible (else return)."""
    env = jemalloc_env(dict(os.environ))
    if env is not None:
        os.execve(sys.executable, [sys.executable, *argv], env)


def shell_exports(env: dict[str, str]) -> str:
    """`export` lines that preload jemalloc in a shell, or "" when `jemalloc_env` says no."""
    new = jemalloc_env(env)
    if new is None:
        return ""
    return "".join(f"export {k}={shlex.quote(new[k])}\n" for k in ("LD_PRELOAD", "MALLOC_CONF"))


def run(module: str) -> None:
    """Run `module`'s cli(), re-executing under jemalloc first when possible."""
    reexec_under_jemalloc(["-m", module, *sys.argv[1:]])
    importlib.import_module(module).cli()


def _command(module: str):
    return lambda: run(module)


extract = _command("pase.bin.extract")
train = _command("pase.bin.train")
compute_stats = _command("pase.bin.compute_stats")
split_data = _command("pase.bin.split_data")
seed_data = _command("pase.bin.seed_data")
data_dir = _command("pase.bin.data_dir")
make_synthetic_corpus = _command("pase.bin.make_synthetic_corpus")
prep_librispeech = _command("pase.bin.prep_librispeech")
download_librispeech = _command("pase.bin.download_librispeech")
report = _command("pase.bin.report")
prepare_rirs = _command("pase.bin.prepare_rirs")
make_distortion_banks = _command("pase.bin.make_distortion_banks")
prep_timit = _command("pase.bin.prep_timit")
make_lang = _command("pase.bin.make_lang")
train_gmm = _command("pase.bin.train_gmm")
train_mlp = _command("pase.bin.train_mlp")
decode = _command("pase.bin.decode")
cls_train = _command("pase.bin.cls_train")
cls_eval = _command("pase.bin.cls_eval")
probe = _command("pase.bin.probe")
average_checkpoints = _command("pase.bin.average_checkpoints")
make_shards = _command("pase.bin.make_shards")


if __name__ == "__main__":
    sys.stdout.write(shell_exports(dict(os.environ)))
