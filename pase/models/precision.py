"""Whether bfloat16 autocast is native on a device. On CPUs without AVX-512 BF16 or AMX, oneDNN
emulates bfloat16 and the encoder runs about 20x slower than in float32 (measured on an AVX2-only
AMD EPYC, torch 2.11: a PASE+ forward of 2 s takes 3.18 s instead of 0.14 s, a training step of
8 x 2 s about 300 s instead of 11 s), so asking for it there is almost always a mistake."""
from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


def bf16_native(device: torch.device | str) -> bool:
    """False on a CPU whose oneDNN has no native bfloat16 kernels; True on GPUs and other CPUs."""
    return torch.device(device).type != "cpu" or bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def warn_if_bf16_emulated(device: torch.device | str, option: str) -> None:
    """One warning naming `option` when bfloat16 would be emulated on `device`."""
    if not bf16_native(device):
        log.warning("%s: this CPU (%s) has no native bfloat16 (no AVX-512 BF16 or AMX), so autocast "
                    "emulates it and runs about 20x slower than float32; leave it off here",
                    option, torch.backends.cpu.get_cpu_capability())
