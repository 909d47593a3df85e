"""Data-parallel training under ``torchrun`` (DDP): one process per device, same model everywhere.

``torchrun --nproc_per_node=N -m causette train ...`` starts N copies of the trainer with
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` in their environment. Each process draws its own
slice of every batch (see causette/data/loader.py), computes gradients, and DDP averages them
across processes during ``backward()``; every process then applies the same update. Only rank 0
logs, evaluates to TensorBoard and writes checkpoints.

Backends: NCCL between CUDA GPUs, gloo on CPU (what the tests use, with 2 processes).
For a model that does not fit on one GPU, FSDP (``torch.distributed.fsdp.fully_shard``) shards
parameters, gradients and optimiser state across ranks instead of replicating them; see
docs/entrainement.md — our models are small enough for DDP.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def setup(device_type: str) -> DistInfo:
    """Join the process group when started by torchrun; a no-op for a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world)
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
    return info


def device_for(info: DistInfo, device: torch.device) -> torch.device:
    """Each rank on its own GPU; CPU ranks share the CPU."""
    if info.enabled and device.type == "cuda":
        return torch.device("cuda", info.local_rank)
    return device


def all_mean(value: float, info: DistInfo, device: torch.device) -> float:
    """Average a Python number over ranks (for logging a loss that every rank computed)."""
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / info.world


def all_mean_many(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    """:func:`all_mean` of several numbers in one exchange."""
    if not info.enabled:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return [float(x) / info.world for x in t.tolist()]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def teardown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
