"""Quasi-recurrent network layer (fo-pooling, window 2), pure PyTorch.

Replaces salesforce's torchqrnn, which needs cupy/pynvrtc and breaks on PyTorch >= 1.5. The
projection over all time steps is one matmul; only the elementwise recurrence
c_t = f_t * z_t + (1 - f_t) * c_{t-1} is sequential. It runs as a custom autograd function whose
forward and backward are each a single loop of fused multiply-adds, so training does not record
a T-long autograd graph. The recurrence always runs in float32, also under bf16/fp16 autocast,
to keep long utterances from drifting.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable


class _LinearScan(torch.autograd.Function):
    """c_t = a_t * c_{t-1} + b_t with c_{-1} = 0, over dim 0 (time)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        c = torch.empty_like(b)
        prev = torch.zeros_like(b[0])
        for t in range(b.size(0)):
            prev = torch.addcmul(b[t], a[t], prev)
            c[t] = prev
        ctx.save_for_backward(a, c)
        return c

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        a, c = ctx.saved_tensors
        grad_b = torch.empty_like(grad_c)
        # d_t = g_t + a_{t+1} * d_{t+1}, run backwards in time.
        acc = grad_c[-1].clone()
        grad_b[-1] = acc
        for t in range(grad_c.size(0) - 2, -1, -1):
            acc = torch.addcmul(grad_c[t], a[t + 1], acc)
            grad_b[t] = acc
        grad_a = torch.zeros_like(grad_b)
        grad_a[1:] = grad_b[1:] * c[:-1]
        return grad_a, grad_b


def linear_scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve c_t = a_t * c_{t-1} + b_t (c_{-1} = 0) along dim 0."""
    return _LinearScan.apply(a, b)


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
        prev = torch.cat([torch.zeros_like(x[:1]), x[:-1]], dim=0)
        gates = self.linear(torch.cat([x, prev], dim=-1))
        gates = gates.to(torch.promote_types(gates.dtype, torch.float32))
        z, f, o = gates.chunk(3, dim=-1)
        f = torch.sigmoid(f)
        c = linear_scan(1.0 - f, f * torch.tanh(z))
        return (torch.sigmoid(o) * c).to(x.dtype)


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
