"""Shared fixtures: small synthetic corpora as Kaldi data dirs, tiny model configs."""
from pathlib import Path

import copy
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

TINY_FE = {"kwidths": [251, 20, 11, 11, 11, 11, 11, 11], "strides": [1, 10, 2, 1, 2, 1, 2, 2],
           "fmaps": [8, 8, 16, 16, 32, 32, 64, 64], "emb_dim": 32, "rnn_pool": True, "rnn_dim": 32,
           "denseskips": True, "norm_out": True}


def recipe_tree(root: Path) -> dict[str, str]:
    """A copy of egs/ under `root` (the recipes run in place, Kaldi-style) with tools, pase and
    utils linked to this checkout; returns the environment to run its scripts in."""
    repo = Path(__file__).resolve().parents[1]
    for name in ("tools", "pase", "utils", "setup.py", "README.md"):
        (root / name).symlink_to(repo / name)
    shutil.copytree(repo / "egs", root / "egs", symlinks=True,
                    ignore=shutil.ignore_patterns("data", "exp", "dump", "work"))
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def tiny_workers() -> dict:
    """workers+.cfg with small hidden layers and decoder, every worker kind kept."""
    from pase.config import load_config
    cfg = copy.deepcopy(load_config("cfg/workers/workers+.cfg"))
    for w in cfg["regr"] + cfg["cls"]:
        w["hidden_size"] = 16
        if w.get("type") == "decoder":
            w["fmaps"] = [16, 16, 8]
    return cfg


def harmonic_speech(seconds: float, f0: float, rng: np.random.Generator, sr: int = 16000,
                    formant: float = 600.0) -> np.ndarray:
    """Voiced/unvoiced alternation with a gliding f0 and a formant-like harmonic envelope."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f = f0 * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    x = sum(np.sin(k * phase) * np.exp(-((k * f0 - formant) / 600) ** 2) for k in range(1, 25))
    voiced = (np.sin(2 * np.pi * rng.uniform(2, 4) * t + rng.uniform(0, 6)) > -0.3).astype(float)
    x = x * voiced + 0.05 * rng.standard_normal(n) * (1 - voiced)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def make_data_dir(root: Path, speakers: int = 3, utts: int = 3, seconds=(1.0, 2.0), seed: int = 0) -> Path:
    """WAV files plus wav.scp/utt2spk/spk2utt/text for `speakers` x `utts` utterances."""
    rng = np.random.default_rng(seed)
    wavdir, data = root / "wav", root / "data"
    wavdir.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    wav_scp, utt2spk = [], []
    for s in range(speakers):
        spk = f"spk{s}"
        f0, formant = 100 + 70 * s, 400 + 250 * s  # speaker identity: pitch and timbre
        for u in range(utts):
            utt = f"{spk}-utt{u}"
            path = wavdir / f"{utt}.wav"
            sf.write(path, harmonic_speech(rng.uniform(*seconds), f0, rng, formant=formant), 16000)
            wav_scp.append(f"{utt} {path}")
            utt2spk.append(f"{utt} {spk}")
    (data / "wav.scp").write_text("\n".join(wav_scp) + "\n")
    (data / "utt2spk").write_text("\n".join(utt2spk) + "\n")
    spk2utt = [f"spk{s} " + " ".join(f"spk{s}-utt{u}" for u in range(utts)) for s in range(speakers)]
    (data / "spk2utt").write_text("\n".join(spk2utt) + "\n")
    return data


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    return make_data_dir(tmp_path_factory.mktemp("tiny_corpus"))


def small_timit(root: Path):
    """A small synthetic TIMIT prepared under `root` (6/2/2 speakers x 4 utterances): its phone
    lang, the train data dir and the train texts as word-id sequences (the GMM tests' setup)."""
    from pase.asr.lang import make_lang
    from pase.io import DataDir
    from pase.prep.timit import prepare_timit, standard_phone_map
    from pase.synth.timit import make_timit
    make_timit(root, n_train_speakers=6, n_dev_speakers=2, n_test_speakers=2, utts_per_speaker=4,
               seed=0, jobs=1)
    prepare_timit(root / "TIMIT", root / "data", allow_missing_speakers=True)
    lang = make_lang(sorted({p for p in standard_phone_map()[0].values() if p}), root / "lang")
    train = DataDir.load(root / "data" / "train")
    return lang, train, {u: lang.word_seq_ids(t.split()) for u, t in train.text.items()}
