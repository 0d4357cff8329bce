"""The recipes on a real Slurm (tests/slurm_cluster.py: two slurmd "nodes" on this machine):
the pretraining recipe's statistics, training and extraction as Slurm jobs through cmd.sh's
utils/run_slurm.sh, JOB=1:N as N array tasks, multi-node training as one allocation whose tasks
run torchrun themselves.  Slurm's own record of the jobs is its jobcomp/filetxt file (no sacct
without slurmdbd)."""
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import recipe_tree
from slurm_cluster import slurm_missing, start_cluster

ROOT = Path(__file__).resolve().parents[1]
TINY_TRAIN = ["--train_config", "conf/train_demo.yaml", "--stats_batches", "2",
              "--train_args", "--epoch 1 --batches_per_epoch 2 --valid_batches 1 --batch_size 2"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slurm():
    reason = slurm_missing()
    if reason:
        pytest.skip(reason)
    cluster = start_cluster()
    yield cluster
    cluster.stop()
    print("Slurm's job records (jobcomp/filetxt):")
    for job in cluster.jobs():
        print(" ", " ".join(f"{k}={job.get(k, '')}" for k in ("JobId", "Name", "JobState", "NodeList",
                                                                "ArrayJobId", "ArrayTaskId", "Tres")))
    shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture(scope="module")
def recipe(slurm, tmp_path_factory):
    """egs/librispeech/pase1 in a tree of its own with the synthetic corpus, stages 1-2 done
    locally, and the environment that sends cmd.sh's jobs to the cluster, sized to its nodes."""
    from pase.synth import make_librispeech
    root = tmp_path_factory.mktemp("slurm_recipe")
    env = recipe_tree(root)
    make_librispeech(root / "egs/demo/work/corpora/librispeech",
                     subsets={"train-clean-5": (4, 3), "dev-clean-2": (2, 2)}, seed=1)
    rdir = root / "egs/librispeech/pase1"
    # 4 speakers: --nj 2 keeps two on each side of the held-out-speaker split
    proc = subprocess.run(["./run.sh", "--stage", "1", "--stop_stage", "2", "--nj", "2"], cwd=rdir, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = dict(env, SLURM_CONF=slurm.env["SLURM_CONF"], PASE_CMD_BACKEND="slurm",
               PASE_SLURM_CPU_OPTS="--mem 1G --time 20", PASE_SLURM_GPU_OPTS="--mem 2G --time 20")
    return rdir, env


def jobs_named(slurm, name: str) -> dict[str, list[dict]]:
    """Slurm's records of the jobs called `name`, by array job."""
    out: dict[str, list[dict]] = {}
    for job in slurm.jobs():
        if job["Name"] == name:
            out.setdefault(job.get("ArrayJobId", job["JobId"]), []).append(job)
    return out


def test_run_slurm_array_tasks_and_a_refused_request(slurm, tmp_path):
    """JOB=1:3 is one array of three real tasks, spread over the nodes; a --mem no node has is
    sbatch's own error, and run_slurm.sh names the job's log."""
    proc = slurm.run(str(ROOT / "utils/run_slurm.sh"), "--mem", "100M", "JOB=1:3", str(tmp_path / "log/t.JOB.log"),
                     "echo", "task JOB on", "$SLURMD_NODENAME", ">", str(tmp_path / "out.JOB"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    outs = sorted((tmp_path / f"out.{j}").read_text().split() for j in (1, 2, 3))
    assert [o[:2] for o in outs] == [["task", "1"], ["task", "2"], ["task", "3"]]
    arrays = jobs_named(slurm, "t")
    assert len(arrays) == 1
    tasks = next(iter(arrays.values()))
    assert sorted(t["ArrayTaskId"] for t in tasks) == ["1", "2", "3"]
    assert all(t["JobState"] == "COMPLETED" and "mem=100M" in t["Tres"] for t in tasks)
    assert {o[-1] for o in outs} == {t["NodeList"] for t in tasks} <= {"n1", "n2"}

    too_much = f"{slurm.mem_mb * 2}M"
    proc = slurm.run(str(ROOT / "utils/run_slurm.sh"), "--mem", too_much, str(tmp_path / "log/big.log"), "true")
    assert proc.returncode == 1
    assert "sbatch: error:" in proc.stderr and "Requested node configuration is not available" in proc.stderr
    assert f"1 of 1 job(s) failed (sbatch exit status 1); see {tmp_path}/log/big.log" in proc.stderr


def test_pretraining_recipe_stages_as_slurm_jobs(slurm, recipe):
    """Stages 3-5 (statistics, one short epoch, extraction) with cmd.sh's Slurm backend: every
    job is a Slurm job with cmd.sh's requests, extraction JOB=1:3 three array tasks then a merge."""
    rdir, env = recipe
    proc = subprocess.run(["./run.sh", "--stage", "3", "--stop_stage", "5", "--tag", "slurm", "--nj", "3",
                           "--dump_sets", "dev_clean_2", *TINY_TRAIN],
                          cwd=rdir, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "(1 CPU process(es) x 1 node(s))" in proc.stdout + proc.stderr
    for name, mem in (("stats", "1G"), ("train", "2G")):
        (job,), = jobs_named(slurm, name).values()
        assert job["JobState"] == "COMPLETED" and f"mem={mem}" in job["Tres"], job
    array, = jobs_named(slurm, "extract_dev_clean_2").values()  # three extraction jobs, one array
    merge, = jobs_named(slurm, "merge_dev_clean_2").values()
    assert sorted(t["ArrayTaskId"] for t in array) == ["1", "2", "3"] and len(merge) == 1
    assert all(t["JobState"] == "COMPLETED" and "mem=1G" in t["Tres"] for t in array + merge)
    exp = rdir / "exp/slurm"
    assert (exp / "FE_e0.ckpt").exists() and (exp / "log/q/train.sh").exists()
    # each job keeps its own generated script (the merge no longer overwrites the array's)
    assert "--job" in (exp / "log/q/extract_dev_clean_2.sh").read_text()
    assert "--merge" in (exp / "log/q/merge_dev_clean_2.sh").read_text()
    for j in (1, 2, 3):
        assert (exp / f"log/extract_dev_clean_2.{j}.log").read_text().splitlines()[-1].startswith("# Ended (code 0)")
    scp = (rdir / "data/dev_clean_2_slurm/feats.scp").read_text().split("\n")
    wav = (rdir / "data/dev_clean_2/wav.scp").read_text().split("\n")
    assert [line.split(" ")[0] for line in scp] == [line.split(" ")[0] for line in wav]


def test_multinode_training_in_one_allocation(slurm, recipe):
    """`sbatch -N 2 --wrap "srun ./run.sh --stage 4 ..."`: each of the allocation's two tasks runs
    torchrun itself (no job submitted from inside), they meet at the first node's address under the
    job id, one world of 2 gloo ranks trains, each task writes its own log."""
    rdir, env = recipe
    proc = subprocess.run(["./run.sh", "--stage", "3", "--stop_stage", "3", "--tag", "mn", *TINY_TRAIN],
                          cwd=rdir, env=dict(env, PASE_CMD_BACKEND="local"), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    before = len(slurm.jobs())
    stage4 = ("srun ./run.sh --stage 4 --stop_stage 4 --tag mn --train_config conf/train_demo.yaml "
              "--train_args '--epoch 1 --batches_per_epoch 2 --valid_batches 1 --batch_size 2'")
    proc = subprocess.run(["sbatch", "--wait", "-N", "2", "--ntasks-per-node", "1", "--mem", "2G", "--time", "20",
                           "--job-name", "multinode", "--output", "multinode.out", "--wrap", stage4],
                          cwd=rdir, env=env, capture_output=True, text=True, timeout=900)
    out = (rdir / "multinode.out").read_text() if (rdir / "multinode.out").exists() else ""
    assert proc.returncode == 0, proc.stderr + out[-3000:]
    jobs = slurm.jobs()[before:]
    assert [(j["Name"], j["NodeCnt"], j["NodeList"], j["JobState"]) for j in jobs] == [
        ("multinode", "2", "n[1-2]", "COMPLETED")]  # the allocation, and no job nested in it
    job_id = jobs[0]["JobId"]
    port = 29400 + int(job_id) % 1000
    for node in (0, 1):
        assert (f"(1 CPU process(es) x 2 node(s), Slurm job {job_id} node {node} (n{node + 1}), "
                f"rendezvous 127.0.0.1:{port})") in out, out[-3000:]
    exp = rdir / "exp/mn"
    logs = sorted(p.name for p in (exp / "log").glob("train*.log"))
    assert logs == ["train.node0.log", "train.node1.log"] and not (exp / "log/q").exists()
    for name in logs:
        text = (exp / "log" / name).read_text()
        assert "--rdzv_backend c10d --rdzv_endpoint 127.0.0.1" in text.splitlines()[0]
        assert "x 2 ranks, device cpu" in text and text.splitlines()[-1].startswith("# Ended (code 0)"), text[-3000:]
    assert yaml.safe_load((exp / "train.yaml").read_text())["run"]["world_size"] == 2
    assert sorted(p.name for p in exp.glob("FE_e*.ckpt")) == ["FE_e0.ckpt"]
