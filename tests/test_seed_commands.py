"""The seed README's commands, copied verbatim, mean what the seed says: its stats command, its PASE
command (step decay by --lrdecay every --lrdec_step epochs, 1 s chunks, no random scaling) and its
PASE+ command (--warmup 10000000 is the original's no-op, poly LR, 2 s chunks, random scaling).
Only the model configs are tiny and one short epoch is appended, so that it runs in seconds."""
import json
import shlex
from pathlib import Path

import pytest
import yaml

from conftest import TINY_FE, make_data_dir, tiny_workers
from pase.bin.compute_stats import main as stats_main
from pase.bin.train import main as train_main

SEED_STATS = """--data_root data/LibriSpeech/wavs --data_cfg data/librispeech_data.cfg
                --out_file data/librispeech_stats.pkl"""
SEED_PASE = """--batch_size 32 --epoch 100 --save_path pase_ckpt --num_workers 1
               --net_cfg cfg/workers.cfg --fe_cfg cfg/PASE.cfg
               --do_eval --data_cfg data/librispeech_data.cfg --min_lr 0.0005 --fe_lr 0.0005
               --data_root data/LibriSpeech/wavs/ --stats data/librispeech_stats.pkl --lrdec_step 30 --lrdecay 0.5"""
SEED_PASE_PLUS = """--batch_size 16 --epoch 400 --save_path pase+_ckpt
                    --num_workers 4 --warmup 10000000 --net_cfg cfg/workers/workers+.cfg
                    --fe_cfg cfg/frontend/PASE+.cfg --data_cfg data/librispeech_data.cfg
                    --min_lr 0.0005 --fe_lr 0.001 --data_root data/LibriSpeech/wavs/
                    --stats data/librispeech_stats_pase+.pkl --chunk_size 32000 --tensorboard False
                    --backprop_mode base --random_scale True --lr_mode poly"""
SHORT = ["--epoch", "1", "--batches_per_epoch", "2", "--valid_batches", "1", "--num_workers", "0",
         "--batch_size", "2", "--no_progress"]


@pytest.fixture
def seed_layout(tmp_path, monkeypatch):
    """The seed's folder layout: data/LibriSpeech/wavs, data/librispeech_data.cfg, cfg/..."""
    data = make_data_dir(tmp_path / "src", speakers=3, utts=2, seconds=(2.5, 3.0))
    wavs = tmp_path / "data" / "LibriSpeech" / "wavs"
    wavs.mkdir(parents=True)
    entries = []
    for line in (data / "wav.scp").read_text().splitlines():
        utt, path = line.split()
        (wavs / f"{utt}.wav").symlink_to(path)
        entries.append({"filename": f"{utt}.wav", "spk": utt.split("-")[0]})
    split = {"train": {"data": entries[:4]}, "valid": {"data": entries[4:]}, "test": {"data": entries[4:]}}
    (tmp_path / "data" / "librispeech_data.cfg").write_text(json.dumps(split))
    for d in ("cfg", "cfg/workers", "cfg/frontend"):
        (tmp_path / d).mkdir(parents=True, exist_ok=True)
    for p in ("cfg/PASE.cfg", "cfg/frontend/PASE+.cfg"):
        (tmp_path / p).write_text(json.dumps(TINY_FE))
    for p in ("cfg/workers.cfg", "cfg/workers/workers+.cfg"):
        (tmp_path / p).write_text(json.dumps(tiny_workers()))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def saved_args(save_path: str) -> dict:
    return yaml.safe_load((Path(save_path) / "train.yaml").read_text())["args"]


def test_seed_commands_verbatim(seed_layout, caplog):
    stats_main(shlex.split(SEED_STATS) + ["--net_cfg", "cfg/workers.cfg", "--max_batches", "2",
                                          "--batch_size", "2", "--num_workers", "0"])
    stats = json.loads(Path("data/librispeech_stats.pkl").read_text())
    assert stats["meta"]["chunk_size"] == 16000 and stats["meta"]["random_scale"] is False  # the original's stats script

    trainer = train_main(shlex.split(SEED_PASE) + SHORT)
    args = saved_args("pase_ckpt")
    assert (args["lr_mode"], args["chunk_size"], args["random_scale"]) == ("step", 16000, False)
    assert (trainer.opts.lrdec_step, trainer.opts.lrdecay, trainer.opts.warmup_steps) == (30, 0.5, 0)
    assert trainer.history[0]["train_lr_factor"] == pytest.approx(1.0)

    Path("data/librispeech_stats_pase+.pkl").write_text(Path("data/librispeech_stats.pkl").read_text())
    with caplog.at_level("INFO"):
        trainer = train_main(shlex.split(SEED_PASE_PLUS) + SHORT)
    args = saved_args("pase+_ckpt")
    assert (args["lr_mode"], args["chunk_size"], args["random_scale"]) == ("poly", 32000, True)
    assert trainer.opts.warmup_steps == 0 and "--warmup 10000000 ignored" in caplog.text
    assert trainer.history[0]["train_lr_factor"] > 0.5   # not the 1e-7 a real 10M-step warm-up would give
