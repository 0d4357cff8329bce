"""pase-report: learning curves (PNG) and RESULTS.md of a pretraining run.

    pase-report exp/pase+ [--title "PASE+ on LibriSpeech 100h"]

Reads exp/<tag>/history.json (written by pase-train every epoch) and writes
exp/<tag>/learning_curves.png (total and per-worker losses, train and valid) and
exp/<tag>/RESULTS.md, with the probe table of exp/<tag>/probe/*.json (pase-probe) when there is one.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from pase.bin.common import ArgumentParser, run_main
from pase.errors import PaseError
from pase.train.average import epoch_checkpoints


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


def probe_section(files: list[Path]) -> list[str]:
    """A table of pase-probe results (one JSON per encoder): accuracy per test condition."""
    records = [json.loads(f.read_text()) for f in files]
    if not records:
        return []
    conds = list(dict.fromkeys(r["condition"] for rec in records for r in rec["results"]))
    first = records[0]
    lines = ["", "## Linear probe of frozen features (pase-probe)", "",
             f"{first['labels']} of `{first['data_dir']}`: {first['classes']} classes, {first['few']} training "
             f"items per class, {first['test_examples']} test items, mean ± std over {first['draws']} draws; "
             f"chance {first['chance']:.3f}.", "",
             "| encoder | layer | " + " | ".join(conds) + " |", "|---|---|" + "---|" * len(conds)]
    for rec in records:
        for layer in dict.fromkeys(r["layer"] for r in rec["results"]):
            by = {r["condition"]: r for r in rec["results"] if r["layer"] == layer}
            cells = [f"{by[c]['accuracy']:.3f} ± {by[c]['std']:.3f}" if c in by else "-" for c in conds]
            lines.append(f"| {rec['encoder']} | {layer} | " + " | ".join(cells) + " |")
    return lines


def write_results(exp: Path, history: list[dict], names: list[str], title: str) -> Path:
    last = history[-1]
    ckpts = list(epoch_checkpoints(exp).values())  # FE_e<N>.ckpt by N (not FE_ema_e*, FE_avg_*)
    lines = [f"# {title}", "", f"- run: `{exp}`", f"- epochs: {len(history)}",
             f"- last encoder checkpoint: `{ckpts[-1] if ckpts else 'none'}`",
             f"- learning curves: `{exp / 'learning_curves.png'}`"]
    if "audio_s_per_s" in last:
        lines.append(f"- speed (last epoch): {last['audio_s_per_s']:.2f} s of audio per wall second, "
                     f"data wait {100 * last['data_wait_share']:.0f}% of the time")
    lines += ["",
             f"## Losses after epoch {last['epoch']}", "", "| worker | train | valid |", "|---|---|---|"]
    for name in names:
        tr, va = last.get(f"train_{name}"), last.get(f"valid_{name}")
        lines.append(f"| {name} | {'-' if tr is None else f'{tr:.4f}'} | {'-' if va is None else f'{va:.4f}'} |")
    lines += probe_section(sorted((exp / "probe").glob("*.json")))
    out = exp / "RESULTS.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def main(argv: list[str] | None = None) -> None:
    p = ArgumentParser("pase-report", __doc__)
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
