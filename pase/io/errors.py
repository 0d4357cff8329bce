"""Exception types for bad user input.

They all derive from ``ValueError`` through :class:`PaseInputError`, so a
recipe can catch "the data is wrong" separately from programming errors, and
every message names the offending file (plus line number or key) so the user
can fix the data without a debugger.
"""
from pase.errors import PaseError


class PaseInputError(PaseError, ValueError):
    """Base class for every error caused by bad input data."""


class AudioError(PaseInputError):
    """An audio file or pipe command cannot be turned into a usable waveform."""


class DataDirError(PaseInputError):
    """A Kaldi data directory file is missing, malformed or inconsistent."""
