"""pase: PASE / PASE+ self-supervised speech encoders with Kaldi-style recipes."""
from setuptools import find_packages, setup

setup(
    name="pase",
    version="0.1.0",
    description="PASE and PASE+ speech encoders: pretraining, Kaldi ark/scp feature dumps, recipes",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["pase", "pase.*"]),
    package_data={"pase": ["cfg/*/*.cfg", "cfg/*/*.yaml"]},
    install_requires=[
        # Pinned together: the PyPI builds are CUDA builds that also run on CPU.
        "torch==2.11.0",
        "torchaudio==2.11.0",
        "kaldiio>=2.18",
        "soundfile>=0.12",
        "numpy>=1.26",
        "pyyaml>=6.0",
        "tqdm>=4.66",
        "tensorboard>=2.16",
        "matplotlib>=3.8",
        "pyroomacoustics>=0.7",  # simulated room impulse responses for the distortion banks
    ],
    extras_require={
        # Test-only references: kaldi-native-io (an independent Kaldi-format reader), and the
        # libraries the original computed its targets with (compared against ours).
        "dev": ["pytest>=8", "kaldi-native-io>=1.22", "librosa>=0.10", "python_speech_features>=0.6",
                "praat-parselmouth>=0.4", "gammatone>=1.0", "scipy>=1.11", "lhotse>=1.20"],
        # torch 2.11 from PyPI is built against CUDA 13, hence the cuda13x CuPy build.
        "gpu": ["cupy-cuda13x"],
        # Only for the codec2 distortion (codec2_p > 0 in a distortion cfg).
        "codec2": ["pycodec2>=4"],
    },
    entry_points={
        "console_scripts": [
            "pase-extract=pase.bin.extract:cli",
            "pase-train=pase.bin.train:cli",
            "pase-compute-stats=pase.bin.compute_stats:cli",
            "pase-split-data=pase.bin.split_data:cli",
            "pase-data-dir=pase.bin.data_dir:cli",
            "pase-make-synthetic-corpus=pase.bin.make_synthetic_corpus:cli",
            "pase-prep-librispeech=pase.bin.prep_librispeech:cli",
            "pase-report=pase.bin.report:cli",
            "pase-prepare-rirs=pase.bin.prepare_rirs:cli",
            "pase-make-distortion-banks=pase.bin.make_distortion_banks:cli",
        ],
    },
)
