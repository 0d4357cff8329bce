"""The original PASE's data-cfg JSON (`{split: {"data": [{"filename", "spk"}, ...]}}`, written by
its `unsupervised_data_cfg_librispeech.py`) read as a DataDir, so the seed's commands run as given."""
from __future__ import annotations

import json
from pathlib import Path

from pase.io.datadir import DataDir, Utterance
from pase.io.errors import DataDirError


def load_data_cfg(cfg_path: Path, root: Path | None, split: str) -> DataDir:
    """The `split` ('train', 'valid', 'test') of a data cfg, with file names under `root`."""
    if root is None:
        raise DataDirError("--data_cfg needs --data_root (the folder its file names are relative to)")
    try:
        entries = json.loads(Path(cfg_path).read_text())[split]["data"]
        utts = [Utterance(Path(e["filename"]).stem, str(Path(root) / e["filename"]), None, None, str(e["spk"]))
                for e in entries]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise DataDirError(f"{cfg_path}: not an original data cfg with a {split!r} split ({e})") from e
    return DataDir(Path(cfg_path), sorted(utts, key=lambda u: u.utt_id.encode()))


def load_train_data(data_dir: Path | None, data_cfg: Path | None, data_root: Path | None) -> DataDir:
    """The training data of pase-train and pase-compute-stats: --train_data (a Kaldi data dir),
    else the train split of --data_cfg under --data_root (the seed's commands)."""
    if data_dir is not None:
        return DataDir.load(data_dir)
    if data_cfg is None:
        raise DataDirError("give --train_data (a Kaldi data dir) or --data_cfg with --data_root")
    return load_data_cfg(data_cfg, data_root, "train")


def load_valid_data(data_dir: Path | None, data_cfg: Path | None, data_root: Path | None) -> DataDir:
    """pase-train's validation data: --valid_data, else the valid split of --data_cfg."""
    if data_dir is not None:
        return DataDir.load(data_dir)
    if data_cfg is None:
        raise DataDirError("--do_eval needs --valid_data (or --data_cfg with a 'valid' split)")
    return load_data_cfg(data_cfg, data_root, "valid")
