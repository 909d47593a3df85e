"""The names of a checkpoint's files: spelled here, and nowhere else in the package.

    runs/<name>/checkpoints/           CHECKPOINTS (RunLayout.checkpoints)
        step_0000200/                  step_name(200)
            config.json                CONFIG_FILE     config_path(folder)
            model.safetensors          MODEL_FILE      weights_path(folder)
            adapter.safetensors        ADAPTER_FILE    a LoRA checkpoint's weights, instead of MODEL_FILE
            adapter.json               ADAPTER_JSON    ... and its settings and base
            tokenizer.json             TOKENIZER_FILE  a copy of the tokenizer (causette/tokenizer/io.py)
            optimizer.pt               OPTIMIZER_FILE
            state.json                 STATE_FILE      state_path(folder)
        latest, best                   LATEST, BEST: text files naming a step directory

What each file holds, and how it is written and read, is in weights.py, steps.py and adapters.py.
This module imports nothing of Causette's (nor torch): the lowest layer (the run folder's layout in causette/utils/paths.py,
the recognition of Causette's folders in causette/utils/artefact.py) reads these names too.
tests/test_file_names.py fails on a checkpoint file name spelled anywhere else.
"""

from __future__ import annotations

import os
from pathlib import Path

CHECKPOINTS = "checkpoints"  # the folder of a run (and of its sft/ sub-run) that holds the step directories
STEP_PREFIX = "step_"
CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
ADAPTER_FILE = "adapter.safetensors"
ADAPTER_JSON = "adapter.json"
TOKENIZER_FILE = "tokenizer.json"
OPTIMIZER_FILE = "optimizer.pt"
STATE_FILE = "state.json"
LATEST = "latest"
BEST = "best"


def step_name(step: int) -> str:
    """``step_0000200``: the directory of the checkpoint written at ``step``."""
    return f"{STEP_PREFIX}{step:07d}"


def config_path(folder: str | os.PathLike) -> Path:
    """``folder/config.json``: the model's settings."""
    return Path(folder) / CONFIG_FILE


def weights_path(folder: str | os.PathLike) -> Path:
    """``folder/model.safetensors``: the model's full weights."""
    return Path(folder) / MODEL_FILE


def state_path(folder: str | os.PathLike) -> Path:
    """``folder/state.json``: the step, the stage, the RNG states, the configs."""
    return Path(folder) / STATE_FILE
