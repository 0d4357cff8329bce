"""One extraction at a time per dump dir (fcntl.flock; a held lock fails at once, never waits).

A whole run or a merge holds <dump dir>/.lock exclusively. The jobs of one --job run hold it
shared, so they run side by side, and each holds its own .lock.J exclusively, so the same job
twice, or a merge while jobs still write, fails with one line naming the dir. The locks go with
the process (also when it is killed); the lock files stay, empty.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from pase.dump.layout import DumpError


def _hold(path: Path, mode: int, stack: contextlib.ExitStack, message: str) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    stack.callback(os.close, fd)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        raise DumpError(message) from None


@contextlib.contextmanager
def dump_lock(dump_dir: Path, job: int | None = None) -> Iterator[None]:
    """Hold `dump_dir` for a whole run or merge (`job` None) or for job `job` of a --job run."""
    dump_dir.mkdir(parents=True, exist_ok=True)
    busy = f"{dump_dir}: in use by another pase-extract (its lock {dump_dir / '.lock'} is held)"
    with contextlib.ExitStack() as stack:
        _hold(dump_dir / ".lock", fcntl.LOCK_EX if job is None else fcntl.LOCK_SH, stack, busy)
        if job is not None:
            _hold(dump_dir / f".lock.{job}", fcntl.LOCK_EX, stack,
                  f"{dump_dir}: job {job} is already running there (its lock {dump_dir / f'.lock.{job}'} is held)")
        yield
