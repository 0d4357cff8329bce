"""Validation totals are training totals: the same loss weights, on the same batch and weights."""
import pytest
import torch

from conftest import TINY_FE, tiny_workers
from pase.data import ChunkDataset, EpochSampler, make_loader
from pase.io import DataDir
from pase.models import wf_builder
from pase.models.workers import build_workers, target_specs
from pase.targets import TargetBank
from pase.train.model import PaseModel
from pase.train.stats import compute_stats
from pase.train.trainer import Trainer, TrainOptions

# Two regression workers and a discriminator, weighted apart so that a total that drops or
# mixes up the weights cannot come out right by chance.
WEIGHTS = {"fbank": 0.5, "mfcc": 2.0, "mi": 3.0}


def weighted_model(batch: dict) -> PaseModel:
    cfg = tiny_workers()
    cfg = {kind: [dict(w, loss_weight=WEIGHTS[w["name"]]) for w in cfg[kind] if w["name"] in WEIGHTS]
           for kind in ("regr", "cls")}
    torch.manual_seed(0)
    encoder = wf_builder(dict(TINY_FE))
    bank = TargetBank(target_specs(cfg))
    regr, cls = build_workers(cfg, encoder.emb_dim, bank.dims)
    stats = compute_stats(iter([batch["chunk"][:, 0]]), bank, 1)
    return PaseModel(encoder, regr, cls, bank, stats)


def test_validation_total_is_the_training_total(tiny_corpus, tmp_path, monkeypatch):
    ds = ChunkDataset(DataDir.load(tiny_corpus), 8000, seed=1)
    batch = next(iter(make_loader(ds, EpochSampler(len(ds), batches_per_epoch=1, batch_size=4, seed=1), 4, 0)))
    model = weighted_model(batch)
    assert {w.name: w.loss_weight for w in model.workers()} == WEIGHTS
    # LR 0: train_step runs its optimiser step, and no weight moves.
    opts = TrainOptions(fe_lr=0.0, min_lr=0.0, lr_mode="constant", tensorboard=False, progress=False)
    trainer = Trainer(model, opts, tmp_path, torch.device("cpu"))
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}

    valid = trainer.validate([batch])
    assert set(valid) == set(WEIGHTS) | {"total"}
    weighted = sum(w * valid[name] for name, w in WEIGHTS.items())
    assert valid["total"] == pytest.approx(weighted, rel=1e-6)
    assert abs(valid["total"] - sum(valid[name] for name in WEIGHTS)) > 0.1 * valid["total"]

    # The training step on the same batch, kept in eval mode (validate's BatchNorm statistics,
    # no dropout), must minimise exactly the total that validation reports.
    monkeypatch.setattr(model, "train", lambda mode=True: model)
    train = trainer.train_step(batch)
    assert not model.training
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    for name in WEIGHTS:
        assert train[name] == pytest.approx(valid[name], rel=1e-6), name
    assert train["total"] == pytest.approx(valid["total"], rel=1e-6)
