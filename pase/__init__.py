"""pase: PASE and PASE+ self-supervised speech encoders with Kaldi-style recipes."""

__version__ = "0.1.0"
