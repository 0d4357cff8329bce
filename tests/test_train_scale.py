"""Training at scale: mid-epoch states and exact resume after kill -9 (1 and 2 ranks), gradient
accumulation, the encoder EMA, checkpoint averaging, per-phase timing in the log."""
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from conftest import TINY_FE, tiny_workers
from pase.bin.average_checkpoints import main as average_main
from pase.bin.compute_stats import main as stats_main
from pase.bin.train import main as train_main
from pase.data import ChunkDataset, EpochSampler, make_loader
from pase.io import DataDir
from pase.models import wf_builder
from pase.train.average import AverageError
from pase.train.model import PaseModel
from pase.train.trainer import Trainer, TrainingError, TrainOptions

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup(tiny_corpus, tmp_path_factory):
    d = tmp_path_factory.mktemp("scale")
    (d / "fe.yaml").write_text(yaml.safe_dump(TINY_FE))
    (d / "workers.cfg").write_text(json.dumps(tiny_workers()))
    stats_main(["--train_data", str(tiny_corpus), "--net_cfg", str(d / "workers.cfg"), "--out_file",
                str(d / "stats.json"), "--chunk_size", "8000", "--batch_size", "4", "--max_batches", "3",
                "--num_workers", "0"])
    return {"data": tiny_corpus, "fe": d / "fe.yaml", "workers": d / "workers.cfg", "stats": d / "stats.json"}


def train_args(setup, save: Path, *extra: str) -> list[str]:
    return ["--train_data", str(setup["data"]), "--fe_cfg", str(setup["fe"]), "--net_cfg", str(setup["workers"]),
            "--stats", str(setup["stats"]), "--save_path", str(save), "--chunk_size", "8000", "--batch_size", "2",
            "--no_progress", "--tensorboard", "False", *extra]


def assert_same_run(a: Path, b: Path, epoch: int) -> None:
    fa = torch.load(a / f"FE_e{epoch}.ckpt", weights_only=True)
    fb = torch.load(b / f"FE_e{epoch}.ckpt", weights_only=True)
    assert list(fa) == list(fb) and all(torch.equal(fa[k], fb[k]) for k in fa)
    wa = torch.load(a / f"workers_e{epoch}.ckpt", weights_only=True)
    wb = torch.load(b / f"workers_e{epoch}.ckpt", weights_only=True)
    assert all(torch.equal(wa[n][k], wb[n][k]) for n in wa for k in wa[n])
    ha, hb = (json.loads((p / "history.json").read_text()) for p in (a, b))
    losses = [[{k: v for k, v in r.items() if k.startswith("train_")} for r in h] for h in (ha, hb)]
    assert losses[0] == losses[1]  # the epoch means too: the running sums are in the state


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (torchrun starts its workers in their own sessions, so a
    process-group kill would leave them running)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def kill_when_state(cmd: list[str], save: Path, step: int, env: dict) -> subprocess.Popen:
    """Start `cmd` and SIGKILL it and all its descendants at once when states/state_s<step>.pt
    (or a later one) exists."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        states = [int(p.stem.split("_s")[1]) for p in (save / "states").glob("state_s*.pt")]
        if any(s >= step for s in states):
            for pid in descendants(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.wait()
            return proc
        if proc.poll() is not None:
            pytest.fail(f"the run ended (rc {proc.returncode}) before step {step}")
        time.sleep(0.01)
    for pid in descendants(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    pytest.fail("no mid-epoch state appeared")


def test_sampler_start_batch_is_the_epoch_tail():
    for world in (1, 2):
        for rank in range(world):
            s = EpochSampler(7, batches_per_epoch=5, batch_size=3, rank=rank, world_size=world, seed=4)
            s.set_epoch(2)
            full = list(s)
            s.set_epoch(2, start_batch=3)
            assert list(s) == full[9:] and len(s) == len(full) - 9
            s.set_epoch(3)
            assert len(list(s)) == 15
    with pytest.raises(ValueError, match="start_batch 6"):
        s.set_epoch(0, start_batch=6)


def test_kill9_mid_epoch_then_exact_resume(setup, tmp_path):
    """Killed (SIGKILL) after a mid-epoch state, rerun: the same weights and history as a run
    that never stopped. --save_every_steps itself does not change the run."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    straight = tmp_path / "straight"
    common = ["--epoch", "2", "--batches_per_epoch", "5", "--num_workers", "1", "--threads", "1"]
    train_main(train_args(setup, straight, *common))
    resumed = tmp_path / "resumed"
    cmd = [sys.executable, "-m", "pase.bin.train", *train_args(setup, resumed, *common, "--save_every_steps", "1",
                                                              "--keep_states", "2")]
    kill_when_state(cmd, resumed, 7, env)  # step 7 = batch 2 of epoch 1
    states = sorted((resumed / "states").glob("state_s*.pt"))
    assert 1 <= len(states) <= 2 and not list((resumed / "states").glob("*.tmp"))
    assert not (resumed / "FE_e1.ckpt").exists()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "resumed from" in out.stderr and "states/state_s" in out.stderr and "batch 0 " not in out.stderr
    assert_same_run(straight, resumed, 1)
    assert not list((resumed / "states").glob("state_s*.pt"))  # superseded by the epoch's state


