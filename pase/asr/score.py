"""Phone error rate on TIMIT's 39-phone set, Kaldi-style (an LMWT sweep, RESULTS lines).

Phone map file (``conf/phones.60-48-39.map``): one line per TIMIT phone, ``timit61 phone48
phone39`` separated by whitespace; a line with the TIMIT phone alone (``q``) means the phone is
deleted. Transcripts and hypotheses are in the 48-phone set and are folded to 39 before
scoring, so ``cl``, ``vcl``, ``epi`` and ``sil`` all become ``sil``.

Two ways to score silence, both reported by the recipe:

* standard (``lenient=False``, Kaldi's local/score_basic.sh): ``sil`` is a phone like any
  other; after the 39-fold, runs of consecutive ``sil`` (e.g. ``sil`` from a closure next to
  a pause) are merged into one in both reference and hypothesis, then everything is scored;
* lenient (``lenient=True``, what the original PASE+ result used through sclite with optional
  silence): every ``sil`` is removed from both reference and hypothesis, so silence can be
  neither missed nor inserted and only the other 38 phones count.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import kaldialign

from pase.io import PaseInputError
from pase.prep.timit import load_phone_map, standard_phone_map

__all__ = ["ScoreResult", "load_phone_map", "parse_lmwt", "per", "results_line", "sweep", "to39",
           "write_scores"]

SILENCE = "sil"


def to39(seq48: Sequence[str], map48to39: Mapping[str, str] | None = None) -> list[str]:
    """Fold a 48-phone sequence to the 39-phone set (the standard map unless one is given)."""
    if map48to39 is None:
        map48to39 = standard_phone_map()[1]
    try:
        return [map48to39[p] for p in seq48]
    except KeyError as exc:
        raise PaseInputError(
            f"phone {exc.args[0]!r} is not in the 48-phone set of the map") from None


def parse_lmwt(spec: str) -> list[float]:
    """LM weights to sweep: '1:10' (integers, inclusive) or a space/comma separated list."""
    try:
        if ":" in spec:
            a, b = spec.split(":")
            weights = [float(w) for w in range(int(a), int(b) + 1)]
        else:
            weights = [float(w) for w in spec.replace(",", " ").split()]
    except ValueError:
        weights = []
    if not weights or not all(math.isfinite(w) for w in weights):  # checked before any decoding
        raise PaseInputError(f"LM weights {spec!r}: expected A:B (integers, A <= B) or a list of numbers")
    return weights


def _prepare(seq48: Sequence[str], map48to39: Mapping[str, str] | None, lenient: bool) -> list[str]:
    out: list[str] = []
    for p in to39(seq48, map48to39):
        if p == SILENCE and (lenient or (out and out[-1] == SILENCE)):
            continue
        out.append(p)
    return out


@dataclass(frozen=True)
class ScoreResult:
    """Totals over a set; ``del_`` is deletions (``del`` is a Python keyword)."""

    ins: int
    del_: int
    sub: int
    ref_len: int
    num_utts: int
    sentence_errors: int

    @property
    def errors(self) -> int:
        return self.ins + self.del_ + self.sub

    @property
    def per(self) -> float:
        """Phone error rate in percent (0 for an empty reference)."""
        return 100.0 * self.errors / self.ref_len if self.ref_len else 0.0


def per(refs: Mapping[str, Sequence[str]], hyps: Mapping[str, Sequence[str]], *,
        lenient: bool, map48to39: Mapping[str, str] | None = None) -> ScoreResult:
    """Score 48-phone hypotheses against 48-phone references on the 39-phone set.

    Every reference utterance is scored; one without a hypothesis counts as an empty
    hypothesis (all deletions), so a failed decode cannot flatter the result. A hypothesis for
    an utterance not in ``refs`` is an error.
    """
    extra = sorted(set(hyps) - set(refs))
    if extra:
        raise PaseInputError(f"{len(extra)} hypothesis utterance(s) without a reference: "
                             + ", ".join(extra[:5]))
    ins = dele = sub = ref_len = sent_err = 0
    for utt, ref48 in refs.items():
        ref = _prepare(ref48, map48to39, lenient)
        hyp = _prepare(hyps.get(utt, ()), map48to39, lenient)
        d = kaldialign.edit_distance(ref, hyp)
        ins, dele, sub = ins + d["ins"], dele + d["del"], sub + d["sub"]
        ref_len += len(ref)
        sent_err += d["total"] > 0
    return ScoreResult(ins, dele, sub, ref_len, len(refs), sent_err)


def sweep(refs: Mapping[str, Sequence[str]],
          hyps_by_lmwt: Mapping[float, Mapping[str, Sequence[str]]], *, lenient: bool = False,
          map48to39: Mapping[str, str] | None = None) -> tuple[float, dict[float, ScoreResult]]:
    """Score every LM weight; the best is the lowest PER (the smallest LMWT on ties)."""
    if not hyps_by_lmwt:
        raise PaseInputError("no LM weights to score")
    results = {lmwt: per(refs, hyps, lenient=lenient, map48to39=map48to39)
               for lmwt, hyps in sorted(hyps_by_lmwt.items())}
    best = min(results, key=lambda lmwt: (results[lmwt].errors, lmwt))
    return best, results


def results_line(result: ScoreResult, label: str) -> str:
    """Kaldi's RESULTS style line.

    E.g. ``%PER 18.50 [ 1335 / 7215, 150 ins, 450 del, 735 sub ] exp/mlp/decode_test/score_5``.
    """
    return (f"%PER {result.per:.2f} [ {result.errors} / {result.ref_len}, {result.ins} ins, "
            f"{result.del_} del, {result.sub} sub ] {label}")


def write_scores(out: Path, refs: Mapping[str, Sequence[str]],
                 hyps_by_lmwt: Mapping[float, Mapping[str, Sequence[str]]], *,
                 rtf: float) -> list[str]:
    """Score every LM weight both ways into decode dir ``out``, Kaldi's layout:
    ``score_<LMWT>/hyp.txt``, ``scores.json`` (totals per LM weight and scoring, the best LM
    weights, the decoding real-time factor) and ``best_per`` (the best standard and lenient
    RESULTS lines, also returned)."""
    scores: dict[str, object] = {}
    lines = []
    for lenient in (False, True):
        best, results = sweep(refs, hyps_by_lmwt, lenient=lenient)
        name = "lenient" if lenient else "standard"
        table: dict[str, object] = {str(w): {"per": r.per, "ins": r.ins, "del": r.del_, "sub": r.sub,
                                             "ref_len": r.ref_len} for w, r in results.items()}
        table["best_lmwt"] = best
        scores[name] = table
        lines.append(results_line(results[best], f"{out}/score_{best:g} ({name} scoring)"))
    for w, hyps in hyps_by_lmwt.items():
        d = out / f"score_{w:g}"
        d.mkdir(exist_ok=True)
        (d / "hyp.txt").write_text("".join(f"{u} {' '.join(h)}\n" for u, h in sorted(hyps.items())))
    scores["decode_rtf"] = rtf
    (out / "scores.json").write_text(json.dumps(scores, indent=1))
    (out / "best_per").write_text("\n".join(lines) + "\n")
    return lines
