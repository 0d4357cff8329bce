"""pase-extract's Kaldi-style jobs: --nj N --job J shards with frames and per-speaker CMVN sums
computed while writing, --merge, the dump-dir lock, and the jobs run by utils/run_local.sh."""
import os
import subprocess
import sys
import time
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import yaml

from conftest import TINY_FE, make_data_dir
from pase.bin.extract import main
from pase.dump import DumpError, dump_lock
from pase.dump.stats import SpeakerSums, add_sums
from pase.io import DataDir, compute_cmvn_stats, read_audio, read_kaldi_map
from pase.models import wf_builder

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """3 speakers x 3 utterances (2 jobs split spk1) and a tiny encoder with trained-looking weights."""
    root = tmp_path_factory.mktemp("jobs")
    data = make_data_dir(root, speakers=3, utts=3, seconds=(0.5, 1.2))
    torch.manual_seed(0)
    model = wf_builder(TINY_FE).train()
    with torch.no_grad():
        model(torch.randn(2, 1, 8000) * 0.1)  # BatchNorm statistics of a real pass
    cfg, ckpt = root / "fe.yaml", root / "FE_e0.ckpt"
    cfg.write_text(yaml.safe_dump(TINY_FE))
    torch.save(model.state_dict(), ckpt)
    return data, ["--fe_cfg", str(cfg), "--fe_ckpt", str(ckpt), "--batch_size", "1", "--no_progress"], model.eval()


def extract(data, dump, out, opts, *extra):
    main([str(data), str(dump), "--out_data_dir", str(out), *opts, *extra])


def load(scp):
    return {k: np.asarray(v) for k, v in kaldiio.load_scp(str(scp)).items()}


