"""The AOTInductor backend: the model's own decoding step (``Transformer.step_kv``) compiled ahead
of time into a shared library, cached on disk, loaded in milliseconds.

Why: at batch 1 a decoding step of a small model is a few hundred tiny operations around ~20
matrix-vector products. Run one by one from Python ("eager" mode), each costs a few
microseconds of dispatch, and PyTorch's BLAS reads the weights of a matrix-vector product at
~16 GB/s on the AMD CPU of bench/LOG.md. Compiled, the whole step is one C++ function: the small
operations are fused into a few loops and the products become vectorised loops that read
~45 GB/s (:class:`MatvecLinear`). 3× faster than eager for the demo model (bench/LOG.md).

How:

* what is compiled is the model's ``step_kv`` on a *twin* of the model (``Transformer.twin``:
  the same weight tensors, each plain linear layer computing its product in the arrangement
  that compiles best, :func:`arrangement`): the arithmetic stays the model's, written once;
* ``torch.export`` traces the step once, with the **weights as inputs** rather than constants:
  the library depends on the model's *shape* only, so one compilation serves every checkpoint
  of that shape (pretraining, SFT, each step of training), and the file holds no weights
  (~2 MB);
* ``torch._inductor.aoti_compile_and_package`` compiles it (15 to 60 s on 2 busy CPU cores)
  into a ``.pt2`` package, written atomically (a temporary file, then a rename) under
  :func:`~causette.inference.backends.cache_dir`, its name a hash of everything the code
  depends on (:func:`cache_key`): the model's configuration and the types of its layers (int8,
  LoRA), the dtype, the batch size, the torch version, the machine (architecture and CPU flags)
  and the source of the model package and of this module. A change of any of them is a new
  file; nothing is ever reused wrongly;
* the next start loads it (``torch._C._aoti.AOTIModelPackageLoader``, without importing Inductor):
  a fraction of a second.

The cache holds shared libraries that are loaded and run, like Python's own ``__pycache__``: it
lives in the user's cache directory (``CAUSETTE_CACHE_DIR``, else ``$XDG_CACHE_HOME/causette``,
else ``~/.cache/causette``) and only this user's Causette writes there.

Mixture-of-Experts models are not compiled (their routing gives each expert a number of tokens
known only at run time): :func:`supports` says so and the runner keeps the eager backend.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
from torch.utils import _pytree as pytree

import causette.model
from causette.inference.backends import Backend, cache_dir, cpu_flags

PACKAGE_SUFFIX = ".pt2"


def supports(model: nn.Module) -> bool:
    """Whether this backend compiles the model's step: every model with a KV cache and no MoE."""
    cfg = getattr(model, "cfg", None)
    return hasattr(model, "step_kv") and model.supports_cache and not cfg.n_experts


# ------------------------------------------------------------------ the products' arrangement


class MatvecLinear(nn.Module):
    """A plain linear layer's product as ``(x · W).sum(-1)``, for ``x`` ``(B, 1, in)``.

    At batch 1 a linear layer is a matrix-vector product that reads every weight once: its speed
    is the memory bandwidth. On the AMD CPU of bench/LOG.md, PyTorch's BLAS call (MKL) for it
    reads ~16 GB/s; the same product written as an elementwise multiply and a sum, which
    Inductor turns into one vectorised loop, reads ~45 GB/s. Only worth it compiled (eagerly the
    multiply would write the whole ``(out, in)`` product to memory)."""

    def __init__(self, layer: nn.Linear):
        super().__init__()
        self.weight, self.bias = layer.weight, layer.bias  # the same tensors

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = (x[..., None, :] * self.weight).sum(-1)
        return y if self.bias is None else y + self.bias


class TransposedLinear(nn.Module):
    """A plain linear layer's product by a transposed copy ``(in, out)`` of its weight: the
    BLAS call's fast layout for a batch of rows on this CPU (~2× the other; bench/LOG.md)."""

    def __init__(self, layer: nn.Linear):
        super().__init__()
        # A buffer, so that it is one of the step's input tensors like the weights.
        self.register_buffer("wt", layer.weight.detach().t().contiguous(), persistent=False)
        self.bias = layer.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x @ self.wt
        return y if self.bias is None else y + self.bias


def arrangement(model: nn.Module, batch_size: int) -> nn.Module:
    """The model's twin as it is compiled. At batch 1, products as multiply-and-sum loops and
    attention as sums (~45 GB/s of weights instead of the BLAS call's ~16); for a batch, matrix
    products by transposed weights and SDPA."""
    if batch_size == 1:
        return model.twin(linear=MatvecLinear, sum_attention=True)
    return model.twin(linear=TransposedLinear)


def _sources() -> str:
    """A hash of the code the compiled step comes from: the model package and this module."""
    files = sorted(Path(causette.model.__file__).resolve().parent.glob("*.py")) + [Path(__file__).resolve()]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def cache_key(model: nn.Module, batch_size: int, max_len: int) -> str:
    """A hash of everything the compiled step depends on (see the module docstring)."""
    layers = sorted({type(m).__qualname__ for m in model.modules()})
    tensors = [(n, tuple(t.shape), str(t.dtype)) for n, t in _named_tensors(_StepOf(arrangement(model, batch_size)))]
    described = {
        "config": asdict(model.cfg),
        "layers": layers,
        "tensors": tensors,
        "batch_size": batch_size,
        "max_len": max_len,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpu": hashlib.sha256(cpu_flags().encode()).hexdigest()[:16],
        "sources": _sources(),
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:32]


