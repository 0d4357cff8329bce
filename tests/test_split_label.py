"""The per-label split of classification data (pase-split-data --by label)."""
from __future__ import annotations

import pytest

from conftest import make_data_dir
from pase.bin.split_data import main as split_main
from pase.data.split import holdout, split_by_label
from pase.io import DataDirError, read_kaldi_map

LABELS = {**{f"a{i}": "a" for i in range(10)}, "b0": "b", "c0": "c", "c1": "c"}


def test_holdout_spreads_per_class_and_keeps_training_data():
    utts = list(LABELS)
    assert holdout(utts, LABELS, 0.2) == ["a4", "a9", "c1"]  # b's only utterance stays; c keeps one
    assert holdout(utts, LABELS, 0.0) == []
    assert holdout(utts, LABELS, 1.0) == [f"a{i}" for i in range(1, 10)] + ["c1"]  # never a whole class


def test_fractions_and_lists():
    sets = split_by_label(LABELS, test_fraction=0.2, dev_fraction=0.2)
    assert sets["test"] == ["a4", "a9", "c1"] and sets["dev"] == ["a3", "a8"]
    assert sorted(sets["train"] + sets["dev"] + sets["test"]) == sorted(LABELS)
    # A train and a test list without a dev list: dev comes from what neither holds (the awk
    # split this replaces always failed here, carving dev from the rest and overwriting train).
    sets = split_by_label(LABELS, dev_fraction=0.5, lists={"train": ["a0", "a1", "a2", "b0", "c0"],
                                                           "test": ["a9", "c1"]})
    assert sets == {"train": ["a0", "a1", "a2", "b0", "c0"], "dev": ["a4", "a6", "a8"], "test": ["a9", "c1"]}


@pytest.mark.parametrize("lists, message", [
    ({"train": ["a0", "b0", "c0"], "dev": ["a0"]}, "both the train and the dev set"),
    ({"test": ["zz"]}, "not in utt2label: zz"),
    ({"train": ["a0", "c0"], "dev": ["a2"], "test": ["a1"]}, "without training examples: b"),
    ({"dev": [], "test": ["a1"]}, "the dev set is empty"),
])
def test_bad_splits_are_errors(lists, message):
    with pytest.raises(DataDirError, match=message):
        split_by_label(LABELS, dev_fraction=0.0, lists=lists)


def test_cli_writes_three_dirs_with_labels(tmp_path):
    data = make_data_dir(tmp_path / "c", speakers=3, utts=4, seconds=(0.2, 0.3))
    (data / "utt2label").write_text("".join(f"spk{s}-utt{u} spk{s}\n" for s in range(3) for u in range(4)))
    (tmp_path / "test.list").write_text("spk0-utt0\nspk1-utt0\nspk2-utt0\n")
    outs = [tmp_path / n for n in ("train", "dev", "test")]
    split_main([str(data), *map(str, outs), "--by", "label", "--test_list", str(tmp_path / "test.list"),
                "--dev_fraction", "0.3"])
    got = [read_kaldi_map(d / "utt2label") for d in outs]
    assert list(got[2]) == ["spk0-utt0", "spk1-utt0", "spk2-utt0"]
    assert list(got[1]) == ["spk0-utt3", "spk1-utt3", "spk2-utt3"]  # 1 of the 3 left per class
    assert all(read_kaldi_map(d / "utt2spk").keys() == g.keys() for d, g in zip(outs, got))
    with pytest.raises(Exception, match="three data dirs"):
        split_main([str(data), str(outs[0]), str(outs[1]), "--by", "label"])
