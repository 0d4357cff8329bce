"""PASE workers ("minions"): small heads that predict targets or discriminate context from the
encoder output, and their losses.

Regression workers (`MLPWorker`, `DecoderWorker`) predict one target each; classification
workers (`LIMWorker` "mi", `GIMWorker` "cmi", `SPCWorker` "spc") score pairs of embeddings.
Every worker returns its loss from `loss(...)`, so the trainer treats them uniformly.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pase.config import ConfigError, load_config
from pase.targets import TARGET_NAMES

LOSSES = {"MSELoss": nn.MSELoss, "L1Loss": nn.L1Loss, "BCEWithLogitsLoss": nn.BCEWithLogitsLoss,
          "SmoothL1Loss": nn.SmoothL1Loss}

# Keys of the original worker cfg entries. Keys that only ever carried defaults in PASE/PASE+
# are accepted at those values (see `_check_fixed`).
MLP_KEYS = frozenset({"name", "type", "num_inputs", "num_outputs", "hidden_size", "hidden_layers",
                      "context", "dropout", "dropin", "skip", "r", "loss", "loss_weight",
                      "transform", "augment"})
DECODER_KEYS = MLP_KEYS | {"fmaps", "strides", "kwidths", "norm_type", "dropout_time", "shuffle",
                           "shuffle_depth", "bias"}
REGRESSION_NAMES = frozenset(TARGET_NAMES) | {"cchunk"}
CLASSIFICATION_NAMES = frozenset({"mi", "cmi", "spc"})
# LIM/GIM discriminators: the original's MLP on the concatenated pair, or (ours) a shared
# projection of both sides compared by a dot product, which separates pairs from the first step.
DISCRIMINATOR_HEADS = ("mlp", "bilinear")


def stack_context(target: torch.Tensor, r: int) -> torch.Tensor:
    """(B, F, T) -> (B, F*r, T): frames t-r//2..t+r//2 per channel, feature-major, zero-padded.

    Channel f*r + k holds feature f at frame t - r//2 + k, the original ContextualizedLoss layout,
    built with one unfold instead of a loop over time.
    """
    b, f, t = target.shape
    padded = F.pad(target, (r // 2, r // 2))
    return padded.unfold(2, r, 1).permute(0, 1, 3, 2).reshape(b, f * r, t)


class MLPBlock(nn.Module):
    """Conv1d(kernel=context) -> PReLU (init 0.25) -> Dropout."""

    def __init__(self, in_ch: int, out_ch: int, context: int = 1, dropout: float = 0.0,
                 prelu_init: float = 0.25) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_ch, out_ch, context, padding=context // 2)
        self.act = nn.PReLU(out_ch, init=prelu_init)
        self.dout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dout(self.act(self.conv(x)))


class MLPWorker(nn.Module):
    """Per-frame MLP predicting `num_outputs` x r values (r-frame context stacking of the target)."""

    def __init__(self, name: str, num_inputs: int, num_outputs: int, hidden_size: int = 256,
                 hidden_layers: int = 1, context: int = 1, dropout: float = 0.0,
                 r: int | None = None, loss: str = "MSELoss", loss_weight: float = 1.0) -> None:
        super().__init__()
        self.name = name
        self.r = r or 1
        self.loss_weight = loss_weight
        self.criterion = LOSSES[loss]()
        blocks = []
        for i in range(hidden_layers):
            blocks.append(MLPBlock(num_inputs if i == 0 else hidden_size, hidden_size,
                                   context if i == 0 else 1, dropout))
        self.blocks = nn.Sequential(*blocks)
        self.W = nn.Conv1d(hidden_size if hidden_layers else num_inputs, num_outputs * self.r, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.W(self.blocks(h))

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.r > 1:
            target = stack_context(target, self.r)
        n = min(pred.size(-1), target.size(-1))  # encoder frames can exceed T // 160 by one
        return self.criterion(pred[..., :n].float(), target[..., :n].float())


class DecoderWorker(nn.Module):
    """Waveform decoder: transposed convs upsampling x160 (strides 4, 4, 10), then an MLP to 1 channel."""

    def __init__(self, name: str, num_inputs: int, num_outputs: int = 1,
                 fmaps: tuple[int, ...] = (512, 256, 128), strides: tuple[int, ...] = (4, 4, 10),
                 kwidths: tuple[int, ...] = (30, 30, 30), hidden_size: int = 64,
                 hidden_layers: int = 1, dropout: float = 0.0, loss: str = "L1Loss",
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.name = name
        self.loss_weight = loss_weight
        self.criterion = LOSSES[loss]()
        layers: list[nn.Module] = []
        ch = num_inputs
        for fmap, stride, k in zip(fmaps, strides, kwidths):
            pad = max(0, (stride - k) // -2)
            layers += [nn.ConvTranspose1d(ch, fmap, k, stride=stride, padding=pad), nn.PReLU(fmap, init=0.0)]
            ch = fmap
        self.deconv = nn.Sequential(*layers)
        mlp = []
        for i in range(hidden_layers):
            mlp.append(MLPBlock(ch if i == 0 else hidden_size, hidden_size, 1, dropout))
        self.mlp = nn.Sequential(*mlp)
        self.W = nn.Conv1d(hidden_size if hidden_layers else ch, num_outputs, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.W(self.mlp(self.deconv(h)))

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        n = min(pred.size(-1), target.size(-1))
        return self.criterion(pred[..., :n].float(), target[..., :n].float())


class LIMWorker(nn.Module):
    """Local info max ("mi"): frame-wise discrimination of (anchor, context) from (anchor, random)."""

    pooled = False

    def __init__(self, name: str, num_inputs: int, hidden_size: int = 256, hidden_layers: int = 1,
                 dropout: float = 0.0, augment: bool = False, loss_weight: float = 1.0,
                 head: str = "mlp") -> None:
        super().__init__()
        if head not in DISCRIMINATOR_HEADS:
            raise ConfigError(f"worker {name!r}: unknown head {head!r}; known: {', '.join(DISCRIMINATOR_HEADS)}")
        self.name = name
        self.augment = augment
        self.loss_weight = loss_weight
        self.head = head
        if head == "mlp":
            self.mlp = MLPWorker(name, 2 * num_inputs, 1, hidden_size, hidden_layers, 1, dropout,
                                 loss="BCEWithLogitsLoss")
        else:  # a shared projection, then a scaled dot product of the two sides plus a bias
            self.proj = nn.Conv1d(num_inputs, hidden_size, 1)
            self.bias = nn.Parameter(torch.zeros(1))

    def sides(self, chunk: torch.Tensor, ctxt: torch.Tensor,
              rand: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(left, right) of every pair: positives first, then negatives."""
        left, right = [chunk], [ctxt]
        nleft, nright = [chunk], [rand]
        if self.augment:  # also the context as anchor
            left.append(ctxt)
            right.append(chunk)
            nleft.append(ctxt)
            nright.append(rand)
        a, b = torch.cat(left + nleft, 0), torch.cat(right + nright, 0)
        if self.pooled:
            a, b = a.mean(-1, keepdim=True), b.mean(-1, keepdim=True)
        return a, b

    def pairs(self, chunk: torch.Tensor, ctxt: torch.Tensor, rand: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.sides(chunk, ctxt, rand), 1)

    def forward(self, chunk: torch.Tensor, ctxt: torch.Tensor, rand: torch.Tensor) -> torch.Tensor:
        if self.head == "mlp":
            return self.mlp(self.pairs(chunk, ctxt, rand))
        a, b = self.sides(chunk, ctxt, rand)
        pa, pb = self.proj(a), self.proj(b)
        return (pa * pb).sum(1, keepdim=True) / pa.size(1) ** 0.5 + self.bias

    def loss(self, logits: torch.Tensor) -> torch.Tensor:
        half = logits.size(0) // 2
        labels = torch.cat([torch.ones_like(logits[:half]), torch.zeros_like(logits[half:])])
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


