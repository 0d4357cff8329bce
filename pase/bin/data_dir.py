"""pase-data-dir: check, repair, subset and split Kaldi data directories.

    pase-data-dir validate data/train [--no_feats] [--no_text] [--no_wav] [--no_spk_sort] [--non_print]
    pase-data-dir fix data/train
    pase-data-dir subset data/train data/train_1k --shortest 1000
    pase-data-dir split data/train 8                  # -> data/train/split8/{1..8}
    pase-data-dir espnet data/train_pase espnet/data/train   # for asr.sh --feats_type extracted
    pase-data-dir utt2spk-to-spk2utt < utt2spk > spk2utt

utils/{validate_data_dir,fix_data_dir,subset_data_dir,split_data}.sh expose these under
Kaldi's names; the work is done in pase.io (validate, subset, split, speaker_maps).
"""
from __future__ import annotations

import sys
from pathlib import Path

from pase.bin.common import ArgumentParser, run_main
from pase.io import (SUBSET_MODES, fix_data_dir, kaldi_map_lines, split_data_dir,
                     spk2utt_text_to_utt2spk, subset_data_dir, utt2spk_text_to_spk2utt,
                     validate_data_dir)
from pase.io.espnet import export_espnet


def _input(path: Path | None) -> tuple[str, str]:
    if path is None:
        return "<stdin>", sys.stdin.read()
    return str(path), path.read_text(encoding="utf-8")


def build_parser() -> ArgumentParser:
    p = ArgumentParser("pase-data-dir", __doc__)
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="check a data dir; print every problem")
    v.add_argument("data_dir", type=Path)
    v.add_argument("--no_feats", action="store_true",
                   help="feats.scp is not required (checked when present)")
    v.add_argument("--no_text", action="store_true", help="text is not required (nor checked)")
    v.add_argument("--no_wav", action="store_true",
                   help="wav.scp is not required (checked when present)")
    v.add_argument("--no_spk_sort", action="store_true",
                   help="utt2spk need not be sorted by speaker too (spk2utt must still list "
                        "the utterances in utt2spk's order, as in Kaldi)")
    v.add_argument("--non_print", action="store_true",
                   help="allow non-printable characters in text")
    f = sub.add_parser("fix", help="drop inconsistent entries, sort, regenerate spk2utt")
    f.add_argument("data_dir", type=Path)
    s = sub.add_parser("subset", help="copy part of a data dir")
    s.add_argument("data_dir", type=Path)
    s.add_argument("out_dir", type=Path)
    how = s.add_mutually_exclusive_group(required=True)
    how.add_argument("--utt_list", type=Path, help="utterances in this file (first field)")
    how.add_argument("--spk_list", type=Path, help="utterances of the speakers in this file")
    how.add_argument("--first", type=int, help="first N utterances (C-locale order)")
    how.add_argument("--last", type=int, help="last N utterances")
    how.add_argument("--shortest", type=int, help="N shortest utterances (needs utt2dur)")
    how.add_argument("--spread", type=int, help="N utterances evenly spread over the dir")
    sp = sub.add_parser("split", help="split into DIR/split<NJ>/{1..NJ} by speaker")
    sp.add_argument("data_dir", type=Path)
    sp.add_argument("nj", type=int)
    e = sub.add_parser("espnet", help="copy a pase-extract data dir into the form ESPnet's "
                       "asr.sh --feats_type extracted reads")
    e.add_argument("data_dir", type=Path)
    e.add_argument("out_dir", type=Path)
    for name, what in (("utt2spk-to-spk2utt", "utt2spk"), ("spk2utt-to-utt2spk", "spk2utt")):
        c = sub.add_parser(name, help=f"convert {what} (FILE or stdin) to stdout")
        c.add_argument("file", type=Path, nargs="?")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "validate":
        errors, warnings, n_utts, n_spks = validate_data_dir(
            args.data_dir, no_feats=args.no_feats, no_text=args.no_text, no_wav=args.no_wav,
            no_spk_sort=args.no_spk_sort, non_print=args.non_print)
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
        for e in errors:
            print(f"error: {e}", file=sys.stderr)
        if errors:
            print(f"{args.data_dir}: {len(errors)} error(s)", file=sys.stderr)
            sys.exit(1)
        print(f"{args.data_dir}: OK ({n_utts} utterances, {n_spks} speakers)")
    elif args.command == "fix":
        for line in fix_data_dir(args.data_dir):
            print(f"{args.data_dir}: {line}")
    elif args.command == "subset":
        mode = next(m for m in SUBSET_MODES if getattr(args, m) is not None)
        n_utts, n_spks = subset_data_dir(args.data_dir, args.out_dir, mode, getattr(args, mode))
        print(f"{args.out_dir}: {n_utts} utterances, {n_spks} speakers (from {args.data_dir})")
    elif args.command == "split":
        print(split_data_dir(args.data_dir, args.nj))
    elif args.command == "espnet":
        print(export_espnet(args.data_dir, args.out_dir))
    else:
        convert = (utt2spk_text_to_spk2utt if args.command == "utt2spk-to-spk2utt"
                   else spk2utt_text_to_utt2spk)
        sys.stdout.writelines(kaldi_map_lines(convert(*_input(args.file)), "<stdout>"))


def cli() -> None:
    run_main(main, "pase-data-dir")


if __name__ == "__main__":
    cli()
