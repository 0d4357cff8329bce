"""The root of the project's user-facing errors.

Every error caused by bad input, configuration or a run that cannot go on derives from
`PaseError`, so entry points report it in one line (see `pase.bin.common.run_main`) while programming
errors keep their tracebacks.
"""


class PaseError(Exception):
    """An error whose message tells the user what to fix (file, line, key)."""
