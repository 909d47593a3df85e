"""The matrix-multiply peak, the denominator of MFU (model FLOPs utilization).

MFU = (FLOPs the model needs per token × tokens per second) / peak FLOP/s of the hardware.

The peak must not move with the machine's load. Measured in the half-second before training on
a busy laptop, it came out low and MFU high (62.6 % once). :func:`stable_peak` therefore takes,
in this order:

1. on a CUDA GPU we know, the vendor's dense spec figure (:data:`GPU_SPECS`);
2. a quiet measurement cached once per machine, in ``peaks.json`` under ``$CAUSETTE_CACHE_DIR``
   (else ``$XDG_CACHE_HOME/causette`` or ``~/.cache/causette``), keyed by :func:`machine_key`;
3. otherwise it measures (:func:`measure`: the best of 2048², 3072² and 4096² products over a
   few seconds) and caches the figure only if the machine was quiet (:func:`busy_reason`). On a
   busy machine the figure serves this run only, marked so; the next quiet start caches one.

``python -m causette.utils.flops`` prints the peak, where it came from and the cache file;
``--remeasure`` measures afresh (and caches only on a quiet machine). ``train.peak_flops``, a
figure the user gives, wins over all of this (causette/train/pretrain.py).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from causette.errors import CausetteError
from causette.utils.io import write_json
from causette.utils.paths import user_cache_dir

SIZES = (2048, 3072, 4096)  # square products measured; the best wins (bigger ones fill the units better)
ROUNDS = 3  # interleaved rounds per size: a busy moment hits every size, and the rounds must agree
ROUND_SECONDS = 0.4  # repeats per size and round: ~4 s in bf16 on 2 cores, ~6 s in fp32
QUIET_LOAD = 0.5  # 1-minute load average allowed beyond our own process's share
MAX_SPREAD = 0.10  # the best size's round results may differ by this much (of the best) at most

# Dense (not sparse) peak TFLOP/s from the vendors' datasheets: NVIDIA's H100, H200, A100, A10,
# L4, L40, L40S datasheets and the Ampere GA102 / Ada Lovelace architecture whitepapers (GeForce:
# tensor cores with FP32 accumulate). Datasheets print the bf16 figure "with sparsity": we halve
# it. fp32 is the plain (non-tensor-core) figure: Causette leaves TF32 off, as PyTorch does.
# Pattern (case-insensitive, on torch.cuda.get_device_name()), label, bf16, fp32.
GPU_SPECS = (
    (r"\bH100\b.*\bPCIe\b", "NVIDIA H100 PCIe", 756.0, 51.0),
    (r"\bH100\b.*\bNVL\b", "NVIDIA H100 NVL", 835.0, 60.0),
    (r"\bH100\b.*\b(SXM\w*|HBM3)\b", "NVIDIA H100 SXM", 989.0, 67.0),
    (r"\bH200\b.*\bNVL\b", "NVIDIA H200 NVL", 835.0, 60.0),
    (r"\bH200\b", "NVIDIA H200 SXM", 989.0, 67.0),
    (r"\bA100\b", "NVIDIA A100", 312.0, 19.5),
    (r"\bA10\b", "NVIDIA A10", 125.0, 31.2),
    (r"\bL4\b", "NVIDIA L4", 121.0, 30.3),
    (r"\bL40S\b", "NVIDIA L40S", 362.0, 91.6),
    (r"\bL40\b", "NVIDIA L40", 181.0, 90.5),
    (r"\bRTX 4090\b", "NVIDIA GeForce RTX 4090", 165.2, 82.6),
    (r"\bRTX 3090\b(?! Ti)", "NVIDIA GeForce RTX 3090", 71.0, 35.6),
)


@dataclass(frozen=True)
class Peak:
    """A peak FLOP/s and where it came from; unpacks as ``flops, source``.

    ``kind``: ``spec`` (a GPU's datasheet), ``cached`` (a quiet measurement from the cache),
    ``measured`` (a quiet measurement made now), ``busy`` (measured on a busy machine, not
    cached), ``config`` (``train.peak_flops``)."""

    flops: float
    source: str
    kind: str

    def __iter__(self) -> Iterator:
        return iter((self.flops, self.source))

    def record(self) -> dict:
        """What a checkpoint's state keeps of it (the report says which peak its MFU used)."""
        return {"flops": self.flops, "kind": self.kind, "source": self.source}


@dataclass(frozen=True)
class Measurement:
    flops: float  # the best FLOP/s seen
    size: int  # of the square product that gave it
    spread: float  # (best − worst) / best over that size's rounds
    load: float | None  # 1-minute load average just before measuring (None: unknown or a GPU)
    own: float  # our own process's estimated share of it
    busy: str  # why the machine looked busy ("": it looked quiet)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
    elif device.type == "xpu":
        torch.xpu.synchronize(device)


def _best_rate(a: torch.Tensor, b: torch.Tensor, seconds: float) -> float:
    """Best FLOP/s of ``a @ b`` (square) over about ``seconds`` of repeats (one at least)."""
    n, best = a.shape[0], 0.0
    deadline = time.perf_counter() + seconds
    while True:
        t = time.perf_counter()
        a @ b
        _sync(a.device)
        best = max(best, 2 * n**3 / (time.perf_counter() - t))
        if time.perf_counter() >= deadline:
            return best


def _pair(device: torch.device, dtype: torch.dtype, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up (kernel selection, AMX tile set-up)
    _sync(device)
    return a, b


@torch.no_grad()
def matmul_peak(device: torch.device | str = "cpu", dtype: torch.dtype = torch.bfloat16, n: int = 2048, seconds: float = 0.5) -> float:
    """Best FLOP/s of an ``n × n`` by ``n × n`` matmul over about ``seconds`` of repeats."""
    return _best_rate(*_pair(torch.device(device), dtype, n), seconds)


@torch.no_grad()
def _round_bests(device: torch.device, dtype: torch.dtype, sizes=SIZES, rounds=ROUNDS,
                 seconds=ROUND_SECONDS) -> dict[int, list[float]]:
    """For each size, the best FLOP/s of each round (the rounds take the sizes in turn)."""
    pairs = {n: _pair(device, dtype, n) for n in sizes}
    bests: dict[int, list[float]] = {n: [] for n in sizes}
    for _ in range(rounds):
        for n, (a, b) in pairs.items():
            bests[n].append(_best_rate(a, b, seconds))
    return bests


def own_load() -> float:
    """Our process's share of the 1-minute load average, estimated from its CPU time: ``r``
    cores kept busy for ``a`` seconds add ``r·(1 − e^(−a/60))`` to the kernel's exponential
    average. Linux only (the process's age comes from /proc); 0 elsewhere."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        age = uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time, in ticks
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0
    if age <= 0:
        return 0.0
    return time.process_time() / age * (1 - math.exp(-age / 60))


def load_now(device: torch.device) -> tuple[float | None, float]:
    """``(1-minute load average, our share of it)``; the load is ``None`` where unknown
    (Windows) and for GPUs (their work does not show in it)."""
    if device.type != "cpu" or not hasattr(os, "getloadavg"):
        return None, 0.0
    try:
        return os.getloadavg()[0], own_load()
    except OSError:
        return None, 0.0


def busy_reason(load: float | None, own: float, spread: float) -> str:
    """Why a measurement may not be cached ("" when the machine looked quiet). Quiet means both:

    - the 1-minute load average, read just before measuring, minus our own process's share
      (:func:`own_load`), is below ``QUIET_LOAD`` (0.5): nothing else ran on the cores lately
      (unknown load, on Windows or a GPU: this test passes);
    - the best size's rounds agree within ``MAX_SPREAD`` (10 %): nothing started meanwhile.
    """
    if load is not None and load - own >= QUIET_LOAD:
        return f"1-minute load {load:.2f}, {own:.2f} of it ours"
    if spread > MAX_SPREAD:
        return f"repeats {spread:.0%} apart"
    return ""


def measure(device: torch.device | str, dtype: torch.dtype) -> Measurement:
    """A measurement meant for the cache: several seconds, the best of :data:`SIZES`."""
    device = torch.device(device)
    load, own = load_now(device)
    bests = _round_bests(device, dtype)
    n = max(bests, key=lambda k: max(bests[k]))
    best = max(bests[n])
    spread = (best - min(bests[n])) / best
    return Measurement(best, n, spread, load, own, busy_reason(load, own, spread))


def spec_peak(name: str, dtype: torch.dtype) -> Peak | None:
    """The datasheet peak of the CUDA GPU called ``name`` in ``dtype`` (bf16 or fp32), if known.
    Laptop and mobile GPUs share desktop names but not their clocks: never matched."""
    if dtype not in (torch.bfloat16, torch.float32) or re.search(r"\b(laptop|mobile|max-q)\b", name, re.I):
        return None
    for pattern, label, bf16, fp32 in GPU_SPECS:
        if re.search(pattern, name, re.I):
            tflops = bf16 if dtype == torch.bfloat16 else fp32
            what = "dense bf16" if dtype == torch.bfloat16 else "fp32"
            return Peak(tflops * 1e12, f"{label} spec sheet, {what}", "spec")
    return None


def cpu_model() -> str:
    """The CPU's model name: /proc/cpuinfo's "model name" on Linux, else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_key(device: torch.device | str, dtype: torch.dtype) -> str:
    """What a cached peak holds for: device kind, its model, threads (CPU only: a GPU's product
    does not depend on them), precision, PyTorch version (its kernels change)."""
    device = torch.device(device)
    if device.type == "cuda":
        parts = ["cuda", torch.cuda.get_device_name(device)]
    elif device.type == "xpu":
        parts = ["xpu", torch.xpu.get_device_name(device)]
    else:
        parts = [device.type, cpu_model()]
    if device.type == "cpu":
        parts.append(f"{torch.get_num_threads()} threads")
    return " | ".join(parts + [str(dtype).removeprefix("torch."), f"torch {torch.__version__}"])


def cache_file() -> Path:
    """``peaks.json`` in the user's Causette cache (:func:`causette.utils.paths.user_cache_dir`)."""
    return user_cache_dir() / "peaks.json"


def shown(path: Path) -> str:
    """``path`` with the home folder written ``~`` (shorter in a log line)."""
    home = Path.home()
    return f"~/{path.relative_to(home)}" if path.is_relative_to(home) else str(path)


def _stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def read_cache(path: Path, warn: Callable[[str], None] = _stderr) -> dict[str, dict]:
    """The cached peaks by key; an unreadable or malformed file is ignored with a warning
    (the next quiet measurement rewrites it)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        peaks = data["peaks"]
        if not isinstance(peaks, dict) or not all(
            isinstance(e, dict) and isinstance(e.get("flops"), (int, float)) and math.isfinite(e["flops"])
            and e["flops"] > 0 for e in peaks.values()):
            raise ValueError("an entry without a positive flops figure")
        return peaks
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        why = f"missing {e}" if isinstance(e, KeyError) else str(e).splitlines()[0]
        warn(f"{path}: not a peaks cache ({why}): ignored, rewritten at the next quiet measurement")
        return {}


def write_cache(path: Path, key: str, m: Measurement) -> None:
    """Add (or replace) ``key``'s entry, atomically; the others stay."""
    peaks = read_cache(path, warn=lambda s: None)
    peaks[key] = {"flops": m.flops, "size": m.size, "spread": round(m.spread, 4),
                  "load": None if m.load is None else round(m.load, 2), "own_load": round(m.own, 2),
                  "measured": datetime.datetime.now().isoformat(timespec="seconds")}
    write_json(path, {"version": 1, "peaks": peaks})


def remember(m: Measurement, key: str, path: Path, warn: Callable[[str], None] = _stderr) -> Peak:
    """The peak of a fresh measurement, cached when the machine was quiet."""
    if m.busy:
        return Peak(m.flops, f"measured on a busy machine, not cached: {m.busy}", "busy")
    try:
        write_cache(path, key, m)
    except (OSError, CausetteError) as e:
        warn(f"{path}: cannot cache the peak ({e})")
        return Peak(m.flops, "quiet measurement, not cached", "measured")
    return Peak(m.flops, f"quiet measurement, now cached in {shown(path)}", "measured")


def stable_peak(device: torch.device | str, dtype: torch.dtype, warn: Callable[[str], None] = _stderr) -> Peak:
    """The peak MFU is measured against, one that does not move with the machine's load: a GPU's
    datasheet, else this machine's cached quiet measurement, else a measurement (cached if the
    machine is quiet). ``warn`` receives one-line warnings (a corrupt cache file)."""
    device = torch.device(device)
    if device.type == "cuda" and (spec := spec_peak(torch.cuda.get_device_name(device), dtype)):
        return spec
    path, key = cache_file(), machine_key(device, dtype)
    entry = read_cache(path, warn).get(key)
    if entry:
        return Peak(float(entry["flops"]), f"cached quiet measurement, {shown(path)}", "cached")
    load, own = load_now(device)
    if (busy := busy_reason(load, own, 0.0)):  # it would not be cached: a short measurement will do
        return Peak(matmul_peak(device, dtype), f"measured on a busy machine, not cached: {busy}", "busy")
    return remember(measure(device, dtype), key, path, warn)


def remeasure(device: torch.device, dtype: torch.dtype, echo: Callable[[str], None] = print) -> Measurement:
    """``--remeasure``: measure now; cache the figure if the machine was quiet, else say why not."""
    path, key = cache_file(), machine_key(device, dtype)
    m = measure(device, dtype)
    load = "unknown" if m.load is None else f"{m.load:.2f} ({m.own:.2f} of it ours)"
    echo(f"measured {m.flops / 1e9:,.0f} GFLOP/s at {m.size}², best of {'/'.join(map(str, SIZES))} × {ROUNDS} rounds "
         f"{m.spread:.1%} apart, 1-minute load {load}")
    spec = spec_peak(torch.cuda.get_device_name(device), dtype) if device.type == "cuda" else None
    if spec:
        echo(f"not cached: training uses {spec.source} ({spec.flops / 1e9:,.0f} GFLOP/s)")
    elif m.busy:
        old = read_cache(path, warn=lambda s: None).get(key)
        kept = f"; the cached {old['flops'] / 1e9:,.0f} GFLOP/s stays" if old else ""
        echo(f"not cached: the machine looks busy ({m.busy}; quiet is a load under {QUIET_LOAD} beyond ours "
             f"and rounds within {MAX_SPREAD:.0%}){kept}: run it again when the machine is idle")
    else:
        try:
            write_cache(path, key, m)
            echo(f"cached in {path}")
        except (OSError, CausetteError) as e:
            echo(f"not cached: cannot write {path} ({e})")
    return m


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m causette.utils.flops",
                                 description="The matmul peak MFU is measured against, and where it comes from.")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, mps, xpu (default: what training picks)")
    ap.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    ap.add_argument("--remeasure", action="store_true",
                    help="measure afresh (a few seconds); cached only if the machine is quiet")
    args = ap.parse_args(argv)
    from causette.utils.device import pick_device, resolve_dtype

    try:
        device = pick_device(args.device)
        dtype = resolve_dtype(args.precision, device)
    except CausetteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"device: {machine_key(device, dtype)}")
    if args.remeasure:
        remeasure(device, dtype)
        return 0
    peak = stable_peak(device, dtype)
    print(f"peak {peak.flops / 1e9:,.0f} GFLOP/s ({peak.source})")
    print(f"cache: {cache_file()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
