"""Threads that survive a busy machine: set before PyTorch starts its OpenMP runtime.

A laptop is never idle. PyTorch's OpenMP threads, between two parallel regions, *spin* (burn a
core waiting for work) for a while before sleeping. When another program holds one of the
cores, a spinning thread steals time from the thread that has the work, and every parallel
region waits for its slowest thread: training ran at 0.38× its quiet speed beside one
CPU-bound process on 2 cores (bench/LOG.md). Passive waiting (``OMP_WAIT_POLICY=PASSIVE``:
sleep at once) costs nothing measurable on a quiet machine and gives most of the speed back.

OpenMP reads these variables once, when the runtime starts, that is at ``import torch``; so
:func:`configure` runs when the ``causette`` package is imported (``causette/__init__.py``),
which every entry point does before importing torch: the CLI, ``python -m causette``, each
torchrun rank, the server, the benches. A program that imported torch first keeps spinning.

What it sets, never overriding a value the user gave:

- ``OMP_WAIT_POLICY=PASSIVE``;
- the number of threads: one process uses all the cores it may run on (PyTorch's default,
  unless a CPU quota of the container allows fewer: then the quota); under torchrun, each of
  the N local ranks gets cores ÷ N. torchrun itself sets ``OMP_NUM_THREADS=1`` when the user
  did not, and that value cannot be told apart from a user's, so under torchrun a 1 is read as
  torchrun's default; ``CAUSETTE_THREADS=N`` forces N threads per process in every case.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import MutableMapping

# The thread count we chose ourselves, so that a child process (torchrun ranks started from a
# causette process, a pool's workers) does not mistake it for the user's.
MARK = "CAUSETTE_AUTO_THREADS"


def usable_cores(cgroup: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota if any."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        cores = os.cpu_count() or 1
    try:
        quota, period = cgroup.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(cores, 1)


def configure(environ: MutableMapping[str, str] | None = None, cores: int | None = None) -> dict[str, str]:
    """Set the OpenMP variables in ``environ`` (``os.environ``); returns the ones it set."""
    env = os.environ if environ is None else environ
    cores = usable_cores() if cores is None else cores
    chosen: dict[str, str] = {}
    if not env.get("OMP_WAIT_POLICY"):
        chosen["OMP_WAIT_POLICY"] = "PASSIVE"

    forced = env.get("CAUSETTE_THREADS", "").strip()
    given = env.get("OMP_NUM_THREADS", "").strip()
    ours = given and env.get(MARK) == given  # set by a causette parent process, not by the user
    local_world = _int(env.get("LOCAL_WORLD_SIZE")) or 1  # set by torchrun in each rank
    if forced:
        if _int(forced) < 1:
            raise SystemExit(f"error: CAUSETTE_THREADS={forced!r}: expected a whole number of threads >= 1")
        threads = forced
    elif local_world > 1 and (not given or given == "1" or ours):
        threads = str(max(1, cores // local_world))  # cores ÷ ranks (torchrun's 1 read as its default)
    elif given and not ours:
        threads = ""  # the user's setting wins
    elif (os.cpu_count() or 1) > cores:
        threads = str(cores)  # affinity or a CPU quota allows fewer cores than the machine has
    else:
        threads = ""  # PyTorch's default: all the cores
    if threads and threads != given:
        chosen["OMP_NUM_THREADS"] = threads
    if threads and not forced:
        chosen[MARK] = threads
    env.update(chosen)
    return chosen


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        return 0
