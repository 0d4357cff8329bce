"""Kaldi lang directories for phone recognition (phone = word) and a phone bigram G.fst.

What Kaldi's ``utils/prepare_lang.sh --sil-prob 0 --position-dependent-phones false
--num-sil-states 3 dict sil ...`` makes for TIMIT, written without Kaldi:

* ``phones.txt``: ``<eps> 0``, the silence phone ``1``, the other phones sorted, then ``#0``
  and ``#1`` (disambiguation symbols; ``#0`` carries G's backoff arcs through L);
* ``words.txt``: ``<eps> 0``, the phones with the same ids as in ``phones.txt``, then ``#0``,
  ``<s>``, ``</s>``;
* ``topo``: Kaldi's text HMM topology, 3 emitting left-to-right states per non-silence phone
  and the 3-state silence topology of Kaldi's gen_topo.pl (see :func:`make_topo`);
* ``L.fst`` / ``L_disambig.fst``: one state, an arc ``phone:phone`` per phone; the latter
  adds the ``#0:#0`` self-loop. Both olabel-sorted, in OpenFst binary format (kaldifst).
  No optional silence between words: the TIMIT transcripts carry ``sil`` themselves.
* ``phones/{silence,nonsilence,disambig,context_indep,optional_silence}.{txt,int,csl}``: symbol
  per line, id per line, and ids joined by ``:``; the silence phone is the context-independent
  and the optional-silence phone;
* ``phones/sets.{txt,int}`` (one phone per line) and ``phones/roots.{txt,int}`` (the same,
  ``shared split`` each: one tree root for all states of a phone), ``phones/extra_questions``
  (the silence phones, then the others: TIMIT's have no stress marks to ask about),
  ``phones/wdisambig{.txt,_phones.int,_words.int}`` (``#0``, G's word-level disambiguation
  symbol) and ``phones/align_lexicon.{txt,int}`` (``word word phones``, plus ``<eps>`` as
  silence); no ``word_boundary``, as the phones are not word-position dependent;
* ``oov.txt`` / ``oov.int`` (the silence phone, as in Kaldi's TIMIT).

Together these are what Kaldi's ``utils/validate_lang.pl`` checks, so Kaldi's own scripts
(train_mono.sh, mkgraph.sh, ...) take these dirs.

A test lang dir (``lang_test_bg``) is a copy plus ``G.arpa`` (the bigram) and ``G.fst``
(ilabel-sorted, from kaldilm's arpa2fst with ``#0`` on the backoff arcs).
"""
from __future__ import annotations

import math
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Import order matters: importing kaldi_hmm_gmm, kaldifst or kaldi_decoder after kaldilm
# deadlocks (observed with the pinned versions), so all four are loaded here, kaldilm last.
import kaldi_hmm_gmm as khg
import kaldifst
import kaldi_decoder  # noqa: F401  (only for the import order)
import kaldilm

from pase.io import DataDirError, PaseInputError

EPS, BOS, EOS = "<eps>", "<s>", "</s>"
DISAMBIG = ("#0", "#1")
_RESERVED = {EPS, BOS, EOS}


def make_topo(silence_ids: Sequence[int], nonsilence_ids: Sequence[int]) -> str:
    """Kaldi text topology: Bakis 3-state HMMs, and gen_topo.pl's 3-state silence model.

    Silence (``num_sil_states=3``): state 0 may stay or move on (0.5/0.5), state 1 likewise,
    state 2 loops with 0.75 and exits with 0.25, so silence can take as few as 3 frames.
    """
    def entry(ids: Sequence[int], states: Sequence[str]) -> str:
        phones = " ".join(str(i) for i in ids)
        return ("<TopologyEntry>\n<ForPhones>\n" + phones + "\n</ForPhones>\n"
                + "".join(s + "\n" for s in states) + "</TopologyEntry>\n")

    bakis = [f"<State> {s} <PdfClass> {s} <Transition> {s} 0.75 <Transition> {s + 1} 0.25 "
             "</State>" for s in range(3)] + ["<State> 3 </State>"]
    sil = ["<State> 0 <PdfClass> 0 <Transition> 0 0.5 <Transition> 1 0.5 </State>",
           "<State> 1 <PdfClass> 1 <Transition> 1 0.5 <Transition> 2 0.5 </State>",
           "<State> 2 <PdfClass> 2 <Transition> 2 0.75 <Transition> 3 0.25 </State>",
           "<State> 3 </State>"]
    body = (entry(nonsilence_ids, bakis) if nonsilence_ids else "") + entry(silence_ids, sil)
    return "<Topology>\n" + body + "</Topology>\n"


