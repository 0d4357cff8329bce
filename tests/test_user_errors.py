"""Bad input ends in one error line naming the file, utterance or option, never in a traceback."""
from __future__ import annotations

import errno
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from conftest import TINY_FE, make_data_dir, tiny_workers
from pase.asr.mlp import load_priors
from pase.bin import compute_stats, train
from pase.errors import PaseError
from pase.io import ArkScpWriter


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("errors")
    data = make_data_dir(root / "data", speakers=2, utts=2)
    (root / "fe.yaml").write_text(yaml.safe_dump(TINY_FE))
    (root / "workers.cfg").write_text(json.dumps(tiny_workers()))
    common = ["--train_data", str(data), "--net_cfg", str(root / "workers.cfg"), "--chunk_size", "8000",
              "--batch_size", "2", "--num_workers", "0"]
    compute_stats.main([*common, "--out_file", str(root / "stats.json"), "--max_batches", "2"])
    args = [*common, "--fe_cfg", str(root / "fe.yaml"), "--stats", str(root / "stats.json"),
            "--batches_per_epoch", "1", "--no_progress", "--tensorboard", "False", "--device", "cpu"]
    return root, data, args


def one_line_error(monkeypatch, capsys, cli, argv: list[str]) -> str:
    monkeypatch.setattr(sys, "argv", ["pase-x", *argv])
    with pytest.raises(SystemExit) as exc:
        cli()
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 1 and "Traceback" not in "\n".join(err)
    assert err[-1].startswith("pase-"), err
    return err[-1]


def test_fp16_on_cpu(setup, tmp_path, monkeypatch, capsys):
    _, _, args = setup
    line = one_line_error(monkeypatch, capsys, train.cli, [*args, "--save_path", str(tmp_path), "--amp", "fp16"])
    # the advice follows the CPU: bf16 where it is native, none where it would be emulated
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert "--amp fp16 needs a GPU" in line and f"--amp {'bf16' if native else 'none'} on this CPU" in line


def test_log_freq_zero(setup, tmp_path, monkeypatch, capsys):
    _, _, args = setup
    line = one_line_error(monkeypatch, capsys, train.cli, [*args, "--save_path", str(tmp_path), "--log_freq", "0"])
    assert "--log_freq 0: must be >= 1" in line


def test_emulated_bf16_warns_once_naming_the_option(caplog):
    """--amp bf16 / --bf16 on a CPU without native bfloat16 (AVX2-only: ~20x slower than fp32)
    warns, naming the option; with native kernels, and on a GPU, nothing is said."""
    from pase.models.precision import bf16_native, warn_if_bf16_emulated
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert bf16_native("cpu") == native and bf16_native("cuda")
    with caplog.at_level("WARNING", logger="pase.models.precision"):
        warn_if_bf16_emulated("cpu", "--amp bf16")
        warn_if_bf16_emulated("cuda:0", "--bf16")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == (0 if native else 1)
    assert all(m.startswith("--amp bf16: this CPU") and "no native bfloat16" in m for m in lines)


def test_truncated_state_and_missing_train_yaml(setup, tmp_path, monkeypatch, capsys):
    _, _, args = setup
    train.main([*args, "--save_path", str(tmp_path), "--epoch", "1"])
    state = tmp_path / "state.pt"
    state.write_bytes(state.read_bytes()[:1000])
    line = one_line_error(monkeypatch, capsys, train.cli, [*args, "--save_path", str(tmp_path), "--epoch", "2"])
    assert str(state) in line and "--no_continue" in line
    (tmp_path / "train.yaml").unlink()
    line = one_line_error(monkeypatch, capsys, train.cli, [*args, "--save_path", str(tmp_path), "--epoch", "2"])
    assert "state.pt without its train.yaml" in line and "--no_continue" in line


def test_nan_audio_names_the_utterance(setup, tmp_path, monkeypatch, capsys):
    root, data, args = setup
    bad = make_data_dir(tmp_path / "bad", speakers=2, utts=2)
    utt, path = (bad / "wav.scp").read_text().splitlines()[0].split()
    wav, sr = sf.read(path, dtype="float32")
    wav[100:200] = np.nan
    sf.write(path, wav, sr, subtype="FLOAT")
    argv = [a if a != str(data) else str(bad) for a in args]
    line = one_line_error(monkeypatch, capsys, train.cli, [*argv, "--save_path", str(tmp_path / "exp"),
                                                           "--batches_per_epoch", "4"])
    assert utt in line and "non-finite" in line


def test_disk_full_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    import kaldiio

    def full(*_, **__):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(kaldiio, "save_ark", full)
    ark, scp = tmp_path / "feats.ark", tmp_path / "feats.scp"
    with pytest.raises(OSError) as exc:
        with ArkScpWriter(ark, scp) as w:
            w.write("u1", np.zeros((3, 2), dtype=np.float32))
    assert exc.value.filename == str(ark) and exc.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def test_object_array_priors(tmp_path):
    path = tmp_path / "log_priors.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(PaseError, match="not a log-prior vector"):
        load_priors(path, 3)
    np.save(path, np.zeros(2))
    with pytest.raises(PaseError, match="expected 3 finite log-priors"):
        load_priors(path, 3)
    np.save(path, np.log(np.full(3, 1 / 3)))
    assert load_priors(Path(path), 3).shape == (3,)
