"""Encoder (SincConv, QRNN, PASE/PASE+ frontend), checkpoints."""
from pase.models.checkpoint import CheckpointError, load_encoder_state, read_state_dict
from pase.models.frontend import WaveFe, wf_builder

__all__ = ["CheckpointError", "WaveFe", "load_encoder_state", "read_state_dict", "wf_builder"]
