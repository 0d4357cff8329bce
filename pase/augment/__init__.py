"""Distortions of the anchor chunk for PASE+ pretraining (reverb, overlap, noise, clipping, codec2,
chop, band-drop, downsample), batched on the training device."""
from pase.augment.distortions import (CONFIG_KEYS, DISTORTIONS, Distortions, build_distortions)
from pase.augment.dsp import bandreject_fir, energy_vad, lowpass_fir, mix_at_snr

__all__ = ["CONFIG_KEYS", "DISTORTIONS", "Distortions", "bandreject_fir", "build_distortions",
           "energy_vad", "lowpass_fir", "mix_at_snr"]