def test_unreadable_newest_state_falls_back(setup, tmp_path, caplog):
    save = tmp_path / "exp"
    args = train_args(setup, save, "--batches_per_epoch", "4", "--num_workers", "0", "--save_every_steps", "1",
                      "--keep_states", "3", "--epoch", "1")
    train_main(args)
    states = save / "states"
    assert states.is_dir() and not list(states.glob("*.pt"))  # removed at the epoch end
    torch.save({"x": 1}, states / "state_s99.pt")  # newer by name: a foreign file, then a truncated one
    (states / "state_s100.pt").write_bytes(b"truncated")
    with caplog.at_level(logging.WARNING):
        trainer = train_main(args[:-1] + ["2"])
    assert "state_s100.pt: cannot be read to resume" in caplog.text
    assert "state_s99.pt: not a pase-train state" in caplog.text
    assert trainer.step == 8 and (save / "FE_e1.ckpt").exists()  # resumed from state.pt at step 4
    (save / "state.pt").write_bytes(b"truncated")
    with pytest.raises(TrainingError, match="state.pt: cannot be read to resume.*--no_continue"):
        train_main(args[:-1] + ["3"])


def test_a_new_state_outlives_skipped_newer_ones(setup, tmp_path):
    """After resuming past an unreadable newer state, the next mid-epoch save removes that one
    rather than itself (pruning keeps the newest --keep_states by step number)."""
    trainer = Trainer(no_norm_model(setup), TrainOptions(keep_states=1, tensorboard=False, progress=False),
                      tmp_path, torch.device("cpu"))
    (tmp_path / "states").mkdir()
    (tmp_path / "states" / "state_s100.pt").write_bytes(b"truncated")
    trainer.step = 5
    path = trainer.save_state()
    assert sorted((tmp_path / "states").iterdir()) == [path] and path.name == "state_s5.pt"
    assert torch.load(path, weights_only=True)["step"] == 5


def regression_model(setup) -> PaseModel:
    """The tiny encoder with the regression workers except cchunk."""
    torch.manual_seed(0)
    cfg = tiny_workers()
    return PaseModel.build(setup["fe"], {"regr": [w for w in cfg["regr"] if w["name"] != "cchunk"]}, setup["stats"])


def no_norm_model(setup) -> PaseModel:
    """The regression workers on an encoder without BatchNorm or dropout: the model whose
    N-micro-batch gradient must equal the full batch's."""
    model = regression_model(setup)
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(parent, name, nn.Identity())
            elif isinstance(child, nn.Dropout):
                child.p = 0.0
    return model


def test_validation_time_is_not_a_training_phase(setup, tmp_path):
    """A training step's phases are timed; the validation that follows (the model's forward marks
    'targets' there too) and the pause after it are not added to the next period's shares."""
    ds = ChunkDataset(DataDir.load(setup["data"]), 8000, seed=3)
    batch = next(iter(make_loader(ds, EpochSampler(len(ds), batches_per_epoch=1, batch_size=4, seed=3), 4, 0)))
    trainer = Trainer(regression_model(setup), TrainOptions(tensorboard=False, progress=False), tmp_path,
                      torch.device("cpu"))
    trainer.train_step(batch)
    phases = trainer.timer.take()
    assert set(phases) == {"targets", "forward", "backward", "step"}
    time.sleep(0.2)
    trainer.validate([batch])
    time.sleep(0.2)
    trainer.model.mark("targets")  # what the next forward would mark before its step starts the timer
    assert trainer.timer.take() == {}


