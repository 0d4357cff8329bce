"""One-call loading of a trained encoder: `pase.load(checkpoint_or_experiment_dir)`.

A checkpoint is only weights (the original's raw state_dict format), so the encoder config has to
come from somewhere: the caller, the `train.yaml` pase-train writes next to its checkpoints, or,
for a bare original checkpoint, the shipped config its keys name. Paths only: nothing is fetched.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
import yaml

from pase.errors import PaseError
from pase.models.checkpoint import read_state_dict
from pase.models.frontend import WaveFe, wf_builder

PASE_PLUS_CFG = "cfg/frontend/PASE+.cfg"
PASE_CFG = "cfg/frontend/PASE.cfg"
_EPOCH = re.compile(r"FE_e(\d+)\.ckpt")


def newest_checkpoint(exp_dir: Path) -> Path:
    """The FE_e<N>.ckpt with the largest N (by number: e10 is newer than e9)."""
    found = [(int(m.group(1)), p) for p in exp_dir.iterdir() if (m := _EPOCH.fullmatch(p.name))]
    if not found:
        raise PaseError(f"{exp_dir}: no encoder checkpoint (FE_e<N>.ckpt) in this directory")
    return max(found)[1]


def trained_config(exp_dir: Path) -> dict[str, Any] | None:
    """The encoder config pase-train recorded in exp_dir/train.yaml (run.fe_cfg), if any."""
    path = exp_dir / "train.yaml"
    if not path.is_file():
        return None
    try:
        cfg = (yaml.safe_load(path.read_text()) or {}).get("run", {}).get("fe_cfg")
    except (yaml.YAMLError, AttributeError) as e:
        raise PaseError(f"{path}: not a pase-train config ({e})") from e
    if not isinstance(cfg, dict):
        raise PaseError(f"{path}: has no run.fe_cfg mapping (the encoder config pase-train records)")
    return cfg


def _mismatch(state: dict[str, torch.Tensor], model: WaveFe) -> str | None:
    """A one-line summary of how `state` does not fit `model`, or None when it fits exactly."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if not (missing or unexpected or wrong):
        return None
    counts = ", ".join(f"{len(keys)} {what} (e.g. {keys[0]})" for what, keys in
                       (("missing", missing), ("unexpected", unexpected), ("wrongly shaped", wrong)) if keys)
    w = state.get("W.weight")
    kind = "not a PASE encoder" if w is None else (
        f"{'PASE+' if any(k.startswith('rnn.') for k in state) else 'PASE'}-like, emb_dim {w.shape[0]}")
    return f"{counts} keys; the checkpoint is {kind}, the config builds emb_dim {model.emb_dim}"


def load(source: str | Path, device: str | torch.device = "cpu",
         fe_cfg: str | Path | dict[str, Any] | None = None) -> WaveFe:
    """An eval-mode encoder with the weights of `source`, on `device`.

    source: an FE_e<N>.ckpt file, or an experiment dir (its newest FE_e<N>.ckpt). The config is
    `fe_cfg` when given (a path or a dict), else the train.yaml of the checkpoint's directory,
    else the shipped PASE+ or PASE config, chosen by whether the checkpoint has a QRNN.
    Raises PaseError (one line) for a missing path, a dir without checkpoints, or a checkpoint
    that does not fit the config.
    """
    path = Path(source)
    if not path.exists():
        raise PaseError(f"{path}: no such checkpoint file or experiment directory")
    ckpt = newest_checkpoint(path) if path.is_dir() else path
    try:
        state = read_state_dict(ckpt)
    except PaseError as e:
        raise PaseError(str(e).splitlines()[0]) from e
    cfg = fe_cfg if fe_cfg is not None else trained_config(ckpt.parent)
    where = "the given fe_cfg" if fe_cfg is not None else f"{ckpt.parent / 'train.yaml'}"
    if cfg is None:
        cfg = PASE_PLUS_CFG if any(k.startswith("rnn.") for k in state) else PASE_CFG
        where = f"the shipped {cfg}"
    encoder = wf_builder(cfg)
    problem = _mismatch(state, encoder)
    if problem:
        raise PaseError(f"{ckpt} does not fit {where}: {problem}; pass fe_cfg=<the config it was trained with>")
    encoder.load_state_dict(state)
    return encoder.eval().to(device)
