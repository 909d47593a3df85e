"""Shared test set-up.

Test models are tiny: one thread is faster than two for them (no synchronisation), and it
keeps timings steady when the machine is busy.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

# Compiled decoding steps (causette/inference/backends/aoti.py) go to a cache of this test session,
# shared by its subprocesses: each tiny model shape compiles once per session, and the user's
# own cache is left alone.
if "CAUSETTE_CACHE_DIR" not in os.environ:
    os.environ["CAUSETTE_CACHE_DIR"] = tempfile.mkdtemp(prefix="causette-test-cache-")
    atexit.register(shutil.rmtree, os.environ["CAUSETTE_CACHE_DIR"], ignore_errors=True)
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/helpers.py


@pytest.fixture(autouse=True)
def learner_language(monkeypatch):
    """Every test starts in the default language (French), whatever the locale of the machine:
    no CAUSETTE_LANG, a locale that is not English, no language chosen by an earlier --lang."""
    from causette.utils.lang import set_language

    for var in ("CAUSETTE_LANG", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    set_language(None)
    yield
    set_language(None)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """A prepared tiny run (corpus, tokenizer, data) for a test module: copy it with helpers.copy_run."""
    from helpers import make_tiny_run

    root = tmp_path_factory.mktemp("runs")
    make_tiny_run(root, "base")
    return root / "base"
