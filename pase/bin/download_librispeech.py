"""pase-download-librispeech: LibriSpeech subsets from an openSLR-layout mirror into a corpus dir.

    pase-download-librispeech /corpora/LibriSpeech train-clean-100 dev-clean
    pase-download-librispeech /corpora/LibriSpeech dev-clean --mirror https://us.openslr.org/resources/12

fetches <mirror>/<subset>.tar.gz, checks it against <mirror>/md5sum.txt and unpacks it into
CORPUS/<subset> (the directory pase-prep-librispeech reads). Subsets already in CORPUS are
skipped without a request; an interrupted download resumes from its .part file on the next run;
a subset appears only when complete.
"""
from __future__ import annotations

from pathlib import Path

from pase.bin.common import ArgumentParser, run_main
from pase.prep.download import OPENSLR_LIBRISPEECH, get_librispeech

PROG = "pase-download-librispeech"


def main(argv: list[str] | None = None) -> None:
    p = ArgumentParser(PROG, __doc__)
    p.add_argument("corpus", type=Path, help="the LibriSpeech directory (subset dirs go inside)")
    p.add_argument("subsets", nargs="+", help="subset names, e.g. train-clean-100 dev-clean")
    p.add_argument("--mirror", default=OPENSLR_LIBRISPEECH, help="base URL in openSLR resource 12's layout")
    p.add_argument("--download_dir", type=Path, default=None,
                   help="where the archives are downloaded (default: the corpus dir)")
    p.add_argument("--keep_archive", action="store_true", help="keep <subset>.tar.gz after unpacking")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds without data before a retry")
    p.add_argument("--retries", type=int, default=3, help="resumed attempts after a broken transfer")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    get_librispeech(args.corpus, args.subsets, mirror=args.mirror, download_dir=args.download_dir,
                    keep_archive=args.keep_archive, timeout=args.timeout, retries=args.retries,
                    progress=not args.no_progress)


def cli() -> None:
    run_main(main, PROG)


if __name__ == "__main__":
    cli()
