"""`pip install .` (not only `-e`) gives a working Causette: configs and demo data are package data.

The wheel is built from a copy of the sources and installed without dependencies into a fresh
virtual environment; the dependencies come from this interpreter's site-packages through
PYTHONPATH (which does not load this checkout's editable install), so the test needs no network.
Then, from an empty folder, the installed `causette` finds its shipped configs and demo corpus.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from helpers import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    shutil.copytree(REPO / "causette", src / "causette", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(src)],
                   check=True, capture_output=True, text=True, timeout=300)
    (wheel,) = (root / "dist").glob("causette-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300)
    return venv


def run(venv: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    return subprocess.run([str(venv / "bin" / "python"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_wheel_ships_configs_and_demo_data(installed, tmp_path):
    where = run(installed, ["-c", "import causette, causette.utils.paths as p; print(causette.__file__); "
                            "print(p.DEMO_CORPUS.is_file(), p.DEMO_SFT.is_file(), (p.CONFIG_DIR / 'model' / 'llama.yaml').is_file())"], tmp_path)
    assert where.returncode == 0, where.stderr
    path, found = where.stdout.split("\n")[:2]
    assert str(installed) in path and str(REPO) not in path  # the installed copy, not this checkout
    assert found == "True True True"
    cfg = run(installed, ["-c", "from causette.config import load_config; c = load_config('seed16m'); print(c.model.n_layer)"], tmp_path)
    assert cfg.returncode == 0 and cfg.stdout.strip().isdigit(), cfg.stderr


def test_the_installed_command_builds_the_demo_corpus(installed, tmp_path):
    r = run(installed, ["-m", "causette", "corpus", "build", "--name", "demo", "--no-progress"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "corpus: 35 documents" in r.stdout
    assert (tmp_path / "runs" / "demo" / "corpus" / "manifest.json").is_file()