def test_jobs_and_merge_equal_one_run(setup, tmp_path):
    data, opts, model = setup
    extract(data, tmp_path / "one", tmp_path / "d1", opts)
    for job in (1, 2):
        extract(data, tmp_path / "two", tmp_path / "d2", opts, "--nj", "2", "--job", str(job))
    assert not (tmp_path / "d2").exists()  # jobs only write their shard
    extract(data, tmp_path / "two", tmp_path / "d2", opts, "--nj", "2", "--merge")
    one, two = load(tmp_path / "d1/feats.scp"), load(tmp_path / "d2/feats.scp")
    assert list(one) == list(two) == [u.utt_id for u in DataDir.load(data).utterances]
    for utt in one:
        np.testing.assert_array_equal(one[utt], two[utt])
    frames = {u: int(n) for u, n in read_kaldi_map(tmp_path / "d2/utt2num_frames").items()}
    for utt in DataDir.load(data).utterances:
        assert frames[utt.utt_id] == len(two[utt.utt_id]) == model.num_frames(len(read_audio(utt.source)))
    assert read_kaldi_map(tmp_path / "d1/utt2num_frames") == read_kaldi_map(tmp_path / "d2/utt2num_frames")
    cmvn = load(tmp_path / "d2/cmvn.scp")
    spk2utt = {s: u.split() for s, u in read_kaldi_map(data / "spk2utt").items()}
    assert sorted(cmvn) == sorted(spk2utt)
    for spk, utts in spk2utt.items():
        cat = np.concatenate([two[u] for u in utts]).astype(np.float64)
        direct = np.zeros((2, cat.shape[1] + 1))
        direct[0, :-1], direct[1, :-1], direct[0, -1] = cat.sum(0), (cat ** 2).sum(0), len(cat)
        np.testing.assert_allclose(cmvn[spk], direct, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(load(tmp_path / "d1/cmvn.scp")[spk], cmvn[spk], rtol=1e-12, atol=1e-9)
    # The in-process --nj path (local processes running the same jobs) gives the same dump.
    extract(data, tmp_path / "local", tmp_path / "d3", opts, "--nj", "2")
    assert (tmp_path / "local/feats.2.ark").is_file()
    three = load(tmp_path / "d3/feats.scp")
    assert all(np.array_equal(three[u], two[u]) for u in two)
    assert (tmp_path / "d3/cmvn.scp").read_text().replace("local", "two") == (tmp_path / "d2/cmvn.scp").read_text()


def test_each_job_writes_its_speakers_partial_sums(setup, tmp_path):
    data, opts, _ = setup
    dump = tmp_path / "dump"
    for job in (1, 2):
        extract(data, dump, tmp_path / "out", opts, "--nj", "2", "--job", str(job))
    utt2spk = read_kaldi_map(data / "utt2spk")
    parts = []
    for job, shard in ((1, DataDir.load(data).shard(2, 1)), (2, DataDir.load(data).shard(2, 2))):
        feats = load(dump / f"feats.{job}.scp")
        assert sorted(feats) == [u.utt_id for u in shard]
        assert read_kaldi_map(dump / f"utt2num_frames.{job}") == {u: str(len(m)) for u, m in feats.items()}
        sums = load(dump / f"cmvn.{job}.scp")
        assert sorted(sums) == sorted({utt2spk[u] for u in feats})
        for spk, stats in sums.items():
            np.testing.assert_allclose(stats, compute_cmvn_stats(m for u, m in feats.items() if utt2spk[u] == spk),
                                       rtol=1e-12)
        parts.append(sums)
    assert set(parts[0]) & set(parts[1]) == {"spk1"}  # a speaker split across the jobs
    extract(data, dump, tmp_path / "out", opts, "--nj", "2", "--merge")
    merged = load(dump / "cmvn.scp")
    np.testing.assert_allclose(merged["spk1"], parts[0]["spk1"] + parts[1]["spk1"], rtol=1e-15)
    assert merged.keys() == add_sums(parts).keys()


def test_speaker_sums_add_block_by_block():
    rng = np.random.default_rng(0)
    mat = rng.standard_normal((50, 4)).astype(np.float32)
    acc = SpeakerSums()
    for block in (mat[:7], mat[7:30], mat[30:]):
        acc.add("s", block)
    np.testing.assert_allclose(acc.sums["s"], compute_cmvn_stats([mat]), rtol=1e-12)
    assert acc.sums["s"][0, -1] == 50 and acc.sums["s"][1, -1] == 0


def test_merge_refuses_unfinished_or_mismatched_jobs(setup, tmp_path):
    data, opts, _ = setup
    dump, out = tmp_path / "dump", tmp_path / "out"
    extract(data, dump, out, opts, "--nj", "2", "--job", "1")
    with pytest.raises(DumpError, match=r"done\.2 not found: job 2 of 2 has not finished"):
        extract(data, dump, out, opts, "--nj", "2", "--merge")
    extract(data, dump, out, opts, "--nj", "2", "--job", "2")
    with pytest.raises(DumpError, match=r"done\.1: written by a job of --nj 2, not --nj 1"):
        extract(data, dump, out, opts, "--merge")
    other = make_data_dir(tmp_path / "other", speakers=2, utts=2, seconds=(0.5, 0.6), seed=1)
    with pytest.raises(DumpError, match="its jobs do not match the 4 utterances of"):
        extract(other, dump, out, opts, "--nj", "2", "--merge")
    assert not out.exists()


def test_a_second_extraction_on_the_dump_dir_fails_at_once(setup, tmp_path):
    data, opts, _ = setup
    dump = tmp_path / "dump"
    cli = [sys.executable, "-m", "pase.bin.extract", str(data), str(dump), *opts]
    with dump_lock(dump):  # as a running pase-extract holds it
        for extra in ([], ["--nj", "2", "--merge"], ["--nj", "2", "--job", "1"]):
            start = time.monotonic()
            proc = subprocess.run(cli + extra, capture_output=True, text=True, env=ENV)
            assert proc.returncode == 1, proc.stderr
            assert proc.stderr.strip().splitlines() == [
                f"pase-extract: error: {dump}: in use by another pase-extract (its lock {dump}/.lock is held)"]
            assert time.monotonic() - start < 30  # fails, does not wait
    with dump_lock(dump, job=1):  # job 1 running: job 2 may run beside it, job 1 and a merge may not
        with dump_lock(dump, job=2):
            pass
        with pytest.raises(DumpError, match=rf"{dump}: job 1 is already running there"):
            extract(data, dump, tmp_path / "out", opts, "--nj", "2", "--job", "1")
        with pytest.raises(DumpError, match=rf"{dump}: in use by another pase-extract"):
            extract(data, dump, tmp_path / "out", opts, "--nj", "2", "--merge")
    assert not list(dump.glob("feats*"))


def test_run_local_runs_the_jobs_and_reports_a_failed_one(setup, tmp_path):
    data, opts, _ = setup
    cmd = [sys.executable, "-m", "pase.bin.extract", str(data), str(tmp_path / "dump"),
           "--out_data_dir", str(tmp_path / "out"), *opts, "--nj", "3"]
    log = tmp_path / "log/extract.JOB.log"
    proc = subprocess.run([ROOT / "utils/run_local.sh", "JOB=1:3", log, *cmd, "--job", "JOB"],
                          capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0, proc.stderr
    for job in (1, 2, 3):
        assert "# Ended (code 0)" in (tmp_path / f"log/extract.{job}.log").read_text()
        assert (tmp_path / f"dump/done.{job}").is_file()
    subprocess.run(cmd + ["--merge"], check=True, env=ENV)
    assert len(read_kaldi_map(tmp_path / "out/feats.scp")) == 9
    # Job 2's shard (utterances 4-6) has an unreadable file: run_local.sh names its log, merge refuses.
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("utt2spk", "spk2utt"):
        (bad / name).write_text((data / name).read_text())
    (bad / "wav.scp").write_text((data / "wav.scp").read_text().replace("spk1-utt1.wav", "missing.wav"))
    cmd[3] = str(bad)
    proc = subprocess.run([ROOT / "utils/run_local.sh", "JOB=1:3", log, *cmd, "--job", "JOB"],
                          capture_output=True, text=True, env=ENV)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"run_local.sh: 1 of 3 job(s) failed; see {tmp_path}/log/extract.2.log"
    assert "missing.wav" in (tmp_path / "log/extract.2.log").read_text()
    proc = subprocess.run(cmd + ["--merge"], capture_output=True, text=True, env=ENV)
    assert proc.returncode == 1 and "done.2 not found: job 2 of 3 has not finished" in proc.stderr
