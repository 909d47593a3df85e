"""Sliding-window attention vs full attention, same weights, same run: KV-cache memory, chunked
prefill, one-token decoding at a long context, and a training step (forward + backward).

    .venv/bin/python bench/sliding_window.py            # ~1-2 minutes on 2 busy cores

The model has the demo's sizes (4 layers × 256, 4 heads, 2 key/value heads) with a 4096-token
context; the window is 256. Best of ``--repeat`` runs, the two models interleaved.
"""

from __future__ import annotations

import argparse
import time

import causette  # noqa: F401  (first: OpenMP's thread settings before torch starts, causette/utils/threads.py)
import torch

from causette.model import Transformer
from causette.model.config import ModelConfig


def build(window):
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=4096, block_size=4096, n_layer=4, n_head=4, n_kv_head=2, n_embd=256,
                      sliding_window=window)
    return Transformer(cfg).eval()


@torch.inference_mode()
def prefill_and_decode(model, prompt, chunk: int, new: int):
    cache = model.new_cache(1)
    t0 = time.perf_counter()
    for s in range(0, prompt.shape[1], chunk):
        logits = model.logits(prompt[:, s : s + chunk], cache=cache, last_only=True)
    t1 = time.perf_counter()
    tok = logits[:, -1].argmax(-1, keepdim=True)
    for _ in range(new):
        tok = model.logits(tok, cache=cache, last_only=True)[:, -1].argmax(-1, keepdim=True)
    t2 = time.perf_counter()
    cache_bytes = sum(t.numel() * t.element_size() for t in cache.k + cache.v)
    return t1 - t0, new / (t2 - t1), cache_bytes


def train_step(model, idx):
    model.train()
    t0 = time.perf_counter()
    model.loss(idx[:, :-1], idx[:, 1:]).backward()
    model.zero_grad(set_to_none=True)
    model.eval()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--prompt", type=int, default=3584)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--train-len", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(2)
    models = {"full": build(None), f"window {args.window}": build(args.window)}
    prompt = torch.randint(0, 4096, (1, args.prompt), generator=torch.Generator().manual_seed(1))
    train_idx = torch.randint(0, 4096, (1, args.train_len + 1), generator=torch.Generator().manual_seed(2))
    best = {name: [float("inf"), 0.0, 0, float("inf")] for name in models}
    for _ in range(args.repeat):
        for name, model in models.items():
            pre, tps, nbytes = prefill_and_decode(model, prompt, 512, args.new)
            tr = train_step(model, train_idx)
            b = best[name]
            b[0], b[1], b[2], b[3] = min(b[0], pre), max(b[1], tps), nbytes, min(b[3], tr)
    kv_per_pos = 2 * 4 * 2 * 64 * 4  # k and v, layers, kv heads, head_dim, fp32 bytes
    print(f"prompt {args.prompt} tokens (chunks of 512), then {args.new} tokens decoded one at a time; "
          f"training step at T={args.train_len}; best of {args.repeat}")
    print("| attention | KV cache (fp32) | prefill | decode tokens/s | train step (fwd+bwd) |")
    print("|---|---:|---:|---:|---:|")
    for name, (pre, tps, nbytes, tr) in best.items():
        print(f"| {name} | {nbytes / 2**20:.1f} MiB | {pre:.2f} s | {tps:.0f} | {tr:.2f} s |")
    print(f"a ring buffer of {args.window} positions would hold {kv_per_pos * args.window / 2**20:.2f} MiB "
          f"(not implemented: the cache keeps all {4096} positions)")


if __name__ == "__main__":
    main()
