"""The hybrid acoustic model's directory, written by pase-train-mlp and read by pase-decode.

<dir>/final.pt holds the state dict (the MLP, or for a model reading waveforms encoder, layer
weights and MLP together), log_priors.npy the pdf log-priors of the training alignments, and
mlp.yaml the MlpOptions under "options", input_dim, num_pdfs, training statistics and, for a model
reading waveforms, "finetune" (the encoder's "pase_cfg", the FrontOptions fields; files from
before frozen encoders have none: fine-tuned, final output) and the learnt "layer_weights".
Kept in one pair of functions so the format is defined once.
"""
from __future__ import annotations

import pickle
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from pase.asr.finetune import EncoderHybrid
from pase.asr.mlp import HybridMLP, MlpOptions, load_priors
from pase.errors import PaseError
from pase.io import atomic_write
from pase.models.downstream import FrontOptions
from pase.models.frontend import wf_builder


@dataclass
class HybridModel:
    """A loaded hybrid model: the network (weights loaded, on the CPU), its log-priors and mlp.yaml."""

    model: HybridMLP | EncoderHybrid
    priors: np.ndarray
    info: dict[str, Any]

    @property
    def num_pdfs(self) -> int:
        return int(self.info["num_pdfs"])

    @property
    def finetuned(self) -> bool:
        """True when the model reads waveforms (encoder and MLP), False when it reads features."""
        return "finetune" in self.info

    @property
    def options(self) -> MlpOptions:
        return MlpOptions(**self.info["options"])


def save_hybrid_model(out: Path, model: nn.Module, priors: np.ndarray, opts: MlpOptions, input_dim: int,
                      num_pdfs: int, stats: dict[str, float], finetune: dict[str, Any] | None = None) -> None:
    """Write final.pt, log_priors.npy and mlp.yaml under `out`; `stats` (train_frames, ...) follow
    input_dim and num_pdfs in mlp.yaml, `finetune` (encoder settings) comes last when given."""
    out.mkdir(parents=True, exist_ok=True)
    info = {"options": asdict(opts), "input_dim": input_dim, "num_pdfs": num_pdfs, **stats}
    if finetune is not None:
        info["finetune"] = {**finetune, **asdict(model.front)} if isinstance(model, EncoderHybrid) else finetune
    if isinstance(model, EncoderHybrid) and model.layer_sum is not None:
        info["layer_weights"] = {k: round(w, 6) for k, w in model.layer_weights().items()}
    # each file whole or not at all, final.pt last: the recipes take final.pt as the stamp of a
    # complete model dir, so a run killed while saving is redone, never half-read
    atomic_write(out / "log_priors.npy", lambda f: np.save(f, priors))
    atomic_write(out / "mlp.yaml", lambda f: f.write(yaml.safe_dump(info, sort_keys=False)), text=True)
    atomic_write(out / "final.pt", lambda f: torch.save(model.state_dict(), f))


def load_hybrid_model(model_dir: Path) -> HybridModel:
    """Read what `save_hybrid_model` wrote; a missing or mismatched file is one PaseError naming it."""
    path = model_dir / "mlp.yaml"
    if not path.is_file():
        raise PaseError(f"{path}: missing ({model_dir} is not a pase-train-mlp dir)")
    info = yaml.safe_load(path.read_text())
    if not isinstance(info, dict) or not {"options", "input_dim", "num_pdfs"} <= info.keys():
        raise PaseError(f"{path}: expected the keys options, input_dim and num_pdfs; rerun pase-train-mlp")
    opts = MlpOptions(**info["options"])
    if "finetune" in info:
        ft = info["finetune"]
        front = FrontOptions(**{f.name: ft[f.name] for f in fields(FrontOptions) if f.name in ft})
        model: HybridMLP | EncoderHybrid = EncoderHybrid(wf_builder(ft["pase_cfg"]), info["num_pdfs"], opts, front)
    else:
        model = HybridMLP(info["input_dim"], info["num_pdfs"], opts.hidden, opts.layers, opts.dropout)
    weights = model_dir / "final.pt"
    try:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except (OSError, EOFError, RuntimeError, pickle.UnpicklingError) as e:  # missing, truncated, or weights of another shape
        raise PaseError(f"{weights}: cannot load the model ({str(e).splitlines()[0]}); "
                        "rerun pase-train-mlp") from e
    return HybridModel(model, load_priors(model_dir / "log_priors.npy", info["num_pdfs"]), info)
