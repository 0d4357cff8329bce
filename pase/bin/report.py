"""pase-report: learning curves (PNG) and RESULTS.md of a pretraining run.

    pase-report exp/pase+ [--title "PASE+ on LibriSpeech 100h"]

Reads exp/<tag>/history.json (written by pase-train every epoch) and writes
exp/<tag>/learning_curves.png (total and per-worker losses, train and valid) and
exp/<tag>/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from pase.bin import run_main
from pase.errors import PaseError


class ReportError(PaseError):
    """The run directory has nothing to report."""


def plot_curves(history: list[dict], out: Path, title: str) -> list[str]:
    """Plot every loss in `history` (train solid, valid dashed); returns the worker names."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({k.split("_", 1)[1] for rec in history for k in rec
                    if k.startswith(("train_", "valid_")) and k != "train_lr_factor"},
                   key=lambda n: (n != "total", n))
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    epochs = [rec["epoch"] for rec in history]
    for ax, name in zip(axes.flat, names):
        for split, style in (("train", "-"), ("valid", "--")):
            ys = [rec.get(f"{split}_{name}") for rec in history]
            if any(y is not None for y in ys):
                ax.plot(epochs, [math.nan if y is None else y for y in ys], style, marker=".", label=split)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return names


def write_results(exp: Path, history: list[dict], names: list[str], title: str) -> Path:
    last = history[-1]
    ckpts = sorted(exp.glob("FE_e*.ckpt"), key=lambda p: int(p.stem[4:]))
    lines = [f"# {title}", "", f"- run: `{exp}`", f"- epochs: {len(history)}",
             f"- last encoder checkpoint: `{ckpts[-1] if ckpts else 'none'}`",
             f"- learning curves: `{exp / 'learning_curves.png'}`", "",
             f"## Losses after epoch {last['epoch']}", "", "| worker | train | valid |", "|---|---|---|"]
    for name in names:
        tr, va = last.get(f"train_{name}"), last.get(f"valid_{name}")
        lines.append(f"| {name} | {'-' if tr is None else f'{tr:.4f}'} | {'-' if va is None else f'{va:.4f}'} |")
    out = exp / "RESULTS.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="pase-report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("exp", type=Path, help="the run directory (pase-train --save_path)")
    p.add_argument("--title", default=None)
    args = p.parse_args(argv)
    path = args.exp / "history.json"
    if not path.is_file():
        raise ReportError(f"{path} not found: run the training stage first")
    history = json.loads(path.read_text())
    if not history:
        raise ReportError(f"{path}: no finished epoch yet")
    title = args.title or f"PASE pretraining: {args.exp.name}"
    names = plot_curves(history, args.exp / "learning_curves.png", title)
    print(write_results(args.exp, history, names, title))


def cli() -> None:
    run_main(main, "pase-report")


if __name__ == "__main__":
    cli()
