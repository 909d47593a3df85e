"""Which device to run on, and whether bf16 pays there.

bf16 autocast halves the bytes of activations and, on hardware with bf16 matrix units, runs
matrix products several times faster: CUDA GPUs from Ampere on, and x86 CPUs with AMX or
AVX-512-BF16 (Sapphire Rapids and later, Zen 4+). Elsewhere (older CPUs, Apple MPS for
training) bf16 is emulated and slower, so we stay in fp32.
"""

from __future__ import annotations

import functools
import shutil

import platform

import torch

from causette.errors import CausetteError

DEVICES = ("auto", "cpu", "cuda", "mps", "xpu")


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA, then XPU, then MPS, then CPU. An explicit name must be available."""
    if name not in DEVICES and not name.startswith(("cuda:", "xpu:")):
        raise CausetteError(f"unknown device {name!r} (choose among {', '.join(DEVICES)})")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if hasattr(torch, "xpu") and torch.xpu.is_available():
            return torch.device("xpu")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    base = name.split(":")[0]
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
        "xpu": hasattr(torch, "xpu") and torch.xpu.is_available(),
    }[base]
    if not available:
        raise CausetteError(f"device {name!r} is not available on this machine (try --device auto)")
    return torch.device(name)


def cpu_has_fast_bf16() -> bool:
    """True when this CPU has bf16 matrix instructions (AMX-BF16 or AVX-512-BF16)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, p, lambda: False)() for p in probes)


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast is both supported and fast on ``device``."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "xpu":
        return True
    if device.type == "cpu":
        return cpu_has_fast_bf16()
    return False


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    """``auto`` → bf16 where it pays, else fp32; ``bf16``/``fp32`` as asked (bf16 checked)."""
    if precision == "auto":
        return torch.bfloat16 if bf16_supported(device) else torch.float32
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        if device.type == "mps":
            raise CausetteError("bf16 autocast is not supported on MPS here: use --set train.precision=fp32")
        return torch.bfloat16
    raise CausetteError(f"unknown precision {precision!r} (auto, bf16 or fp32)")


def compile_supported() -> bool:
    """``torch.compile`` needs a C++ toolchain and is not supported on Windows for training."""
    return platform.system() != "Windows"


@functools.cache
def cpu_compile_supported() -> bool:
    """Whether Inductor can build CPU kernels here: not Windows, and a C++ compiler on the PATH."""
    return compile_supported() and any(shutil.which(cc) for cc in ("c++", "g++", "clang++"))


def inductor_works_here() -> bool:
    """Whether our small ``torch.compile``d CPU kernels can run: true while tracing under
    torch.compile (then the answer is known, and asking would make Dynamo trace a file lookup),
    else :func:`cpu_compile_supported`."""
    return torch.compiler.is_compiling() or cpu_compile_supported()
