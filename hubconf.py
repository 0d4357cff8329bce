"""torch.hub entries for a local checkout (no downloads: pass a checkpoint path).

    torch.hub.load('/path/to/checkout', 'pase_plus', ckpt='exp/pase+/FE_e199.ckpt', source='local')

Each entry names the architecture it builds; `ckpt` may also be an experiment dir (its newest
FE_e<N>.ckpt). Without `ckpt` the encoder keeps its random initialisation.
"""
from pathlib import Path

from pase.hub import PASE_CFG, PASE_PLUS_CFG, load as _load
from pase.models.frontend import WaveFe as _WaveFe, wf_builder as _wf_builder

dependencies = ["torch", "yaml"]


def _entry(cfg: str, ckpt: str | Path | None, device: str) -> _WaveFe:
    if ckpt is None:
        return _wf_builder(cfg).eval().to(device)
    return _load(ckpt, device=device, fe_cfg=cfg)


def pase_plus(ckpt: str | Path | None = None, device: str = "cpu") -> _WaveFe:
    """PASE+ (cfg/frontend/PASE+.cfg: 256-d, QRNN, dense skips), eval mode."""
    return _entry(PASE_PLUS_CFG, ckpt, device)


def pase(ckpt: str | Path | None = None, device: str = "cpu") -> _WaveFe:
    """PASE (cfg/frontend/PASE.cfg: 100-d), eval mode."""
    return _entry(PASE_CFG, ckpt, device)
