"""pase-make-lang: phone-level Kaldi lang dirs and the phone bigram from training transcripts.

    pase-make-lang data/train data/lang data/lang_test_bg

The phones are those of data/train/text (phone = word, TIMIT style: no optional silence, `sil`
written in the transcripts). data/lang gets phones.txt, words.txt, topo, L.fst,
L_disambig.fst, phones/, oov.txt; data/lang_test_bg is a copy plus G.arpa (our absolutely
discounted phone bigram) and G.fst (see pase.asr.lang).
"""
from __future__ import annotations

from pathlib import Path

from pase.asr.lang import make_G, make_lang, train_bigram_arpa
from pase.bin.common import ArgumentParser, run_main
from pase.io import DataDirError, read_kaldi_map


def main(argv: list[str] | None = None) -> None:
    p = ArgumentParser("pase-make-lang", __doc__)
    p.add_argument("data_train", type=Path, help="training data dir (its text: phone transcripts)")
    p.add_argument("lang", type=Path, help="output lang dir")
    p.add_argument("lang_test", type=Path, help="output test lang dir (lang + G.fst)")
    p.add_argument("--silence", default="sil", help="the silence phone")
    p.add_argument("--discount", type=float, default=0.5, help="absolute discount of the bigram")
    args = p.parse_args(argv)
    text = read_kaldi_map(args.data_train / "text", allow_empty=True)
    transcripts = [line.split() for line in text.values()]
    phones = sorted({p for t in transcripts for p in t})
    if not phones:
        raise DataDirError(f"{args.data_train / 'text'}: no transcripts")
    lang = make_lang(phones, args.lang, silence=args.silence)
    make_G(lang, train_bigram_arpa(transcripts, discount=args.discount), args.lang_test)


def cli() -> None:
    run_main(main, "pase-make-lang")


if __name__ == "__main__":
    cli()
