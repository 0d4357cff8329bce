"""pase-prep-librispeech: LibriSpeech subsets -> Kaldi data dirs.

    pase-prep-librispeech /corpora/LibriSpeech data train-clean-100 dev-clean

writes data/train_clean_100 and data/dev_clean (wav.scp with the FLAC paths, or with
--wav_format pipe the `flac -c -d -s X |` entries Kaldi's own tools need; text, utt2spk,
spk2utt, spk2gender). --segment also writes <dir>_seg: the speech segments found by the
original's energy-based segmentation, as a `segments` file.
"""
from __future__ import annotations

from pathlib import Path

from pase.bin.common import ArgumentParser, run_main
from pase.prep.librispeech import prepare_subset
from pase.prep.wav_entry import WAV_FORMAT_HELP, WAV_FORMATS
from pase.prep.segment import segment_data_dir


def main(argv: list[str] | None = None) -> None:
    p = ArgumentParser("pase-prep-librispeech", __doc__)
    p.add_argument("corpus", type=Path, help="the LibriSpeech directory (holding the subset dirs)")
    p.add_argument("data", type=Path, help="where the data dirs go")
    p.add_argument("subsets", nargs="+", help="subset names, e.g. train-clean-100 dev-clean")
    p.add_argument("--segment", action="store_true", help="also write <dir>_seg with speech segments")
    p.add_argument("--min_seconds", type=float, default=1.5, help="shortest segment kept with --segment")
    p.add_argument("--wav_format", choices=WAV_FORMATS, default="path", help=WAV_FORMAT_HELP)
    args = p.parse_args(argv)
    for subset in args.subsets:
        out = args.data / subset.replace("-", "_")
        prepare_subset(args.corpus / subset, out, wav_format=args.wav_format)
        if args.segment:
            segment_data_dir(out, out.with_name(out.name + "_seg"), min_seconds=args.min_seconds)


def cli() -> None:
    run_main(main, "pase-prep-librispeech")


if __name__ == "__main__":
    cli()
