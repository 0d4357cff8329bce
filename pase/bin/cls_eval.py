"""pase-cls-eval: score a data dir with a trained classifier, and report accuracy.

    pase-cls-eval score exp/mfcc/model.pt data/test_mfcc exp/mfcc/decode_test
    pase-cls-eval report exp/mfcc/decode_test [exp/mfcc/decode_dev ...] --results exp/mfcc/RESULTS.md

score writes, per utterance, the summed frame log-probabilities (`scores`, columns in the order
of `classes`) and the sentence decision, their argmax (`utt2pred`); the data dir's utt2label is
copied alongside (an utterance without a label is an error). report writes, per decode dir,
metrics.json and confusion.png (true label x predicted class), and one RESULTS.md with accuracy,
chance level and per-class precision / recall / F1 (and, given --layer_weights, the encoder layer
weights the classifier learnt). A test label the model never saw in training is warned about;
its utterances count as errors.
"""
from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from pase.bin.common import ArgumentParser, add_device_options, run_main, setup_device
from pase.cls.features import LABELS, few, load_features, read_labels
from pase.cls.model import ClassifierError, FinetuneClassifier, load_classifier
from pase.cls.train import score_features, score_waveforms, sentence_decision
from pase.io import DataDir, read_kaldi_map, write_kaldi_map
from pase.models.downstream import read_layer_weights

log = logging.getLogger("pase-cls-eval")


def score(model_path: Path, data_dir: Path, out: Path, device: torch.device) -> None:
    model, classes, _ = load_classifier(model_path)
    if isinstance(model, FinetuneClassifier):
        scores = score_waveforms(model, DataDir.load(data_dir).utterances, device)
    else:
        feats = load_features(data_dir)
        dim = next(iter(feats.values())).shape[1]
        if dim != model.cfg.feat_dim:
            raise ClassifierError(f"{data_dir}/feats.scp: {dim}-dim features, the model {model_path} takes "
                                  f"{model.cfg.feat_dim} (other features than it was trained on?)")
        scores = score_features(model, feats, device)
    out.mkdir(parents=True, exist_ok=True)
    (out / "classes").write_text("".join(f"{c}\n" for c in classes))
    write_kaldi_map(out / "scores", {u: " ".join(f"{v:.5f}" for v in s) for u, s in scores.items()})
    write_kaldi_map(out / "utt2pred", sentence_decision(scores, classes))
    if (data_dir / LABELS).exists():
        write_kaldi_map(out / LABELS, read_labels(data_dir, scores))
    else:
        (out / LABELS).unlink(missing_ok=True)
        log.warning("%s: no %s; predictions only, nothing to report", data_dir, LABELS)
    log.info("%d utterances scored -> %s", len(scores), out / "utt2pred")


