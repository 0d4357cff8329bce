"""torchrun's elastic restart: one rank of two is SIGKILLed mid-epoch, torchrun (--max_restarts 1)
restarts the group, and the run resumes from the newest mid-epoch state to the weights of a run
that was never interrupted."""
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_train_scale import ROOT, assert_same_run, descendants, setup, train_args  # noqa: F401 (setup: fixture)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(setup, save: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--max_restarts", "1",
            "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{free_port()}", "-m", "pase.bin.train",
            *train_args(setup, save, "--epoch", "1", "--batches_per_epoch", "8", "--num_workers", "0",
                        "--device", "cpu", "--threads", "1", "--save_every_steps", "1", *extra)]


def rank_process(agent: int, rank: int) -> int | None:
    """The worker of torchrun `agent` whose RANK is `rank`."""
    for pid in descendants(agent)[1:]:
        with contextlib.suppress(OSError):
            if f"RANK={rank}" in Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0"):
                return pid
    return None


@pytest.mark.slow
def test_torchrun_restarts_the_group_after_a_rank_dies(setup, tmp_path):
    # LOGLEVEL: torchrun logs its restarts.  TORCH_DISABLE_SHARE_RDZV_TCP_STORE: torch 2.11's c10d
    # rendezvous otherwise hands the restarted workers the first group's store, and a rank may
    # read its peer's dead address from it (gloo: connection refused).
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), LOGLEVEL="INFO",
               TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1")
    straight = tmp_path / "straight"
    out = subprocess.run(torchrun(setup, straight), env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]

    elastic = tmp_path / "elastic"
    log = tmp_path / "elastic.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(torchrun(setup, elastic), env=env, stdout=err, stderr=subprocess.STDOUT)
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and time.monotonic() < deadline and proc.poll() is None:
        if any(int(p.stem.split("_s")[1]) >= 3 for p in (elastic / "states").glob("state_s*.pt")):
            killed = rank_process(proc.pid, 1)
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.01)
    try:
        assert killed is not None, f"no mid-epoch state at step 3 (rc {proc.poll()})\n{log.read_text()[-3000:]}"
        rc = proc.wait(300)
    finally:
        if proc.poll() is None:
            for pid in descendants(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    text = log.read_text()
    assert rc == 0, text[-3000:]
    assert "will restart worker group" in text, text[-3000:]
    resumed = [line for line in text.splitlines() if "resumed from" in line]
    assert len(resumed) == 2 and all(f"{elastic}/states/state_s" in line for line in resumed), text[-3000:]
    assert_same_run(straight, elastic, 0)
