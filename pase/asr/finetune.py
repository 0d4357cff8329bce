"""The hybrid MLP from the waveform, the encoder fine-tuned with it or frozen with mixed layers.

The frozen recipe trains the MLP on dumped features; here the PASE encoder runs inside the
model and is updated too (its own, smaller learning rate), or stays fixed while the MLP learns
a weighted sum of its layers (`FrontOptions`, pase.models.downstream). Training uses random
crops of `chunk_frames` alignment frames (frame t covers samples from 160 t on, as in the dumped
features), peak-normalised like the frozen pipeline; each crop's encoder output is
mean-normalised over time (the frozen pipeline subtracted per-speaker means) and spliced +-c
frames within the crop. Evaluation and decoding run the encoder over whole utterances.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from pase.asr.mlp import HybridMLP, MlpOptions, NewbobSchedule, match_lengths
from pase.io import DataDir, peak_normalize, read_audio
from pase.models.downstream import EncoderFront, FrontOptions
from pase.models.frontend import WaveFe

log = logging.getLogger(__name__)


class EncoderHybrid(EncoderFront):
    """PASE encoder (its output or mixed layers) -> per-utterance mean normalisation -> +-c frame
    splicing -> HybridMLP."""

    def __init__(self, encoder: WaveFe, num_pdfs: int, opts: MlpOptions, front: FrontOptions | None = None) -> None:
        super().__init__(encoder, front)
        self.context = opts.context
        self.mlp = HybridMLP(encoder.emb_dim * (2 * opts.context + 1), num_pdfs, opts.hidden,
                             opts.layers, opts.dropout)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, 1, L) -> (B, N, num_pdfs) log-posteriors."""
        h = self.encode(wav)
        h = h - h.mean(-1, keepdim=True)
        c = self.context
        spliced = F.pad(h, (c, c), mode="replicate").unfold(2, 2 * c + 1, 1)  # (B, D, N, 2c+1)
        x = spliced.permute(0, 2, 3, 1).flatten(2)  # (B, N, (2c+1) * D): frame-major like FrameSet
        return self.mlp(x.flatten(0, 1)).view(x.size(0), x.size(1), -1)


@dataclass
class FinetuneOptions:
    encoder_lr: float = 1e-4
    chunk_frames: int = 200
    batch_size: int = 8
    steps_per_epoch: int = 100
    layer_weights_lr: float = 0.01


def load_waveforms(data: DataDir, alignments: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Peak-normalised waveforms of the utterances that have alignments."""
    out = {}
    for u in data.utterances:
        if u.utt_id in alignments:
            out[u.utt_id] = peak_normalize(read_audio(u.source, start=u.start, end=u.end, name=u.utt_id),
                                           name=u.utt_id)
    return out


def _crop(wav: np.ndarray, labels: np.ndarray, frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`frames` alignment frames (padded with -100, ignored by the loss) and their samples."""
    start = int(rng.integers(0, max(len(labels) - frames, 0) + 1))
    lab = np.full(frames, -100, dtype=np.int64)
    seg = labels[start:start + frames]
    lab[:len(seg)] = seg
    audio = np.zeros(frames * 160, dtype=np.float32)
    piece = wav[start * 160:(start + frames) * 160]
    audio[:len(piece)] = piece
    return audio, lab


@torch.no_grad()
def utterance_logprobs(model: EncoderHybrid, wav: np.ndarray, device: torch.device) -> torch.Tensor:
    model.eval()
    return model(torch.from_numpy(wav).view(1, 1, -1).to(device))[0].cpu()


def frame_error(model: EncoderHybrid, wavs: dict[str, np.ndarray], ali: dict[str, np.ndarray],
                device: torch.device) -> float:
    wrong = total = 0
    for u, wav in wavs.items():
        lp = match_lengths(utterance_logprobs(model, wav, device).numpy(), ali[u], u)
        wrong += int((lp.argmax(-1) != ali[u]).sum())
        total += len(ali[u])
    return wrong / max(total, 1)


def train_finetune(encoder: WaveFe, train: dict[str, np.ndarray], train_ali: dict[str, np.ndarray],
                   dev: dict[str, np.ndarray], dev_ali: dict[str, np.ndarray], num_pdfs: int,
                   opts: MlpOptions, ft: FinetuneOptions, device: torch.device,
                   front: FrontOptions | None = None) -> tuple[EncoderHybrid, list[dict[str, float]]]:
    """SGD on the MLP (the frozen recipe's schedule), Adam on the encoder unless `front` freezes it
    and on any layer weights; best dev epoch kept."""
    torch.manual_seed(opts.seed)
    rng = np.random.default_rng(opts.seed)
    model = EncoderHybrid(encoder, num_pdfs, opts, front).to(device)
    sgd = torch.optim.SGD(model.mlp.parameters(), lr=opts.lr, momentum=opts.momentum)
    optimizers = [sgd, model.layer_weights_optimizer(ft.layer_weights_lr)]
    if not model.front.freeze_encoder:
        optimizers.append(torch.optim.Adam(model.encoder.parameters(), lr=ft.encoder_lr))
    optimizers = [o for o in optimizers if o is not None]
    schedule = NewbobSchedule(opts, sgd)
    utts = sorted(train)
    history: list[dict[str, float]] = []
    for epoch in range(opts.epochs):
        model.train()
        total = 0.0
        for _ in range(ft.steps_per_epoch):
            picks = rng.choice(len(utts), size=ft.batch_size)
            crops = [_crop(train[utts[i]], train_ali[utts[i]], ft.chunk_frames, rng) for i in picks]
            wav = torch.from_numpy(np.stack([c[0] for c in crops])).unsqueeze(1).to(device)
            lab = torch.from_numpy(np.stack([c[1] for c in crops])).to(device)
            logp = model(wav)
            n = min(logp.size(1), lab.size(1))
            loss = F.nll_loss(logp[:, :n].flatten(0, 1), lab[:, :n].flatten(), ignore_index=-100)
            for optimizer in optimizers:
                optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for optimizer in optimizers:
                optimizer.step()
            total += float(loss.detach())
        err = frame_error(model, dev, dev_ali, device)
        history.append({"epoch": epoch, "lr": schedule.lr, "train_loss": total / ft.steps_per_epoch,
                        "dev_frame_error": err})
        log.info("epoch %d: lr %.4g, train loss %.4f, dev frame error %.2f%%", epoch, schedule.lr,
                 total / ft.steps_per_epoch, 100 * err)
        schedule.update(err, model)
    schedule.restore_best(model)
    return model, history
