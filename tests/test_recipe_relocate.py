"""Recipe dirs work outside egs/<corpus>/<task>/: utils/make_recipe.sh (absolute links into this
checkout), a plain copy repaired by it, a `cp -rL` copy with PASE_ROOT from the environment, and a
one-line error when the checkout cannot be found."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ["librispeech/pase1", "speakers/cls1", "timit/hybrid1"]


def env(**extra: str) -> dict:
    e = {k: v for k, v in os.environ.items() if k != "PASE_ROOT"}
    e.update(extra)
    return e


def run(cmd: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env(**extra), capture_output=True,
                          text=True, timeout=120)


def copy(src: Path, dst: Path, symlinks: bool) -> None:
    """`cp -a` (links kept as they are) or `cp -rL` (links followed), without run products."""
    shutil.copytree(src, dst, symlinks=symlinks,
                    ignore=shutil.ignore_patterns("data", "exp", "dump", "__pycache__"))


def assert_works(recipe: Path, **extra: str) -> None:
    """--help lists the stages; db.sh + path.sh put this checkout's pase-train on PATH."""
    r = run("./run.sh --help", recipe, **extra)
    assert r.returncode == 0, r.stderr
    assert "Stages:" in r.stdout and "  0  local/download.sh" in r.stdout
    r = run(". ./db.sh && . ./path.sh && command -v pase-train && echo \"root=${PASE_ROOT}\"",
            recipe, **extra)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == str(ROOT / "tools/venv/bin/pase-train")
    assert f"root={ROOT}" in r.stdout


@pytest.mark.parametrize("recipe", RECIPES)
def test_make_recipe_anywhere(recipe, tmp_path):
    dst = tmp_path / "mycorpus" / Path(recipe).name
    r = run(f"utils/make_recipe.sh egs/{recipe} {dst}", ROOT)
    assert r.returncode == 0, r.stderr
    for name in ("path.sh", "cmd.sh", "utils"):
        assert os.path.isabs(os.readlink(dst / name))
    assert (dst / "local/data.sh").is_file() and not (dst / "local/data.sh").is_symlink()
    assert not (dst / "data").exists() and not (dst / "exp").exists()
    assert_works(dst)


def test_plain_copy_fails_clearly_then_make_recipe_repairs_it(tmp_path):
    dst = tmp_path / "pase1"
    copy(ROOT / "egs/librispeech/pase1", dst, symlinks=True)    # `cp -a`
    r = run("./run.sh --help", dst)
    assert r.returncode != 0
    assert "cannot find the pase checkout" in r.stderr and "utils/make_recipe.sh" in r.stderr
    (dst / "db.sh").write_text((dst / "db.sh").read_text() + "# my corpus\n")
    r = run(f"utils/make_recipe.sh egs/librispeech/pase1 {dst}", ROOT)
    assert r.returncode == 0, r.stderr
    assert (dst / "db.sh").read_text().endswith("# my corpus\n")   # the user's files are kept
    assert_works(dst)


def test_dereferenced_copy_with_pase_root_from_the_environment(tmp_path):
    dst = tmp_path / "cls1"
    copy(ROOT / "egs/speakers/cls1", dst, symlinks=False)      # `cp -rL`
    r = run(". ./db.sh", dst)
    assert r.returncode != 0 and "cannot find the pase checkout" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert_works(dst, PASE_ROOT=str(ROOT))
