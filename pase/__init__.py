"""pase: PASE and PASE+ self-supervised speech encoders with Kaldi-style recipes."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`pase.load` (see pase.hub), imported on first use so `import pase` stays free of torch."""
    if name == "load":
        from pase.hub import load
        return load
    raise AttributeError(f"module 'pase' has no attribute {name!r}")