class _StepOf(nn.Module):
    """``forward(tokens, positions, ks, vs)`` = the model's ``step_kv``: what is exported."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, tokens, positions, ks, vs):
        return self.model.step_kv(tokens, positions, ks, vs)


def _named_tensors(step: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Every parameter and buffer of the step, each once (a tied weight appears once)."""
    return list(step.named_parameters()) + list(step.named_buffers())


class _WeightsAsInputs(nn.Module):
    """``forward(tokens, pos, ks, vs, weights)``: the step run with the given weights, so that
    ``torch.export`` sees them as inputs and not as constants baked into the library."""

    def __init__(self, step: nn.Module, names: list[str]):
        super().__init__()
        self.__dict__["step"] = step  # not a submodule: its tensors must not become constants
        self.names = names

    def forward(self, tokens, positions, ks, vs, weights):
        return torch.func.functional_call(self.step, dict(zip(self.names, weights)), (tokens, positions, ks, vs))


class _PackageRunner:
    """The compiled library, called directly through ``torch._C._aoti.AOTIModelPackageLoader``.

    ``torch._inductor.aoti_load_package`` does the same, but imports Inductor and TorchDynamo
    first (1.3 s at every start, measured in bench/LOG.md) and reads the call signature again
    at every token. The inputs are flattened in the order ``torch.export`` saw them:
    ``tokens, pos, *ks, *vs, *weights``.
    """

    def __init__(self, path: Path):
        self._loader = torch._C._aoti.AOTIModelPackageLoader(str(path), "model", False, 1, -1)
        self._out_spec = pytree.treespec_loads(self._loader.get_call_spec()[1])
        self._unflatten = pytree.tree_unflatten

    def __call__(self, tokens, pos, ks, vs, weights):
        return self._unflatten(self._loader.boxed_run([tokens, pos, *ks, *vs, *weights]), self._out_spec)


class CompiledStep(Backend):
    """The backend: ``step(tokens, positions, cache) → logits``, as ``model.step``, through the
    compiled library; also callable on the cache's tensors, ``(tokens, positions, ks, vs)``."""

    name = "aoti"

    def __init__(self, runner, model: nn.Module, batch_size: int, max_len: int, path: Path, seconds: float):
        self._runner = runner
        self._weights = [t for _, t in _named_tensors(_StepOf(arrangement(model, batch_size)))]
        self.batch_size, self.max_len, self.path = batch_size, max_len, path
        self.compile_seconds = seconds  # 0 when it came from the cache

    def __call__(self, tokens, positions, ks, vs) -> torch.Tensor:
        return self._runner(tokens, positions, ks, vs, self._weights)

    @torch.inference_mode()
    def step(self, tokens: torch.Tensor, positions: torch.Tensor, cache) -> torch.Tensor:
        logits = self(tokens, positions, cache.k, cache.v)
        cache.set_lengths([p + 1 for p in positions.tolist()])
        return logits


def cached_path(model: nn.Module, batch_size: int, max_len: int) -> Path:
    return cache_dir() / (cache_key(model, batch_size, max_len) + PACKAGE_SUFFIX)


def is_cached(model: nn.Module, batch_size: int, max_len: int) -> bool:
    return cached_path(model, batch_size, max_len).is_file()


def load_or_compile(
    model: nn.Module, batch_size: int, max_len: int, notify: Callable[[str], None] | None = None
) -> CompiledStep:
    """The compiled step of ``model`` for ``batch_size`` rows and a cache of ``max_len``: from
    the disk cache, or compiled now (``notify`` gets one line first: it takes a while)."""
    path = cached_path(model, batch_size, max_len)
    if path.is_file():
        try:
            return CompiledStep(_PackageRunner(path), model, batch_size, max_len, path, 0.0)
        except Exception:  # noqa: BLE001 - an unreadable file (another torch, a crash): compile anew
            path.unlink(missing_ok=True)
    if notify is not None:
        notify(
            f"compiling the decoding step for this model shape (batch {batch_size}; once per machine, "
            "15 to 60 s; cached in " + str(path.parent) + ")..."
        )
    start = time.perf_counter()
    _compile_to(model, batch_size, max_len, path)
    runner = _PackageRunner(path)
    return CompiledStep(runner, model, batch_size, max_len, path, time.perf_counter() - start)


def _compile_to(model: nn.Module, batch_size: int, max_len: int, path: Path) -> None:
    cfg = model.cfg
    p = next(model.parameters())
    step = _StepOf(arrangement(model, batch_size))
    named = _named_tensors(step)
    wrapper = _WeightsAsInputs(step, [n for n, _ in named])
    shape = (batch_size, cfg.kv_heads, max_len, cfg.head_dim)
    ks = [torch.zeros(shape, dtype=p.dtype, device=p.device) for _ in range(cfg.n_layer)]
    vs = [torch.zeros(shape, dtype=p.dtype, device=p.device) for _ in range(cfg.n_layer)]
    zeros = torch.zeros(batch_size, dtype=torch.long, device=p.device)
    example = (zeros, zeros.clone(), ks, vs, [t for _, t in named])
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = torch.export.export(wrapper, example)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{PACKAGE_SUFFIX}")
    try:
        with warnings.catch_warnings():  # torch's own deprecation notices, nothing for the user
            warnings.simplefilter("ignore")
            torch._inductor.aoti_compile_and_package(exported, package_path=str(tmp))
        os.replace(tmp, path)  # atomic: a reader sees no file or a whole one
    finally:
        tmp.unlink(missing_ok=True)


__all__ = ["CompiledStep", "MatvecLinear", "TransposedLinear", "arrangement", "cache_key", "cached_path", "is_cached",
           "load_or_compile", "supports"]
