"""Statistics, LR schedules, the training loop: losses fall, exact resume, non-finite handling, DDP."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import TINY_FE, tiny_workers
from pase.bin.compute_stats import main as stats_main
from pase.bin.train import main as train_main
from pase.config import load_config
from pase.data import ChunkDataset, EpochSampler, make_loader
from pase.io import DataDir
from pase.models import wf_builder
from pase.models.workers import target_specs
from pase.targets import TargetBank
from pase.train.model import PaseModel
from pase.train.schedule import fe_factor, lr_factor
from pase.train.stats import StatsError, compute_stats, load_stats, save_stats
from pase.train.trainer import Trainer, TrainingError, TrainOptions

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cfg_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cfg")
    (d / "fe.yaml").write_text(yaml.safe_dump(TINY_FE))
    (d / "workers.cfg").write_text(json.dumps(tiny_workers()))
    return d / "fe.yaml", d / "workers.cfg"


@pytest.fixture(scope="module")
def stats_file(tiny_corpus, cfg_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("stats") / "stats.json"
    stats_main(["--train_data", str(tiny_corpus), "--net_cfg", str(cfg_files[1]), "--out_file", str(out),
                "--chunk_size", "8000", "--batch_size", "4", "--max_batches", "3", "--num_workers", "0"])
    return out


def test_lr_schedules():
    kw = dict(steps_per_epoch=10)
    assert lr_factor("poly", 0, 100, **kw) == 1.0
    assert lr_factor("poly", 50, 100, **kw) == pytest.approx(0.5 ** 0.9)
    assert lr_factor("cos", 50, 100, **kw) == pytest.approx(0.5)
    assert lr_factor("step", 29, 1000, lrdec_step=3, lrdecay=0.5, **kw) == 1.0  # epoch 2
    assert lr_factor("step", 30, 1000, lrdec_step=3, lrdecay=0.5, **kw) == 0.5  # epoch 3
    assert lr_factor("step", 65, 1000, lrdec_step=3, lrdecay=0.5, **kw) == 0.25
    assert lr_factor("constant", 7, 10, warmup=10, **kw) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="unknown lr_mode"):
        lr_factor("linear", 0, 10, **kw)


def test_encoder_freeze_then_warmup_factor():
    assert [fe_factor(s, freeze_steps=2, warmup_steps=4) for s in range(8)] == [0, 0, .25, .5, .75, 1, 1, 1]
    assert fe_factor(0) == 1.0 and fe_factor(3, warmup_steps=4) == 1.0


def test_encoder_frozen_while_workers_learn(tiny_corpus, cfg_files, stats_file, tmp_path):
    """--fe_freeze_steps: the encoder's weights stay bit-identical while every worker moves; after
    the freeze the encoder trains at the (warmed-up) LR."""
    model = build_model(cfg_files, stats_file)
    ds = ChunkDataset(DataDir.load(tiny_corpus), 8000, seed=1)
    loader = make_loader(ds, EpochSampler(len(ds), batches_per_epoch=5, batch_size=4, seed=1), 4, 0)
    opts = TrainOptions(epochs=1, batches_per_epoch=5, lr_mode="constant", fe_freeze_steps=3,
                        fe_warmup_steps=2, tensorboard=False, progress=False)
    trainer = Trainer(model, opts, tmp_path, torch.device("cpu"))
    params = lambda m: {k: v.detach().clone() for k, v in m.named_parameters()}
    fe0, w0 = params(model.encoder), {w.name: params(w) for w in model.workers()}
    batches = iter(loader)
    for _ in range(3):
        trainer.train_step(next(batches))
    assert all(torch.equal(v, model.encoder.get_parameter(k)) for k, v in fe0.items())
    for w in model.workers():
        assert any(not torch.equal(v, w.get_parameter(k)) for k, v in w0[w.name].items()), w.name
    trainer.train_step(next(batches))
    assert trainer.fe_lr_now == pytest.approx(opts.fe_lr * 0.5)
    assert any(not torch.equal(v, model.encoder.get_parameter(k)) for k, v in fe0.items())


def test_stats_match_direct_computation(tiny_corpus, cfg_files):
    bank = TargetBank(target_specs(load_config(cfg_files[1])))
    ds = ChunkDataset(DataDir.load(tiny_corpus), 8000, context=False, seed=5)
    loader = make_loader(ds, EpochSampler(len(ds), batches_per_epoch=3, batch_size=4, seed=5), 4, 0)
    wavs = [b["chunk"][:, 0] for b in loader]
    stats = compute_stats(iter(wavs), bank, 3)
    with torch.no_grad():
        allt = [bank(w) for w in wavs]
    for name in bank.dims:
        cat = torch.cat([t[name] for t in allt], 0).permute(1, 0, 2).reshape(bank.dims[name], -1).double()
        mean, std = stats[name]
        assert torch.allclose(mean.double(), cat.mean(1), rtol=1e-4, atol=1e-4), name
        assert torch.allclose(std.double(), cat.std(1, unbiased=False), rtol=1e-3, atol=1e-4), name


def test_stats_file_roundtrip_and_errors(tmp_path):
    stats = {"fbank": (torch.randn(120), torch.rand(120) + 0.1), "mfcc": (torch.zeros(39), torch.zeros(39))}
    save_stats(tmp_path / "s.json", stats, chunk_size=32000)
    back = load_stats(tmp_path / "s.json", {"fbank": 120, "mfcc": 39})
    assert torch.allclose(back["fbank"][0], stats["fbank"][0])
    assert (back["mfcc"][1] > 0).all()  # constant dims floored, never divide by zero
    with pytest.raises(StatsError, match="no statistics for worker 'lps'"):
        load_stats(tmp_path / "s.json", {"lps": 3075})
    with pytest.raises(StatsError, match="'fbank' has 120 dims but the target has 40"):
        load_stats(tmp_path / "s.json", {"fbank": 40})
    (tmp_path / "bad.json").write_text("[1, 2")
    with pytest.raises(StatsError, match="bad.json"):
        load_stats(tmp_path / "bad.json", {"fbank": 120})
    with pytest.raises(StatsError, match="not found"):
        load_stats(tmp_path / "none.json", {"fbank": 120})


def build_model(cfg_files, stats_file):
    torch.manual_seed(0)
    return PaseModel.build(cfg_files[0], cfg_files[1], stats_file)


@pytest.mark.parametrize("kind,steps", [("regr", 40), ("cls", 80)])
def test_every_worker_loss_falls(kind, steps, tiny_corpus, cfg_files, stats_file, tmp_path):
    """Each worker learns. The discriminators train apart from the regressors: with all twelve,
    the regression gradients dominate the tiny encoder for the first hundred steps."""
    torch.manual_seed(0)
    wcfg = {kind: load_config(cfg_files[1])[kind]}
    if kind == "cls":
        wcfg["cls"].append({"name": "spc", "hidden_size": 16})
    model = PaseModel.build(cfg_files[0], wcfg, stats_file)
    ds = ChunkDataset(DataDir.load(tiny_corpus), 8000, seed=1)
    loader = make_loader(ds, EpochSampler(len(ds), batches_per_epoch=steps, batch_size=6, seed=1), 6, 0)
    opts = TrainOptions(epochs=1, batches_per_epoch=steps, fe_lr=2e-3, min_lr=2e-3, lr_mode="constant",
                        tensorboard=False, progress=False)
    trainer = Trainer(model, opts, tmp_path, torch.device("cpu"))
    curves = [trainer.train_step(b) for b in loader]
    for name in model.worker_names:
        first = np.mean([c[name] for c in curves[:10]])
        last = np.mean([c[name] for c in curves[-10:]])
        assert last < first, f"{name}: {first:.4f} -> {last:.4f}"


def run_train(corpus, cfg_files, stats_file, save, *extra):
    return train_main(["--train_data", str(corpus), "--fe_cfg", str(cfg_files[0]), "--net_cfg", str(cfg_files[1]),
                       "--stats", str(stats_file), "--save_path", str(save), "--chunk_size", "8000",
                       "--batch_size", "4", "--batches_per_epoch", "3", "--num_workers", "0",
                       "--no_progress", "--log_freq", "1", *extra])


def test_exact_resume(tiny_corpus, cfg_files, stats_file, tmp_path, monkeypatch):
    run_train(tiny_corpus, cfg_files, stats_file, tmp_path / "straight", "--epoch", "2")
    save = Trainer.save_epoch

    def save_then_die(self, epoch):  # the process is killed right after epoch 0's checkpoint
        save(self, epoch)
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "save_epoch", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_train(tiny_corpus, cfg_files, stats_file, tmp_path / "resumed", "--epoch", "2")
    monkeypatch.undo()
    first = torch.load(tmp_path / "resumed" / "FE_e0.ckpt", weights_only=True)
    assert not (tmp_path / "resumed" / "FE_e1.ckpt").exists()
    run_train(tiny_corpus, cfg_files, stats_file, tmp_path / "resumed", "--epoch", "2")  # resumes epoch 1
    a = torch.load(tmp_path / "straight" / "FE_e1.ckpt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "FE_e1.ckpt", weights_only=True)
    assert list(a) == list(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], first[k]) for k in a)  # it did train in between
    wa = torch.load(tmp_path / "straight" / "workers_e1.ckpt", weights_only=True)
    wb = torch.load(tmp_path / "resumed" / "workers_e1.ckpt", weights_only=True)
    assert all(torch.equal(wa[n][k], wb[n][k]) for n in wa for k in wa[n])
    # FE_e<N>.ckpt is a raw encoder state_dict: the original's loader path reads it.
    enc = wf_builder(cfg_files[0])
    assert len(enc.load_pretrained(tmp_path / "straight" / "FE_e1.ckpt")) == len(enc.state_dict())
    events = list((tmp_path / "straight" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_resume_refuses_a_changed_setup(tiny_corpus, cfg_files, stats_file, tmp_path):
    run_train(tiny_corpus, cfg_files, stats_file, tmp_path, "--epoch", "1")
    from pase.config import ConfigError
    with pytest.raises(ConfigError, match="cannot resume, batch_size changed"):
        train_main(["--train_data", str(tiny_corpus), "--fe_cfg", str(cfg_files[0]), "--net_cfg", str(cfg_files[1]),
                    "--stats", str(stats_file), "--save_path", str(tmp_path), "--chunk_size", "8000",
                    "--batch_size", "2", "--batches_per_epoch", "3", "--num_workers", "0", "--epoch", "2"])


def test_nonfinite_losses_skip_then_stop(tiny_corpus, cfg_files, stats_file, tmp_path):
    model = build_model(cfg_files, stats_file)
    ds = ChunkDataset(DataDir.load(tiny_corpus), 8000, seed=1)
    loader = make_loader(ds, EpochSampler(len(ds), batches_per_epoch=5, batch_size=2, seed=1), 2, 0)
    trainer = Trainer(model, TrainOptions(epochs=1, batches_per_epoch=5, max_nonfinite=3, tensorboard=False,
                                          progress=False), tmp_path, torch.device("cpu"))
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    fbank = next(w for w in model.regression if w.name == "fbank")
    fbank.loss = lambda pred, target: pred.sum() * float("nan")
    batches = iter(loader)
    assert trainer.train_step(next(batches)) is None and trainer.train_step(next(batches)) is None
    assert all(torch.equal(before[k], v) for k, v in model.encoder.state_dict().items())  # no update
    with pytest.raises(TrainingError, match="3 non-finite losses in a row.*fbank"):
        trainer.train_step(next(batches))


@pytest.mark.slow
def test_ddp_two_processes_identical_weights(tiny_corpus, cfg_files, stats_file, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(
        "import os, sys, torch\n"
        "from pase.bin.train import main\n"
        "trainer = main(sys.argv[1:])\n"
        "torch.save(trainer.model.state_dict(), f'{os.environ[\"SAVE\"]}/rank{os.environ[\"RANK\"]}.pt')\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), SAVE=str(tmp_path), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           str(script), "--train_data", str(tiny_corpus), "--fe_cfg", str(cfg_files[0]), "--net_cfg",
           str(cfg_files[1]), "--stats", str(stats_file), "--save_path", str(tmp_path / "exp"),
           "--chunk_size", "8000", "--batch_size", "2", "--batches_per_epoch", "2", "--epoch", "1",
           "--num_workers", "0", "--no_progress", "--device", "cpu", "--threads", "1"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    # Parameters are identical (gradients are all-reduced); BatchNorm running statistics are
    # per rank by design (rank 0's are broadcast at each forward and saved).
    init = dict(build_model(cfg_files, stats_file).named_parameters())
    assert all(torch.equal(a[k], b[k]) for k in init)
    assert not all(torch.equal(a[k], init[k]) for k in init)
    assert (tmp_path / "exp" / "FE_e0.ckpt").exists()


def test_training_with_distortions(tiny_corpus, cfg_files, stats_file, tmp_path):
    """--dtrans_cfg: the full PASE+ distortion set on simulated banks corrupts the anchor only."""
    from pase.bin.make_distortion_banks import main as banks_main
    banks_main([str(tmp_path / "banks"), "--rooms_per_type", "1", "--rirs_per_room", "2", "--num_noises", "2",
                "--num_overlap", "2", "--num_bandrop_filters", "2"])
    cfg = tmp_path / "banks" / "distortions.cfg"
    trainer = run_train(tiny_corpus, cfg_files, stats_file, tmp_path / "exp", "--epoch", "1", "--dtrans_cfg", str(cfg))
    assert trainer.model.distort is not None and (tmp_path / "exp" / "FE_e0.ckpt").exists()
    saved = yaml.safe_load((tmp_path / "exp" / "train.yaml").read_text())
    assert saved["run"]["dtrans_cfg"]["reverb_p"] == 0.5
    batch = {"chunk": torch.randn(8, 1, 8000) * 0.1}
    g = torch.Generator().manual_seed(0)
    out = trainer.model.distort(batch["chunk"], g)
    assert out.shape == batch["chunk"].shape and not torch.equal(out, batch["chunk"])


def test_best_epoch_rule_shared_by_asr_and_cls():
    from torch import nn
    from pase.train.schedule import BestEpoch
    model, best = nn.Linear(2, 1), BestEpoch()
    kept = []
    for err in (0.5, 0.3, 0.3, float("nan"), 0.4):
        with torch.no_grad():
            model.weight.add_(1.0)
        if best.update(err, model):
            kept.append(model.weight.detach().clone())
    assert len(kept) == 3 and best.err == 0.3  # the tie at 0.3 replaced the first 0.3; NaN and 0.4 did not
    best.restore(model)
    assert torch.equal(model.weight, kept[-1])
