"""Few-shot linear probes of frozen representations (pase-probe)."""
from pase.probe.features import EncoderSpec
from pase.probe.run import ProbeOptions, format_table, run_probe

__all__ = ["EncoderSpec", "ProbeOptions", "format_table", "run_probe"]
