"""pase-speech (import pase): PASE / PASE+ self-supervised speech encoders with Kaldi-style recipes."""
from setuptools import find_packages, setup

setup(
    # The import package is `pase`; the PyPI name `pase` belongs to an unrelated project.
    name="pase-speech",
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
        "scikit-learn>=1.4",  # the linear probe (pase-probe)
        "webdataset==1.0.2",  # tar shards for streamed training (pase-make-shards); pure Python
        # Kaldi through its PyPI bindings, pinned together: kaldi-hmm-gmm 1.1.4 is built against
        # kaldifst 1.7.x; a newer kaldifst or kaldi-decoder breaks its FST arguments or hangs imports.
        "kaldi-hmm-gmm==1.1.4",
        "kaldifst==1.7.17",
        "kaldi-decoder==0.2.11",
        "kaldilm>=1.15",
        "kaldialign>=0.9",
    ],
    extras_require={
        # Test-only references: kaldi-native-io (an independent Kaldi-format reader), and the
        # libraries the original computed its targets with (compared against ours).
        "dev": ["pytest>=8", "kaldi-native-io>=1.22", "librosa>=0.10", "python_speech_features>=0.6",
                "praat-parselmouth>=0.4", "gammatone>=1.0", "scipy>=1.11", "lhotse>=1.20"],
        # Only for the codec2 distortion (codec2_p > 0 in a distortion cfg).
        "codec2": ["pycodec2>=4"],
    },
    entry_points={
        "console_scripts": [
            # pase.launch runs each under jemalloc when installed (see pase/launch.py).
            "pase-extract=pase.launch:extract",
            "pase-train=pase.launch:train",
            "pase-compute-stats=pase.launch:compute_stats",
            "pase-split-data=pase.launch:split_data",
            "pase-seed-data=pase.launch:seed_data",
            "pase-data-dir=pase.launch:data_dir",
            "pase-make-synthetic-corpus=pase.launch:make_synthetic_corpus",
            "pase-prep-librispeech=pase.launch:prep_librispeech",
            "pase-download-librispeech=pase.launch:download_librispeech",
            "pase-report=pase.launch:report",
            "pase-prepare-rirs=pase.launch:prepare_rirs",
            "pase-make-distortion-banks=pase.launch:make_distortion_banks",
            "pase-prep-timit=pase.launch:prep_timit",
            "pase-make-lang=pase.launch:make_lang",
            "pase-train-gmm=pase.launch:train_gmm",
            "pase-train-mlp=pase.launch:train_mlp",
            "pase-decode=pase.launch:decode",
            "pase-cls-train=pase.launch:cls_train",
            "pase-cls-eval=pase.launch:cls_eval",
            "pase-probe=pase.launch:probe",
            "pase-average-checkpoints=pase.launch:average_checkpoints",
            "pase-make-shards=pase.launch:make_shards",
        ],
    },
)