def _read_symbols(path: Path) -> dict[str, int]:
    if not path.is_file():
        raise DataDirError(f"{path}: not found")
    table: dict[str, int] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if len(fields) != 2 or not (fields[1].isascii() and fields[1].isdigit()):
            raise DataDirError(f"{path}:{lineno}: expected 'symbol id', got {line!r}")
        table[fields[0]] = int(fields[1])
    return table


def _write_symbols(path: Path, symbols: Sequence[str]) -> None:
    path.write_text("".join(f"{s} {i}\n" for i, s in enumerate(symbols)))


def _write_rows(stem: Path, rows: Sequence[Sequence[str]], ids: Mapping[str, int], *,
                prefix: str = "", csl: bool = False) -> None:
    """``<stem>.txt``, a row of symbols per line after ``prefix``, and ``<stem>.int``, their
    ids; with ``csl``, ``<stem>.csl`` too: a one-symbol-a-row list's ids joined by ``:``."""
    def lines(fmt: Callable[[str], str]) -> str:
        return "".join(prefix + " ".join(fmt(s) for s in row) + "\n" for row in rows)
    Path(f"{stem}.txt").write_text(lines(str))
    Path(f"{stem}.int").write_text(lines(lambda s: str(ids[s])))
    if csl:
        Path(f"{stem}.csl").write_text(":".join(str(ids[s]) for row in rows for s in row) + "\n")


def read_fst(path: str | Path) -> kaldifst.StdVectorFst:
    """An OpenFst binary StdVectorFst; a missing or unreadable file is a DataDirError."""
    path = Path(path)
    if not path.is_file():
        raise DataDirError(f"{path}: not found")
    fst = kaldifst.StdVectorFst.read(str(path))
    if fst is None:  # kaldifst returns None (and prints OpenFst's reason) on a bad file
        raise DataDirError(f"{path}: not an OpenFst StdVectorFst")
    return fst


@dataclass
class Lang:
    """A lang dir in memory: symbol tables, lexicon FSTs, topology and (test dirs) G."""

    path: Path
    phone_ids: dict[str, int]           # phones.txt, <eps> and #0/#1 included
    word_ids: dict[str, int]            # words.txt
    silence_phone_ids: list[int]
    nonsilence_phone_ids: list[int]
    disambig_phone_ids: list[int]       # ids of #0, #1 in phones.txt
    disambig_word_id: int               # id of #0 in words.txt
    L: kaldifst.StdVectorFst
    L_disambig: kaldifst.StdVectorFst
    topo_text: str
    G: kaldifst.StdVectorFst | None = None

    @classmethod
    def load(cls, path: str | Path) -> Lang:
        """Read a lang dir written by :func:`make_lang` (plus ``G.fst`` when present)."""
        path = Path(path)
        phones, words = _read_symbols(path / "phones.txt"), _read_symbols(path / "words.txt")

        def ids(name: str) -> list[int]:
            f = path / "phones" / f"{name}.int"
            if not f.is_file():
                raise DataDirError(f"{f}: not found")
            return [int(x) for x in f.read_text().split()]

        if "#0" not in words:
            raise DataDirError(f"{path / 'words.txt'}: no #0 (disambiguation symbol)")
        topo = path / "topo"
        if not topo.is_file():
            raise DataDirError(f"{topo}: not found")
        g = path / "G.fst"
        return cls(path, phones, words, ids("silence"), ids("nonsilence"), ids("disambig"),
                   words["#0"], read_fst(path / "L.fst"), read_fst(path / "L_disambig.fst"),
                   topo.read_text(), read_fst(g) if g.exists() else None)

    @property
    def phones(self) -> list[str]:
        """The real phones (no <eps>, no disambiguation symbols), in id order."""
        real = set(self.silence_phone_ids) | set(self.nonsilence_phone_ids)
        return [p for p, i in sorted(self.phone_ids.items(), key=lambda x: x[1]) if i in real]

    def topology(self) -> khg.HmmTopology:
        """The ``topo`` file parsed by Kaldi."""
        topo = khg.HmmTopology()
        topo.read(self.topo_text)
        return topo

    def word_seq_ids(self, words: Iterable[str]) -> list[int]:
        """Word ids of a transcript; an unknown word is an error (TIMIT has no OOVs)."""
        out = []
        for w in words:
            if w not in self.word_ids or w in _RESERVED or w.startswith("#"):
                raise PaseInputError(f"{self.path / 'words.txt'}: no word {w!r}")
            out.append(self.word_ids[w])
        return out

    def id_to_word(self) -> dict[int, str]:
        """words.txt inverted, to print decoded word ids."""
        return {i: w for w, i in self.word_ids.items()}


