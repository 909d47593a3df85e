"""Training throughput and MFU on this machine: one run, one table.

    python bench/train.py                     # demo and seed16m, every mode (~6 min)
    python bench/train.py --models seed16m --steps 8

For each model we time full optimizer steps (forward, backward, clipping, AdamW) of the real
Trainer on random tokens, after warm-up steps (compilation included there), in these modes:

    reference      nanoGPT on CPU: fp32, eager, torch AdamW — the in-run yardstick
    bf16           bf16 autocast (AMX / AVX-512-BF16 here), eager, PyTorch's own kernels
    bf16+compile/stock  bf16 under torch.compile with PyTorch's own attention and cross-entropy
    bf16+compile   what `causette train` does: the same plus our CPU attention backward
                   (causette/model/cpu_attention.py) and chunked LM-head loss (chunked_loss.py)
    matmuls only   the products of the model's Linear layers for one step (forward, ∂x, ∂W) and
                   nothing else: the speed a step could reach if everything but them were free

The modes take turns step by step (round-robin), so that a slow minute on a shared machine hits
them all alike. MFU = (model FLOPs per token × tokens/s) / bf16 matmul peak, the same stable peak
`causette train` uses (causette/utils/flops.py stable_peak: this machine's cached quiet
measurement, or a fresh one), so the MFU column compares with training logs and reports. The
best 2048² product seen during the run is printed beside it, with an "in-run" MFU against it:
read on a busy machine, that one shows how much the load moved the yardstick. Read the ratios,
not the absolutes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import causette  # noqa: F401  (first: OpenMP's thread settings before torch starts, causette/utils/threads.py)
import torch

from causette.config import load_config
from causette.model.counting import count_params, flops_per_token
from causette.model.transformer import Transformer
from causette.train.config import TrainConfig
from causette.train.optim import build_optimizers
from causette.train.trainer import Runtime, Trainer
from causette.utils.flops import matmul_peak, stable_peak

MODES = {
    "reference": dict(dtype=torch.float32, compile=False),
    "bf16": dict(dtype=torch.bfloat16, compile=False),
    "bf16+compile/stock": dict(dtype=torch.bfloat16, compile=True),
    "bf16+compile": dict(dtype=torch.bfloat16, compile=True),
    "matmuls only": None,
}


def make_step(preset: str, mode: str, batch: int, tmp: str):
    """A function running one optimizer step of ``mode`` (and its tokens per step)."""
    cfg = load_config(preset).model
    torch.manual_seed(0)
    model = Transformer(cfg, cpu_kernels=mode == "bf16+compile")  # "stock": PyTorch's kernels only
    if MODES[mode] is None:
        return matmul_step(model, batch * cfg.block_size), batch * cfg.block_size
    tc = TrainConfig(batch_size=batch, max_steps=10_000, warmup_steps=10, tensorboard=False)
    gen = torch.Generator().manual_seed(0)

    def batch_fn(step, micro, rank, world):
        x = torch.randint(0, cfg.vocab_size, (batch, cfg.block_size + 1), generator=gen)
        return x[:, :-1], x[:, 1:]

    trainer = Trainer(model, tc, tmp, batch_fn, Runtime(torch.device("cpu"), **MODES[mode]), progress=False)
    if mode == "reference":  # nanoGPT uses fused AdamW on CUDA only: plain (foreach) AdamW on CPU
        trainer.optimizers = build_optimizers(model, tc, fused=False)

    return trainer.train_step, batch * cfg.block_size


def matmul_step(model: torch.nn.Module, tokens: int):
    """The bf16 products of every ``nn.Linear`` for one training step: y = xWᵀ, ∂x = ∂y W, ∂W = ∂yᵀ x."""
    shapes = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    bf = dict(dtype=torch.bfloat16)
    tensors = [
        (torch.randn(tokens, i, **bf), torch.randn(o, i, **bf), torch.randn(tokens, o, **bf)) for i, o in shapes
    ]

    def step():
        for x, w, dy in tensors:
            x @ w.t(), dy @ w, dy.t() @ x

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["demo", "seed16m"])
    ap.add_argument("--modes", nargs="+", default=list(MODES))
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()

    stable = stable_peak("cpu", torch.bfloat16)
    peak_bf16 = matmul_peak("cpu", torch.bfloat16, seconds=1.0)
    peak_fp32 = matmul_peak("cpu", torch.float32, seconds=1.0)
    print(f"threads {torch.get_num_threads()}, bf16 peak {stable.flops / 1e9:,.0f} GFLOP/s ({stable.source}): "
          f"the MFU denominator")
    print(f"matmul 2048² now: bf16 {peak_bf16 / 1e9:,.0f} GFLOP/s, fp32 {peak_fp32 / 1e9:,.0f} GFLOP/s")
    print("measuring...")

    rows = []
    for name in args.models:
        preset = f"model/{name}"
        cfg = load_config(preset).model
        fpt = flops_per_token(cfg)
        with tempfile.TemporaryDirectory() as tmp:
            steps = {mode: make_step(preset, mode, args.batch, tmp) for mode in args.modes}
            for mode, (step, _) in steps.items():
                for _ in range(args.warmup + (2 if "compile" in mode else 0)):  # compilation happens here
                    step()
            times: dict[str, list[float]] = {mode: [] for mode in steps}
            for _ in range(args.steps):
                for mode, (step, _) in steps.items():
                    t = time.perf_counter()
                    step()
                    times[mode].append(time.perf_counter() - t)
                peak_bf16 = max(peak_bf16, matmul_peak("cpu", torch.bfloat16, seconds=0.3))  # best seen in the run
        tps = {mode: steps[mode][1] / statistics.median(times[mode]) for mode in steps}
        ref = tps.get("reference")
        for mode in steps:
            ratio = f"{tps[mode] / ref:.2f}" if ref else "-"
            rows.append((name, count_params(cfg).total, mode, tps[mode], ratio, fpt))
    header = f"{'model':<9} {'params':>7} {'mode':<19} {'tokens/s':>9} {'× ref':>6} {'MFU bf16':>9} {'in-run':>7}"
    print(header)
    print("-" * len(header))
    for name, params, mode, tps, ratio, fpt in rows:
        print(f"{name:<9} {params / 1e6:>6.1f}M {mode:<19} {tps:>9,.0f} {ratio:>6} "
              f"{100 * fpt * tps / stable.flops:>8.1f}% {100 * fpt * tps / peak_bf16:>6.1f}%")
    print(f"MFU bf16: against the stable peak, {stable.flops / 1e9:,.0f} GFLOP/s ({stable.source}); "
          f"in-run: against the best 2048² bf16 product seen during the run, {peak_bf16 / 1e9:,.0f} GFLOP/s")
    print(f"(batch {args.batch} × block; median of {args.steps} round-robin steps after warm-up)")


if __name__ == "__main__":
    main()
