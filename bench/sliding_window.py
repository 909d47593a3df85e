"""Sliding-window attention vs full attention, same weights, same run.

    .venv/bin/python bench/sliding_window.py                    # both parts, ~10 minutes on 2 busy cores
    .venv/bin/python bench/sliding_window.py --part generation  # the KV-cache table only

Part ``long``: chunked prefill, one-token decoding at a long context and a training step
(forward + backward), with a 4096-token context and a window of 256.

Part ``generation``: the KV cache (a ring buffer of ``window`` positions for a sliding-window
model, ``block_size`` positions otherwise, as the server and the compiled step allocate it) and
the generation speed from a 32-token prompt up to 256 or 1024 tokens, for ``block_size`` 1024
and 2048, full attention vs windows of 128 and 256: eagerly (``model.logits`` one token at a
time, ``decode="exact"``) and with the static decode step (``model.step_kv``, uncompiled: the
arithmetic the compiled step runs, reading the whole cache at every token).

The model has the demo's sizes (4 layers × 256, 4 heads, 2 key/value heads, fp32). Best of
``--repeat`` runs, the models interleaved.
"""

from __future__ import annotations

import argparse
import time

import causette  # noqa: F401  (first: OpenMP's thread settings before torch starts, causette/utils/threads.py)
import torch

from causette.model import Transformer
from causette.model.config import ModelConfig


def build(window, block_size: int = 4096):
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=4096, block_size=block_size, n_layer=4, n_head=4, n_kv_head=2, n_embd=256,
                      sliding_window=window)
    return Transformer(cfg).eval()


def cache_bytes(cache) -> int:
    return sum(t.numel() * t.element_size() for t in cache.k + cache.v)


def steps(model, prompt, total: int, static: bool, ids: list):
    """Greedy tokens from ``prompt`` until the sequence holds ``total``, one token per ``next()``,
    which returns that step's seconds (the greedy ids go to ``ids``)."""
    with torch.inference_mode():
        cache = model.new_cache(1)  # block_size positions, or the window's ring buffer
        tok = model.logits(prompt, cache=cache, last_only=True)[:, -1].argmax(-1)
    ids.append(int(tok))
    for _ in range(total - prompt.shape[1] - 1):
        with torch.inference_mode():
            t0 = time.perf_counter()
            if static:
                logits = model.step_kv(tok, torch.tensor([cache.pos]), cache.k, cache.v)  # all slots, masked
                cache.advance(1)
            else:
                logits = model.logits(tok[:, None], cache=cache, last_only=True)[:, -1]
            tok = logits.argmax(-1)
            seconds = time.perf_counter() - t0
        ids.append(int(tok))
        yield seconds


def generation_table(args):
    """Every (model, way) generates in lockstep, one token each in turn, so that the load of a
    shared machine falls on all of them alike; each one's time is the sum of its own steps."""
    blocks = [int(b) for b in args.blocks.split(",")]
    windows = [int(w) for w in args.windows.split(",")]
    lengths = [int(n) for n in args.lengths.split(",")]
    prompt = torch.randint(0, 4096, (1, 32), generator=torch.Generator().manual_seed(3))
    print(f"\ngeneration: prompt 32 tokens, greedy up to {' / '.join(map(str, lengths))} tokens; "
          f"tokens/s of the one-token steps (eager / static step), all in lockstep, best of {args.repeat}")
    head = " | ".join(f"tokens/s to {n}" for n in lengths)
    print(f"| block_size | attention | KV cache (fp32) | {head} |")
    print("|---:|---|---:|" + "---:|" * len(lengths))
    for block in blocks:
        models = {"full": build(None, block), **{f"window {w}": build(w, block) for w in windows}}
        ways = [(name, static) for name in models for static in (False, True)]
        best = {}
        for n in lengths:
            for _ in range(args.repeat):
                ids = {way: [] for way in ways}
                runs = {way: steps(models[way[0]], prompt, n, way[1], ids[way]) for way in ways}
                spent = dict.fromkeys(ways, 0.0)
                for _ in range(n - prompt.shape[1] - 1):
                    for way in ways:
                        spent[way] += next(runs[way])
                for way in ways:
                    tps = (n - prompt.shape[1] - 1) / spent[way]
                    best[way + (n,)] = max(best.get(way + (n,), 0.0), tps)
                for name in models:
                    if ids[name, False] != ids[name, True]:  # rounding may flip a near-tie
                        print(f"note: {name}, {n} tokens: the static step's greedy tokens differ from the eager ones")
        nbytes = {name: cache_bytes(model.new_cache(1)) for name, model in models.items()}  # as the server allocates
        for name in models:
            cells = " | ".join(f"{best[name, False, n]:.0f} / {best[name, True, n]:.0f}" for n in lengths)
            size = f"{nbytes[name] / 2**20:.2f} MiB"
            if name != "full":
                size += f" ({nbytes['full'] / nbytes[name]:.0f}× less)"
            print(f"| {block} | {name} | {size} | {cells} |")
        n = lengths[-1]
        for w in windows:
            print(f"(block {block}, to {n} tokens, window {w} / full: eager {best[f'window {w}', False, n] / best['full', False, n]:.2f}×, "
                  f"static step {best[f'window {w}', True, n] / best['full', True, n]:.2f}×)")


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
    ap.add_argument("--part", choices=["all", "long", "generation"], default="all")
    ap.add_argument("--blocks", default="1024,2048", help="generation part: block sizes")
    ap.add_argument("--windows", default="128,256", help="generation part: windows")
    ap.add_argument("--lengths", default="256,1024", help="generation part: sequence lengths reached")
    args = ap.parse_args()
    torch.set_num_threads(2)
    if args.part != "long":
        generation_table(args)
    if args.part != "generation":
        long_context(args)


def long_context(args):
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
    assert best[f"window {args.window}"][2] == kv_per_pos * args.window  # the ring buffer: window positions


if __name__ == "__main__":
    main()