def metrics(decode: Path) -> dict:
    """Accuracy, chance, per-class scores and the confusion matrix of one decode dir."""
    if not (decode / "utt2pred").is_file():
        raise ClassifierError(f"{decode}/utt2pred: not found; run pase-cls-eval score first")
    classes = (decode / "classes").read_text().split()
    pred = read_kaldi_map(decode / "utt2pred", n_fields=2)
    ref = read_labels(decode, pred)
    unseen = sorted(set(ref.values()) - set(classes))
    if unseen:
        n = sum(1 for v in ref.values() if v in unseen)
        log.warning("%s: %d utterance(s) have label(s) %s that the model was not trained on; they count as "
                    "errors", decode, n, few(unseen))
    rows = classes + unseen
    confusion = np.zeros((len(rows), len(classes)), dtype=int)
    for u, p in pred.items():
        confusion[rows.index(ref[u]), classes.index(p)] += 1
    total = int(confusion.sum())
    correct = int(np.trace(confusion[:len(classes)]))
    per_class = {}
    for i, c in enumerate(classes):
        tp, support, predicted = int(confusion[i, i]), int(confusion[i].sum()), int(confusion[:, i].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[c] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    majority = Counter(ref.values()).most_common(1)[0][1]
    return {"set": decode.name.removeprefix("decode_"), "utterances": total, "correct": correct,
            "accuracy": correct / total, "chance": majority / total, "num_classes": len(classes),
            "unseen_labels": unseen, "per_class": per_class, "rows": rows, "classes": classes,
            "confusion": confusion.tolist()}


def plot_confusion(m: dict, out: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conf = np.asarray(m["confusion"])
    size = min(3 + 0.35 * len(m["classes"]), 20)
    fig, ax = plt.subplots(figsize=(size + 1, size * len(m["rows"]) / len(m["classes"])))
    ax.imshow(conf, cmap="Blues", aspect="auto")
    if len(m["classes"]) <= 50:  # beyond that labels and counts would be unreadable
        ax.set_xticks(range(len(m["classes"])), m["classes"], rotation=90, fontsize="small")
        ax.set_yticks(range(len(m["rows"])), m["rows"], fontsize="small")
    if conf.size <= 900:
        for (i, j), v in np.ndenumerate(conf):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize="x-small",
                        color="white" if v > conf.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}: accuracy {100 * m['accuracy']:.1f} %")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def report(decodes: list[Path], results: Path, title: str, layer_weights: Path | None = None) -> list[dict]:
    all_metrics = []
    for d in decodes:
        m = metrics(d)
        plot_confusion(m, d / "confusion.png", f"{title} {d.name}")
        (d / "metrics.json").write_text(json.dumps(m, indent=1) + "\n")
        all_metrics.append(m)
        log.info("%s: accuracy %.2f %% (%d/%d), chance %.2f %%", d, 100 * m["accuracy"], m["correct"],
                 m["utterances"], 100 * m["chance"])
    lines = [f"# {title}", "", "| set | utterances | classes | accuracy (%) | chance (%) | confusion |",
             "|---|---|---|---|---|---|"]
    for d, m in zip(decodes, all_metrics):
        lines.append(f"| {m['set']} | {m['utterances']} | {m['num_classes']} | {100 * m['accuracy']:.2f} | "
                     f"{100 * m['chance']:.2f} | `{d / 'confusion.png'}` |")
    lines += ["", "Chance: always answering the most frequent label of the set. The utterance decision is "
              "the argmax of the summed frame log-probabilities."]
    for m in all_metrics:
        lines += ["", f"## {m['set']}: per class", "", "| class | precision | recall | F1 | support |",
                  "|---|---|---|---|---|"]
        lines += [f"| {c} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
                  for c, v in m["per_class"].items()]
        if m["unseen_labels"]:
            lines += ["", f"Labels not seen in training (counted as errors): {', '.join(m['unseen_labels'])}"]
    if layer_weights is not None:
        lines += ["", "## Encoder layer weights", "", f"Softmax weights of the layers, learnt with the classifier "
                  f"(`{layer_weights}`).", "", "| layer | weight |", "|---|---|"]
        lines += [f"| {name} | {w:.4f} |" for name, w in read_layer_weights(layer_weights).items()]
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text("\n".join(lines) + "\n")
    log.info("results: %s", results)
    return all_metrics


def build_parser() -> ArgumentParser:
    p = ArgumentParser("pase-cls-eval", __doc__)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score", help="classify every utterance of a data dir")
    s.add_argument("model", type=Path, help="pase-cls-train's model.pt")
    s.add_argument("data_dir", type=Path, help="data dir with feats.scp (or wav.scp for a fine-tuned model)")
    s.add_argument("out", type=Path, help="decode dir to write")
    add_device_options(s)
    r = sub.add_parser("report", help="accuracy, per-class scores, confusion matrices, RESULTS.md")
    r.add_argument("decodes", type=Path, nargs="+", help="decode dirs written by score")
    r.add_argument("--results", type=Path, required=True, help="RESULTS.md to write")
    r.add_argument("--title", default="Utterance classification")
    r.add_argument("--layer_weights", type=Path, default=None,
                   help="pase-cls-train's out/layer_weights (mixed encoder layers) to report")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "score":
        score(args.model, args.data_dir, args.out, setup_device(args))
    else:
        report(args.decodes, args.results, args.title, args.layer_weights)


def cli() -> None:
    run_main(main, "pase-cls-eval")


if __name__ == "__main__":
    cli()
