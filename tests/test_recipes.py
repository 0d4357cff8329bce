"""Recipes end to end: LibriSpeech data prep on the synthetic corpus, and the whole demo."""
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import recipe_tree
from pase.io import DataDir, read_kaldi_map
from pase.prep.librispeech import prepare_subset
from pase.prep.segment import segment_data_dir, speech_segments
from pase.io.errors import DataDirError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def librispeech(tmp_path_factory):
    """8 speakers: the recipe's stage 2 keeps --nj (default 4) speakers on each side."""
    from pase.synth import make_librispeech
    return make_librispeech(tmp_path_factory.mktemp("ls"), subsets={"train-clean-5": (8, 1), "dev-clean-2": (2, 2)},
                            seed=1)


def test_librispeech_prep_counts_ids_sorting(librispeech, tmp_path):
    n = prepare_subset(librispeech / "train-clean-5", tmp_path / "train")
    assert n == 8
    data = DataDir.load(tmp_path / "train")
    ids = [u.utt_id for u in data.utterances]
    assert ids == sorted(ids, key=str.encode) and len(set(ids)) == 8
    for u in data.utterances:
        assert u.utt_id.startswith(u.speaker + "-") and Path(u.source).is_file()
    text = read_kaldi_map(tmp_path / "train" / "text")
    assert set(text) == set(ids) and all(t.isupper() for t in text.values())
    assert set(read_kaldi_map(tmp_path / "train" / "spk2gender").values()) <= {"m", "f"}
    spk2utt = read_kaldi_map(tmp_path / "train" / "spk2utt")
    assert sorted(u for v in spk2utt.values() for u in v.split()) == sorted(ids)


def test_librispeech_prep_errors(librispeech, tmp_path):
    with pytest.raises(DataDirError, match="subset not found"):
        prepare_subset(librispeech / "train-other-500", tmp_path / "x")
    broken = tmp_path / "broken"
    shutil.copytree(librispeech / "dev-clean-2", broken / "dev-clean-2")
    flac = next((broken / "dev-clean-2").rglob("*.flac"))
    flac.unlink()
    with pytest.raises(DataDirError, match=rf"trans\.txt:\d+: transcript of '{flac.stem}' but no audio file"):
        prepare_subset(broken / "dev-clean-2", tmp_path / "y")
    # Audio without any transcripts (a self-supervised corpus): a data dir without text.
    audio_only = tmp_path / "audio_only" / "dev-clean-2"
    shutil.copytree(librispeech / "dev-clean-2", audio_only)
    for t in audio_only.rglob("*.trans.txt"):
        t.unlink()
    n = prepare_subset(audio_only, tmp_path / "z")
    assert n == len(list(audio_only.rglob("*.flac"))) and not (tmp_path / "z" / "text").exists()
    assert (tmp_path / "z" / "utt2spk").is_file()
    stray = next(audio_only.rglob("*.flac"))
    stray.rename(stray.with_name("bad-name.flac"))
    with pytest.raises(DataDirError, match="does not start with its speaker and chapter"):
        prepare_subset(audio_only, tmp_path / "w")


def test_segmentation_finds_speech(librispeech, tmp_path):
    prepare_subset(librispeech / "train-clean-5", tmp_path / "train")
    n = segment_data_dir(tmp_path / "train", tmp_path / "seg", min_seconds=0.5)
    seg = DataDir.load(tmp_path / "seg")
    assert len(seg) == n >= 8
    for u in seg.utterances:
        assert u.end - u.start > 0.5
    import numpy as np
    silence = np.zeros(16000, np.float32)
    tone = np.sin(np.arange(32000) / 16000 * 2 * np.pi * 200).astype(np.float32)
    segs = speech_segments(np.concatenate([silence, tone, silence]), min_seconds=1.0)
    # One segment covering the tone; the 40-frame look-ahead smoothing opens it up to ~0.25 s early.
    assert len(segs) == 1
    assert 16000 - 4800 <= segs[0][0] <= 16000 and 48000 <= segs[0][1] <= 48000 + 4800


