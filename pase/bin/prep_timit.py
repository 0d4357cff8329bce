"""pase-prep-timit: TIMIT -> Kaldi data dirs train, dev (50 speakers) and test (24 core speakers).

    pase-prep-timit /corpora/LDC93S1/TIMIT data --dev_spk conf/dev_spk.list \
        --test_spk conf/test_spk.list --phone_map conf/phones.60-48-39.map

writes data/{train,dev,test}/{wav.scp,text,utt2spk,spk2utt,spk2gender,utt2dur}, with 48-phone
transcripts in `text` (Kaldi's egs/timit/s5 conventions; see pase.prep.timit); wav.scp holds
the SPHERE paths, or with --wav_format pipe the `sph2pipe -f wav X |` entries Kaldi's own tools
need. Without the
options, the standard lists and map built into pase are used; --write_conf DIR writes those
three files (to start a recipe's conf/) and exits.
--check TIMIT_ROOT writes nothing: it names what the copy lacks (TRAIN/, TEST/, listed
speakers), as the TIMIT recipe's stage 0 does.
"""
from __future__ import annotations

from pathlib import Path

from pase.bin.common import ArgumentParser, run_main
from pase.errors import PaseError
from pase.prep.timit import check_timit, prepare_timit, write_timit_conf
from pase.prep.wav_entry import WAV_FORMAT_HELP, WAV_FORMATS


def main(argv: list[str] | None = None) -> None:
    p = ArgumentParser("pase-prep-timit", __doc__)
    p.add_argument("timit_root", type=Path, nargs="?",
                   help="the directory holding TRAIN/ and TEST/ (or its parent)")
    p.add_argument("data", type=Path, nargs="?", help="where train/, dev/ and test/ go")
    p.add_argument("--dev_spk", type=Path, default=None,
                   help="dev speaker list (default: the built-in 50 speakers)")
    p.add_argument("--test_spk", type=Path, default=None,
                   help="test speaker list (default: the built-in core test set)")
    p.add_argument("--phone_map", type=Path, default=None,
                   help="phones.60-48-39.map (default: the built-in standard map)")
    p.add_argument("--allow_missing_speakers", action="store_true",
                   help="skip listed speakers absent from TEST/ with a warning instead of failing "
                        "(corpora holding a subset of TIMIT's speakers, e.g. the synthetic one)")
    p.add_argument("--wav_format", choices=WAV_FORMATS, default="path", help=WAV_FORMAT_HELP)
    p.add_argument("--check", action="store_true",
                   help="only check that TIMIT_ROOT has everything (TRAIN/, TEST/, the listed "
                        "speakers) and name what is missing; writes nothing")
    p.add_argument("--write_conf", type=Path, default=None, metavar="DIR",
                   help="write dev_spk.list, test_spk.list and phones.60-48-39.map to DIR and exit")
    args = p.parse_args(argv)
    if args.write_conf is not None:
        write_timit_conf(args.write_conf)
        return
    if args.check and args.timit_root is not None:
        problems = check_timit(args.timit_root, dev_spk=args.dev_spk, test_spk=args.test_spk,
                               allow_missing_speakers=args.allow_missing_speakers)
        if problems:
            raise PaseError("TIMIT is incomplete: " + "; ".join(problems))
        return
    if args.timit_root is None or args.data is None:
        p.error("TIMIT_ROOT and DATA are required (TIMIT_ROOT alone with --check; none with --write_conf)")
    prepare_timit(args.timit_root, args.data, dev_spk=args.dev_spk, test_spk=args.test_spk,
                  phone_map=args.phone_map, allow_missing_speakers=args.allow_missing_speakers,
                  wav_format=args.wav_format)


def cli() -> None:
    run_main(main, "pase-prep-timit")


if __name__ == "__main__":
    cli()