def test_accumulation_equals_the_large_batch(setup, tmp_path):
    ds = ChunkDataset(DataDir.load(setup["data"]), 8000, seed=3)
    big = next(iter(make_loader(ds, EpochSampler(len(ds), batches_per_epoch=1, batch_size=8, seed=3), 8, 0)))
    halves = [{k: v[i:i + 4] if isinstance(v, torch.Tensor) else v[i:i + 4] for k, v in big.items()} for i in (0, 4)]
    opts = dict(epochs=1, batches_per_epoch=1, lr_mode="constant", tensorboard=False, progress=False)
    a, b = no_norm_model(setup), no_norm_model(setup)
    ta = Trainer(a, TrainOptions(**opts), tmp_path / "a", torch.device("cpu"))
    tb = Trainer(b, TrainOptions(**opts, accum_grad=2), tmp_path / "b", torch.device("cpu"))
    la, lb = ta.train_step(big), tb.train_step(halves)
    assert abs(la["total"] - lb["total"]) < 1e-5 * abs(la["total"])
    worst = 0.0
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        if pa.grad is None:
            continue
        err = (pa.grad - pb.grad).abs().max() / pa.grad.abs().max().clamp_min(1e-12)
        worst = max(worst, float(err))
    print(f"accumulation: max relative gradient difference {worst:.2e}")
    assert worst < 1e-4
    assert all(torch.allclose(pa, pb, atol=1e-6) for pa, pb in zip(a.parameters(), b.parameters()))
    # Without the 1/N scaling the accumulated gradient would be twice the batch's:
    assert not torch.allclose(next(a.encoder.parameters()).grad * 2, next(b.encoder.parameters()).grad)


def test_accum_grad_counts_optimiser_steps(setup, tmp_path):
    trainer = train_main(train_args(setup, tmp_path / "exp", "--epoch", "2", "--batches_per_epoch", "3",
                                    "--accum_grad", "2", "--num_workers", "0", "--lr_mode", "poly"))
    assert trainer.step == 6 and trainer.opts.batches_per_epoch == 3
    assert len(trainer.history) == 2
    with pytest.raises(Exception, match="accum_grad 0: must be >= 1"):
        train_main(train_args(setup, tmp_path / "bad", "--accum_grad", "0", "--num_workers", "0"))


def test_ema_of_the_encoder(setup, tmp_path):
    torch.manual_seed(0)
    model = PaseModel.build(setup["fe"], setup["workers"], setup["stats"])
    ds = ChunkDataset(DataDir.load(setup["data"]), 8000, seed=1)
    loader = make_loader(ds, EpochSampler(len(ds), batches_per_epoch=3, batch_size=2, seed=1), 2, 0)
    decay = 0.6
    trainer = Trainer(model, TrainOptions(epochs=1, batches_per_epoch=3, ema_decay=decay, tensorboard=False,
                                          progress=False), tmp_path, torch.device("cpu"))
    expected = {k: v.detach().clone() for k, v in model.encoder.named_parameters()}
    for batch in loader:
        trainer.train_step(batch)
        for k, v in model.encoder.named_parameters():
            expected[k] = decay * expected[k] + (1 - decay) * v.detach()
    ema = dict(trainer.ema.named_parameters())
    assert all(torch.allclose(ema[k], expected[k], atol=1e-6) for k in expected)
    assert not all(torch.equal(ema[k], dict(model.encoder.named_parameters())[k]) for k in expected)
    trainer.save_epoch(0)
    enc = wf_builder(setup["fe"])
    assert len(enc.load_pretrained(tmp_path / "FE_ema_e0.ckpt")) == len(enc.state_dict())
    assert torch.equal(dict(enc.named_parameters())[next(iter(expected))], ema[next(iter(expected))])
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    assert state["ema"] is not None  # resumes with the EMA
    trainer.history.append({"epoch": 0, "train_total": 1.0})
    trainer.save_epoch(0)
    from pase.bin.report import main as report_main
    report_main([str(tmp_path)])  # FE_ema_e0.ckpt beside FE_e0.ckpt: the last epoch checkpoint is FE_e0
    assert f"last encoder checkpoint: `{tmp_path / 'FE_e0.ckpt'}`" in (tmp_path / "RESULTS.md").read_text()
    with pytest.raises(TrainingError, match="ema_decay 1.0"):
        Trainer(model, TrainOptions(ema_decay=1.0, tensorboard=False), tmp_path, torch.device("cpu"))


