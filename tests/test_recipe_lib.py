"""utils/lib/recipe.sh (the templates' shared helpers) and the jemalloc exports of path.sh."""
from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from pase.launch import shell_exports

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "utils" / "lib" / "recipe.sh"
TEMPLATES = [ROOT / "egs/TEMPLATE/pase1/pase.sh", ROOT / "egs/TEMPLATE/hybrid1/hybrid.sh",
             ROOT / "egs/TEMPLATE/cls1/cls.sh", ROOT / "egs/demo/run.sh",
             ROOT / "egs/librispeech/pase1/local/probe_curve.sh"]


def sh(script: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f"set -euo pipefail; . {LIB}\n{script}"], cwd=cwd,
                          capture_output=True, text=True)


def test_checkpoints_sort_by_epoch_number(tmp_path):
    for name in ("FE_e10.ckpt", "FE_e2.ckpt", "FE_e1.ckpt", "FE_ebest.ckpt", "workers_e11.ckpt"):
        (tmp_path / name).write_bytes(b"")
    out = sh("checkpoints .; echo latest=$(latest_checkpoint .)", tmp_path).stdout.split()
    assert out == ["./FE_e1.ckpt", "./FE_e2.ckpt", "./FE_e10.ckpt", "latest=./FE_e10.ckpt"]
    proc = sh("c=$(latest_checkpoint empty); [ -z \"$c\" ] && echo none", tmp_path)
    assert proc.stdout == "none\n", proc.stderr


def test_fresh_and_die(tmp_path):
    (tmp_path / "in").write_text("x")
    time.sleep(0.02)
    (tmp_path / "stamp").write_text("x")
    assert sh("fresh stamp in && echo yes", tmp_path).stdout == "yes\n"
    os.utime(tmp_path / "in", (time.time() + 5, time.time() + 5))
    assert sh("fresh stamp in || echo stale; fresh missing || echo missing", tmp_path).stdout == "stale\nmissing\n"
    script = tmp_path / "stage.sh"
    script.write_text(f". {LIB}\nlog starting\ndie 'no data'\necho unreachable\n")
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert proc.returncode == 1 and "unreachable" not in proc.stdout
    assert "(stage.sh:2) starting" in proc.stderr and "(stage.sh:3) ERROR: no data" in proc.stderr


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_templates_parse_and_use_the_library(template):
    assert subprocess.run(["bash", "-n", str(template)]).returncode == 0
    text = template.read_text()
    assert "utils/lib/recipe.sh" in text
    assert "log() {" not in text and "fresh() {" not in text and "FE_e\\(" not in text


def test_path_sh_exports_come_from_the_launcher(tmp_path):
    lib = tmp_path / "libjemalloc.so.2"
    lib.write_bytes(b"")
    import pase.launch as launch
    old = launch.CANDIDATES
    launch.CANDIDATES = (str(lib),)
    try:
        out = shell_exports({"LD_PRELOAD": "/x/other.so"})
        assert out.splitlines() == [f"export LD_PRELOAD={lib}:/x/other.so", f"export MALLOC_CONF={launch.MALLOC_CONF}"]
        assert shell_exports({"PASE_JEMALLOC": "0"}) == ""
        assert shell_exports({"LD_PRELOAD": str(lib)}) == ""
    finally:
        launch.CANDIDATES = old


STAGED = {"pase1/pase.sh": 7, "cls1/cls.sh": 6, "hybrid1/hybrid.sh": 6}


@pytest.mark.parametrize("template, last", STAGED.items())
def test_templates_list_their_stages_and_refuse_others(template, last, tmp_path):
    """--help shows the header's stage table; a stage outside it (or not a number, or a stop
    before the start) is an error listing it, before anything runs (no path.sh is needed)."""
    (tmp_path / "utils").symlink_to(ROOT / "utils")
    path = ROOT / "egs/TEMPLATE" / template

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(path), *args], cwd=tmp_path, capture_output=True, text=True)

    def stage_numbers(text: str) -> list[str]:
        return [line.split()[0] for line in text.splitlines() if re.match(r"^  \d+  ", line)]

    proc = run("--help")
    assert proc.returncode == 0 and "Stages:" in proc.stdout
    assert stage_numbers(proc.stdout) == [str(n) for n in range(last + 1)]
    for args, what in [(("--stage", str(last + 1)), f"--stage {last + 1}: not a stage of {path.name} (0-{last})"),
                       (("--stage", "x"), "--stage x: not a stage"),
                       (("--stop_stage", "-1"), "--stop_stage -1: not a stage"),
                       (("--stage", "3", "--stop_stage", "2"), "--stage 3 is after --stop_stage 2")]:
        proc = run(*args)
        assert proc.returncode == 1 and f"ERROR: {what}" in proc.stderr, (args, proc.stderr)
        if "not a stage" in what:
            assert stage_numbers(proc.stderr) == [str(n) for n in range(last + 1)]
    script = tmp_path / "ok.sh"
    script.write_text(f". {LIB}\nstage=0; stop_stage={last}\ncheck_stages {path}\necho ok\n")
    assert subprocess.run(["bash", str(script)], capture_output=True, text=True).stdout == "ok\n"


def test_speakers_recipe_subset_follows_the_corpus():
    """egs/speakers/cls1: the synthetic corpus' train-clean-5, a real copy's train-clean-100
    (openSLR resource 12, what stage 0 can download), TRAIN_SUBSET from the environment."""
    recipe = ROOT / "egs/speakers/cls1"

    def usage(**env):
        return subprocess.run(["./run.sh", "--help"], cwd=recipe, capture_output=True, text=True,
                              env={**os.environ, **env}).stdout

    assert "--data-set train_clean_5\n" in usage()
    real = usage(LIBRISPEECH="/corpora/LibriSpeech")
    assert "--data-set train_clean_100\n" in real and "--subsets\\ train-clean-100\n" in real
    assert "--train-list data/local/train_clean_100_lists/train\n" in real
    assert "--data-set train_other_500\n" in usage(LIBRISPEECH="/corpora/LibriSpeech", TRAIN_SUBSET="train-other-500")
