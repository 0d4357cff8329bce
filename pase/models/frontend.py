"""The PASE / PASE+ waveform encoder (`WaveFe`) and its builder `wf_builder`.

Layer stack, padding rules, initialisation and state_dict key names/order follow the original
(see README "Deviations" for what differs). Besides the plain forward pass the encoder runs
right-padded batches of different lengths exactly as if each utterance ran alone
(`forward_padded`): every reflect padding reflects at the utterance's own end, and the dense-skip
pooling factor is computed per utterance.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pase.config import ConfigError, check_keys, load_config
from pase.models.checkpoint import load_encoder_state
from pase.models.qrnn import QRNN, QRNNState
from pase.models.sincconv import SincConv

# Keys of the original WaveFe constructor. Those the original accepted but PASE/PASE+ never set
# to non-default values are accepted only at their defaults (checked in `_check_supported`).
FRONTEND_KEYS = frozenset({
    "sincnet", "kwidths", "strides", "dilations", "fmaps", "norm_type", "pad_mode", "sr",
    "emb_dim", "rnn_pool", "rnn_dim", "rnn_layers", "rnn_type", "rnn_dropout", "denseskips",
    "densemerge", "norm_out", "activation", "tanh_out", "resblocks", "vq_K",
})

POOL_MODES = (None, "avg_norm", "avg_concat", "avg_norm_concat")


def _check_supported(cfg: dict[str, Any], where: str) -> None:
    fixed = {"norm_type": "bnorm", "pad_mode": "reflect", "rnn_type": "qrnn", "densemerge": "sum",
             "tanh_out": False, "resblocks": False, "vq_K": None, "rnn_dropout": 0}
    for key, value in fixed.items():
        if key in cfg and cfg[key] != value:
            raise ConfigError(f"{where}: {key}={cfg[key]!r} is not supported (only {value!r}, "
                              "the value PASE and PASE+ use)")
    if cfg.get("activation") not in (None, "prelu"):
        raise ConfigError(f"{where}: activation={cfg['activation']!r} is not supported (only PReLU)")


def block_padding(kernel: int, stride: int, dilation: int, sinc: bool) -> tuple[int, int]:
    """(left, right) reflect padding of a conv block, the original's rule."""
    if sinc:
        return kernel // 2, kernel // 2
    if stride > 1 or kernel % 2 == 0:
        return kernel // 2 - 1, kernel // 2
    return (kernel // 2) * dilation, (kernel // 2) * dilation


class FeBlock(nn.Module):
    """Reflect pad -> conv -> BatchNorm -> PReLU (slopes initialised to 0, i.e. ReLU at start)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, dilation: int,
                 sinc: bool, sample_rate: int) -> None:
        super().__init__()
        if sinc:
            if in_ch != 1 or stride != 1 or dilation != 1:
                raise ConfigError("the SincNet block needs 1 input channel, stride 1 and dilation 1")
            self.conv: nn.Module = SincConv(out_ch, kernel, sample_rate)
            kernel = self.conv.kernel_size
        else:
            self.conv = nn.Conv1d(in_ch, out_ch, kernel, stride=stride, dilation=dilation)
        self.norm = nn.BatchNorm1d(out_ch)
        self.act = nn.PReLU(out_ch, init=0.0)
        self.kernel, self.stride, self.dilation = kernel, stride, dilation
        self.pad = block_padding(kernel, stride, dilation, sinc)

    def out_length(self, length: int) -> int:
        span = self.dilation * (self.kernel - 1) + 1
        return (length + sum(self.pad) - span) // self.stride + 1

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.act(self.norm(self.conv(reflect_pad(x, *self.pad, lengths))))


def reflect_pad(x: torch.Tensor, left: int, right: int, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Reflect-pad the time axis; with `lengths`, each row reflects at its own end.

    Samples past a row's length are ignored, so a right-padded batch gives each row exactly the
    padding it would get alone. Positions past length + right hold don't-care values.
    """
    if lengths is None or bool((lengths == x.size(-1)).all()):
        return F.pad(x, (left, right), mode="reflect")
    pos = torch.arange(-left, x.size(-1) + right, device=x.device).abs()
    n = lengths.to(x.device).view(-1, 1)
    idx = torch.where(pos >= n, 2 * (n - 1) - pos, pos).clamp(0, x.size(-1) - 1)
    return torch.gather(x, 2, idx.unsqueeze(1).expand(-1, x.size(1), -1))


class WaveFe(nn.Module):
    """PASE encoder: SincNet + 7 conv blocks [+ QRNN] + W [+ dense skips] [+ norm_out].

    Attribute registration order (denseskips, blocks, rnn, W, norm_out) fixes the state_dict key
    order to the original's.
    """

    def __init__(self, sincnet: bool = True,
                 kwidths: tuple[int, ...] = (251, 10, 5, 5, 5, 5, 5, 5),
                 strides: tuple[int, ...] = (1, 10, 2, 1, 2, 1, 2, 2),
                 dilations: tuple[int, ...] = (1, 1, 1, 1, 1, 1, 1, 1),
                 fmaps: tuple[int, ...] = (64, 64, 128, 128, 256, 256, 512, 512),
                 sr: int = 16000, emb_dim: int = 256, rnn_pool: bool = False,
                 rnn_dim: int | None = None, rnn_layers: int = 1, denseskips: bool = False,
                 norm_out: bool = False, **fixed: Any) -> None:
        super().__init__()
        _check_supported(fixed, "frontend config")
        n = len(fmaps)
        if not (len(kwidths) == len(strides) == len(dilations) == n) or n < 2:
            raise ConfigError(f"frontend config: kwidths/strides/dilations/fmaps must have one "
                              f"entry per block (got {len(kwidths)}/{len(strides)}/{len(dilations)}/{n})")
        self.sample_rate = sr
        self.emb_dim = emb_dim
        self.config = dict(sincnet=sincnet, kwidths=list(kwidths), strides=list(strides),
                           dilations=list(dilations), fmaps=list(fmaps), sr=sr, emb_dim=emb_dim,
                           rnn_pool=rnn_pool, rnn_dim=rnn_dim, rnn_layers=rnn_layers,
                           denseskips=denseskips, norm_out=norm_out)
        if denseskips:
            self.denseskips = nn.ModuleList(nn.Conv1d(c, emb_dim, 1, bias=False) for c in fmaps[:-1])
        else:
            self.denseskips = None
        chans = (1, *fmaps)
        self.blocks = nn.ModuleList(
            FeBlock(chans[i], chans[i + 1], kwidths[i], strides[i], dilations[i], sincnet and i == 0, sr)
            for i in range(n)
        )
        # The original asked for a bidirectional QRNN of rnn_dim // 2, which torchqrnn turned into
        # one unidirectional layer of rnn_dim: that is what PASE+ checkpoints contain.
        hidden = rnn_dim or emb_dim
        self.rnn = QRNN(fmaps[-1], hidden, rnn_layers) if rnn_pool else None
        self.W = nn.Conv1d(hidden if rnn_pool else fmaps[-1], emb_dim, 1)
        self.norm_out = nn.BatchNorm1d(emb_dim, affine=False) if norm_out else None

    # ---- lengths -------------------------------------------------------------------------------

    def block_lengths(self, num_samples: int) -> list[int]:
        """Output length of every block for an input of `num_samples`."""
        out, length = [], num_samples
        for block in self.blocks:
            length = block.out_length(length)
            out.append(length)
        return out

    def num_frames(self, num_samples: int) -> int:
        """Output frames for an input of `num_samples` (floor(ceil(T/10)/16) for PASE/PASE+)."""
        return self.block_lengths(num_samples)[-1]

    @functools.cached_property
    def min_samples(self) -> int:
        """Shortest input the reflect paddings allow (each pad must be shorter than its input)."""
        def ok(t: int) -> bool:
            length = t
            for block in self.blocks:
                if max(block.pad) >= length:
                    return False
                length = block.out_length(length)
            return length >= 1
        t = 1
        while not ok(t):
            t += 1
        return t

    # ---- forward -------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, mode: str | None = None) -> torch.Tensor:
        """x: (B, 1, T) waveform at 16 kHz -> (B, emb_dim, frames).

        `mode` post-processes like the original: 'avg_norm' subtracts the time mean,
        'avg_concat' appends it, 'avg_norm_concat' does both.
        """
        y, _ = self._encode(self._check_input(x), None, False)
        return pool_mode(y, mode)

    def forward_padded(self, x: torch.Tensor, lengths: torch.Tensor, return_hidden: bool = False,
                       max_chunk_seconds: float | None = None) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Encode a right-padded batch (B, 1, T_max) with true `lengths` (B,), in eval mode.

        Returns (y, frames, hidden): frames[i] valid output frames of row i, each row equal to
        encoding that utterance alone. `hidden` (empty unless asked) lists the per-layer outputs at
        the output frame rate: the pooled dense-skip projections (PASE+: 7 x emb_dim), the input of
        W (PASE+: the QRNN output, rnn_dim; PASE: block 8's output), and the final output.
        Rows longer than `max_chunk_seconds` are encoded alone by `forward_chunked` in pieces of
        that length, which bounds the memory for any length.
        """
        if self.training:
            raise RuntimeError("forward_padded needs eval mode: BatchNorm would mix padding into its statistics")
        x = self._check_input(x)
        lengths = lengths.to(torch.long).cpu()
        if lengths.numel() != x.size(0) or int(lengths.max()) > x.size(-1):
            raise ValueError(f"lengths {lengths.tolist()} do not fit a batch of shape {tuple(x.shape)}")
        if int(lengths.min()) < self.min_samples:
            raise ValueError(f"input of {int(lengths.min())} samples is shorter than the encoder's minimum "
                             f"of {self.min_samples} samples ({self.min_samples / self.sample_rate * 1000:.1f} ms)")
        frames = torch.tensor([self.num_frames(int(n)) for n in lengths])
        limit = math.inf if max_chunk_seconds is None else max_chunk_seconds * self.sample_rate
        long = [i for i, n in enumerate(lengths.tolist()) if n > limit]
        if long:
            return self._padded_with_long_rows(x, lengths, frames, long, return_hidden, max_chunk_seconds)
        y, hidden = self._encode(x, lengths, return_hidden)
        return y, frames, hidden

    def _padded_with_long_rows(self, x: torch.Tensor, lengths: torch.Tensor, frames: torch.Tensor,
                               long: list[int], return_hidden: bool, chunk_seconds: float,
                               ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """`forward_padded` with the rows `long` encoded alone by `forward_chunked`."""
        rows: dict[int, list[torch.Tensor]] = {}  # row -> [y, *hidden], each (D, frames)
        short = [i for i in range(x.size(0)) if i not in long]
        if short:
            n = lengths[short]
            y, hidden = self._encode(x[short, :, :int(n.max())], n, return_hidden)
            rows.update((i, [y[j], *(h[j] for h in hidden)]) for j, i in enumerate(short))
        for i in long:
            y, hidden = self.forward_chunked(x[i:i + 1, :, :int(lengths[i])], chunk_seconds, return_hidden)
            rows[i] = [y[0], *(h[0] for h in hidden)]
        outs = [part.new_zeros(x.size(0), part.size(0), int(frames.max())) for part in rows[0]]
        for i, parts in rows.items():
            for out, part in zip(outs, parts):
                out[i, :, :part.size(-1)] = part
        return outs[0], frames, outs[1:]

    def forward_hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Like forward, also returning the per-layer outputs (see `forward_padded`)."""
        return self._encode(self._check_input(x), None, True)

    def forward_chunked(self, x: torch.Tensor, chunk_seconds: float = 30.0,
                        return_hidden: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """`forward_hidden` with bounded working memory: the pieces of `iter_chunked`, concatenated."""
        pieces = list(self.iter_chunked(x, chunk_seconds, return_hidden))
        hidden = [torch.cat(parts, -1) for parts in zip(*(h for _, h in pieces))]
        return torch.cat([y for y, _ in pieces], -1), hidden

    def iter_chunked(self, x: torch.Tensor, chunk_seconds: float = 30.0,
                     return_hidden: bool = False) -> Iterator[tuple[torch.Tensor, list[torch.Tensor]]]:
        """`forward_hidden` in consecutive pieces of about `chunk_seconds`, in eval mode: working
        memory does not grow with T (a consumer can write each piece away).

        Exact because in eval mode only the QRNN carries information along the whole input:
        BatchNorm applies its running statistics (an affine map per frame), each conv block sees a
        finite window, the dense skips average fixed groups of frames, and the QRNN is
        unidirectional (see __init__), so carrying its state from piece to piece continues its
        recursion. A piece starts on a multiple of the total stride (its frames are frames of the
        whole input) and takes the conv stack's receptive field as context on both sides; the
        frames that its reflect padding at an inner cut reaches are dropped before the QRNN. At
        the input's own ends a piece's padding is the input's padding. A dense skip whose pooling
        factor (skip length // frames, as in one pass) is not its stride ratio (PASE+'s first one
        when T mod 160 is 151-159: groups of 159 samples) drifts from the output frames, so its
        groups are computed from their own excerpt. Inputs of one chunk or less run in one piece.
        Yields (y, hidden) pieces of `forward_hidden`'s (hidden empty unless asked).
        """
        if self.training:
            raise RuntimeError("chunked encoding needs eval mode: BatchNorm statistics would depend on the cuts")
        if not chunk_seconds > 0:
            raise ValueError(f"chunk_seconds must be positive, got {chunk_seconds}")
        x = self._check_input(x)
        total, out_len, stride = x.size(-1), self.num_frames(x.size(-1)), self.strides_up_to(len(self.blocks) - 1)
        chunk = max(1, round(chunk_seconds * self.sample_rate / stride))  # output frames per piece
        if out_len <= chunk:
            yield self._encode(x, None, return_hidden)
            return
        factors = {}
        if self.denseskips is not None:
            lengths = self.block_lengths(total)
            factors = {i: lengths[i] // out_len for i in range(len(self.denseskips))}
        along = {i: d for i, d in factors.items() if d * self.strides_up_to(i) == stride}
        drifting = {i: (d, self._context(i, {})) for i, d in factors.items() if i not in along}
        left, right = self._context(len(self.blocks) - 1, along)
        state: QRNNState | None = None
        for g0 in range(0, out_len, chunk):
            g1 = min(g0 + chunk, out_len)
            a, b = self._excerpt(g0, g1, stride, left, right, total)
            h, skips = self._conv_features(x[..., a:b], None, g1 - a // stride, along)
            keep = slice(g0 - a // stride, g1 - a // stride)
            skips = [(i, p[..., keep]) for i, p in skips]
            skips += [(i, self._drifting_skip(x, i, d, g0, g1, ctx)) for i, (d, ctx) in drifting.items()]
            y, hidden, state = self._head(h[..., keep], sorted(skips, key=lambda s: s[0]), return_hidden, state)
            yield y, hidden

    def strides_up_to(self, block: int) -> int:
        """Input samples per output frame of `block` (160 for the last block of PASE/PASE+)."""
        return math.prod(b.stride for b in self.blocks[:block + 1])

    def _drifting_skip(self, x: torch.Tensor, i: int, d: int, g0: int, g1: int,
                       context: tuple[int, int]) -> torch.Tensor:
        """Output frames [g0, g1) of dense skip `i` pooled by `d`, from an excerpt of its own that
        starts on a group boundary (`context`: `_context(i, {})`)."""
        rate, (left, right), total = self.strides_up_to(i), context, x.size(-1)
        q = max(0, min(g0 - -(-left // d), (total - self.min_samples) // (d * rate)))  # first group computed
        h = x[..., q * d * rate:min(total, g1 * d * rate + right)]
        if i == 0 and self._front_fusable():  # without block 1's full-rate activations
            return self._front(h, g1 - q, d)[1][..., g0 - q:]
        for block in self.blocks[:i + 1]:
            h = block(h)
        return group_mean(h[..., (g0 - q) * d:], d, g1 - g0)

    def _excerpt(self, f0: int, f1: int, rate: int, left: int, right: int, total: int) -> tuple[int, int]:
        """Input samples [a, b) (a on a multiple of `rate`) whose frames [f0, f1) at `rate` are
        exact, given the context `left` frames / `right` samples (`_context`)."""
        a = max(0, min(f0 - left, (total - self.min_samples) // rate)) * rate
        return a, min(total, f1 * rate + right)

    def _exact_frames(self, num_samples: int, block: int, pool: dict[int, int]) -> tuple[int, int]:
        """Frames [lo, hi) of `block`'s output on an excerpt of `num_samples` that no padding at
        the excerpt's edges reaches (nor the groups of the skips in `pool`, pooled by its factors).

        Cut out of a longer input at a multiple of the stride, those frames are the longer
        input's. Tracks per block the first and the end index of the outputs whose window lies
        within the unpadded excerpt.
        """
        v, u, lo, hi = 0, num_samples, 0, num_samples
        for i, b in enumerate(self.blocks[:block + 1]):
            v = -(-(v + b.pad[0]) // b.stride)
            u = (u + b.pad[0] - b.dilation * (b.kernel - 1) - 1) // b.stride + 1
            if i in pool:
                lo, hi = max(lo, -(-v // pool[i])), min(hi, u // pool[i])
        return max(lo, v), min(hi, u)

    def _context(self, block: int, pool: dict[int, int]) -> tuple[int, int]:
        """(left, right): frames of context an excerpt needs before its first wanted frame of
        `block`, and samples after its last one's stride, for them to be exact (`_exact_frames`)."""
        rate, k = self.strides_up_to(block), 1000  # k: any length past the receptive field
        left, right = self._exact_frames(k * rate, block, pool)[0], 0
        while self._exact_frames(k * rate + right, block, pool)[1] < k:
            right += 1
        return left, right

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if x.dim() != 3 or x.size(1) != 1:
            raise ValueError(f"expected a waveform batch of shape (B, 1, T), got {tuple(x.shape)}")
        if x.size(-1) < self.min_samples:
            raise ValueError(f"input of {x.size(-1)} samples is shorter than the encoder's minimum of "
                             f"{self.min_samples} samples ({self.min_samples / self.sample_rate * 1000:.1f} ms)")
        return x

    def _encode(self, x: torch.Tensor, lengths: torch.Tensor | None,
                want_hidden: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if lengths is not None and bool((lengths == x.size(-1)).all()):
            lengths = None  # equal lengths: the plain (faster) path is exact
        h, skips = self._conv_features(x, lengths, self.num_frames(x.size(-1)))
        y, hidden, _ = self._head(h, skips, want_hidden)
        return y, hidden

    def _conv_features(self, x: torch.Tensor, lengths: torch.Tensor | None, out_len: int,
                       pool: dict[int, int | None] | None = None,
                       ) -> tuple[torch.Tensor, list[tuple[int, torch.Tensor]]]:
        """The last block's output and the dense-skip block outputs pooled to `out_len` frames.

        `pool` maps the skips to pool to their factors (default: every skip; a factor of None:
        skip length // out_len, per row).
        """
        if pool is None and self.denseskips is not None:
            pool = {i: None for i in range(len(self.denseskips))}
        pool = pool or {}
        lens = None if lengths is None else [self.block_lengths(int(n)) for n in lengths]
        in_lens = None if lens is None else torch.tensor([[int(n), *lb[:-1]] for n, lb in zip(lengths, lens)])
        skips: list[tuple[int, torch.Tensor]] = []  # (block, pooled block output)
        h, first = x, 0
        if lengths is None and not self.training and self._front_fusable():
            d0 = (pool[0] or max(1, x.size(-1) // out_len)) if 0 in pool else None
            h, pooled0 = self._front(x, out_len, d0)
            if pooled0 is not None:
                skips.append((0, pooled0))
            if 1 in pool:
                skips.append((1, self._pool_skip(h, out_len, 1, None, pool[1])))
            first = 2
        for i in range(first, len(self.blocks)):
            h = self.blocks[i](h, None if in_lens is None else in_lens[:, i])
            if i in pool:
                skips.append((i, self._pool_skip(h, out_len, i, lens, pool[i])))
        return h, skips

    def _head(self, h: torch.Tensor, skips: list[tuple[int, torch.Tensor]], want_hidden: bool,
              state: QRNNState | None = None) -> tuple[torch.Tensor, list[torch.Tensor], QRNNState | None]:
        """QRNN (continuing from `state`), W, dense skips and norm_out; returns (y, hidden, QRNN state)."""
        feat = h
        if self.rnn is not None:
            out, state = self.rnn.forward_with_state(h.permute(2, 0, 1), state)
            feat = out.permute(1, 2, 0)
        y = self.W(feat)
        hidden = []
        for i, pooled in skips:
            # Mean pooling and the bias-free 1x1 projection commute; pooling first saves the
            # projection at the full sample rate (about 15% of PASE+'s FLOPs).
            proj = self.denseskips[i](pooled)
            y = y + proj
            if want_hidden:
                hidden.append(proj)
        if self.norm_out is not None:
            y = self.norm_out(y)
        if want_hidden:
            hidden += [feat, y]
        return y, hidden, state

    # ---- inference fast path for the first two blocks ------------------------------------------

    def _front_fusable(self) -> bool:
        b0, b1 = self.blocks[0], self.blocks[1]
        return b0.stride == 1 and b0.dilation == 1 and b1.dilation == 1 and b1.stride > 1

    @staticmethod
    def _folded(block: FeBlock) -> tuple[torch.Tensor, torch.Tensor]:
        """Conv weight and bias with the eval-mode BatchNorm folded in."""
        bn = block.norm
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean * scale
        if isinstance(block.conv, SincConv):
            return block.conv.filters() * scale.view(-1, 1, 1), shift
        return block.conv.weight * scale.view(-1, 1, 1), block.conv.bias * scale + shift

    def _front(self, x: torch.Tensor, out_len: int, d0: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Blocks 1-2 (and block 1's dense skip pooled by `d0`, unless None) in eval mode, in time chunks.

        Block 1 runs at the full sample rate with 64 channels: tensors of 40 MB per 10 s of audio,
        whose allocation and memory traffic cost more than the convolution. Chunks of about a
        million values stay in cache, BatchNorm is folded into the convolutions, and block 1's
        output is only kept pooled. Reflect padding at the utterance edges is applied per chunk,
        so the result equals the plain path.
        """
        with torch.autocast(x.device.type, enabled=False):
            # fp32 also under autocast: these two blocks in bf16 cost more accuracy than the rest
            # of the network together (feature cosine to fp32 0.9988 instead of 0.99998).
            return self._front_fp32(x.float(), out_len, d0)

    def _front_fp32(self, x: torch.Tensor, out_len: int, d0: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        b0, b1 = self.blocks[0], self.blocks[1]
        w0, c0 = self._folded(b0)
        w1, c1 = self._folded(b1)
        a0, a1 = b0.act.weight, b1.act.weight
        xp = reflect_pad(x, *b0.pad)
        length0 = x.size(-1)  # block 1 keeps the length (stride 1, 'same' padding)
        length1 = b1.out_length(length0)
        s1, k1, (p1l, _) = b1.stride, b1.kernel, b1.pad
        base = 1 if d0 is None else d0 // math.gcd(s1, d0)  # chunk boundaries must fall on pooling-group boundaries
        # About 1M values per chunk, and over 20480 input samples: below that PyTorch picks its
        # slow native convolution over oneDNN for the single-channel SincNet input.
        # The last chunk absorbs a remainder under that size.
        min_frames = 20480 // (x.size(0) * s1) + 1
        target = max((1 << 20) // (x.size(0) * w0.size(0) * s1), min_frames)
        frames = base * max(1, round(target / base))
        outs, pools = [], []
        f1 = 0
        while f1 < length1:
            f0, f1 = f1, f1 + frames
            if length1 - f1 < min_frames:
                f1 = length1
            lo, hi = f0 * s1 - p1l, (f1 - 1) * s1 - p1l + k1  # padded block-1 input needed
            own = min(f1 * s1, length0)  # samples whose pooling groups this chunk owns
            a, b = max(0, min(lo, f0 * s1)), min(length0, max(hi, own))
            h0 = F.prelu(F.conv1d(xp[..., a:b + b0.kernel - 1].contiguous(), w0, c0), a0)
            if d0 is not None:
                g0, g1 = f0 * s1 // d0, min(own // d0, out_len)
                if g1 > g0:
                    pools.append(group_mean(h0[..., g0 * d0 - a:], d0, g1 - g0))
            parts = [h0[..., max(lo, 0) - a:min(hi, length0) - a]]
            if lo < 0:
                parts.insert(0, h0[..., 1 - a:1 - lo - a].flip(-1))
            if hi > length0:
                parts.append(h0[..., 2 * length0 - 1 - hi - a:length0 - 1 - a].flip(-1))
            h1in = torch.cat(parts, -1) if len(parts) > 1 else parts[0].contiguous()  # oneDNN needs it
            outs.append(F.prelu(F.conv1d(h1in, w1, c1, stride=s1), a1))
        pooled = torch.cat(pools, -1) if pools else None
        return torch.cat(outs, -1), pooled

    def _pool_skip(self, s: torch.Tensor, out_len: int, i: int, lens: list[list[int]] | None,
                   d: int | None = None) -> torch.Tensor:
        """Average non-overlapping groups of d = floor(L_skip / L_out) frames (unless given), per utterance."""
        if d is not None:
            return group_mean(s, d, out_len)
        factors = [s.size(-1) // out_len] if lens is None else [lb[i] // lb[-1] for lb in lens]
        if len(set(factors)) == 1:
            return group_mean(s, factors[0], out_len)
        out = s.new_zeros(s.size(0), s.size(1), out_len)
        for row, (lb, d) in enumerate(zip(lens, factors)):
            out[row, :, :lb[-1]] = group_mean(s[row:row + 1, :, :lb[i]], d, lb[-1])[0]
        return out

    # ---- checkpoints ---------------------------------------------------------------------------

    def load_pretrained(self, ckpt: str | Path, load_last: bool = True, verbose: bool = True,
                        partial: bool = False) -> list[str]:
        """Load an encoder checkpoint (an original FE_e*.ckpt or one of ours); see `load_encoder_state`."""
        return load_encoder_state(self, ckpt, load_last=load_last, verbose=verbose, partial=partial)


def group_mean(x: torch.Tensor, d: int, n: int) -> torch.Tensor:
    """Means of the first n non-overlapping groups of d frames (a reshape: faster than avg_pool1d)."""
    return x[..., :n * d].reshape(*x.shape[:-1], n, d).mean(-1)


def pool_mode(y: torch.Tensor, mode: str | None) -> torch.Tensor:
    """The original's utterance-mean post-processing options (see `WaveFe.forward`)."""
    if mode not in POOL_MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {POOL_MODES}")
    if mode is None:
        return y
    mean = y.mean(dim=-1, keepdim=True)
    normed = y - mean if mode in ("avg_norm", "avg_norm_concat") else y
    if mode == "avg_norm":
        return normed
    return torch.cat([normed, mean.expand_as(y)], dim=1)


def wf_builder(cfg: str | Path | dict[str, Any]) -> WaveFe:
    """Build the encoder from a config path (YAML or the original JSON) or a dict."""
    where = str(cfg) if not isinstance(cfg, dict) else "frontend config"
    if not isinstance(cfg, dict):
        cfg = load_config(cfg)
    if "name" in cfg:
        raise ConfigError(f"{where}: 'name'={cfg['name']!r} selects one of the original's research "
                          "encoders (asppRes, Resnet50, tdnn), which this toolkit does not include")
    check_keys(cfg, FRONTEND_KEYS, where)
    try:
        return WaveFe(**cfg)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from e
