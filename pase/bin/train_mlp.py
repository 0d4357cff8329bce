"""pase-train-mlp: the hybrid acoustic model on frozen features and GMM pdf alignments.

    pase-train-mlp --train data/train_pase --dev data/dev_pase --gmm exp/tri --out exp/mlp_pase

--train/--dev are data dirs with feats.scp (pase-extract's output: PASE+ features with
per-speaker CMVN statistics in cmvn.scp, applied as mean normalisation like the original) or
feats.scp files (e.g. the GMM's MFCC cache exp/mono/feats_train.scp, for a baseline). Targets:
<gmm>/pdf_ali.ark and <gmm>/pdf_ali_<dev name>.ark (pase-train-gmm --align_data). Writes
<out>/final.pt (MLP weights), log_priors.npy (from the training alignments), mlp.yaml
(options, input and output sizes) and history.json (per epoch: lr, loss, dev frame error).

--finetune trains the PASE encoder with the MLP from the waveform (pase.asr.finetune): --train and
--dev are then the plain data dirs (wav.scp), the encoder comes from --fe_cfg/--fe_ckpt,
and final.pt holds encoder and MLP. The MLP's options (MlpOptions: hidden, layers, lr, ...) are
options of this command, so --config conf/mlp.yaml sets them.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import fields
from pathlib import Path

import numpy as np

from pase.asr.align import read_alignments
from pase.asr.features import load_features
from pase.asr.finetune import FinetuneOptions, load_waveforms, train_finetune
from pase.asr.mlp import FrameSet, MlpOptions, log_priors, train_mlp
from pase.asr.model_io import save_hybrid_model
from pase.bin.common import (ArgumentParser, add_device_options, add_encoder_options, run_main,
                             setup_device)
from pase.errors import PaseError
from pase.io import DataDir
from pase.models.frontend import wf_builder

log = logging.getLogger("pase-train-mlp")


def aligned(feats: dict[str, np.ndarray], ali: dict[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
    """Utterances with both features and an alignment (the GMM may fail to align a few)."""
    keep = {u: f for u, f in feats.items() if u in ali}
    if not keep:
        raise PaseError(f"{what}: no utterance has both features and an alignment (different ids?)")
    if len(keep) < len(feats):
        log.warning("%s: %d of %d utterances have no alignment and are left out", what,
                    len(feats) - len(keep), len(feats))
    return keep


def build_parser() -> ArgumentParser:
    p = ArgumentParser("pase-train-mlp", __doc__)
    p.add_argument("--train", type=Path, required=True, help="training data dir or feats.scp")
    p.add_argument("--dev", type=Path, required=True, help="dev data dir or feats.scp")
    p.add_argument("--gmm", type=Path, required=True, help="GMM dir with pdf_ali.ark, pdf_ali_<dev>.ark, num_pdfs")
    p.add_argument("--dev_ali", type=Path, default=None, help="dev pdf alignments (default <gmm>/pdf_ali_dev.ark)")
    p.add_argument("--out", type=Path, required=True)
    m = p.add_argument_group("MLP (MlpOptions)")
    for f in fields(MlpOptions):
        m.add_argument(f"--{f.name}", type=type(f.default), default=f.default)
    add_device_options(p)
    ft = p.add_argument_group("fine-tuning")
    ft.add_argument("--finetune", action="store_true", help="train the encoder too, from the waveform")
    add_encoder_options(ft, ckpt_help="--finetune: encoder checkpoint", cfg_help="--finetune: encoder config")
    ft.add_argument("--encoder_lr", type=float, default=1e-4, help="--finetune: encoder learning rate (Adam)")
    ft.add_argument("--chunk_frames", type=int, default=200, help="--finetune: frames per training crop")
    ft.add_argument("--crops_per_batch", type=int, default=4, help="--finetune: crops per batch")
    ft.add_argument("--steps_per_epoch", type=int, default=100, help="--finetune: batches per epoch")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    opts = MlpOptions(**{f.name: getattr(args, f.name) for f in fields(MlpOptions)})
    device = setup_device(args)
    num_pdfs = int((args.gmm / "num_pdfs").read_text())
    train_ali = read_alignments(args.gmm / "pdf_ali.ark")
    dev_ali = read_alignments(args.dev_ali or args.gmm / "pdf_ali_dev.ark")
    start = time.time()
    if args.finetune:
        ft = FinetuneOptions(encoder_lr=args.encoder_lr, chunk_frames=args.chunk_frames,
                             batch_size=args.crops_per_batch,
                             steps_per_epoch=args.steps_per_epoch)
        encoder = wf_builder(args.fe_cfg)
        if args.fe_ckpt is None:
            raise PaseError("--finetune needs --fe_ckpt (the encoder to start from)")
        encoder.load_pretrained(args.fe_ckpt, load_last=True)
        train_w = load_waveforms(DataDir.load(args.train), train_ali)
        dev_w = load_waveforms(DataDir.load(args.dev), dev_ali)
        log.info("fine-tuning %s from %s: %d train / %d dev utterances, %d pdfs, device %s", args.out,
                 args.fe_ckpt, len(train_w), len(dev_w), num_pdfs, device)
        model, history = train_finetune(encoder, train_w, train_ali, dev_w, dev_ali, num_pdfs, opts, ft, device)
        utts, frames = sorted(train_w), sum(len(train_ali[u]) for u in train_w)
        finetune = {"pase_cfg": encoder.config, "encoder_lr": ft.encoder_lr,
                    "chunk_frames": ft.chunk_frames, "steps_per_epoch": ft.steps_per_epoch}
        input_dim = model.mlp.hidden[0].in_features
    else:
        train = FrameSet(aligned(load_features(args.train), train_ali, str(args.train)), train_ali, opts.context)
        dev = FrameSet(aligned(load_features(args.dev), dev_ali, str(args.dev)), dev_ali, opts.context)
        log.info("training %s: %d train / %d dev frames, input %d, %d pdfs, device %s", args.out,
                 len(train), len(dev), train.input_dim, num_pdfs, device)
        model, history = train_mlp(train, dev, num_pdfs, opts, device)
        utts, frames, finetune, input_dim = train.utts, len(train), None, train.input_dim
    seconds = time.time() - start
    frames_per_s = frames * len(history) / max(seconds, 1e-9)
    save_hybrid_model(args.out, model, log_priors((train_ali[u] for u in utts), num_pdfs), opts, input_dim,
                      num_pdfs, {"train_frames": frames, "train_seconds": round(seconds, 1),
                                 "train_frames_per_second": round(frames_per_s, 1)}, finetune)
    (args.out / "history.json").write_text(json.dumps(history, indent=1))
    best = min(h["dev_frame_error"] for h in history)
    log.info("done in %.1f s (%.0f frames/s): best dev frame error %.2f%%", seconds, frames_per_s, 100 * best)


def cli() -> None:
    run_main(main, "pase-train-mlp")


if __name__ == "__main__":
    cli()
