"""The command-line convention (pase/bin/common.py): spellings, --config, devices, the error rule."""
from __future__ import annotations

import argparse
import errno
import importlib
import re
import sys
from pathlib import Path

import pytest
import torch
import yaml

from pase.bin import common
from pase.bin.common import ArgumentParser, run_main, setup_device, spellings
from pase.config import ConfigError
from pase.errors import PaseError

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = dict(re.findall(r'"(pase-[a-z-]+)=pase\.launch:(\w+)"', (ROOT / "setup.py").read_text()))
SUBCOMMANDS = {"cls_eval": ["score", "report"], "data_dir": ["validate", "fix", "subset", "split"]}
# Names other commands used to give a shared concept: only ever aliases of the canonical option.
OLD_NAMES = {"--pase_cfg": "--fe_cfg", "--pase_ckpt": "--fe_ckpt", "--ckpt": "--fe_ckpt",
             "--threads": "--num_threads"}


def help_text(module: str, *argv: str, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        importlib.import_module(f"pase.bin.{module}").main([*argv, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def option_groups(text: str) -> list[list[str]]:
    """The option strings of each option in a --help text, primary name first."""
    return [re.findall(r"--[A-Za-z0-9_-]+", line.split("  ")[1] if line.startswith("  ") else line)
            for line in text.splitlines() if re.match(r"^  --", line)]


def test_every_command_has_both_spellings_and_the_canonical_names(capsys):
    assert len(COMMANDS) == 22
    for command, module in COMMANDS.items():
        texts = [help_text(module, capsys=capsys)]
        texts += [help_text(module, sub, capsys=capsys) for sub in SUBCOMMANDS.get(module, [])]
        groups = [g for t in texts for g in option_groups(t)]
        names = {n for g in groups for n in g}
        assert {"--config", "--print_config", "--debug"} <= names, command
        for group in groups:
            assert "-" not in group[0][2:], f"{command}: {group[0]} is not snake_case"
            for name in group:
                body = name[2:]
                assert {"--" + body.replace("-", "_"), "--" + body.replace("_", "-")} <= set(group), \
                    f"{command}: {name} lacks its other spelling"
            for old, new in OLD_NAMES.items():
                if old in group:
                    assert group[0] == new, f"{command}: {old} is an alias of {group[0]}, not of {new}"
        if "--device" in names:
            assert {"--ngpu", "--num_threads"} <= names, command


def test_kebab_and_snake_spellings_are_the_same_option():
    assert spellings(["--batch-size"]) == ["--batch_size", "--batch-size"]
    assert spellings(["--fe_ckpt", "--ckpt"]) == ["--fe_ckpt", "--fe-ckpt", "--ckpt"]
    p = ArgumentParser("t")
    g = p.add_argument_group("g")
    g.add_argument("--batch-size", type=int, default=1)
    how = p.add_mutually_exclusive_group()
    how.add_argument("--utt_list")
    assert p.parse_args(["--batch-size", "3"]).batch_size == p.parse_args(["--batch_size", "3"]).batch_size == 3
    assert p.parse_args(["--utt-list", "x"]).utt_list == "x"
    with pytest.raises(SystemExit):  # no prefix matching: --conf must not dodge --config
        p.parse_args(["--batch", "3"])


def small_parser() -> ArgumentParser:
    p = ArgumentParser("pase-t")
    p.add_argument("data", type=Path)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--mode", choices=("a", "b"), default="a")
    p.add_argument("--out_dir", type=Path, required=True)
    p.add_argument("--snr", type=float, nargs="+", default=[0.0])
    p.add_argument("--flag", action="store_true")
    return p


def test_config_gives_defaults_and_the_command_line_wins(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("lr: '0.5'\nmode: b\nout-dir: exp\nsnr: 5\nflag: true\n")
    args = small_parser().parse_args(["d", "--config", str(cfg), "--lr", "0.2"])
    assert (args.lr, args.mode, args.out_dir, args.snr, args.flag) == (0.2, "b", Path("exp"), [5.0], True)
    with pytest.raises(SystemExit) as exc:
        small_parser().parse_args(["--config", str(cfg), "--print_config"])  # positionals optional here
    assert exc.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == {"data": None, "lr": 0.5, "mode": "b", "out_dir": "exp", "snr": [5.0], "flag": True}


@pytest.mark.parametrize("text, message", [
    ("lr: 1\nbatch: 3\n", "unknown option(s) of pase-t: batch"),
    ("mode: c\n", "mode: 'c' is not one of a, b"),
    ("lr: fast\n", "lr: could not convert"),
    ("flag: 1\n", "flag: expected true or false"),
])
def test_bad_config_is_one_clear_error(tmp_path, text, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)) as exc:
        small_parser().parse_args(["d", "--out_dir", "x", "--config", str(cfg)])
    assert str(cfg) in str(exc.value)


def test_real_commands_share_the_config_meaning(tmp_path, capsys):
    from pase.bin import compute_stats, extract, train

    cfg = tmp_path / "train.yaml"
    cfg.write_text("batch_size: 4\nepoch: 3\nchunk_size: 8000\nfe_lr: 0.002\nseed: 7\n")
    with pytest.raises(SystemExit):
        train.main(["--config", str(cfg), "--chunk_size", "16000", "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert (printed["batch_size"], printed["epoch"], printed["chunk_size"], printed["fe_cfg"]) == \
        (4, 3, 16000, "cfg/frontend/PASE+.cfg")
    # pase-compute-stats reads its four training keys of the same file, ignoring the rest.
    p = compute_stats.build_parser()
    p.apply_config(cfg, only=compute_stats.TRAIN_KEYS)
    args = p.parse_args(["--train_data", "d", "--out_file", "s.json"])
    assert (args.chunk_size, args.seed, args.batch_size) == (8000, 7, 100)
    with pytest.raises(ConfigError, match="unknown option"):
        compute_stats.main(["--train_data", "d", "--out_file", "s.json", "--config", str(cfg)])
    # pase-extract's older --config (an encoder config) is still its encoder config.
    args = extract.build_parser().parse_args(["d", "o", "--config", "cfg/frontend/PASE.cfg", "--ckpt", "x.ckpt"])
    assert (args.fe_cfg, args.fe_ckpt) == ("cfg/frontend/PASE.cfg", Path("x.ckpt"))
    # The feature options of the former pase-cls-features keep their old name as an alias.
    args = extract.build_parser().parse_args(["d", "o", "--feats_type", "mfcc", "--feat_config", "m.yaml"])
    assert args.feats_config == Path("m.yaml")


def ns(device: str = "auto", ngpu: int | None = None, num_threads: int | None = None) -> argparse.Namespace:
    return argparse.Namespace(device=device, ngpu=ngpu, num_threads=num_threads)


def test_device_resolution(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert setup_device(ns()) == torch.device("cpu")
    assert setup_device(ns(ngpu=0)) == torch.device("cpu")
    for bad, message in [(ns(ngpu=1), "no GPU is visible"), (ns("cuda"), "no GPU is visible"),
                         (ns("cpu", ngpu=1), "contradicts --ngpu 1"), (ns(ngpu=2), "torchrun"),
                         (ns("tpu"), "not a device"), (ns(num_threads=0), "--num_threads must be >= 1")]:
        with pytest.raises(PaseError, match=message):
            setup_device(bad)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert setup_device(ns()) == torch.device("cuda")
    assert setup_device(ns(ngpu=0)) == torch.device("cpu")
    assert setup_device(ns(ngpu=1), local_rank=1) == torch.device("cuda", 1)
    with pytest.raises(PaseError, match="only 2 GPU"):
        setup_device(ns("cuda:2"))
    threads = torch.get_num_threads()
    try:
        setup_device(ns("cpu", num_threads=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


def failing(e: BaseException):
    def main() -> None:
        raise e
    return main


@pytest.mark.parametrize("error, line", [
    (PaseError("data/x/wav.scp:3: bad line\nsecond"), "pase-x: error: data/x/wav.scp:3: bad line second"),
    (OSError(errno.ENOSPC, "No space left on device", "dump/feats.ark"),
     "pase-x: error: dump/feats.ark: No space left on device"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "a.wav"),
     "pase-x: error: a.wav: No such file or directory"),
    (PaseError("Caught AudioError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
               '  File "x.py", line 1, in f\npase.io.audio.AudioError: utterance \'u1\' (a.wav): 3 non-finite'),
     "pase-x: error: utterance 'u1' (a.wav): 3 non-finite"),
])
def test_user_errors_are_one_line(monkeypatch, capsys, error, line):
    monkeypatch.setattr(sys, "argv", ["pase-x"])
    with pytest.raises(SystemExit) as exc:
        run_main(failing(error), "pase-x")
    assert exc.value.code == 1
    assert capsys.readouterr().err == line + "\n"


def test_bugs_and_debug_keep_the_traceback(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["pase-x"])
    with pytest.raises(KeyError):
        run_main(failing(KeyError("bug")), "pase-x")
    monkeypatch.setattr(sys, "argv", ["pase-x", "--debug"])
    with pytest.raises(PaseError):
        run_main(failing(PaseError("bad input")), "pase-x")
    assert common.user_error_message(OSError(errno.EBADF, "Bad file descriptor")) is None
