"""pase-split-data: split a data dir by held-out speakers, or by label for classification.

    pase-split-data data/train data/pase_train data/pase_valid --valid_fraction 0.1 --seed 3
    pase-split-data data/all data/all_train data/all_dev data/all_test --by label \\
        --test_fraction 0.2 --dev_fraction 0.1 [--train_list L] [--dev_list L] [--test_list L]

--by speaker (pretraining): the held-out speakers go to VALID_DIR, the rest to TRAIN_DIR; each
keeps at least --min_speakers (default 2; the recipes pass their --nj, so that utils/split_data.sh
NJ works on either), and a corpus with too few speakers for both is an error.
--by label (utterance classification, from DATA_DIR/utt2label): a given list (utterance ids, one
per line) is that set; test is otherwise --test_fraction of each class, dev --dev_fraction of
each class of what is left (and not in --train_list), train the rest; every output gets its
utt2label. Overlapping sets, an empty set or a class without training examples are errors.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from pase.bin.common import ArgumentParser, run_main
from pase.data.split import split_by_label, split_by_speaker
from pase.errors import PaseError
from pase.io import DataDir, copy_data_dir, read_kaldi_map, write_kaldi_map

log = logging.getLogger("pase-split-data")


def build_parser() -> ArgumentParser:
    p = ArgumentParser("pase-split-data", __doc__)
    p.add_argument("data_dir", type=Path, help="Kaldi data dir to split")
    p.add_argument("train_dir", type=Path, help="output data dir for training")
    p.add_argument("valid_dir", type=Path, help="output data dir for the held-out speakers (--by label: dev)")
    p.add_argument("test_dir", type=Path, nargs="?", help="--by label: output data dir for the test set")
    p.add_argument("--by", choices=("speaker", "label"), default="speaker", help="what the split holds out")
    p.add_argument("--valid_fraction", type=float, default=0.1,
                   help="--by speaker: fraction of the speakers held out (default 0.1)")
    p.add_argument("--num_valid_speakers", type=int, default=None,
                   help="--by speaker: hold out exactly this many speakers (overrides --valid_fraction)")
    p.add_argument("--min_speakers", type=int, default=2,
                   help="--by speaker: the fewest speakers each side keeps (default 2)")
    p.add_argument("--seed", type=int, default=3, help="--by speaker: speaker shuffle seed (default 3)")
    p.add_argument("--test_fraction", type=float, default=0.2, help="--by label: per class, without --test_list")
    p.add_argument("--dev_fraction", type=float, default=0.1, help="--by label: per class, without --dev_list")
    for name in ("train", "dev", "test"):
        p.add_argument(f"--{name}_list", type=Path, default=None, help=f"--by label: the {name} utterance ids")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    data = DataDir.load(args.data_dir)
    if args.by == "speaker":
        if args.test_dir is not None:
            raise PaseError("--by speaker writes two data dirs (train, valid); TEST_DIR is for --by label")
        train, valid = split_by_speaker(data, args.valid_fraction, num_valid_speakers=args.num_valid_speakers,
                                        min_speakers=args.min_speakers, seed=args.seed)
        parts, labels = [(args.train_dir, train), (args.valid_dir, valid)], None
    else:
        if args.test_dir is None:
            raise PaseError("--by label writes three data dirs: TRAIN_DIR DEV_DIR TEST_DIR")
        labels_file = args.data_dir / "utt2label"
        labels = read_kaldi_map(labels_file, n_fields=2)
        missing = [u for u in data.utt2spk if u not in labels]
        if missing:
            raise PaseError(f"{labels_file}: no label for {len(missing)} utterance(s), e.g. {', '.join(missing[:5])}")
        lists = {name: [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
                 for name in ("train", "dev", "test") if (path := getattr(args, f"{name}_list")) is not None}
        sets = split_by_label({u: labels[u] for u in data.utt2spk}, test_fraction=args.test_fraction,
                              dev_fraction=args.dev_fraction, lists=lists, where=str(labels_file))
        parts = [(args.train_dir, sets["train"]), (args.valid_dir, sets["dev"]), (args.test_dir, sets["test"])]
    for out_dir, ids in parts:
        copy_data_dir(args.data_dir, out_dir, utt_ids=ids)
        if labels is not None:
            write_kaldi_map(out_dir / "utt2label", {u: labels[u] for u in ids})
        log.info("%s: %d utterances, %d speakers", out_dir, len(ids), len({data.utt2spk[u] for u in ids}))


def cli() -> None:
    run_main(main, "pase-split-data")


if __name__ == "__main__":
    cli()
