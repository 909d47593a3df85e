"""OpenMP thread settings for a shared machine (causette/utils/threads.py): passive waiting and a
thread count per process, set before torch starts, a user's own setting always winning."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from causette.utils.threads import MARK, configure, usable_cores
from helpers import REPO


def test_defaults_passive_waiting_and_all_cores():
    env: dict = {}
    configure(env, cores=8)
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert "OMP_NUM_THREADS" not in env  # one process: PyTorch's default, all the cores


def test_the_users_settings_win():
    env = {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "3"}
    assert configure(env, cores=8) == {}
    assert env == {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "3"}


@pytest.mark.parametrize("given", [None, "1"])
def test_torchrun_ranks_share_the_cores(given):
    """torchrun sets OMP_NUM_THREADS=1 when the user did not: read as unset, cores ÷ ranks."""
    env = {"LOCAL_WORLD_SIZE": "4", **({"OMP_NUM_THREADS": given} if given else {})}
    configure(env, cores=16)
    assert env["OMP_NUM_THREADS"] == "4"
    env = {"LOCAL_WORLD_SIZE": "4"}
    configure(env, cores=2)
    assert env["OMP_NUM_THREADS"] == "1"  # never zero


def test_torchrun_with_the_users_thread_count_keeps_it():
    env = {"LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "3"}
    configure(env, cores=16)
    assert env["OMP_NUM_THREADS"] == "3"


def test_causette_threads_forces_the_count_everywhere():
    env = {"LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "1", "CAUSETTE_THREADS": "1"}
    configure(env, cores=16)
    assert env["OMP_NUM_THREADS"] == "1"
    env = {"OMP_NUM_THREADS": "6", "CAUSETTE_THREADS": "2"}
    configure(env, cores=16)
    assert env["OMP_NUM_THREADS"] == "2"
    with pytest.raises(SystemExit, match="CAUSETTE_THREADS='two'"):
        configure({"CAUSETTE_THREADS": "two"}, cores=4)


def test_a_count_we_chose_is_not_taken_for_the_users_in_a_child():
    """A causette process that chose 8 threads starts torchrun with 2 ranks: they get 8 ÷ 2 each."""
    parent: dict = {"LOCAL_WORLD_SIZE": "1"}
    parent.update({"OMP_NUM_THREADS": "8", MARK: "8"})  # as configure() leaves it under a CPU quota
    child = {**parent, "LOCAL_WORLD_SIZE": "2"}
    configure(child, cores=8)
    assert child["OMP_NUM_THREADS"] == "4"


def test_cpu_quota_caps_the_cores(tmp_path):
    quota = tmp_path / "cpu.max"
    quota.write_text("150000 100000\n")  # 1.5 CPUs
    assert usable_cores(quota) == min(2, usable_cores(tmp_path / "absent"))
    quota.write_text("max 100000\n")
    assert usable_cores(quota) == usable_cores(tmp_path / "absent") >= 1


def run_python(code: str, **env) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", MARK, "CAUSETTE_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**clean, "PYTHONPATH": str(REPO), **env},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_set_before_torch_starts_in_a_fresh_process():
    """Importing causette sets the variables without importing torch, so torch's OpenMP runtime
    starts with them; torch then uses the thread count we chose."""
    code = (
        "import os, sys, causette; assert 'torch' not in sys.modules; print(os.environ['OMP_WAIT_POLICY']); "
        "import torch; print(torch.get_num_threads())"
    )
    assert run_python(code, CAUSETTE_THREADS="1").split() == ["PASSIVE", "1"]
    assert run_python(code, OMP_WAIT_POLICY="active", OMP_NUM_THREADS="1").split() == ["active", "1"]


def test_every_entry_point_imports_causette_before_torch():
    """`causette` (console script), `python -m causette` and the benches go through the package."""
    import causette.cli

    main_src = (REPO / "causette" / "__main__.py").read_text()
    assert "from causette" in main_src  # python -m causette: the package's __init__ runs first
    assert causette.cli.__name__.startswith("causette.")  # the console script causette.cli:main
    for bench in sorted((REPO / "bench").glob("*.py")):
        lines = [ln for ln in bench.read_text().splitlines() if ln.startswith(("import ", "from "))]
        torch_at = next((i for i, ln in enumerate(lines) if ln.startswith(("import torch", "from torch"))), None)
        ours_at = next((i for i, ln in enumerate(lines) if ln.startswith(("import causette", "from causette"))), None)
        if torch_at is not None:
            assert ours_at is not None and ours_at < torch_at, f"{bench.name}: import causette before torch"
