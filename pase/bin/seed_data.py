"""pase-seed-data: the original PASE README's data inputs as Kaldi data dirs.

    pase-seed-data --data_root data/LibriSpeech/wavs --train_scp data/LibriSpeech/libri_tr.scp \\
        --test_scp data/LibriSpeech/libri_te.scp --spk_map libri_dict.txt --out_dir data

writes OUT_DIR/train and OUT_DIR/test (wav.scp, utt2spk, spk2utt; utterance ids are
<speaker>-<file name without extension>), then splits train into OUT_DIR/pase_train and
OUT_DIR/pase_valid holding out whole speakers, as the pretraining recipe's stage 2 does with the
same --valid_fraction, --min_speakers and --seed (the original held out utterances, not speakers).

--spk_map: 'file speaker' lines or a JSON object; the original's numpy-saved dictionary
(libri_dict.npy) is a pickle, read only with --allow_pickle.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from pase.bin.common import ArgumentParser, run_main
from pase.data.split import split_by_speaker
from pase.io import DataDir, Utterance, copy_data_dir
from pase.prep.seed import SeedDataError, load_speaker_map, read_seed_list, write_data_dir

log = logging.getLogger("pase-seed-data")


def build_parser() -> ArgumentParser:
    p = ArgumentParser("pase-seed-data", __doc__)
    p.add_argument("--data_root", type=Path, required=True, help="flat folder of the wav files")
    p.add_argument("--train_scp", type=Path, required=True, help="training file names, one per line")
    p.add_argument("--test_scp", type=Path, default=None, help="test file names, one per line (optional)")
    p.add_argument("--spk_map", "--libri_dict", type=Path, required=True,
                   help="file name -> speaker: 'file speaker' lines, JSON, or (--allow_pickle) .npy")
    p.add_argument("--allow_pickle", action="store_true",
                   help="read a numpy/pickle speaker map (it can run code: only for a trusted file)")
    p.add_argument("--out_dir", type=Path, required=True,
                   help="where train/, test/, pase_train/ and pase_valid/ are written")
    p.add_argument("--valid_fraction", type=float, default=0.1,
                   help="fraction of the training speakers held out in pase_valid (default 0.1)")
    p.add_argument("--min_speakers", type=int, default=2,
                   help="the fewest speakers each of pase_train and pase_valid keeps (default 2)")
    p.add_argument("--seed", type=int, default=3, help="speaker shuffle seed (default 3)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if not args.data_root.is_dir():
        raise SeedDataError(f"{args.data_root}: wav folder not found")
    spk_map = load_speaker_map(args.spk_map, allow_pickle=args.allow_pickle)
    lists = {"train": args.train_scp, "test": args.test_scp}
    sets = {name: read_seed_list(path, args.data_root, spk_map, map_name=str(args.spk_map))
            for name, path in lists.items() if path is not None}
    (train_wavs, train_spk), test_wavs = sets["train"], sets.get("test", ({}, {}))[0]
    if shared := sorted(train_wavs.keys() & test_wavs.keys()):
        raise SeedDataError(f"{args.train_scp} and {args.test_scp} share {len(shared)} file(s), "
                            f"e.g. {', '.join(shared[:3])}")
    # The split is checked (enough speakers for both sides) before anything is written.
    train = DataDir(args.train_scp, [Utterance(u, w, None, None, train_spk[u]) for u, w in train_wavs.items()])
    split = split_by_speaker(train, args.valid_fraction, min_speakers=args.min_speakers, seed=args.seed)
    for name, (wav_scp, utt2spk) in sets.items():
        write_data_dir(args.out_dir / name, wav_scp, utt2spk)
        log.info("%s: %d utterances, %d speakers", args.out_dir / name, len(utt2spk), len(set(utt2spk.values())))
    train_dir = args.out_dir / "train"
    for out, ids in zip((args.out_dir / "pase_train", args.out_dir / "pase_valid"), split):
        copy_data_dir(train_dir, out, utt_ids=ids)
        log.info("%s: %d utterances, %d speakers", out, len(ids), len({train_spk[u] for u in ids}))


def cli() -> None:
    run_main(main, "pase-seed-data")


if __name__ == "__main__":
    cli()
