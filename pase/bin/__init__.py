"""Command-line entry points (`pase-*`): thin argparse wrappers over the library."""
from __future__ import annotations

import logging
import os
import sys
from typing import Callable

from pase.errors import PaseError


def run_main(main: Callable[[], None], prog: str) -> None:
    """Run an entry point: logging to stderr, user errors reported in one line without a traceback."""
    logging.basicConfig(level=os.environ.get("PASE_LOGLEVEL", "INFO"),
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    try:
        main()
    except PaseError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(1)
