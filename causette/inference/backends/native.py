"""The native decoding step: one token per row in C++ (native_step.cpp), called through ctypes.

Why: the AOTInductor step (aoti.py) turns each matrix-vector product into a loop with one
accumulator per output row, a chain of dependent multiply-adds; at batch 1 it ran at ~0.5× the
speed of llama.cpp on the same weights (bench/LOG.md, issue 17). native_step.cpp computes
several output rows at once with independent accumulators, each load of the input shared by
the rows, attention only over the keys ``0 .. pos`` (not the whole static cache), and the whole
step in one call.

How:

* the source is compiled once per machine with the system's C++ compiler (``$CXX``, else
  ``g++``, ``c++`` or ``clang++``): ``-O3 -march=native -pthread``, ~2 s. No PyTorch header:
  the library takes float pointers, so it does not depend on the model, its shape, or the
  torch version. It is cached as ``native-<key>.so`` beside the compiled steps
  (:func:`~causette.inference.backends.cache_dir`), the key a hash of the source, the compiler
  command and flags, the machine and its CPU flags; written atomically, like the packages;
* :func:`supports` says which models it runs: the dense models of both families (RMSNorm or
  LayerNorm, RoPE, learned or sinusoidal positions, SwiGLU, GELU or ReLU², biases, QK-norm,
  sliding window, soft-capping), in float32 on the CPU, with plain ``nn.Linear`` layers. Anything
  else (MoE, int8 or LoRA layers, bf16) keeps the AOTInductor step or the eager one;
* ``CAUSETTE_NATIVE=0`` turns it off (the AOTInductor step is then used, as before).

The logits differ from the eager step by a few units in the last place of float32 (the sums
are grouped differently); tests/test_native.py checks them within 1e-5 and the greedy tokens.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from causette.inference.backends import Backend, cache_dir, cpu_flags
from causette.model import Transformer
from causette.model.families import NATIVE_STEP
from causette.model.tensors import native_reads_all, native_weights

SOURCE = Path(__file__).resolve().with_name("native_step.cpp")
VERSION = 3  # causette_native_version() of the source this module speaks to
FLAGS = ("-O3", "-std=c++17", "-shared", "-fPIC", "-pthread")
ARCH_FLAGS = (("-march=native",), ())  # the second: a compiler that does not know -march=native

_lock = threading.Lock()
_loaded: dict[str, ctypes.CDLL | None] = {}  # path -> library (None: its build failed)


def enabled() -> bool:
    return os.environ.get("CAUSETTE_NATIVE", "1").strip().lower() not in ("0", "false", "no", "off")


def compiler() -> str | None:
    """The C++ compiler: ``$CXX``, else the first of g++, c++, clang++ on the PATH."""
    cxx = os.environ.get("CXX")
    if cxx:
        return cxx
    for name in ("g++", "c++", "clang++"):
        if shutil.which(name):
            return name
    return None


def cache_key(cxx: str) -> str:
    """A hash of what the library depends on: source, compiler command, flags, machine, CPU."""
    h = hashlib.sha256(SOURCE.read_bytes())
    for part in (cxx, " ".join(FLAGS), repr(ARCH_FLAGS), platform.machine(), platform.system(), cpu_flags()):
        h.update(b"\0" + part.encode())
    return h.hexdigest()[:32]


def library_path(cxx: str | None = None) -> Path | None:
    cxx = cxx or compiler()
    return None if cxx is None else cache_dir() / f"native-{cache_key(cxx)}.so"


def is_cached() -> bool:
    path = library_path()
    return path is not None and path.is_file()


def _compile(cxx: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.so")
    errors = []
    try:
        for arch in ARCH_FLAGS:
            cmd = [cxx, *FLAGS, *arch, str(SOURCE), "-o", str(tmp)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode == 0:
                os.replace(tmp, path)  # atomic: a reader sees no file or a whole one
                return
            errors.append(done.stderr.strip()[-2000:])
        raise RuntimeError("could not compile native_step.cpp:\n" + "\n".join(errors))
    finally:
        tmp.unlink(missing_ok=True)


def load_library(notify: Callable[[str], None] | None = None, compile: bool = True) -> ctypes.CDLL | None:
    """The library, from the cache or compiled now (``compile``; ``notify`` gets one line
    first); None when there is no compiler, it fails, or ``compile`` is False and nothing is cached."""
    cxx = compiler()
    if cxx is None or not enabled():
        return None
    path = library_path(cxx)
    with _lock:
        if str(path) in _loaded:
            return _loaded[str(path)]
        if not path.is_file():
            if not compile:
                return None
            if notify is not None:
                notify(f"compiling the decoding step for this machine (once, a few seconds; cached in {path.parent})...")
            try:
                _compile(cxx, path)
            except (OSError, RuntimeError):
                _loaded[str(path)] = None  # not again in this process: the step falls back
                return None
        try:
            lib = ctypes.CDLL(str(path))
            if lib.causette_native_version() != VERSION:
                raise OSError("version")
        except (OSError, AttributeError):
            path.unlink(missing_ok=True)  # a broken file: the next start compiles it anew
            return None
        f = lib.causette_decode_step
        f.restype = ctypes.c_int
        p = ctypes.c_void_p
        i64 = ctypes.c_int64
        f.argtypes = [p, p, p, i64, i64, i64, p, p, p, i64, p, p, p, p, ctypes.c_int]
        _loaded[str(path)] = lib
        return lib


# ---------------------------------------------------------------------------------- the model


def supports(model: nn.Module) -> bool:
    """Whether native_step.cpp computes this model's step exactly: a configuration the C++ step
    covers (``NATIVE_STEP`` in causette/model/families.py), a slot of its pointer list for every
    tensor of the model (causette/model/tensors.py: an int8 or LoRA layer, a bias it does not
    read, has tensors without one), all of them float32 on the CPU."""
    if not isinstance(model, Transformer) or not NATIVE_STEP.allows(model.cfg) or not native_reads_all(model):
        return False
    tensors = list(model.parameters()) + list(model.buffers())
    return all(t.device.type == "cpu" and (not t.is_floating_point() or t.dtype == torch.float32) for t in tensors)


class NativeStep(Backend):
    """The backend: ``step(tokens, positions, cache) → logits``, as ``model.step``, through
    native_step.cpp; also callable on the cache's tensors, ``(tokens, pos, ks, vs)``. ``tokens`` and ``pos`` ``(B,)`` int64; ``ks``, ``vs`` the float32
    caches ``(B, n_kv_head, max_len, head_dim)``, one per layer, updated in place."""

    name = "native"
    compile_seconds = 0.0

    def __init__(self, lib: ctypes.CDLL, model: nn.Module, compile_seconds: float = 0.0):
        cfg = model.cfg
        self._fn = lib.causette_decode_step
        self.model = model
        self.compile_seconds = compile_seconds
        self.vocab_size = cfg.vocab_size
        ints = [
            cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.kv_heads, cfg.head_dim, cfg.hidden_size, cfg.vocab_size,
            0 if cfg.norm == "rmsnorm" else 1,
            {"swiglu": 0, "gelu": 1, "relu2": 2}[cfg.mlp],
            0 if cfg.pos == "rope" else 1,
            int(cfg.bias), int(cfg.qk_norm), cfg.sliding_window or 0, int(cfg.logit_softcap is not None),
            cfg.block_size,
        ]
        self._ints = (ctypes.c_int64 * len(ints))(*ints)
        self._floats = (ctypes.c_float * 2)(cfg.norm_eps, cfg.logit_softcap or 0.0)

        keep: list[torch.Tensor] = []  # the tensors whose pointers the library gets

        def ptr(t: torch.Tensor | None) -> int | None:
            if t is None:
                return None
            t = t.detach()
            if not t.is_contiguous():
                t = t.contiguous()  # a copy (weights updated later would not be seen: none are)
            keep.append(t)
            return t.data_ptr()

        # native_step.cpp's pointer slots, in its order: causette/model/tensors.py's table
        weights = [ptr(t) for t in native_weights(model)]
        self._weights = (ctypes.c_void_p * len(weights))(*weights)
        self._keep = keep
        self._caches: tuple | None = None  # (ks, vs, first pointer, pointer arrays)
        self._shape = (cfg.kv_heads, cfg.head_dim)

    def _cache_pointers(self, ks, vs):
        c = self._caches
        if c is not None and c[0] is ks and c[1] is vs and c[2] == ks[0].data_ptr():
            return c[3], c[4], c[5]
        n = self.model.cfg.n_layer
        if len(ks) != n or len(vs) != n:
            raise ValueError(f"expected {n} key and value caches")
        shape = ks[0].shape
        for t in (*ks, *vs):
            if t.dtype != torch.float32 or t.device.type != "cpu" or not t.is_contiguous() or t.shape != shape:
                raise ValueError("the native step needs contiguous float32 CPU caches, all of one shape")
        if tuple(shape[1:2]) + tuple(shape[3:]) != self._shape:
            raise ValueError(f"cache shape {tuple(shape)} does not fit the model")
        kp = (ctypes.c_void_p * n)(*[t.data_ptr() for t in ks])
        vp = (ctypes.c_void_p * n)(*[t.data_ptr() for t in vs])
        self._caches = (ks, vs, ks[0].data_ptr(), kp, vp, shape[2])
        return kp, vp, shape[2]

    def __call__(self, tokens: torch.Tensor, pos: torch.Tensor, ks, vs) -> torch.Tensor:
        """One token per row: row ``b`` reads ``tokens[b]`` at position ``pos[b]`` of cache row ``b``."""
        B = tokens.shape[0]
        if ks[0].shape[0] != B or pos.shape[0] != B:
            raise ValueError("tokens, pos and the caches must have one row each per batch row")
        return self._run(tokens, pos, None, None, B, ks, vs)

    def step(self, tokens: torch.Tensor, positions: torch.Tensor, cache) -> torch.Tensor:
        """Reads and writes plain memory: no autograd mode needed around the call."""
        logits = self(tokens, positions, cache.k, cache.v)
        cache.set_lengths([p + 1 for p in positions.tolist()])
        return logits

    def prefill(self, idx: torch.Tensor, start: int, ks, vs) -> torch.Tensor:
        """The prompt chunk ``idx`` ``(B, T)`` at positions ``start .. start+T-1`` of cache rows
        ``0 .. B-1`` (what the model's own forward with a cache does): the logits ``(B, V)`` of
        each row's last token. Every matrix product reads the weights once for the B·T tokens."""
        B, T = idx.shape
        if ks[0].shape[0] != B:
            raise ValueError("idx and the caches must have the same number of rows")
        if start + T > ks[0].shape[2]:  # a ring buffer would overwrite keys that the chunk still reads
            raise ValueError("prefill past the end of the cache (a sliding window's ring buffer)")
        pos = torch.arange(start, start + T, dtype=torch.int64).repeat(B)
        rows = torch.arange(B, dtype=torch.int64).repeat_interleave(T)
        last = torch.arange(1, B + 1, dtype=torch.int64) * T - 1
        return self._run(idx.reshape(-1), pos, rows, last, B, ks, vs)

    def _run(self, tokens, pos, rows, out, n_out, ks, vs) -> torch.Tensor:
        kp, vp, max_len = self._cache_pointers(ks, vs)
        tokens = tokens.contiguous().to(torch.int64)
        pos = pos.contiguous().to(torch.int64)
        logits = torch.empty(n_out, self.vocab_size)
        if self._fn(self._ints, self._floats, self._weights, tokens.shape[0], max_len, ks[0].shape[0],
                    tokens.data_ptr(), pos.data_ptr(), None if rows is None else rows.data_ptr(), n_out,
                    None if out is None else out.data_ptr(), kp, vp, logits.data_ptr(), torch.get_num_threads()):
            raise ValueError(f"a token is outside the vocabulary or a position outside the cache ({max_len})")
        return logits


def load(model: nn.Module, notify: Callable[[str], None] | None = None, compile: bool = True) -> NativeStep | None:
    """The native step of ``model``, or None where it does not apply (see :func:`supports`,
    :func:`load_library`)."""
    if not enabled() or not supports(model):
        return None
    start = time.perf_counter()
    was_cached = is_cached()
    lib = load_library(notify, compile=compile)
    if lib is None:
        return None
    return NativeStep(lib, model, 0.0 if was_cached else time.perf_counter() - start)


__all__ = ["NativeStep", "cache_key", "compiler", "enabled", "is_cached", "load", "load_library", "supports"]
