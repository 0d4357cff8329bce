"""Quasi-recurrent network layer (fo-pooling, window 2), pure PyTorch.

Replaces salesforce's torchqrnn, which needs cupy/pynvrtc and breaks on PyTorch >= 1.5. The
projection over all time steps is one matmul; only the elementwise recurrence
c_t = f_t * z_t + (1 - f_t) * c_{t-1} is sequential. It runs as a custom autograd function whose
forward and backward are each a single loop of fused multiply-adds, so training does not record
a T-long autograd graph. The recurrence always runs in float32, also under bf16/fp16 autocast,
to keep long utterances from drifting.

`forward_with_state` continues a sequence from a saved state (the previous input frame and cell
of every layer): encoding a long input piece by piece then gives the same output as one pass.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable


QRNNState = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: (last input frame, last cell)


class _LinearScan(torch.autograd.Function):
    """c_t = a_t * c_{t-1} + b_t with c_{-1} = c0, over dim 0 (time)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, c0: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        c = torch.empty_like(b)
        prev = c0
        for t in range(b.size(0)):
            prev = torch.addcmul(b[t], a[t], prev)
            c[t] = prev
        ctx.save_for_backward(a, c, c0)
        return c

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # type: ignore[override]
        a, c, c0 = ctx.saved_tensors
        grad_b = torch.empty_like(grad_c)
        # d_t = g_t + a_{t+1} * d_{t+1}, run backwards in time.
        acc = grad_c[-1].clone()
        grad_b[-1] = acc
        for t in range(grad_c.size(0) - 2, -1, -1):
            acc = torch.addcmul(grad_c[t], a[t + 1], acc)
            grad_b[t] = acc
        grad_a = torch.empty_like(grad_b)
        grad_a[0] = grad_b[0] * c0
        grad_a[1:] = grad_b[1:] * c[:-1]
        return grad_a, grad_b, grad_b[0] * a[0]


def linear_scan(a: torch.Tensor, b: torch.Tensor, c0: torch.Tensor | None = None) -> torch.Tensor:
    """Solve c_t = a_t * c_{t-1} + b_t along dim 0, from c_{-1} = c0 (default 0)."""
    return _LinearScan.apply(a, b, torch.zeros_like(b[0]) if c0 is None else c0)


class QRNNLayer(nn.Module):
    """One unidirectional QRNN layer with window 2 and output gate.

    Gates come from [x_t ; x_{t-1}] through `linear` (kept under that name so checkpoints use the
    original `rnn.layers.0.linear.*` keys), split in the order Z, F, O.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.linear = nn.Linear(2 * input_size, 3 * hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (T, B, input_size), time first. Returns h: (T, B, hidden_size)."""
        return self.forward_with_state(x)[0]

    def forward_with_state(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None,
                           ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Continue from `state` = (previous input frame, previous cell) (None: a sequence start).

        Returns (h, state after the last frame).
        """
        first = torch.zeros_like(x[:1]) if state is None else state[0].unsqueeze(0).to(x.dtype)
        prev = torch.cat([first, x[:-1]], dim=0)
        gates = self.linear(torch.cat([x, prev], dim=-1))
        gates = gates.to(torch.promote_types(gates.dtype, torch.float32))
        z, f, o = gates.chunk(3, dim=-1)
        f = torch.sigmoid(f)
        c = linear_scan(1.0 - f, f * torch.tanh(z), None if state is None else state[1].to(f.dtype))
        return (torch.sigmoid(o) * c).to(x.dtype), (x[-1].clone(), c[-1].clone())


class QRNN(nn.Module):
    """A stack of QRNN layers, time-first input (T, B, C)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            QRNNLayer(input_size if i == 0 else hidden_size, hidden_size) for i in range(num_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def forward_with_state(self, x: torch.Tensor, state: QRNNState | None = None) -> tuple[torch.Tensor, QRNNState]:
        """Like forward, continuing from `state` (see `QRNNLayer.forward_with_state`)."""
        out: QRNNState = []
        for i, layer in enumerate(self.layers):
            x, s = layer.forward_with_state(x, None if state is None else state[i])
            out.append(s)
        return x, out