def _lexicon_fst(ids: Sequence[int], self_loop: int | None) -> kaldifst.StdVectorFst:
    fst = kaldifst.StdVectorFst()
    s = fst.add_state()
    fst.start = s
    fst.set_final(state=s, weight=0.0)
    for i in ids:
        fst.add_arc(state=s, arc=kaldifst.StdArc(i, i, 0.0, s))
    if self_loop is not None:
        fst.add_arc(state=s, arc=kaldifst.StdArc(self_loop, self_loop, 0.0, s))
    kaldifst.arcsort(fst, sort_type="olabel")
    return fst


def make_lang(phones: Sequence[str], out_dir: str | Path, *, silence: str = "sil") -> Lang:
    """Write a phone-level lang dir (see the module docstring) and return it loaded."""
    phones = list(phones)
    if len(set(phones)) != len(phones):
        raise PaseInputError(f"duplicate phones in {phones}")
    bad = [p for p in phones
           if p in _RESERVED or p.startswith("#") or not p or any(c.isspace() for c in p)]
    if bad:
        raise PaseInputError(f"invalid phone symbol(s) {bad} (reserved, #-prefixed or spaces)")
    if silence not in phones:
        raise PaseInputError(f"the silence phone {silence!r} is not among the phones")
    nonsil = sorted(p for p in phones if p != silence)
    symbols = [EPS, silence, *nonsil]
    out = Path(out_dir)
    (out / "phones").mkdir(parents=True, exist_ok=True)
    _write_symbols(out / "phones.txt", symbols + list(DISAMBIG))
    _write_symbols(out / "words.txt", symbols + ["#0", BOS, EOS])
    ids = {p: i for i, p in enumerate(symbols + list(DISAMBIG))}
    word_ids = {w: i for i, w in enumerate(symbols + ["#0", BOS, EOS])}
    phones_dir = out / "phones"
    for name, group in (("silence", [silence]), ("nonsilence", nonsil), ("disambig", DISAMBIG),
                        ("context_indep", [silence]), ("optional_silence", [silence])):
        _write_rows(phones_dir / name, [[p] for p in group], ids, csl=True)
    _write_rows(phones_dir / "sets", [[p] for p in symbols[1:]], ids)
    _write_rows(phones_dir / "roots", [[p] for p in symbols[1:]], ids, prefix="shared split ")
    _write_rows(phones_dir / "extra_questions", [[silence], nonsil] if nonsil else [[silence]],
                ids)
    (phones_dir / "wdisambig.txt").write_text("#0\n")
    (phones_dir / "wdisambig_phones.int").write_text(f"{ids['#0']}\n")
    (phones_dir / "wdisambig_words.int").write_text(f"{word_ids['#0']}\n")
    lexicon = sorted([(EPS, silence)] + [(p, p) for p in symbols[1:]])
    (phones_dir / "align_lexicon.txt").write_text("".join(f"{w} {w} {p}\n" for w, p in lexicon))
    (phones_dir / "align_lexicon.int").write_text("".join(
        f"{word_ids[w]} {word_ids[w]} {ids[p]}\n" for w, p in lexicon))
    _write_rows(out / "oov", [[silence]], word_ids)
    (out / "topo").write_text(make_topo([ids[silence]], [ids[p] for p in nonsil]))
    real = [ids[p] for p in symbols[1:]]
    _lexicon_fst(real, None).write(str(out / "L.fst"))
    _lexicon_fst(real, ids["#0"]).write(str(out / "L_disambig.fst"))
    for stale in ("G.fst", "G.arpa"):  # when rewriting a test lang dir
        (out / stale).unlink(missing_ok=True)
    return Lang.load(out)


