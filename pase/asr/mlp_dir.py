"""pase-train-mlp's experiment dir: the inputs (features, or waveforms through an encoder), the
GMM's pdf alignments, training, and the model files (model_io) with history.json and, when
encoder layers are mixed, layer_weights (the learnt weights, "layer weight" lines).
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pase.asr.align import read_alignments
from pase.asr.features import load_features
from pase.asr.finetune import EncoderHybrid, FinetuneOptions, load_waveforms, train_finetune
from pase.asr.mlp import FrameSet, HybridMLP, MlpOptions, log_priors, train_mlp
from pase.asr.model_io import save_hybrid_model
from pase.errors import PaseError
from pase.io import DataDir
from pase.models.downstream import LAYER_WEIGHTS, EncoderSource, write_layer_weights
from pase.models.frontend import wf_builder

log = logging.getLogger(__name__)


def aligned(feats: dict[str, np.ndarray], ali: dict[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
    """Utterances with both features and an alignment (the GMM may fail to align a few)."""
    keep = {u: f for u, f in feats.items() if u in ali}
    if not keep:
        raise PaseError(f"{what}: no utterance has both features and an alignment (different ids?)")
    if len(keep) < len(feats):
        log.warning("%s: %d of %d utterances have no alignment and are left out", what,
                    len(feats) - len(keep), len(feats))
    return keep


def _train_on_waveforms(train: Path, dev: Path, train_ali: dict[str, np.ndarray], dev_ali: dict[str, np.ndarray],
                        num_pdfs: int, opts: MlpOptions, encoder: EncoderSource, ft: FinetuneOptions, out: Path,
                        device: torch.device) -> tuple[EncoderHybrid, list[dict], list[str], dict[str, Any]]:
    """The model, its history, the training utterances and mlp.yaml's "finetune" section."""
    if encoder.ckpt is None:
        raise PaseError("--finetune and --freeze_encoder need --fe_ckpt (the pretrained encoder)")
    fe = wf_builder(encoder.cfg)
    fe.load_pretrained(encoder.ckpt, load_last=True)
    train_w, dev_w = load_waveforms(DataDir.load(train), train_ali), load_waveforms(DataDir.load(dev), dev_ali)
    mode = "frozen encoder" if encoder.front.freeze_encoder else "fine-tuning"
    log.info("%s, %s from %s (layers %s): %d train / %d dev utterances, %d pdfs, device %s", out, mode, encoder.ckpt,
             encoder.front.encoder_layers, len(train_w), len(dev_w), num_pdfs, device)
    model, history = train_finetune(fe, train_w, train_ali, dev_w, dev_ali, num_pdfs, opts, ft, device,
                                    encoder.front)
    section = {"pase_cfg": fe.config, "encoder_lr": ft.encoder_lr, "chunk_frames": ft.chunk_frames,
               "steps_per_epoch": ft.steps_per_epoch, "layer_weights_lr": ft.layer_weights_lr}
    return model, history, sorted(train_w), section


def train_mlp_dir(train: Path, dev: Path, gmm: Path, out: Path, opts: MlpOptions, device: torch.device,
                  dev_ali_file: Path | None = None, encoder: EncoderSource | None = None,
                  ft: FinetuneOptions | None = None) -> list[dict]:
    """Train the hybrid MLP on `train`'s features (or waveforms, given `encoder`, trained as `ft`
    says) and the pdf alignments of `gmm`, write the model dir `out`; returns the per-epoch history."""
    num_pdfs = int((gmm / "num_pdfs").read_text())
    train_ali = read_alignments(gmm / "pdf_ali.ark")
    dev_ali = read_alignments(dev_ali_file or gmm / "pdf_ali_dev.ark")
    start = time.time()
    model: HybridMLP | EncoderHybrid
    if encoder is not None:
        model, history, utts, finetune = _train_on_waveforms(train, dev, train_ali, dev_ali, num_pdfs, opts,
                                                             encoder, ft or FinetuneOptions(), out, device)
        frames, input_dim = sum(len(train_ali[u]) for u in utts), model.mlp.hidden[0].in_features
    else:
        train_set = FrameSet(aligned(load_features(train), train_ali, str(train)), train_ali, opts.context)
        dev_set = FrameSet(aligned(load_features(dev), dev_ali, str(dev)), dev_ali, opts.context)
        log.info("training %s: %d train / %d dev frames, input %d, %d pdfs, device %s", out,
                 len(train_set), len(dev_set), train_set.input_dim, num_pdfs, device)
        model, history = train_mlp(train_set, dev_set, num_pdfs, opts, device)
        utts, frames, finetune, input_dim = train_set.utts, len(train_set), None, train_set.input_dim
    seconds = time.time() - start
    frames_per_s = frames * len(history) / max(seconds, 1e-9)
    save_hybrid_model(out, model, log_priors((train_ali[u] for u in utts), num_pdfs), opts, input_dim,
                      num_pdfs, {"train_frames": frames, "train_seconds": round(seconds, 1),
                                 "train_frames_per_second": round(frames_per_s, 1)}, finetune)
    (out / "history.json").write_text(json.dumps(history, indent=1))
    weights = model.layer_weights() if isinstance(model, EncoderHybrid) else {}
    write_layer_weights(out / LAYER_WEIGHTS, weights)
    if weights:
        log.info("learnt layer weights: %s", ", ".join(f"{k} {w:.3f}" for k, w in weights.items()))
    best = min(h["dev_frame_error"] for h in history)
    log.info("done in %.1f s (%.0f frames/s): best dev frame error %.2f%%", seconds, frames_per_s, 100 * best)
    return history
