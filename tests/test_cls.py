"""Utterance classification: decision rule, z-norm, LR rule, bad labels, speaker id on the synthetic
corpus with MFCC and with PASE+ features of a short pretraining, fine-tuning, a frozen encoder with
learnt layer weights, the recipe end to end."""
import json
import logging
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio.compliance.kaldi as kaldi
import yaml

from conftest import TINY_FE, recipe_tree, tiny_workers
from pase.bin.cls_eval import main as eval_main
from pase.bin.cls_train import main as train_cls
from pase.bin.compute_stats import main as stats_main
from pase.bin.extract import main as extract_main
from pase.bin.train import main as pretrain_main
from pase.errors import PaseError
from pase.cls import (ClassifierError, ClassifierHead, FinetuneClassifier, HeadConfig, LabelError, TrainOptions,
                      class_inventory, load_classifier, load_features, read_labels, save_classifier, score_features,
                      score_waveforms, sentence_decision, train_frozen)
from pase.config import ConfigError
from pase.io import DataDir, copy_data_dir, read_audio, read_kaldi_map, write_kaldi_map
from pase.models import wf_builder
from pase.models.downstream import FrontOptions, read_layer_weights
from pase.models.featurizer import layer_names
from pase.prep.librispeech import prepare_subset
from pase.train.schedule import newbob_factor

SPLITS = {"test": (0, 2), "dev": (2, 3), "train": (3, 6)}  # per speaker, utterance index ranges
FAST = ["--epochs", "12", "--threads", "1"]  # the original's MLP and LR; half its epochs suffice here


@pytest.fixture(scope="module")
def speakers(tmp_path_factory) -> dict[str, Path]:
    """4 espeak voices x 6 utterances: per speaker 2 test, 1 dev, 3 train; utt2label = speaker."""
    from pase.synth import make_librispeech
    root = tmp_path_factory.mktemp("speakers")
    corpus = make_librispeech(root / "corpus", subsets={"train-clean-5": (4, 6)}, seed=1)
    prepare_subset(corpus / "train-clean-5", root / "all")
    utt2spk = read_kaldi_map(root / "all" / "utt2spk")
    dirs = {}
    for name, (lo, hi) in SPLITS.items():
        ids = [u for u, s in utt2spk.items() if lo <= int(u.rsplit("-", 1)[1]) < hi]
        copy_data_dir(root / "all", root / name, utt_ids=ids)
        write_kaldi_map(root / name / "utt2label", {u: utt2spk[u] for u in ids})
        dirs[name] = root / name
    return dirs


