"""pase.load and hubconf.py: checkpoint files, experiment dirs, configs, and the errors users see."""
import json
from pathlib import Path

import pytest
import torch
import yaml

import pase
from pase.errors import PaseError
from pase.models import wf_builder

from conftest import TINY_FE, tiny_workers

REPO = Path(__file__).resolve().parents[1]


def trained(cfg, seed: int):
    """An encoder with weights (and BatchNorm statistics) that differ from any fresh init."""
    torch.manual_seed(seed)
    enc = wf_builder(cfg)
    with torch.no_grad():
        enc.train()(torch.randn(2, 1, 4000))  # moves the running statistics off their defaults
    return enc.eval()


def same_outputs(a, b) -> bool:
    x = torch.randn(1, 1, 6000)
    with torch.no_grad():
        return torch.equal(a(x), b(x))


def experiment_dir(root: Path, epochs: dict[int, torch.nn.Module], cfg: dict) -> Path:
    """The layout pase-train leaves: FE_e<N>.ckpt per epoch and train.yaml with run.fe_cfg."""
    root.mkdir()
    for epoch, enc in epochs.items():
        torch.save(enc.state_dict(), root / f"FE_e{epoch}.ckpt")
    (root / "train.yaml").write_text(yaml.safe_dump({"run": {"fe_cfg": cfg, "seed": 0}, "args": {}}))
    return root


def test_experiment_dir_uses_train_yaml_and_newest_epoch(tmp_path):
    epochs = {2: trained(TINY_FE, 1), 10: trained(TINY_FE, 2), 9: trained(TINY_FE, 3)}
    exp = experiment_dir(tmp_path / "exp", epochs, wf_builder(TINY_FE).config)
    enc = pase.load(exp, device="cpu")
    assert not enc.training and enc.emb_dim == TINY_FE["emb_dim"]
    assert same_outputs(enc, epochs[10])  # e10 is newer than e9 (numeric, not lexical, order)
    # A checkpoint file of that dir finds the same train.yaml.
    assert same_outputs(pase.load(exp / "FE_e2.ckpt"), epochs[2])


def test_loads_what_pase_train_wrote(tiny_corpus, tmp_path):
    from pase.bin.compute_stats import main as stats_main
    from pase.bin.train import main as train_main
    (tmp_path / "fe.yaml").write_text(yaml.safe_dump(TINY_FE))
    (tmp_path / "workers.cfg").write_text(json.dumps(tiny_workers()))
    common = ["--train_data", str(tiny_corpus), "--net_cfg", str(tmp_path / "workers.cfg"),
              "--chunk_size", "8000", "--batch_size", "2", "--num_workers", "0"]
    stats_main([*common, "--out_file", str(tmp_path / "stats.json"), "--max_batches", "1"])
    train_main([*common, "--fe_cfg", str(tmp_path / "fe.yaml"), "--stats", str(tmp_path / "stats.json"),
                "--save_path", str(tmp_path / "exp"), "--batches_per_epoch", "1", "--epoch", "2",
                "--no_progress"])
    enc = pase.load(tmp_path / "exp")
    newest = torch.load(tmp_path / "exp" / "FE_e1.ckpt", weights_only=True)
    assert enc.config == wf_builder(TINY_FE).config
    assert all(torch.equal(v, newest[k]) for k, v in enc.state_dict().items())


def test_bare_checkpoint_gets_the_shipped_config_its_keys_name(tmp_path):
    v1 = trained("cfg/frontend/PASE.cfg", 4)
    torch.save(v1.state_dict(), tmp_path / "FE_e199.ckpt")
    enc = pase.load(tmp_path / "FE_e199.ckpt")
    assert enc.emb_dim == 100 and enc.rnn is None
    assert same_outputs(enc, v1)


def test_given_config_wins_over_train_yaml(tmp_path):
    v1 = trained("cfg/frontend/PASE.cfg", 5)
    exp = experiment_dir(tmp_path / "exp", {1: v1}, TINY_FE)  # a wrong train.yaml
    assert same_outputs(pase.load(exp, fe_cfg="cfg/frontend/PASE.cfg"), v1)


def one_line_error(*args, **kwargs) -> str:
    with pytest.raises(PaseError) as e:
        pase.load(*args, **kwargs)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_errors_are_one_line(tmp_path):
    assert "no such checkpoint file or experiment directory" in one_line_error(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    assert "no encoder checkpoint (FE_e<N>.ckpt)" in one_line_error(tmp_path / "empty")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    assert "not a readable PyTorch checkpoint" in one_line_error(tmp_path / "junk.ckpt")
    torch.save(trained("cfg/frontend/PASE.cfg", 6).state_dict(), tmp_path / "pase.ckpt")
    msg = one_line_error(tmp_path / "pase.ckpt", fe_cfg="cfg/frontend/PASE+.cfg")
    assert "does not fit the given fe_cfg" in msg and "missing (e.g. denseskips.0.weight)" in msg
    assert "PASE-like, emb_dim 100" in msg and "pass fe_cfg=" in msg
    exp = experiment_dir(tmp_path / "exp", {3: trained("cfg/frontend/PASE.cfg", 7)}, TINY_FE)
    assert f"does not fit {exp / 'train.yaml'}" in one_line_error(exp)


def test_torch_hub_entries_from_the_checkout(tmp_path):
    plus = trained("cfg/frontend/PASE+.cfg", 8)
    torch.save(plus.state_dict(), tmp_path / "FE_e199.ckpt")
    enc = torch.hub.load(str(REPO), "pase_plus", ckpt=tmp_path / "FE_e199.ckpt", source="local")
    assert not enc.training and same_outputs(enc, plus)
    fresh = torch.hub.load(str(REPO), "pase", source="local")  # random init, eval mode
    assert fresh.emb_dim == 100 and not fresh.training
    with pytest.raises(PaseError, match="does not fit the given fe_cfg"):
        torch.hub.load(str(REPO), "pase", ckpt=tmp_path / "FE_e199.ckpt", source="local")
