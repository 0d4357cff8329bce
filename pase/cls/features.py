"""What the utterance classifiers read: frame features (ark/scp) and utterance labels (utt2label).

The MFCC / fbank baselines are computed with torchaudio's Kaldi-compatible functions and written
in exactly the layout pase-extract writes (dump/<set>/feats.{ark,scp}, cmvn.{ark,scp}, and a data
dir with feats.scp, cmvn.scp, utt2num_frames), so the classifier reads PASE features and the
baselines the same way. Labels live in `utt2label` ("utt label" lines) next to the data dir files.
"""
from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import kaldiio
import numpy as np
import torch
import torchaudio.compliance.kaldi as kaldi

from pase.config import ConfigError, check_keys
from pase.extraction import absolute, finalize_dump
from pase.io import (ArkScpWriter, AudioError, DataDir, DataDirError, PaseInputError, read_audio,
                     read_kaldi_map, write_kaldi_map)

log = logging.getLogger(__name__)

LABELS = "utt2label"
FEATURE_FUNCTIONS = {"mfcc": kaldi.mfcc, "fbank": kaldi.fbank}
_MAX_SHOWN = 5


class LabelError(PaseInputError):
    """Labels missing, unusable for training, or inconsistent with the classes."""


def few(items: Iterable[str]) -> str:
    items = list(items)
    shown = ", ".join(repr(i) for i in items[:_MAX_SHOWN])
    return shown + (", ..." if len(items) > _MAX_SHOWN else "")


def feature_options(kind: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Check `options` against the torchaudio function's own keyword arguments (Kaldi's names)."""
    if kind not in FEATURE_FUNCTIONS:
        raise ConfigError(f"unknown feature type {kind!r}; choose one of {', '.join(FEATURE_FUNCTIONS)}")
    allowed = set(inspect.signature(FEATURE_FUNCTIONS[kind]).parameters) - {"waveform", "sample_frequency"}
    check_keys(dict(options), allowed, f"{kind} options")
    return dict(options)


def kaldi_features(wav: np.ndarray, kind: str, options: Mapping[str, Any], sample_rate: int) -> np.ndarray:
    """(frames, dims) float32 features of a float waveform in [-1, 1].

    Kaldi reads 16-bit samples unscaled, so the waveform is scaled to that range first: the log
    energies (and energy_floor) then mean what they mean in Kaldi.
    """
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32) * 32768.0).unsqueeze(0)
    return FEATURE_FUNCTIONS[kind](x, sample_frequency=sample_rate, **options).numpy()


def dump_features(data: DataDir, kind: str, options: Mapping[str, Any], dump_dir: Path, out_data_dir: Path,
                  *, sample_rate: int = 16000, skip_bad: bool = False) -> int:
    """Write `kind` features of every utterance as pase-extract does; returns how many were written.

    utt2label, when the input data dir has one, is copied for the utterances that got features.
    """
    options = feature_options(kind, options)
    window = int(sample_rate * options.get("frame_length", 25.0) / 1000)
    dump_dir.mkdir(parents=True, exist_ok=True)
    skipped: dict[str, str] = {}
    ark, scp = dump_dir / "feats.ark", dump_dir / "feats.scp"
    with ArkScpWriter(absolute(ark), scp) as writer:
        for utt in data.utterances:
            try:
                wav = read_audio(utt.source, sample_rate=sample_rate, start=utt.start, end=utt.end,
                                 name=utt.utt_id)
                if len(wav) < window:  # torchaudio would fail with a bare assertion
                    raise AudioError(f"utterance {utt.utt_id!r} ({utt.source}): {len(wav)} samples, "
                                     f"shorter than one {window}-sample frame")
            except AudioError as e:
                if not skip_bad:
                    raise
                log.warning("skipping %s", e)
                skipped[utt.utt_id] = str(e)
                continue
            writer.write(utt.utt_id, kaldi_features(wav, kind, options, sample_rate))
    finalize_dump(data, dump_dir, out_data_dir, [scp], skipped)
    if (data.path / LABELS).exists():
        kept = read_kaldi_map(out_data_dir / "feats.scp")
        write_kaldi_map(out_data_dir / LABELS,
                        {u: v for u, v in read_kaldi_map(data.path / LABELS, n_fields=2).items() if u in kept})
    return writer.num_written


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
        raise DataDirError(f"{scp}: not found; make features with pase-extract or pase-cls-features")
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
