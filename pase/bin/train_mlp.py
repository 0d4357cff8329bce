"""pase-train-mlp: the hybrid acoustic model on frozen features and GMM pdf alignments.

    pase-train-mlp --train data/train_pase --dev data/dev_pase --gmm exp/tri --out exp/mlp_pase

--train/--dev are data dirs with feats.scp (pase-extract's output: PASE+ features with
per-speaker CMVN statistics in cmvn.scp, applied as mean normalisation like the original) or
feats.scp files (e.g. the GMM's MFCC cache exp/mono/feats_train.scp, for a baseline). Targets:
<gmm>/pdf_ali.ark and <gmm>/pdf_ali_<dev name>.ark (pase-train-gmm --align_data). Writes
<out>/final.pt (MLP weights), log_priors.npy (from the training alignments), mlp.yaml
(options, input and output sizes) and history.json (per epoch: lr, loss, dev frame error).

--finetune trains the PASE encoder with the MLP from the waveform (pase.asr.finetune); with
--freeze_encoder the encoder stays fixed and the MLP reads its --encoder_layers mixed by softmax
weights learnt with it (written to <out>/layer_weights). --train and --dev are then the plain data
dirs (wav.scp), the encoder comes from --fe_cfg/--fe_ckpt, and final.pt holds encoder, layer
weights and MLP. The MLP's options (MlpOptions: hidden, layers, lr, ...) are options of this
command, so --config conf/mlp.yaml sets them.
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from pase.asr.finetune import FinetuneOptions
from pase.asr.mlp import MlpOptions
from pase.asr.mlp_dir import train_mlp_dir
from pase.bin.common import (ArgumentParser, add_device_options, add_encoder_options, add_front_options,
                             run_main, setup_device)
from pase.models.downstream import EncoderSource, front_options


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
    ft = p.add_argument_group("the encoder (fine-tuned or frozen, from the waveform)")
    ft.add_argument("--finetune", action="store_true", help="train the encoder too, from the waveform")
    add_front_options(ft)
    add_encoder_options(ft, ckpt_help="encoder checkpoint", cfg_help="encoder config")
    ft.add_argument("--encoder_lr", type=float, default=1e-4, help="--finetune: encoder learning rate (Adam)")
    ft.add_argument("--chunk_frames", type=int, default=200, help="frames per training crop")
    ft.add_argument("--crops_per_batch", type=int, default=4, help="crops per batch")
    ft.add_argument("--steps_per_epoch", type=int, default=100, help="batches per epoch")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    opts = MlpOptions(**{f.name: getattr(args, f.name) for f in fields(MlpOptions)})
    front = front_options(args.finetune, args.freeze_encoder, args.encoder_layers, args.encoder_layer_norm)
    ft = FinetuneOptions(encoder_lr=args.encoder_lr, chunk_frames=args.chunk_frames, batch_size=args.crops_per_batch,
                         steps_per_epoch=args.steps_per_epoch, layer_weights_lr=args.layer_weights_lr)
    train_mlp_dir(args.train, args.dev, args.gmm, args.out, opts, setup_device(args), args.dev_ali,
                  None if front is None else EncoderSource(args.fe_cfg, args.fe_ckpt, front), ft)


def cli() -> None:
    run_main(main, "pase-train-mlp")


if __name__ == "__main__":
    cli()
