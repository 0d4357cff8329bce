"""The jobs of an extraction run by pase-extract itself (--nj N without --job): N processes
on this machine, each running one job exactly as `--job J` would."""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable

from pase.errors import PaseError


def threads_per_job(nj: int) -> int:
    """Torch threads for each of `nj` jobs sharing this process's CPUs."""
    return max(1, len(os.sched_getaffinity(0)) // nj)


def _start_worker() -> None:
    logging.basicConfig(level=os.environ.get("PASE_LOGLEVEL", "INFO"),
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    # Stopped by the parent (another job failed): unwind, so that no temporary file stays.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def _run(task: tuple[Callable[[int], object], int]) -> tuple[int, str | None]:
    job_fn, job = task
    try:
        job_fn(job)
    except PaseError as e:
        return job, str(e)
    return job, None


def run_jobs(job_fn: Callable[[int], object], nj: int) -> None:
    """Run job_fn(1) .. job_fn(nj) in `nj` fresh processes (`job_fn` must pickle).

    The first job to fail with a user error stops the others and is raised, naming the job;
    any other error is raised as it is (with the job's traceback).
    """
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that holds torch threads
    with ctx.Pool(nj, initializer=_start_worker) as pool:  # leaving it terminates the jobs left
        for job, error in pool.imap_unordered(_run, [(job_fn, j) for j in range(1, nj + 1)]):
            if error is not None:
                raise PaseError(f"job {job} of {nj} failed: {error}")