def train_bigram_arpa(transcripts: Iterable[Sequence[str]], *, discount: float = 0.5) -> str:
    """A bigram ARPA LM with absolute discounting, interpolated with the unigram.

    For a history ``h`` seen ``c(h)`` times, followed by ``n(h)`` distinct words:
    ``p(w|h) = max(c(h,w) - D, 0) / c(h) + b(h) p(w)`` with ``b(h) = D n(h) / c(h)`` and the
    maximum-likelihood unigram ``p(w)`` (over the words and ``</s>``). In ARPA terms the seen
    bigrams carry that full probability and ``b(h)`` is the backoff weight, so every history's
    distribution sums to one exactly, whatever the counts. ``<s>`` is a history only (unigram
    log-probability -99, as SRILM writes it). Kaldi's TIMIT recipe builds its phone bigram
    with IRSTLM instead; no LM toolkit is on PyPI, hence this estimator.
    """
    if not 0.0 < discount < 1.0:
        raise PaseInputError(f"discount must be in (0, 1), got {discount}")
    unigrams: Counter[str] = Counter()
    bigrams: Counter[tuple[str, str]] = Counter()
    for n, words in enumerate(transcripts, 1):
        words = list(words)
        reserved = sorted({w for w in words if w in _RESERVED})
        if reserved:
            raise PaseInputError(f"transcript {n} contains reserved symbol(s) {reserved}")
        seq = [BOS, *words, EOS]
        unigrams.update(seq[1:])
        bigrams.update(zip(seq[:-1], seq[1:]))
    if not unigrams:
        raise PaseInputError("no transcripts to train the bigram on")
    total = sum(unigrams.values())
    p1 = {w: c / total for w, c in unigrams.items()}
    history_count: Counter[str] = Counter()
    followers: Counter[str] = Counter()
    for (h, _), c in bigrams.items():
        history_count[h] += c
        followers[h] += 1
    backoff = {h: discount * followers[h] / c for h, c in history_count.items()}
    vocab = sorted(unigrams)
    lines = ["\\data\\", f"ngram 1={len(vocab) + 1}", f"ngram 2={len(bigrams)}", "", "\\1-grams:",
             f"-99\t{BOS}\t{math.log10(backoff[BOS]):.7f}"]
    for w in vocab:
        bo = f"\t{math.log10(backoff[w]):.7f}" if w in backoff else ""
        lines.append(f"{math.log10(p1[w]):.7f}\t{w}{bo}")
    lines += ["", "\\2-grams:"]
    for (h, w), c in sorted(bigrams.items()):
        p = (c - discount) / history_count[h] + backoff[h] * p1[w]
        lines.append(f"{math.log10(p):.7f}\t{h} {w}")
    lines += ["", "\\end\\", ""]
    return "\n".join(lines)


def _arpa_unigrams(arpa_text: str) -> list[str]:
    """The words of an ARPA file's ``\\1-grams:`` section."""
    words, in_unigrams = [], False
    for line in arpa_text.splitlines():
        line = line.strip()
        if line.startswith("\\"):
            in_unigrams = line == "\\1-grams:"
        elif in_unigrams and line:
            fields = line.split()
            if len(fields) < 2:
                raise PaseInputError(f"ARPA unigram line {line!r} has no word")
            words.append(fields[1])
    return words


def make_G(lang: Lang, arpa_text: str, out_dir: str | Path) -> Lang:
    """Copy ``lang`` to ``out_dir`` and add ``G.arpa`` and ``G.fst`` (Kaldi's format_lm step)."""
    out = Path(out_dir)
    if out.resolve() != lang.path.resolve():
        shutil.copytree(lang.path, out, dirs_exist_ok=True)
    arpa = out / "G.arpa"
    arpa.write_text(arpa_text)
    words = _arpa_unigrams(arpa_text)
    unknown = sorted(w for w in words if w not in lang.word_ids)
    if unknown:  # kaldilm would only warn and drop their n-grams
        raise PaseInputError(f"{arpa}: word(s) not in {lang.path / 'words.txt'}: {unknown[:5]}")
    text = kaldilm.arpa2fst(input_arpa=str(arpa), disambig_symbol="#0",
                            read_symbol_table=str(out / "words.txt"))
    g = kaldifst.compile(s=text, acceptor=False)
    kaldifst.arcsort(g, sort_type="ilabel")
    g.write(str(out / "G.fst"))
    return Lang.load(out)
