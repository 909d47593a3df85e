"""CPU attention for bf16 training: PyTorch's SDPA against ours (causette/model/cpu_attention.py).

    python bench/attention.py                  # demo and seed16m shapes, batch 16 × 256 tokens

One layer's causal attention, forward then backward, on the shapes the presets train with.
The two implementations take turns (round-robin) so that a slow moment of a shared machine
hits both; we print the median milliseconds and the ratio. Both run in bf16; the float64
comparison of their results is in tests/test_cpu_attention.py.
"""

from __future__ import annotations

import argparse
import statistics
import time

import causette  # noqa: F401  (first: OpenMP's thread settings before torch starts, causette/utils/threads.py)
import torch
import torch.nn.functional as F

from causette.config import load_config
from causette.model import cpu_attention


def sdpa(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=q.shape[1] != k.shape[1])


def timed(fn, q, k, v, grad) -> tuple[float, float]:
    t0 = time.perf_counter()
    out = fn(q, k, v)
    t1 = time.perf_counter()
    out.backward(grad)
    t2 = time.perf_counter()
    q.grad = k.grad = v.grad = None
    return t1 - t0, t2 - t1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["demo", "seed16m"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    impls = {"SDPA (flash)": sdpa, "ours": cpu_attention.causal_attention}
    print(f"threads {torch.get_num_threads()}; one layer, bf16, forward + backward; median of {args.repeats} rounds")
    header = f"{'model':<8} {'heads q/kv':>10} {'head dim':>8} {'kernel':<13} {'fwd ms':>7} {'bwd ms':>7} {'total':>7} {'× SDPA':>7}"
    print(header)
    print("-" * len(header))
    for name in args.models:
        cfg = load_config(f"model/{name}").model
        B, T, H, KV, D = args.batch, cfg.block_size, cfg.n_head, cfg.kv_heads, cfg.head_dim
        g = torch.Generator().manual_seed(0)

        def make(heads):  # the layout the model produces: (B, T, heads, D) seen as (B, heads, T, D)
            return torch.randn(B, T, heads, D, generator=g).to(torch.bfloat16).transpose(1, 2).requires_grad_()

        q, k, v = make(H), make(KV), make(KV)
        grad = torch.randn(B, H, T, D, generator=g).to(torch.bfloat16)
        assert cpu_attention.usable(q), "needs bf16 and a C++ compiler for torch.compile"
        for fn in impls.values():  # warm-up, compilation included
            for _ in range(3):
                timed(fn, q, k, v, grad)
        times = {label: [] for label in impls}
        for _ in range(args.repeats):
            for label, fn in impls.items():
                times[label].append(timed(fn, q, k, v, grad))
        base = None
        for label in impls:
            fwd = statistics.median(t[0] for t in times[label]) * 1e3
            bwd = statistics.median(t[1] for t in times[label]) * 1e3
            base = base or fwd + bwd
            print(f"{name:<8} {f'{H}/{KV}':>10} {D:>8} {label:<13} {fwd:>7.2f} {bwd:>7.2f} {fwd + bwd:>7.2f} "
                  f"{base / (fwd + bwd):>6.2f}×")


if __name__ == "__main__":
    main()
