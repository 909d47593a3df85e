"""Milliseconds per SFT step on the tool data: eager, torch.compile, and torch.compile with the
CPU kernels of pretraining (attention backward, chunked LM-head loss), bf16 autocast, batches of
16 from causette/sft/data.py (windows sorted by length).

    .venv/bin/python bench/sft_speed.py runs/assistant        # after `causette run assistant`
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import causette  # noqa: E402,F401  (first: it sets the CPU threads before torch loads)
import torch  # noqa: E402

from causette.checkpoint.steps import find_checkpoint  # noqa: E402
from causette.checkpoint.weights import load_model  # noqa: E402
from causette.model import Transformer  # noqa: E402
from causette.sft.data import SFTBatches, load_conversations  # noqa: E402
from causette.tokenizer import load_tokenizer  # noqa: E402

WARMUP, STEPS = 30, 100


def timed(run, model, batches) -> tuple[float, float]:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(s: int) -> None:
        x, y = batches.batch(s, 16)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            _, loss = run(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    t = time.perf_counter()
    for s in range(WARMUP):
        step(s)
    warm = time.perf_counter() - t
    t = time.perf_counter()
    for s in range(WARMUP, WARMUP + STEPS):
        step(s)
    return warm, (time.perf_counter() - t) / STEPS


def main() -> None:
    run_dir = Path(sys.argv[1])
    tok = load_tokenizer(run_dir / "tokenizer")
    batches = SFTBatches(tok, load_conversations([run_dir / "sft" / "tool_data.jsonl.gz"])[:4000], 256)
    base = find_checkpoint(run_dir)
    print(f"# bench/sft_speed.py — {base}, {STEPS} steps after {WARMUP} of warm-up")
    print("| mode | warm-up (s) | ms / step | vs eager |")
    print("|---|---:|---:|---:|")
    eager = None
    for mode in ("eager", "compile", "compile + CPU kernels"):
        model = load_model(base, expected_vocab=tok.vocab_size)
        if "kernels" in mode:
            fast = Transformer(model.cfg, cpu_kernels=True)
            fast.load_state_dict(model.state_dict())
            model = fast
        model.train()
        warm, per_step = timed(torch.compile(model) if "compile" in mode else model, model, batches)
        eager = eager or per_step
        print(f"| {mode} | {warm:.1f} | {per_step * 1000:.0f} | {eager / per_step:.2f}× |")


if __name__ == "__main__":
    main()
