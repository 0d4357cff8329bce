"""A few-shot linear probe of frozen utterance representations.

Items of a labelled data dir are split into a fixed test set and a training pool; each draw
fits a logistic regression on `few` pooled training items per class (clean audio) and scores it
on the test items, clean and/or with white noise at given SNRs. Reported per layer and
condition: mean and standard deviation of the accuracy over the draws, with the chance level
(the largest class share of the test set) and the example counts.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pase.io import DataDir
from pase.models.featurizer import layer_names, select_layers
from pase.probe.features import (Condition, EncoderSpec, ItemAudio, bn_reestimate_audio, build_encoder,
                                 cache_key, data_identity, encode_items, load_cached,
                                 reestimate, save_cached)
from pase.probe.linear import accuracy, fit_predict
from pase.probe.split import Item, ProbeError, draw_train, read_items, read_test_list, split_test

log = logging.getLogger(__name__)


@dataclass
class ProbeOptions:
    labels: str = "utt2spk"
    chop: int = 1
    few: int = 5
    test_per_class: int = 5
    test_list: Path | None = None
    split_seed: int = 0
    draws: int = 5
    test_snr: tuple[float | None, ...] = (None,)
    noise_seed: int = 0
    peak_norm: bool = False
    layers: str = "final"
    c: float = 1.0
    bn_data: Path | None = None
    device: str = "cpu"
    batch_size: int = 8
    max_chunk_seconds: float = 30.0  # longer items are encoded in pieces (bounded memory)
    cache_dir: Path | None = None
    progress: bool = True


class _Features:
    """Pooled features per (condition, item list), from the cache or the encoder (built lazily)."""

    def __init__(self, spec: EncoderSpec, data: DataDir, opts: ProbeOptions, bn_items: list[Item],
                 bn_data: DataDir | None) -> None:
        self.spec, self.data, self.opts = spec, data, opts
        self.bn_items, self.bn_data = bn_items, bn_data
        self._encoder = None
        ident = spec.identity()
        if spec.bn_stats == "reestimate":
            ident["bn_on"] = ([data_identity(bn_data)] if bn_data is not None
                              else sorted(it.item_id for it in bn_items))
        self.base = (ident, data_identity(data))
        self.audio = ItemAudio(data, 16000, 1)

    def encoder(self):
        if self.spec.feats != "pase":
            return None
        if self._encoder is None:
            enc = build_encoder(self.spec, self.opts.device)
            self.audio.min_samples = enc.min_samples
            if self.spec.bn_stats == "reestimate":
                if self.bn_data is not None:
                    src_audio = ItemAudio(self.bn_data, enc.sample_rate, enc.min_samples)
                    src = [Item(u.utt_id, u.utt_id, "") for u in self.bn_data.utterances]
                    where = str(self.bn_data.path)
                else:
                    src_audio, src, where = self.audio, self.bn_items, "the probe's training audio"
                reestimate(enc, bn_reestimate_audio(src_audio, src), self.opts.device, where)
            self._encoder = enc
        return self._encoder

    def layer_names(self) -> list[str]:
        if self.spec.feats != "pase":
            return [self.spec.feats]
        from pase.models.frontend import wf_builder
        return layer_names(wf_builder(self.spec.encoder_config()))

    def get(self, items: list[Item], cond: Condition) -> list[np.ndarray]:
        key = cache_key(self.base, cond.__dict__, [it.__dict__ for it in items])
        cached = load_cached(self.opts.cache_dir, key, len(items))
        if cached is not None:
            return cached
        enc = self.encoder()
        bar = tqdm(total=len(items), unit="item", desc=f"{self.spec.feats} {cond.name}",
                   disable=not self.opts.progress)
        layers = encode_items(self.spec, enc, self.audio, items, cond, device=self.opts.device,
                              batch_size=self.opts.batch_size, max_chunk_seconds=self.opts.max_chunk_seconds,
                              progress=bar.update)
        bar.close()
        save_cached(self.opts.cache_dir, key, layers)
        return layers


def plan_draws(items: list[Item], opts: ProbeOptions) -> list[tuple[list[Item], list[Item]]]:
    """(training items, test items) of every draw. With a test list the test set is fixed and
    the draws differ in their training items; otherwise each draw also draws its own test set
    (`test_per_class` per class), so a class with exactly `few` + `test_per_class` items still
    gives draws that differ."""
    test_ids = read_test_list(opts.test_list, items) if opts.test_list is not None else None
    out = []
    for d in range(opts.draws):
        seed = [opts.split_seed, d]
        test, pool = split_test(items, few=opts.few, test_per_class=opts.test_per_class, test_ids=test_ids,
                                seed=seed)
        out.append((draw_train(pool, opts.few, seed=seed + [1]), test))
    return out


def run_probe(data_dir: Path, spec: EncoderSpec, opts: ProbeOptions) -> dict:
    """Probe `spec` on the labelled data dir; returns the result record (see `format_table`)."""
    if opts.draws < 1:
        raise ProbeError(f"--draws must be 1 or more, got {opts.draws}")
    data = DataDir.load(data_dir)
    items = read_items(data, opts.labels, opts.chop)
    draws = plan_draws(items, opts)
    used = {it.item_id for train, test in draws for it in train + test}
    tested = {it.item_id for _, test in draws for it in test}
    bn_data = DataDir.load(opts.bn_data) if opts.bn_data is not None else None
    # Re-estimation on the probe's own audio uses the (unlabelled) audio of the first draw's
    # training items, never that draw's test audio.
    feats = _Features(spec, data, opts, draws[0][0], bn_data)
    names = feats.layer_names()
    chosen = select_layers(opts.layers, names)
    clean = Condition(None, opts.noise_seed, opts.peak_norm)
    conditions = [Condition(snr, opts.noise_seed, opts.peak_norm) for snr in opts.test_snr]
    # Training rows are always clean; noisy conditions are encoded for the test items only.
    sets = {clean.name: [it for it in items if it.item_id in used]}
    sets.update({c.name: [it for it in items if it.item_id in tested] for c in conditions if c.name != clean.name})
    unique = {c.name: c for c in [clean] + conditions}
    x = {name: feats.get(sets[name], c) for name, c in unique.items() if name in sets}
    rows = {name: {it.item_id: i for i, it in enumerate(its)} for name, its in sets.items()}

    def matrix(cond: str, layer: int, its: list[Item]) -> np.ndarray:
        return x[cond][layer][[rows[cond][it.item_id] for it in its]]

    results = []
    for k in chosen:
        for c in conditions:
            accs = []
            for train, test in draws:
                pred = fit_predict(matrix(clean.name, k, train), np.array([it.label for it in train]),
                                   matrix(c.name, k, test), opts.c)
                accs.append(accuracy(pred, np.array([it.label for it in test])))
            results.append({"layer": names[k], "layer_index": k, "condition": c.name,
                            "accuracy": float(np.mean(accs)), "std": float(np.std(accs)), "accuracies": accs})
    _, counts = np.unique([it.label for it in draws[0][1]], return_counts=True)
    return {
        "encoder": spec.describe(), "feats": spec.feats, "data_dir": str(data_dir), "labels": opts.labels,
        "chop": opts.chop, "classes": len({it.label for it in items}), "few": opts.few, "draws": opts.draws,
        "train_examples": len(draws[0][0]), "test_examples": len(draws[0][1]),
        "chance": float(counts.max() / counts.sum()), "peak_norm": opts.peak_norm, "results": results,
    }


def format_table(result: dict) -> str:
    conds = list(dict.fromkeys(r["condition"] for r in result["results"]))
    layers = list(dict.fromkeys(r["layer"] for r in result["results"]))
    by = {(r["layer"], r["condition"]): r for r in result["results"]}
    head = (f"{result['encoder']} on {result['data_dir']} ({result['labels']}): {result['classes']} classes, "
            f"{result['few']} training items per class, {result['test_examples']} test items, "
            f"{result['draws']} draws; chance {result['chance']:.3f}")
    lines = [head, "layer".ljust(8) + "".join(c.rjust(16) for c in conds)]
    for layer in layers:
        lines.append(layer.ljust(8) + "".join(
            f"{by[layer, c]['accuracy']:.3f} ± {by[layer, c]['std']:.3f}".rjust(16) for c in conds))
    return "\n".join(lines)
