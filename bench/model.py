"""Training speed of the model on CPU: forward + backward tokens/s, and MFU.

    .venv/bin/python bench/model.py                      # demo and seed16m, three modes, ~4 minutes
    .venv/bin/python bench/model.py --models demo --rounds 2 --no-compile

For each preset and mode (fp32 eager, bf16 autocast, bf16 autocast + torch.compile) we time
forward + backward (+ zero_grad, no optimizer step) on a batch of ``--batch`` sequences of
``block_size`` random tokens. The machine is shared and its speed drifts, so:

* every (model, mode) pair is measured in each of ``--rounds`` interleaved rounds and keeps its
  best step, so a quiet moment benefits every row alike;
* a 2048² matrix product is timed in bf16 and fp32 before every round; the best is printed for
  comparison with the peak the MFU is measured against;
* the table shows ratios against fp32 eager of the same model, measured in the same rounds.

MFU = flops_per_token (causette/model/counting.py: 6·N + 12·L·H·hd·T) × tokens/s ÷ bf16 peak,
the stable peak `causette train` uses (causette/utils/flops.py stable_peak).
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import causette  # noqa: E402,F401  (first: OpenMP's thread settings before torch starts)
import torch  # noqa: E402

from causette.config import load_config  # noqa: E402
from causette.model import Transformer, count_params, flops_per_token  # noqa: E402
from causette.utils.flops import stable_peak  # noqa: E402

MODES = ["fp32 eager", "bf16 autocast", "bf16 + compile"]


def matmul_peak(dtype: torch.dtype, n: int = 2048, seconds: float = 1.0) -> float:
    """FLOP/s of an ``n×n @ n×n`` product in ``dtype`` (best of repeated runs for ``seconds``)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def make_step(model, mode: str, idx, targets):
    run = torch.compile(model) if mode == "bf16 + compile" else model
    autocast = nullcontext if mode == "fp32 eager" else lambda: torch.autocast("cpu", dtype=torch.bfloat16)

    def step():
        with autocast():
            _, loss = run(idx, targets)
        loss.backward()
        model.zero_grad(set_to_none=True)

    return step


def time_steps(step, seconds: float, min_steps: int = 2) -> float:
    """Seconds per step: best single step over at least ``min_steps`` and ``seconds``."""
    best, n, end = float("inf"), 0, time.perf_counter() + seconds
    while n < min_steps or time.perf_counter() < end:
        t = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t)
        n += 1
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["demo", "seed16m"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0, help="per model and mode, per round")
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()
    modes = MODES[:2] if args.no_compile else MODES

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}", flush=True)
    stable = stable_peak("cpu", torch.bfloat16)  # first: our own work below would make the machine look busy
    # Build every (model, mode) first, so that the rounds below interleave all of them: a quiet
    # minute then benefits every row alike.
    configs, steps = {}, {}
    for name in args.models:
        cfg = configs[name] = load_config(f"model/{name}").model
        torch.manual_seed(0)
        model = Transformer(cfg).train()
        gen = torch.Generator().manual_seed(0)
        idx = torch.randint(0, cfg.vocab_size, (args.batch, cfg.block_size), generator=gen)
        targets = torch.randint(0, cfg.vocab_size, (args.batch, cfg.block_size), generator=gen)
        for mode in modes:
            t = time.perf_counter()
            step = steps[name, mode] = make_step(model, mode, idx, targets)
            for _ in range(3 if mode == "bf16 + compile" else 1):  # compilation happens here
                step()
            print(f"  {name} {mode}: warm-up {time.perf_counter() - t:.1f} s", flush=True)

    peaks = {torch.bfloat16: 0.0, torch.float32: 0.0}
    best = dict.fromkeys(steps, float("inf"))
    for r in range(args.rounds):
        for dtype in peaks:
            peaks[dtype] = max(peaks[dtype], matmul_peak(dtype))
        line = []
        for (name, mode), step in steps.items():
            seconds = time_steps(step, args.seconds)
            best[name, mode] = min(best[name, mode], seconds)
            line.append(f"{name}/{mode} {args.batch * configs[name].block_size / seconds:,.0f}")
        print(f"  round {r + 1} tok/s: " + ", ".join(line), flush=True)

    rows = []
    for name, cfg in configs.items():
        tokens = args.batch * cfg.block_size
        fpt = flops_per_token(cfg, seq_len=cfg.block_size)
        for mode in modes:
            tps = tokens / best[name, mode]
            ratio = best[name, modes[0]] / best[name, mode]
            rows.append((name, count_params(cfg).total, mode, tps, ratio, fpt * tps / stable.flops))

    print(
        f"\nmatmul 2048² peak: bf16 {peaks[torch.bfloat16] / 1e9:,.0f} GFLOP/s, "
        f"fp32 {peaks[torch.float32] / 1e9:,.0f} GFLOP/s (best over the run); MFU against the stable bf16 peak "
        f"{stable.flops / 1e9:,.0f} GFLOP/s ({stable.source})"
    )
    print("\n| model | params | mode | tokens/s | × fp32 eager | MFU (bf16 peak) |")
    print("|---|---:|---|---:|---:|---:|")
    for name, params, mode, tps, ratio, mfu in rows:
        print(f"| {name} | {params / 1e6:.2f} M | {mode} | {tps:,.0f} | {ratio:.2f} | {100 * mfu:.1f} % |")


if __name__ == "__main__":
    main()