def test_lhotse_reads_our_data_dirs(librispeech, tmp_path):
    lhotse = pytest.importorskip("lhotse")
    prepare_subset(librispeech / "train-clean-5", tmp_path / "train")
    recordings, supervisions, _ = lhotse.kaldi.load_kaldi_data_dir(tmp_path / "train", sampling_rate=16000)
    assert len(recordings) == 8 and len(supervisions) == 8
    assert {s.speaker for s in supervisions} == set(read_kaldi_map(tmp_path / "train" / "spk2utt"))


def test_librispeech_sets_follow_the_corpus(librispeech, tmp_path):
    """egs/librispeech/pase1/run.sh with no options prepares and splits db.sh's default corpus
    (the synthetic one: train-clean-5, dev-clean-2); elsewhere its sets are the real subsets."""
    env = recipe_tree(tmp_path)
    recipe = tmp_path / "egs/librispeech/pase1"
    shutil.copytree(librispeech, tmp_path / "egs/demo/work/corpora/librispeech/LibriSpeech")
    proc = subprocess.run(["./run.sh", "--stage", "1", "--stop_stage", "2"], cwd=recipe, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert DataDir.load(recipe / "data/train_clean_5").utt2spk and DataDir.load(recipe / "data/dev_clean_2").utt2spk
    assert len(DataDir.load(recipe / "data/pase_train")) + len(DataDir.load(recipe / "data/pase_valid")) == 8
    # 0.1 of 8 speakers is raised to --nj (4) on each side, so utils/split_data.sh 4 takes both.
    for part in ("pase_train", "pase_valid"):
        assert len(set(DataDir.load(recipe / "data" / part).utt2spk.values())) == 4
    proc = subprocess.run(["./run.sh", "--help"], cwd=recipe, env=dict(env, LIBRISPEECH=str(tmp_path / "real")),
                          capture_output=True, text=True)
    assert "--train-set train_clean_100\n" in proc.stdout and "--dump-sets train_clean_100\\ dev_clean\n" in proc.stdout
    for script in ("local/data.sh", "local/download.sh"):
        usage = subprocess.run([script, "--help"], cwd=recipe, env=dict(env, LIBRISPEECH=str(tmp_path / "real")),
                               capture_output=True, text=True).stdout
        assert "--subsets 'train-clean-100 dev-clean'" in usage, usage


@pytest.mark.slow
def test_pretraining_recipe_cpu_processes(librispeech, tmp_path):
    """--nproc 2 trains through torchrun on two CPU processes (gloo), and the log says so."""
    env = recipe_tree(tmp_path)
    recipe = tmp_path / "egs/librispeech/pase1"
    shutil.copytree(librispeech, tmp_path / "egs/demo/work/corpora/librispeech/LibriSpeech")
    proc = subprocess.run(["./run.sh", "--stage", "1", "--stop_stage", "4", "--nproc", "2", "--tag", "cpu2",
                           "--train_config", "conf/train_demo.yaml", "--stats_batches", "2",
                           "--train_args", "--epoch 1 --batches_per_epoch 2 --valid_batches 1 --batch_size 2"],
                          cwd=recipe, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "(2 CPU process(es) x 1 node(s))" in proc.stdout + proc.stderr
    run = yaml.safe_load((recipe / "exp/cpu2/train.yaml").read_text())["run"]
    assert run["world_size"] == 2 and (recipe / "exp/cpu2/FE_e0.ckpt").exists()


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    """egs/demo/run.sh in a copy of the tree (the recipes run in place, Kaldi-style)."""
    env = recipe_tree(tmp_path)
    proc = subprocess.run(["bash", str(tmp_path / "egs/demo/run.sh")], capture_output=True, text=True,
                          env=env, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    recipe = tmp_path / "egs/librispeech/pase1"
    assert "Demo finished" in proc.stdout
    for s in ("train_clean_5", "dev_clean_2"):
        out = recipe / f"data/{s}_demo"
        check = subprocess.run(["bash", "utils/validate_data_dir.sh", "--no-text", f"data/{s}_demo"], cwd=recipe,
                               capture_output=True, text=True, env=dict(env, PASE_PYTHON=str(ROOT / "tools/venv/bin/python"),
                                                                          PYTHONPATH=str(ROOT)))
        assert check.returncode == 0, check.stdout + check.stderr
        assert len(read_kaldi_map(out / "feats.scp")) == len(read_kaldi_map(recipe / f"data/{s}/wav.scp"))
    assert (recipe / "exp/demo/learning_curves.png").stat().st_size > 10000
    assert (recipe / "exp/demo/FE_e2.ckpt").exists() and (recipe / "exp/demo/RESULTS.md").exists()
    # Stage 6: the speaker probe of the last checkpoint, its random init and MFCC, in RESULTS.md.
    report = (recipe / "exp/demo/RESULTS.md").read_text()
    probe = report.split("## Linear probe of frozen features")[1]
    probe_rows = [ln for ln in probe.splitlines() if ln.startswith("| ") and ("| final |" in ln or "| mfcc |" in ln)]
    assert len(probe_rows) == 3 and "random init (seed 2)" in report and "FE_e2.ckpt" in report, report
    assert "s of audio per wall second" in report
    assert "s of audio per s, data wait" in (recipe / "exp/demo/log/train.log").read_text()
    train = set(read_kaldi_map(recipe / "data/pase_train/spk2utt"))
    valid = set(read_kaldi_map(recipe / "data/pase_valid/spk2utt"))
    assert train and valid and not train & valid
    # TIMIT hybrid: GMM systems, hybrid MLP on the demo encoder's features, both scorings.
    timit = tmp_path / "egs/timit/hybrid1"
    results = (timit / "RESULTS.md").read_text()
    per = {}
    for line in results.splitlines():
        if line.startswith("%PER") and "(standard scoring)" in line:
            per[line.split()[-3].split("/decode_")[0] + "/" + line.split("/decode_")[1].split("/")[0]] = float(line.split()[1])
    assert {"exp/mono/test", "exp/tri/test", "exp/mlp_pase/test"} <= set(per), results
    assert per["exp/tri/test"] < per["exp/mono/test"], per
    assert "(lenient scoring)" in results
    assert (timit / "exp/mlp_pase/decode_test/loglikes.ark").stat().st_size > 0
    # The MFCC-input hybrid (same MLP recipe, trained on the triphone alignments) beats its
    # triphone GMM on dev and matches it on test. On this corpus the two test PERs are within
    # sampling noise of each other (6597 phones: one standard deviation ~0.4 points; seen 10.84 and
    # 11.22 against 10.82), so test allows 1 point, while dev (seen 8.6 vs 10.5) must improve.
    mfcc = subprocess.run(["bash", "run.sh", "--stage", "4", "--feats_type", "mfcc", "--mlp_config", "conf/mlp_demo.yaml"],
                          cwd=timit, capture_output=True, text=True, env=env, timeout=1200)
    assert mfcc.returncode == 0, mfcc.stderr[-3000:]
    hybrid = {}
    for part in ("dev", "test"):
        lines = [ln for ln in (timit / "RESULTS.md").read_text().splitlines() if f"mlp_mfcc/decode_{part}" in ln]
        hybrid[part] = float(next(ln for ln in lines if "(standard scoring)" in ln).split()[1])
    assert hybrid["dev"] < per["exp/tri/dev"] and hybrid["test"] < per["exp/tri/test"] + 1.0, (hybrid, per)
    # A second run finds every stage complete and skips it.
    again = subprocess.run(["bash", str(tmp_path / "egs/demo/run.sh")], capture_output=True, text=True, env=env,
                           timeout=600)
    assert again.returncode == 0 and again.stderr.count("skipping") >= 12, again.stderr[-2000:]
