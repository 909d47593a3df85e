"""Training throughput and MFU on this machine: one run, one table.

    python bench/train.py                     # demo and seed16m, every mode (~5 min)
    python bench/train.py --models demo --steps 6

For each model we time full optimizer steps (forward, backward, clipping, AdamW) of the real
Trainer on random tokens, after warm-up steps (compilation included there), in these modes:

    reference   nanoGPT on CPU: fp32, eager, torch AdamW — the in-run yardstick
    bf16        bf16 autocast (AMX / AVX-512-BF16 here)
    bf16+compile  the same under torch.compile

MFU = (model FLOPs per token × tokens/s) / bf16 matmul peak, the peak measured in this run
(causette/utils/flops.py). The machine is shared and drifts: read the ratios, not the absolutes.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from causette.config import load_config
from causette.model.counting import count_params, flops_per_token
from causette.model.transformer import Transformer
from causette.train.config import TrainConfig
from causette.train.optim import build_optimizers
from causette.train.trainer import Trainer
from causette.utils.flops import matmul_peak

MODES = {
    "reference": dict(dtype=torch.float32, compile=False),
    "bf16": dict(dtype=torch.bfloat16, compile=False),
    "bf16+compile": dict(dtype=torch.bfloat16, compile=True),
}


def measure(preset: str, mode: str, batch: int, steps: int, warmup: int, tmp: str) -> float:
    cfg = load_config(preset).model
    torch.manual_seed(0)
    model = Transformer(cfg)
    tc = TrainConfig(batch_size=batch, max_steps=10_000, warmup_steps=10, tensorboard=False)
    gen = torch.Generator().manual_seed(0)

    def batch_fn(step, micro, rank, world):
        x = torch.randint(0, cfg.vocab_size, (batch, cfg.block_size + 1), generator=gen)
        return x[:, :-1], x[:, 1:]

    trainer = Trainer(model, tc, tmp, batch_fn, device=torch.device("cpu"), progress=False, **MODES[mode])
    if mode == "reference":  # nanoGPT uses fused AdamW on CUDA only: plain (foreach) AdamW on CPU
        trainer.optimizers = build_optimizers(model, tc, fused=False)
    times = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        trainer.train_step()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return batch * cfg.block_size / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["demo", "seed16m"])
    ap.add_argument("--modes", nargs="+", default=list(MODES))
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()

    peak_bf16 = matmul_peak("cpu", torch.bfloat16, seconds=1.0)
    peak_fp32 = matmul_peak("cpu", torch.float32, seconds=1.0)
    print(f"threads {torch.get_num_threads()}, matmul peak 2048²: bf16 {peak_bf16 / 1e9:,.0f} GFLOP/s, "
          f"fp32 {peak_fp32 / 1e9:,.0f} GFLOP/s (measured now)")
    print("measuring...")
    import tempfile

    rows = []

    for name in args.models:
        preset = f"model/{name}"
        cfg = load_config(preset).model
        fpt = flops_per_token(cfg)
        ref = None
        for mode in args.modes:
            warm = args.warmup + (2 if "compile" in mode else 0)
            with tempfile.TemporaryDirectory() as tmp:
                tps = measure(preset, mode, args.batch, args.steps, warm, tmp)
            peak_bf16 = max(peak_bf16, matmul_peak("cpu", torch.bfloat16, seconds=0.5))  # best seen in the run
            ref = tps if mode == "reference" else ref
            ratio = f"{tps / ref:.2f}" if ref else "-"
            rows.append((name, count_params(cfg).total, mode, tps, ratio, fpt))
    header = f"{'model':<9} {'params':>7} {'mode':<13} {'tokens/s':>9} {'× ref':>6} {'MFU bf16':>9}"
    print(header)
    print("-" * len(header))
    for name, params, mode, tps, ratio, fpt in rows:
        print(f"{name:<9} {params / 1e6:>6.1f}M {mode:<13} {tps:>9,.0f} {ratio:>6} {100 * fpt * tps / peak_bf16:>8.1f}%")
    print(f"best bf16 matmul peak seen during the run: {peak_bf16 / 1e9:,.0f} GFLOP/s (the MFU denominator)")
    print(f"(batch {args.batch} × block; median of {args.steps} steps after warm-up)")


if __name__ == "__main__":
    main()