class GIMWorker(LIMWorker):
    """Global info max ("cmi"): the same pairs, mean-pooled over time first."""

    pooled = True


class SPCWorker(nn.Module):
    """Sequence predictive coding ("spc", PASE v1): is a 5-frame block the future or the past of frame t?"""

    def __init__(self, name: str, num_inputs: int, hidden_size: int = 256, hidden_layers: int = 1,
                 dropout: float = 0.0, ctxt_frames: int = 5, seq_pad: int = 16,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.name = name
        self.loss_weight = loss_weight
        self.ctxt_frames, self.seq_pad = ctxt_frames, seq_pad
        self.mlp = MLPWorker(name, (ctxt_frames + 1) * num_inputs, 1, hidden_size, hidden_layers,
                             1, dropout, loss="BCEWithLogitsLoss")

    def forward(self, chunk: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        b, c, t = chunk.shape
        n, pad = self.ctxt_frames, self.seq_pad
        lo, hi = pad + n + 1, t - pad - n
        if hi <= lo:
            raise ValueError(f"spc worker needs more than {2 * (pad + n) + 1} frames, got {t}")

        def draw(a: int, z: int) -> int:
            return int(torch.randint(a, z, (1,), generator=generator))
        mid = draw(lo, hi)
        fut = draw(mid + pad, t - n)
        past = draw(n, mid - pad)
        anchor = chunk[:, :, mid]
        pos = torch.cat([anchor, chunk[:, :, fut:fut + n].reshape(b, -1)], 1)
        neg = torch.cat([anchor, chunk[:, :, past - n:past].reshape(b, -1)], 1)
        return self.mlp(torch.cat([pos, neg], 0).unsqueeze(-1))

    loss = LIMWorker.loss


def _check_fixed(cfg: dict[str, Any], where: str) -> None:
    fixed = {"skip": False, "dropin": 0, "dropout_time": 0, "shuffle": False, "norm_type": None}
    for key, value in fixed.items():
        if key in cfg and cfg[key] not in (value, None) and not (key == "dropin" and cfg[key] == 0.0):
            raise ConfigError(f"{where}: {key}={cfg[key]!r} is not supported (only {value!r})")


def _checked_entry(entry: dict[str, Any], at: str, known: frozenset[str], allowed: frozenset[str],
                   seen: set[str]) -> str:
    """Validate one worker entry (known unique name, known keys, fixed keys); returns its name."""
    name = entry.get("name")
    if name not in known:
        raise ConfigError(f"{at}: unknown worker {name!r}; known: {', '.join(sorted(known))}")
    if name in seen:
        raise ConfigError(f"{at}: duplicate worker name {name!r}")
    seen.add(name)
    bad = sorted(set(entry) - allowed)
    if bad:
        raise ConfigError(f"{at}: unknown key(s) {bad}")
    _check_fixed(entry, at)
    return name


def _common(entry: dict[str, Any], name: str, emb_dim: int, hidden_size: int) -> dict[str, Any]:
    return dict(name=name, num_inputs=emb_dim, hidden_size=entry.get("hidden_size", hidden_size),
                hidden_layers=entry.get("hidden_layers", 1), dropout=entry.get("dropout", 0.0),
                loss_weight=entry.get("loss_weight", 1.0))


def build_workers(cfg: str | Path | dict[str, Any], emb_dim: int,
                  target_dims: dict[str, int]) -> tuple[nn.ModuleList, nn.ModuleList]:
    """Build (regression, classification) workers from a workers cfg ({"regr": [...], "cls": [...]}).

    `target_dims` maps each regression target name to its channel count (from the target bank),
    which fixes the output size whatever `num_outputs` the cfg states.
    """
    where = str(cfg) if not isinstance(cfg, dict) else "workers config"
    if not isinstance(cfg, dict):
        cfg = load_config(cfg)
    unknown_sections = set(cfg) - {"regr", "cls"}
    if unknown_sections:
        raise ConfigError(f"{where}: unknown section(s) {sorted(unknown_sections)}; expected 'regr' and 'cls'")
    regr, cls = nn.ModuleList(), nn.ModuleList()
    seen: set[str] = set()
    for i, entry in enumerate(cfg.get("regr", [])):
        at = f"{where}: regr[{i}]"
        kind = entry.get("type", "mlp")
        if kind not in ("mlp", "decoder"):
            raise ConfigError(f"{at}: unknown type {kind!r}; known: mlp, decoder")
        name = _checked_entry(entry, at, REGRESSION_NAMES, DECODER_KEYS if kind == "decoder" else MLP_KEYS, seen)
        loss = entry.get("loss", "L1Loss" if kind == "decoder" else "MSELoss")
        if loss not in LOSSES:
            raise ConfigError(f"{at}: unknown loss {loss!r}; known: {sorted(LOSSES)}")
        if kind == "decoder":
            if name != "cchunk":
                raise ConfigError(f"{at}: a decoder worker must be 'cchunk' (it predicts the waveform)")
            regr.append(DecoderWorker(fmaps=tuple(entry.get("fmaps", (512, 256, 128))),
                                      strides=tuple(entry.get("strides", (4, 4, 10))),
                                      kwidths=tuple(entry.get("kwidths", (30, 30, 30))), loss=loss,
                                      **_common(entry, name, emb_dim, 64)))
            continue
        if name == "cchunk":
            raise ConfigError(f"{at}: 'cchunk' needs type 'decoder'")
        stated = entry.get("num_outputs")
        if stated is not None and stated != target_dims[name]:
            raise ConfigError(f"{at}: num_outputs={stated} but the target has {target_dims[name]} "
                              "channels (check der_order / order in its transform)")
        regr.append(MLPWorker(num_outputs=target_dims[name], context=entry.get("context", 1),
                              r=entry.get("r"), loss=loss, **_common(entry, name, emb_dim, 256)))
    for i, entry in enumerate(cfg.get("cls", [])):
        name = _checked_entry(entry, f"{where}: cls[{i}]", CLASSIFICATION_NAMES,
                              MLP_KEYS | {"ctxt_frames", "seq_pad", "head"}, seen)
        common = _common(entry, name, emb_dim, 256)
        if name == "spc":
            cls.append(SPCWorker(ctxt_frames=entry.get("ctxt_frames", 5), seq_pad=entry.get("seq_pad", 16), **common))
        else:
            worker = LIMWorker if name == "mi" else GIMWorker
            cls.append(worker(augment=bool(entry.get("augment", False)), head=entry.get("head", "mlp"), **common))
    return regr, cls


def target_specs(cfg: str | Path | dict[str, Any]) -> dict[str, dict]:
    """The `transform` sub-dict of every regression worker that needs a computed target."""
    if not isinstance(cfg, dict):
        cfg = load_config(cfg)
    return {e["name"]: dict(e.get("transform") or {}) for e in cfg.get("regr", [])
            if e.get("name") in TARGET_NAMES}
