"""Command-line entry points (`pase-*`): thin parsers over the library, one convention (bin/common.py)."""
