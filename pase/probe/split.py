"""Probe items, labels and the train/test split.

An item is a whole utterance of a data dir, or, with `chop` = K, one of K equal time pieces of
it (`<utt>-pK-i`): that turns a corpus with one utterance per speaker into a speaker probe with
train and test material from different stretches of the same recording.

The test set is fixed (a list, or `test_per_class` items per class drawn with `split_seed`);
each few-shot draw then picks `few` training items per class from the rest, so several draws
give a mean and a spread over the training examples for the same test set.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pase.io import DataDir, DataDirError, PaseInputError, read_kaldi_map

_SHOWN = 5


class ProbeError(PaseInputError):
    """The labels or the split cannot give a probe (missing labels, too few examples per class)."""


def _few(items: Sequence[str]) -> str:
    return ", ".join(repr(i) for i in items[:_SHOWN]) + (", ..." if len(items) > _SHOWN else "")


@dataclass(frozen=True)
class Item:
    """One probe example: utterance `utt` from `start` to `end` (fractions of its length)."""

    item_id: str
    utt: str
    label: str
    start: float = 0.0
    end: float = 1.0


def label_file(data_dir: Path, labels: str) -> Path:
    """`labels` is a file name inside the data dir (utt2spk, utt2label, ...) or a path."""
    inside = data_dir / labels
    return inside if inside.is_file() or not Path(labels).is_file() else Path(labels)


def read_items(data: DataDir, labels: str = "utt2spk", chop: int = 1) -> list[Item]:
    """Every utterance of `data` with its label, cut into `chop` pieces."""
    if chop < 1:
        raise ProbeError(f"chop must be 1 or more, got {chop}")
    path = label_file(Path(data.path), labels)
    if not path.is_file():
        raise ProbeError(f"{path}: label file not found (give --labels utt2spk, utt2label or a file path)")
    try:
        mapping = read_kaldi_map(path, n_fields=2)
    except DataDirError as e:
        raise ProbeError(str(e)) from None
    utts = [u.utt_id for u in data.utterances]
    missing = [u for u in utts if u not in mapping]
    if missing:
        raise ProbeError(f"{path}: no label for {len(missing)} of {len(utts)} utterance(s): {_few(missing)}")
    if chop == 1:
        return [Item(u, u, mapping[u]) for u in utts]
    return [Item(f"{u}-p{chop}-{i}", u, mapping[u], i / chop, (i + 1) / chop)
            for u in utts for i in range(chop)]


def read_test_list(path: Path, items: Sequence[Item]) -> set[str]:
    """Item ids (first field of each line) of a test list; unknown ids are an error."""
    try:
        ids = [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except FileNotFoundError:
        raise ProbeError(f"{path}: test list not found") from None
    known = {it.item_id for it in items}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ProbeError(f"{path}: {len(unknown)} test id(s) not in the data: {_few(unknown)}")
    if not ids:
        raise ProbeError(f"{path}: empty test list")
    return set(ids)


def by_class(items: Sequence[Item]) -> dict[str, list[Item]]:
    out: dict[str, list[Item]] = {}
    for it in items:
        out.setdefault(it.label, []).append(it)
    return dict(sorted(out.items()))


def split_test(items: Sequence[Item], *, few: int, test_per_class: int | None, test_ids: set[str] | None,
               seed: int) -> tuple[list[Item], dict[str, list[Item]]]:
    """(test items, training pool per class). Every class must have `few` training candidates
    (and `test_per_class` test items when the test set is drawn); the ones that do not are named."""
    if few < 1:
        raise ProbeError(f"--few must be 1 or more, got {few}")
    classes = by_class(items)
    if len(classes) < 2:
        raise ProbeError(f"a probe needs two classes or more, got {_few(list(classes))}")
    rng = np.random.default_rng(seed)
    test: list[Item] = []
    pool: dict[str, list[Item]] = {}
    short: list[str] = []
    for label, members in classes.items():
        if test_ids is not None:
            t = [m for m in members if m.item_id in test_ids]
            rest = [m for m in members if m.item_id not in test_ids]
            if len(rest) < few:
                short.append(f"{label} ({len(rest)} training item(s))")
        else:
            need = few + (test_per_class or 0)
            if len(members) < need:
                short.append(f"{label} ({len(members)})")
                continue
            order = rng.permutation(len(members))
            t = [members[i] for i in order[:test_per_class]]
            rest = [members[i] for i in order[test_per_class:]]
        test += t
        pool[label] = rest
    if short:
        what = f"--few {few}" if test_ids is not None else f"--few {few} + --test_per_class {test_per_class}"
        raise ProbeError(f"{len(short)} class(es) have fewer examples than {what}: {_few(short)}")
    if not test:
        raise ProbeError("the test split is empty")
    return test, pool


def draw_train(pool: Mapping[str, Sequence[Item]], few: int, seed: int) -> list[Item]:
    """`few` training items per class, drawn with `seed`."""
    rng = np.random.default_rng(seed)
    out: list[Item] = []
    for label, members in pool.items():
        out += [members[i] for i in sorted(rng.choice(len(members), size=few, replace=False))]
    return out
