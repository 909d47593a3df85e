"""What the training loop takes and gives back: a few small records, so that the Trainer's
constructor reads as a sentence (model, settings, run folder, batches, where it runs, and what
the caller plugs in).

    Trainer(model, cfg, run_dir, batch_fn, Runtime(device, dtype, compile, dist),
            hooks=Hooks(eval_fn, sample_fn), files=CheckpointFiles(state, tokenizer_file),
            speed=Throughput(tokens_per_step, flops_per_token, peak_flops))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from causette.train.distributed import DistInfo

BatchFn = Callable[[int, int, int, int], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class TrainResult:
    steps: int
    tokens: int
    seconds: float
    last_loss: float
    val: dict = field(default_factory=dict)
    best_val_loss: float = math.inf
    checkpoint: Path | None = None
    stopped: str = "done"  # done | interrupted | time limit
    budget_seconds: float = 0.0  # train.max_minutes in seconds (0: no budget)
    budget_used: float = 0.0  # seconds of it used, earlier sessions of a resumed run included


@dataclass
class Runtime:
    """Where and how the steps run."""

    device: torch.device
    dtype: torch.dtype = torch.float32  # bf16: autocast
    compile: bool = False  # torch.compile the model
    dist: DistInfo = field(default_factory=DistInfo)  # torchrun's ranks (one process: none)


@dataclass
class Hooks:
    """What the caller plugs into the loop: evaluation, samples, and callbacks after each step."""

    eval_fn: Callable[[nn.Module], dict] | None = None  # model → val metrics ("loss", ...)
    sample_fn: Callable[[nn.Module], list[str]] | None = None  # model → generated texts (TensorBoard)
    after_step: list[Callable[[Any], None]] = field(default_factory=list)  # called with the Trainer after each step (the tests' fault injection)


@dataclass
class CheckpointFiles:
    """What a checkpoint holds besides the model and optimiser, and how weights are written and read."""

    state_extra: dict = field(default_factory=dict)  # stage, tokenizer hash, configs... (state.json)
    tokenizer_file: str | Path | None = None  # copied into every checkpoint
    save_weights: Callable[[nn.Module, Path], None] | None = None  # LoRA writes its adapter only
    load_weights: Callable[[nn.Module, Path], None] | None = None


@dataclass
class Throughput:
    """For tokens per second and MFU (model FLOPs utilization) in the logs."""

    tokens_per_step: int = 0
    flops_per_token: float = 0.0
    peak_flops: float = 0.0  # 0: no MFU
    peak_source: str = ""  # where the peak came from (causette/utils/flops.py), named if MFU exceeds 100 %