def test_average_checkpoints(setup, tmp_path):
    save = tmp_path / "exp"
    train_main(train_args(setup, save, "--epoch", "3", "--batches_per_epoch", "2", "--num_workers", "0"))
    out = average_main([str(save), "--last", "2"])
    assert out == save / "FE_avg_last2.ckpt"
    avg = torch.load(out, weights_only=True)
    e1, e2 = (torch.load(save / f"FE_e{i}.ckpt", weights_only=True) for i in (1, 2))
    for k, v in avg.items():
        if v.is_floating_point():
            assert torch.allclose(v, (e1[k] + e2[k]) / 2, atol=1e-7), k
        else:
            assert torch.equal(v, e2[k]), k
    assert any("running_mean" in k for k in avg)
    enc = wf_builder(setup["fe"])
    assert len(enc.load_pretrained(out)) == len(enc.state_dict())
    history = json.loads((save / "history.json").read_text())
    best = min(history, key=lambda r: r["train_total"])["epoch"]
    one = torch.load(average_main([str(save), "--best", "1", "--out_file", str(tmp_path / "b.ckpt")]),
                     weights_only=True)
    ref = torch.load(save / f"FE_e{best}.ckpt", weights_only=True)
    assert all(torch.equal(one[k], ref[k]) for k in ref)
    # a diverged (NaN) epoch is never the best
    for r in history:
        r["train_total"] = float("nan") if r["epoch"] == best else r["train_total"]
    (save / "history.json").write_text(json.dumps(history))
    second = min((r for r in history if r["epoch"] != best), key=lambda r: r["train_total"])["epoch"]
    one = torch.load(average_main([str(save), "--best", "1", "--out_file", str(tmp_path / "b.ckpt")]),
                     weights_only=True)
    ref = torch.load(save / f"FE_e{second}.ckpt", weights_only=True)
    assert all(torch.equal(one[k], ref[k]) for k in ref)
    # the original Saver's {'step', 'state_dict', 'optimizer'} files (here with DDP's prefix) average too
    torch.save({"step": 1, "state_dict": {f"module.{k}": v for k, v in e1.items()}, "optimizer": {}},
               save / "FE_e1.ckpt")
    again = torch.load(average_main([str(save), "--last", "2"]), weights_only=True)
    assert all(torch.equal(again[k], avg[k]) for k in avg)
    with pytest.raises(AverageError, match="fewer than the 5 asked for"):
        average_main([str(save), "--last", "5"])
    with pytest.raises(AverageError, match="exactly one of"):
        average_main([str(save)])


def test_phase_times_in_the_log(setup, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="pase.train.trainer"):
        train_main(train_args(setup, tmp_path / "exp", "--epoch", "1", "--batches_per_epoch", "2",
                              "--num_workers", "0", "--log_freq", "1"))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert len(lines) == 2
    for line in lines:
        assert "s of audio per s" in line and "data wait" in line
        shares = [int(part.split()[1].rstrip("%")) for part in line.split("compute ")[1].split(", ")]
        assert len(shares) == 4 and 95 <= sum(shares) <= 105 and shares[1] > 0 and shares[2] > 0


@pytest.mark.slow
def test_kill9_two_ranks_then_exact_resume(setup, tmp_path):
    """The same with 2 gloo ranks under torchrun: the whole job is killed mid-epoch and rerun."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))

    def cmd(save: Path, port: int, *extra: str) -> list[str]:
        return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
                "-m", "pase.bin.train", *train_args(setup, save, "--epoch", "2", "--batches_per_epoch", "12",
                                                    "--num_workers", "0", "--device", "cpu", "--threads", "1",
                                                    *extra)]

    straight = tmp_path / "straight"
    out = subprocess.run(cmd(straight, 29531), env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    resumed = tmp_path / "resumed"
    kill_when_state(cmd(resumed, 29532, "--save_every_steps", "1"), resumed, 14, env)  # epoch 1, batch 2
    assert not (resumed / "FE_e1.ckpt").exists()
    out = subprocess.run(cmd(resumed, 29533, "--save_every_steps", "1"), env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    resumed_from = [line for line in out.stderr.splitlines() if "resumed from" in line]
    assert resumed_from and "states/state_s" in resumed_from[0], out.stderr[-3000:]
    assert_same_run(straight, resumed, 1)


def test_warmup_longer_than_the_run_is_warned(setup, tmp_path, caplog):
    model = PaseModel.build(setup["fe"], setup["workers"], setup["stats"])
    with caplog.at_level(logging.WARNING):
        Trainer(model, TrainOptions(epochs=2, batches_per_epoch=3, warmup_steps=6, tensorboard=False), tmp_path,
                torch.device("cpu"))
    assert "--warmup_steps 6 >= the run's 6 iterations" in caplog.text
