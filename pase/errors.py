"""The root of the project's user-facing errors.

Every error caused by bad input, configuration or a run that cannot go on derives from
`PaseError`, so entry points report it in one line (see `pase.bin.common.run_main`) while programming
errors keep their tracebacks.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator


class PaseError(Exception):
    """An error whose message tells the user what to fix (file, line, key)."""


@contextlib.contextmanager
def naming_file(path: str | os.PathLike) -> Iterator[None]:
    """Give `path` to an OSError raised without a file name.

    A failing write() or fsync() (disk full, quota exceeded) names no file, so the one-line
    report would not say which output could not be written.
    """
    try:
        yield
    except OSError as e:
        if e.filename is None and e.errno is not None:
            raise OSError(e.errno, e.strerror, os.fspath(path)) from e
        raise
