"""Self-supervised regression targets of the PASE / PASE+ workers, batched in torch.

`build_target(name, cfg)` turns a worker's original `transform` sub-dict into a `Target`
module mapping clean 16 kHz waveforms (B, T) to float32 (B, dim, T // hop) on the input's
device. `TargetBank` builds all of a config's workers and shares work between them.

Every target lives on ONE frame grid: frame t is centred on sample hop * t (centre=True framing,
reflect padding so edge frames exist). The original's lps / mfcc / prosody already did that, but
its fbank (python_speech_features) and gtn (gammatone) frames started at hop * t, i.e. were
shifted by +win / 2 (12.5 ms to 64 ms), and were replicate-padded at the end to T // hop: a quirk
fixed here. Other deviations from the original, each documented in its module: deltas are
torchaudio's regression deltas (not librosa's Savitzky-Golay), fbank triangles are continuous
rather than snapped to FFT bins, F0 comes from a batched YIN tracker instead of SWIPE, and the
voiced flag is not zeroed on the last voiced frame before a gap.
"""
from __future__ import annotations

import torch
from torch import nn

from pase.targets.base import Target, append_deltas, check_waveform
from pase.targets.gammatone import Gammatonegram
from pase.targets.prosody import Prosody, interpolate_log_f0, yin_f0
from pase.targets.spectral import MFCC, LogMelFbank, LogPowerSpectrum

__all__ = ["TARGET_NAMES", "Target", "TargetBank", "append_deltas", "build_target",
           "interpolate_log_f0", "yin_f0"]

TARGET_NAMES = ("lps", "lps_long", "fbank", "fbank_long", "gtn", "gtn_long", "mfcc",
                "mfcc_long", "prosody")

# PASE+ defaults (cfg/workers/workers+.cfg); PASE v1 configs override der_order / order.
_DEFAULTS: dict[str, dict] = {
    "lps": {"n_fft": 2048, "win": 400, "der_order": 2},
    "lps_long": {"n_fft": 2048, "win": 512, "der_order": 2},
    "fbank": {"n_fft": 512, "win": 400, "n_filters": 40, "f_min": 0.0, "der_order": 2},
    "fbank_long": {"n_fft": 1024, "win": 1024, "n_filters": 40, "f_min": 0.0, "der_order": 2},
    "gtn": {"win": 400, "n_filters": 40, "f_min": 500.0, "der_order": 2},
    "gtn_long": {"win": 2048, "n_filters": 40, "f_min": 500.0, "der_order": 2},
    "mfcc": {"win": 400, "order": 13, "der_order": 2},
    "mfcc_long": {"win": 2048, "order": 20, "der_order": 2},
    "prosody": {"win": 320, "der_order": 2},
}


def _resolve_cfg(name: str, cfg: dict | None, hop: int) -> dict:
    """Defaults updated by `cfg`, with key, alias and value checks."""
    params = dict(_DEFAULTS[name])
    allowed = set(params) | {"hop"} | ({"nfilt"} if "n_filters" in params else set())
    given = dict(cfg or {})
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise ValueError(f"unknown transform key(s) {unknown} for target {name!r}; "
                         f"allowed: {sorted(allowed)}")
    if "hop" in given and given.pop("hop") != hop:
        raise ValueError(f"target {name!r}: transform hop {cfg['hop']} differs from hop {hop}")
    if "nfilt" in given:
        nfilt = given.pop("nfilt")
        if given.setdefault("n_filters", nfilt) != nfilt:
            raise ValueError(f"target {name!r}: n_filters {given['n_filters']} and nfilt {nfilt} "
                             "disagree")
    params.update(given)
    if params["der_order"] not in (0, 1, 2):
        raise ValueError(f"target {name!r}: der_order must be 0, 1 or 2, got {params['der_order']}")
    for key in ("win", "n_fft", "n_filters", "order"):
        if key in params and (not isinstance(params[key], int) or params[key] < 1):
            raise ValueError(f"target {name!r}: {key} must be a positive int, got {params[key]!r}")
    if params.get("n_fft", params["win"]) < params["win"]:
        raise ValueError(f"target {name!r}: win {params['win']} exceeds n_fft {params['n_fft']}")
    return params


def build_target(name: str, cfg: dict | None = None, *, hop: int = 160,
                 sample_rate: int = 16000) -> Target:
    """Build the target module of worker `name` from its original `transform` dict.

    Accepted keys depend on the target: win, n_fft (lps, fbank), der_order, order (mfcc),
    n_filters / nfilt and f_min (fbank, gtn), hop (must equal `hop`).
    """
    if name not in _DEFAULTS:
        raise ValueError(f"unknown target {name!r}; known targets: {list(TARGET_NAMES)}")
    p = _resolve_cfg(name, cfg, hop)
    common = {"der_order": p["der_order"], "hop": hop, "sample_rate": sample_rate}
    if name.startswith("lps"):
        return LogPowerSpectrum(name, p["n_fft"], p["win"], **common)
    if name.startswith("fbank"):
        if not 0.0 <= p["f_min"] < sample_rate / 2:
            raise ValueError(f"target {name!r}: f_min must lie in [0, {sample_rate / 2})")
        return LogMelFbank(name, p["n_fft"], p["win"], p["n_filters"], p["f_min"], **common)
    if name.startswith("gtn"):
        if not 0.0 < p["f_min"] < sample_rate / 2:
            raise ValueError(f"target {name!r}: f_min must lie in (0, {sample_rate / 2})")
        return Gammatonegram(name, p["win"], p["n_filters"], p["f_min"], **common)
    if name.startswith("mfcc"):
        return MFCC(name, p["win"], p["order"], **common)
    return Prosody(name, p["win"], **common)


class TargetBank(nn.Module):
    """One `Target` per worker; `forward(wav)` returns {name: (B, dim, T // hop)}.

    Inputs are validated once, and one cache per call lets targets share intermediate results
    (gtn and gtn_long reuse a single gammatone filtering).
    """

    def __init__(self, specs: dict[str, dict | None], hop: int = 160,
                 sample_rate: int = 16000) -> None:
        super().__init__()
        self.targets = nn.ModuleDict({name: build_target(name, cfg, hop=hop,
                                                         sample_rate=sample_rate)
                                      for name, cfg in specs.items()})

    @property
    def dims(self) -> dict[str, int]:
        return {name: target.dim for name, target in self.targets.items()}

    def forward(self, wav: torch.Tensor) -> dict[str, torch.Tensor]:
        wav = check_waveform(wav)
        cache: dict = {}
        return {name: target.features(wav, cache) for name, target in self.targets.items()}
