"""Loading encoder checkpoints: the original FE_e*.ckpt files (raw state_dicts) and ours.

Loading is all-or-nothing unless the caller asks for a partial load, and always goes through
`torch.load(weights_only=True)`, which cannot execute code from the file.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from pase.errors import PaseError

log = logging.getLogger(__name__)


class CheckpointError(PaseError, ValueError):
    """A checkpoint is unreadable or does not match the model (the message lists the keys)."""


def read_state_dict(path: str | Path) -> "OrderedDict[str, torch.Tensor]":
    """Read a state_dict from a raw state_dict file or a dict holding one under 'state_dict'."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types (pickle, zip, weights_only refusals)
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from e
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]  # the original Saver's {'step', 'state_dict', 'optimizer'} files
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a state_dict (a mapping of names to tensors)")
    state = OrderedDict(obj)
    if state and all(k.startswith("module.") for k in state):  # saved from a DDP-wrapped model
        state = OrderedDict((k[len("module."):], v) for k, v in state.items())
    return state


def _describe(state: Mapping[str, torch.Tensor]) -> str:
    """Name the encoder variant a state_dict belongs to, for error hints."""
    w = state.get("W.weight")
    if w is None:
        return "not a PASE encoder"
    kind = "PASE+" if any(k.startswith("rnn.") for k in state) else "PASE"
    return f"{kind}-like (emb_dim {w.shape[0]}, {'with' if 'denseskips.0.weight' in state else 'no'} dense skips)"


def load_encoder_state(model: nn.Module, path: str | Path, *, load_last: bool = True,
                       verbose: bool = True, partial: bool = False) -> list[str]:
    """Load `path` into `model`; returns the loaded key names.

    load_last=False drops the checkpoint's last two keys before matching, as the original did
    for stripping a classifier head (on an encoder checkpoint that removes norm_out's statistics,
    so the load then fails, exactly as it did originally). Any missing, unexpected or wrongly
    shaped key raises CheckpointError listing them all, unless partial=True, which loads the
    matching keys and logs the rest.
    """
    state = read_state_dict(path)
    if not load_last:
        state = OrderedDict(list(state.items())[:-2])
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in state and state[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
    if wrong:
        problems.append(f"wrongly shaped keys ({len(wrong)}): {'; '.join(wrong)}")
    if problems and not partial:
        hint = (f"\nthe checkpoint is {_describe(state)}; the model is {_describe(own)}: "
                "build the encoder from the config the checkpoint was trained with")
        if not load_last and not unexpected and not wrong:
            hint += "; load_last=False dropped the checkpoint's last two keys, use load_last=True"
        raise CheckpointError(f"{path} does not match the model:\n  " + "\n  ".join(problems) + hint)
    keep = [k for k in own if k in state and state[k].shape == own[k].shape]
    model.load_state_dict({k: state[k] for k in keep}, strict=not problems)
    if problems:
        log.warning("%s: partial load of %d/%d keys; %s", path, len(keep), len(own), "; ".join(problems))
    if verbose:
        log.info("%s: loaded %d/%d model keys from %d checkpoint keys", path, len(keep), len(own), len(state))
    return keep