@pytest.fixture(scope="module")
def mfcc(speakers, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("mfcc")
    out = {}
    for name, d in speakers.items():
        extract_main([str(d), str(root / "dump" / name), "--out_data_dir", str(root / name),
                      "--feats_type", "mfcc", "--no_progress"])
        out[name] = root / name
    return out


def train_and_report(train: Path, dev: Path, test: Path, out: Path, *extra: str) -> dict:
    train_cls(["--train", str(train), "--dev", str(dev), "--out", str(out), *FAST, *extra])
    eval_main(["score", str(out / "model.pt"), str(test), str(out / "decode_test")])
    eval_main(["report", str(out / "decode_test"), "--results", str(out / "RESULTS.md")])
    return json.loads((out / "decode_test" / "metrics.json").read_text())


def head_with_norm(feat_dim=5, classes=3, pooling="frame", seed=0):
    torch.manual_seed(seed)
    head = ClassifierHead(HeadConfig(feat_dim, classes, hidden=7, pooling=pooling))
    train = [torch.randn(n, feat_dim) * 3 + 1 for n in (4, 9, 6)]
    head.fit_norm(train)
    return head.eval(), train


def test_sentence_decision_is_argmax_of_summed_frame_logprobs():
    head, train = head_with_norm()
    rng = np.random.default_rng(1)
    utts = {f"u{i}": rng.normal(size=(n, 5)).astype(np.float32) for i, n in enumerate((3, 11, 1, 7))}
    scores = score_features(head, utts, torch.device("cpu"))
    decisions = sentence_decision(scores, ["a", "b", "c"])
    # Direct computation, frame by frame, from the weights and the raw training frames.
    cat = np.concatenate([np.hstack([f, f.mean(0, keepdims=True).repeat(len(f), 0)]) for f in
                          (t.numpy().astype(np.float64) for t in train)])
    mu, sd = cat.mean(0), cat.std(0)
    p = {k: v.detach().double().numpy() for k, v in head.state_dict().items()}

    def layer_norm(x, w, b):
        return (x - x.mean()) / np.sqrt(x.var() + 1e-5) * w + b

    for u, f in utts.items():
        total = np.zeros(3)
        for frame in f.astype(np.float64):
            x = (np.concatenate([frame, f.mean(0)]) - mu) / sd
            h = layer_norm(x, p["mlp.0.weight"], p["mlp.0.bias"]) @ p["mlp.1.weight"].T + p["mlp.1.bias"]
            h = np.maximum(layer_norm(h, p["mlp.2.weight"], p["mlp.2.bias"]), 0)
            z = h @ p["mlp.5.weight"].T + p["mlp.5.bias"]
            total += z - np.log(np.exp(z).sum())
        np.testing.assert_allclose(scores[u], total, rtol=1e-4, atol=1e-4)
        assert decisions[u] == "abc"[int(np.argmax(total))]


def test_znorm_uses_training_statistics_only():
    torch.manual_seed(0)
    train = [(torch.randn(20, 4) + i, i % 2) for i in range(4)]
    dev = [(torch.randn(30, 4) * 100 - 50, i % 2) for i in range(2)]  # far off: must not leak in
    head = ClassifierHead(HeadConfig(4, 2, hidden=8))
    train_frozen(head, train, dev, TrainOptions(epochs=1), lambda m: None, torch.device("cpu"))
    rows = torch.cat([torch.cat([f, f.mean(0, keepdim=True).expand_as(f)], 1) for f, _ in train]).double()
    torch.testing.assert_close(head.mean, rows.mean(0).float())
    torch.testing.assert_close(head.std, rows.std(0, unbiased=False).float())
    pooled, train = head_with_norm(pooling="stats")  # stats pooling normalises the pooled rows
    stats = torch.stack([torch.cat([f.mean(0), f.std(0, unbiased=False)]) for f in train]).double()
    torch.testing.assert_close(pooled.mean, stats.mean(0).float())
    torch.testing.assert_close(pooled.std, stats.std(0, unbiased=False).float())
    assert pooled.rows(torch.randn(8, 5)).shape == (1, 10)


def test_lr_halving_rule():
    """The newbob rule both the cls and the asr trainers use, edge cases included."""
    def factor(prev, err):
        return newbob_factor(prev, err, halving_factor=0.5, threshold=0.0025)
    assert factor(None, 0.5) == 1.0                 # first epoch: nothing to compare
    assert factor(0.5, 0.4) == 1.0                  # 20 % better: keep
    assert newbob_factor(1.0, 0.75, halving_factor=0.5, threshold=0.25) == 1.0  # exactly the threshold: keep
    assert factor(0.5, 0.499) == 0.5                # 0.2 % better: halve
    assert factor(0.5, 0.6) == 0.5                  # worse: halve
    assert factor(0.0, 0.0) == 0.5                  # perfect already: no improvement
    assert factor(0.5, math.nan) == 0.5             # a NaN dev error is no improvement
    assert factor(math.nan, 0.4) == 0.5


def test_missing_labels_name_the_file_and_utterances(mfcc, tmp_path):
    bad = tmp_path / "train"
    shutil.copytree(mfcc["train"], bad)
    labels = read_kaldi_map(bad / "utt2label")
    dropped = sorted(labels)[1]
    del labels[dropped]
    write_kaldi_map(bad / "utt2label", labels)
    with pytest.raises(LabelError, match=rf"{bad}/utt2label: no label for 1 of 12 utterance\(s\): '{dropped}'"):
        train_cls(["--train", str(bad), "--dev", str(mfcc["dev"]), "--out", str(tmp_path / "exp")])
    (bad / "utt2label").unlink()
    with pytest.raises(LabelError, match="utt2label: not found"):
        read_labels(bad, labels)


def test_class_without_training_examples_is_an_error(mfcc, tmp_path):
    train = read_labels(mfcc["train"], read_kaldi_map(mfcc["train"] / "feats.scp"))
    classes = sorted(set(train.values()))
    with pytest.raises(LabelError, match=r"class\(es\) 'zz' have no training examples"):
        class_inventory(train, mfcc["train"], classes + ["zz"])
    with pytest.raises(LabelError, match=rf"class\(es\) 'new' of {tmp_path}/utt2label have no training examples"):
        class_inventory(train, mfcc["train"], None, {tmp_path: {"d1": "new"}})
    (tmp_path / "classes").write_text("\n".join(classes + ["zz"]) + "\n")
    with pytest.raises(LabelError, match="'zz' have no training examples"):
        train_cls(["--train", str(mfcc["train"]), "--dev", str(mfcc["dev"]), "--out", str(tmp_path / "exp"),
                   "--classes", str(tmp_path / "classes")])


def test_mfcc_layout_and_speaker_id_well_above_chance(speakers, mfcc, tmp_path, caplog):
    for name in ("feats.scp", "cmvn.scp", "utt2num_frames", "utt2label", "utt2spk"):
        assert (mfcc["test"] / name).is_file(), name
    utt = DataDir.load(speakers["test"]).utterances[0]
    direct = kaldi.mfcc(torch.from_numpy(read_audio(utt.source) * 32768.0)[None], num_ceps=13).numpy()
    np.testing.assert_allclose(load_features(mfcc["test"])[utt.utt_id], direct, rtol=1e-5, atol=1e-4)
    bad = tmp_path / "mfcc.yaml"
    bad.write_text("num_cepz: 13\n")
    with pytest.raises(ConfigError, match="unknown config key.*'num_cepz'"):
        extract_main([str(speakers["test"]), str(tmp_path / "d"), "--feats_type", "mfcc", "--feats_config", str(bad)])
    m = train_and_report(mfcc["train"], mfcc["dev"], mfcc["test"], tmp_path / "exp")
    assert m["utterances"] == 8 and m["chance"] == 0.25
    assert m["accuracy"] >= 0.75, m
    assert (tmp_path / "exp/decode_test/confusion.png").stat().st_size > 5000
    assert "| test | 8 | 4 |" in (tmp_path / "exp/RESULTS.md").read_text()
    # A test label unseen in training: a warning, and its utterances count as errors.
    decode = tmp_path / "exp/decode_test"
    labels = read_kaldi_map(decode / "utt2label")
    first = sorted(labels)[0]
    was_right = read_kaldi_map(decode / "utt2pred")[first] == labels[first]
    labels[first] = "stranger"
    write_kaldi_map(decode / "utt2label", labels)
    with caplog.at_level(logging.WARNING):
        eval_main(["report", str(decode), "--results", str(tmp_path / "R.md")])
    assert "'stranger' that the model was not trained on" in caplog.text
    unseen = json.loads((decode / "metrics.json").read_text())
    assert unseen["unseen_labels"] == ["stranger"] and unseen["correct"] == m["correct"] - was_right
    assert unseen["rows"][-1] == "stranger" and "stranger" in (tmp_path / "R.md").read_text()


def test_training_is_deterministic_and_stats_pooling_learns(mfcc, tmp_path):
    args = ["--train", str(mfcc["train"]), "--dev", str(mfcc["dev"]), "--epochs", "2", "--threads", "1"]
    a = train_cls([*args, "--out", str(tmp_path / "a")])
    b = train_cls([*args, "--out", str(tmp_path / "b")])
    assert a == b
    sa, sb = (torch.load(tmp_path / d / "model.pt", weights_only=True)["state"] for d in "ab")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    m = train_and_report(mfcc["train"], mfcc["dev"], mfcc["test"], tmp_path / "stats", "--pooling", "stats",
                         "--lr", "0.01", "--momentum", "0.9", "--batch_size", "4", "--epochs", "30")
    assert m["accuracy"] > 0.5, m


def recipe_config(name: str) -> tuple[dict, TrainOptions]:
    """(HeadConfig options, TrainOptions) of egs/speakers/cls1/conf/<name>.yaml."""
    cfg = yaml.safe_load((Path(__file__).parents[1] / "egs/speakers/cls1/conf" / f"{name}.yaml").read_text())
    head = {k: cfg.pop(k) for k in list(cfg) if k in HeadConfig.__dataclass_fields__}
    return head, TrainOptions(**cfg)


def variance_coded(n_per_class: int, seed: int) -> list[tuple[torch.Tensor, int]]:
    """4 classes of 40-frame utterances told apart by how much their frames spread (the frame
    means are equal, and each utterance has its own offset): only utterance statistics separate them."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for c in range(4):
        scale = torch.ones(6)
        scale[c] = 3.0
        for _ in range(n_per_class):
            out.append((torch.randn(1, 6, generator=g) + torch.randn(40, 6, generator=g) * scale, c))
    return out


def test_default_classifier_reaches_the_linear_probe_where_the_frame_mlp_does_not():
    from pase.probe.linear import accuracy, fit_predict

    train, dev, test = variance_coded(12, 0), variance_coded(4, 1), variance_coded(10, 2)

    def pooled(items):
        return np.stack([np.concatenate([f.mean(0).numpy(), f.std(0, unbiased=False).numpy()]) for f, _ in items])

    truth = np.array([c for _, c in test])
    probe = accuracy(fit_predict(pooled(train), np.array([c for _, c in train]), pooled(test)), truth)
    acc = {}
    for name in ("cls", "cls_frame"):
        head_opts, opts = recipe_config(name)
        torch.manual_seed(opts.seed)
        head = ClassifierHead(HeadConfig(6, 4, **head_opts))
        train_frozen(head, train, dev, opts, lambda m: None, torch.device("cpu"))
        scores = score_features(head, {str(i): f.numpy() for i, (f, _) in enumerate(test)}, torch.device("cpu"))
        acc[name] = float(np.mean([np.argmax(scores[str(i)]) == c for i, (_, c) in enumerate(test)]))
    assert probe >= 0.9
    assert acc["cls"] >= probe, (acc, probe)
    assert acc["cls_frame"] < probe - 0.2, (acc, probe)  # one frame cannot show its utterance's spread


def test_linear_head_is_logistic_regression_on_standardised_pooled_stats(tmp_path):
    head, train = head_with_norm(pooling="stats")
    linear = ClassifierHead(HeadConfig(5, 3, hidden=0, pooling="stats"))
    linear.fit_norm(train)
    assert [type(m).__name__ for m in linear.mlp] == ["Linear", "LogSoftmax"]
    f = torch.randn(9, 5)
    x = (torch.cat([f.mean(0), f.std(0, unbiased=False)]) - linear.mean) / linear.std
    z = linear.mlp[0].weight @ x + linear.mlp[0].bias
    torch.testing.assert_close(linear.utterance_scores(f), z - torch.logsumexp(z, 0))
    torch.save({"format": "pase-cls/1"}, tmp_path / "old.pt")  # frame-normalised stats rows
    with pytest.raises(ClassifierError, match=r"older pase-cls-train \(pase-cls/1\); train it again"):
        load_classifier(tmp_path / "old.pt")


@pytest.fixture(scope="module")
def pretrained(speakers, tmp_path_factory) -> tuple[Path, Path]:
    """A tiny PASE+ encoder pretrained for 20 steps of 4 x 1 s on the training utterances: (config, checkpoint)."""
    root = tmp_path_factory.mktemp("pretrain")
    (root / "fe.yaml").write_text(yaml.safe_dump(TINY_FE))
    (root / "workers.cfg").write_text(json.dumps(tiny_workers()))
    common = ["--train_data", str(speakers["train"]), "--net_cfg", str(root / "workers.cfg"), "--chunk_size", "16000",
              "--batch_size", "4", "--num_workers", "0"]
    stats_main([*common, "--out_file", str(root / "stats.json"), "--max_batches", "3"])
    pretrain_main([*common, "--fe_cfg", str(root / "fe.yaml"), "--stats", str(root / "stats.json"),
                   "--save_path", str(root / "exp"), "--batches_per_epoch", "10", "--epoch", "2",
                   "--fe_lr", "0.002", "--min_lr", "0.002", "--no_progress", "--tensorboard", "False"])
    return root / "fe.yaml", root / "exp" / "FE_e1.ckpt"


def test_pase_features_from_short_pretraining_above_chance(speakers, pretrained, tmp_path):
    cfg, ckpt = pretrained
    dirs = {}
    for name, d in speakers.items():
        dirs[name] = tmp_path / f"{name}_pase"
        extract_main([str(d), str(tmp_path / "dump" / name), "--out-data-dir", str(dirs[name]),
                      "--config", str(cfg), "--ckpt", str(ckpt), "--no-progress"])
    m = train_and_report(dirs["train"], dirs["dev"], dirs["test"], tmp_path / "exp")
    assert m["accuracy"] >= 2 * m["chance"], m  # 0.75 measured (an untrained encoder: 0.25)


def test_finetuning_trains_the_encoder_and_reloads(speakers, pretrained, tmp_path):
    cfg, ckpt = pretrained
    out = tmp_path / "ft"
    train_cls(["--train", str(speakers["train"]), "--dev", str(speakers["dev"]), "--out", str(out), "--finetune",
               "--pase_cfg", str(cfg), "--pase_ckpt", str(ckpt), "--epochs", "1", "--batch_size", "4",
               "--chunk_size", "8000", "--lr", "0.01", "--threads", "1"])
    model, classes, _ = load_classifier(out / "model.pt")
    before = torch.load(ckpt, weights_only=True)
    after = model.encoder.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())
    utts = DataDir.load(speakers["test"]).utterances
    eval_main(["score", str(out / "model.pt"), str(speakers["test"]), str(out / "decode")])
    written = read_kaldi_map(out / "decode" / "utt2pred")
    assert written == sentence_decision(score_waveforms(model, utts, torch.device("cpu")), classes)


def test_frozen_encoder_learns_layer_weights_and_reports_them(speakers, pretrained, tmp_path):
    """--freeze_encoder --encoder_layers all: the head and the softmax weight of every layer train,
    the encoder (parameters and BatchNorm statistics) stays bit-identical, RESULTS.md lists the weights."""
    cfg, ckpt = pretrained
    out = tmp_path / "frozen"
    history = train_cls(["--train", str(speakers["train"]), "--dev", str(speakers["dev"]), "--out", str(out),
                         "--freeze_encoder", "--encoder_layers", "all", "--fe_cfg", str(cfg), "--fe_ckpt", str(ckpt),
                         "--momentum", "0.9", "--epochs", "5", "--batch_size", "4", "--chunk_size", "8000",
                         "--lr", "0.01", "--halving_factor", "1", "--threads", "1"])
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    model, classes, _ = load_classifier(out / "model.pt")
    pretrained_state = torch.load(ckpt, weights_only=True)
    assert all(torch.equal(v, pretrained_state[k]) for k, v in model.encoder.state_dict().items())
    weights = model.layer_weights()
    assert list(weights) == layer_names(model.encoder) and len(set(weights.values())) == len(weights)
    assert read_layer_weights(out / "layer_weights") == pytest.approx(weights, abs=5e-5)
    utts = DataDir.load(speakers["test"]).utterances
    eval_main(["score", str(out / "model.pt"), str(speakers["test"]), str(out / "decode_test")])
    assert read_kaldi_map(out / "decode_test" / "utt2pred") == \
        sentence_decision(score_waveforms(model, utts, torch.device("cpu")), classes)
    eval_main(["report", str(out / "decode_test"), "--results", str(out / "RESULTS.md"),
               "--layer_weights", str(out / "layer_weights")])
    table = (out / "RESULTS.md").read_text().split("## Encoder layer weights")[1]
    assert all(f"| {name} | {w:.4f} |" in table for name, w in read_layer_weights(out / "layer_weights").items())
    with pytest.raises(PaseError, match="--freeze_encoder needs --fe_ckpt"):  # as pase-train-mlp
        train_cls(["--train", str(speakers["train"]), "--dev", str(speakers["dev"]), "--out", str(tmp_path / "rnd"),
                   "--freeze_encoder", "--fe_cfg", str(cfg)])
    assert not (tmp_path / "rnd").exists()


def test_frozen_classifier_file_round_trip(tmp_path):
    """A frozen mixed-layer classifier reloads with its layers, layer norm and weights; a file
    without a front (written before them) reloads as a fine-tuned classifier of the final output."""
    torch.manual_seed(0)
    head = ClassifierHead(HeadConfig(TINY_FE["emb_dim"], 3, hidden=8, pooling="stats"))
    model = FinetuneClassifier(wf_builder(TINY_FE), head, FrontOptions(True, "skip3,final", True)).eval()
    with torch.no_grad():
        model.layer_sum.logits.copy_(torch.tensor([1.5, -0.5]))
    save_classifier(tmp_path / "model.pt", model, ["a", "b", "c"], {})
    loaded, classes, _ = load_classifier(tmp_path / "model.pt")
    assert classes == ["a", "b", "c"] and loaded.front == model.front and loaded.layer_weights() == model.layer_weights()
    wav = torch.randn(4000)
    assert torch.equal(loaded.utterance_scores(wav), model.utterance_scores(wav))
    doc = torch.load(tmp_path / "model.pt", weights_only=True)
    final = FinetuneClassifier(wf_builder(TINY_FE), head).eval()
    doc["state"], doc["front"] = final.state_dict(), None
    torch.save({k: v for k, v in doc.items() if k != "front"}, tmp_path / "old.pt")
    old, _, _ = load_classifier(tmp_path / "old.pt")
    assert old.front == FrontOptions() and old.layer_sum is None
    assert torch.equal(old.utterance_scores(wav), final.utterance_scores(wav))


@pytest.mark.slow
def test_speakers_recipe_end_to_end(tmp_path):
    """egs/speakers/cls1/run.sh with MFCC in a copy of the tree (local/data.sh makes the corpus), then
    with a frozen encoder and learnt layer weights."""
    env = recipe_tree(tmp_path)
    recipe = tmp_path / "egs/speakers/cls1"
    proc = subprocess.run(["./run.sh", "--feats_type", "mfcc"], cwd=recipe, capture_output=True, text=True,
                          env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "egs/demo/work/corpora/librispeech/LibriSpeech/train-clean-5").is_dir()
    exp = recipe / "exp/mfcc_cls"  # the default conf/cls.yaml
    results = (exp / "RESULTS.md").read_text()
    assert "| test | 24 | 8 |" in results and "| dev | 16 | 8 |" in results
    assert (exp / "decode_test/confusion.png").stat().st_size > 10000
    metrics = json.loads((exp / "decode_test/metrics.json").read_text())
    assert metrics["accuracy"] > 3 * metrics["chance"]
    again = subprocess.run(["./run.sh", "--feats_type", "mfcc"], cwd=recipe, capture_output=True, text=True,
                           env=env, timeout=600)
    assert again.returncode == 0 and again.stderr.count("skipping") >= 8, again.stderr[-2000:]
    # A frozen (tiny, random) encoder read from the waveforms, its layers mixed by learnt weights.
    torch.manual_seed(0)
    torch.save(wf_builder(TINY_FE).state_dict(), tmp_path / "fe.ckpt")
    (tmp_path / "fe.yaml").write_text(yaml.safe_dump(TINY_FE))
    frozen = subprocess.run(["./run.sh", "--freeze_encoder", "true", "--fe_cfg", str(tmp_path / "fe.yaml"),
                             "--fe_ckpt", str(tmp_path / "fe.ckpt"), "--cls_config", "conf/cls_weighted.yaml",
                             "--cls_args", "--epochs 2"], cwd=recipe, capture_output=True, text=True, env=env,
                            timeout=600)
    assert frozen.returncode == 0, frozen.stderr[-3000:]
    assert "stage 3: the classifier reads waveforms through the encoder" in frozen.stderr
    exp = recipe / "exp/pase_cls_weighted_frozen_all"
    table = (exp / "RESULTS.md").read_text().split("## Encoder layer weights")[1]
    weights = read_layer_weights(exp / "layer_weights")
    assert len(weights) == 9 and all(f"| {name} | {w:.4f} |" in table for name, w in weights.items())
