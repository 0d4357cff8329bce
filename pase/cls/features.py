"""What the utterance classifiers read: frame features (ark/scp) and utterance labels (utt2label).

PASE features and the MFCC / fbank baselines all come from pase-extract (--feats_type), whose
output data dir carries utt2label, so the classifier reads every feature type the same way.
Labels live in `utt2label` ("utt label" lines) next to the data dir files.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import kaldiio
import numpy as np

from pase.io import DataDirError, PaseInputError, read_kaldi_map

log = logging.getLogger(__name__)

LABELS = "utt2label"
_MAX_SHOWN = 5


class LabelError(PaseInputError):
    """Labels missing, unusable for training, or inconsistent with the classes."""


def few(items: Iterable[str]) -> str:
    items = list(items)
    shown = ", ".join(repr(i) for i in items[:_MAX_SHOWN])
    return shown + (", ..." if len(items) > _MAX_SHOWN else "")


def read_labels(data_dir: Path, utts: Iterable[str]) -> dict[str, str]:
    """Labels of `utts` from data_dir/utt2label; an utterance without one is an error naming it."""
    path = data_dir / LABELS
    if not path.is_file():
        raise LabelError(f"{path}: not found; local/data.sh must write one 'utt label' line per utterance")
    labels = read_kaldi_map(path, n_fields=2)
    utts = list(utts)
    missing = [u for u in utts if u not in labels]
    if missing:
        raise LabelError(f"{path}: no label for {len(missing)} of {len(utts)} utterance(s): {few(missing)}")
    extra = len(labels) - len(utts)
    if extra > 0:
        log.warning("%s: %d labelled utterance(s) have no features and are ignored", path, extra)
    return {u: labels[u] for u in utts}


def load_features(data_dir: Path) -> dict[str, np.ndarray]:
    """Every matrix of data_dir/feats.scp, in scp order."""
    scp = data_dir / "feats.scp"
    if not scp.is_file():
        raise DataDirError(f"{scp}: not found; make features with pase-extract")
    feats = {u: np.array(m, dtype=np.float32) for u, m in kaldiio.load_scp(str(scp)).items()}
    if not feats:
        raise DataDirError(f"{scp}: empty")
    dims = {m.shape[1] for m in feats.values()}
    if len(dims) != 1:
        raise DataDirError(f"{scp}: matrices of different dimensions {sorted(dims)}")
    return feats


def read_classes(path: Path) -> list[str]:
    """A class inventory file: one label per line."""
    try:
        lines = path.read_text(encoding="utf-8").split()
    except FileNotFoundError:
        raise LabelError(f"{path}: classes file not found") from None
    if len(set(lines)) != len(lines) or not lines:
        raise LabelError(f"{path}: expected one distinct label per line")
    return lines


def class_inventory(train_labels: Mapping[str, str], train_where: Path, classes: list[str] | None = None,
                    other: Mapping[Path, Mapping[str, str]] | None = None) -> list[str]:
    """The classes the model predicts: `classes` or the training labels, every one with training data.

    A class without a single training example (listed in `classes`, or seen only in a set of
    `other`, e.g. dev) cannot be learnt: that is an error, naming the classes and where they come
    from, since it means the split or the label inventory is wrong.
    """
    seen = sorted(set(train_labels.values()))
    inventory = seen if classes is None else classes
    unknown = sorted(set(seen) - set(inventory))
    if unknown:
        raise LabelError(f"{train_where}/{LABELS}: label(s) {few(unknown)} are not in the class list")
    for where, labels in (other or {}).items():
        outside = sorted(set(labels.values()) - set(inventory))
        if outside:
            raise LabelError(f"class(es) {few(outside)} of {where}/{LABELS} have no training examples in "
                             f"{train_where}/{LABELS}; fix the split so every class is in training")
    if len(inventory) < 2:
        raise LabelError(f"{train_where}/{LABELS}: a classifier needs two classes or more, got {few(inventory)}")
    empty = sorted(set(inventory) - set(seen))
    if empty:
        raise LabelError(f"class(es) {few(empty)} have no training examples in {train_where}/{LABELS}; "
                         "fix the split (or the class list) so every class is in training")
    return list(inventory)
