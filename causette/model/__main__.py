"""Inspect a model config without training it: sizes, parameter counts, FLOPs, tensors.

    python -m causette.model model/seed16m
    python -m causette.model model/llama --set model.n_kv_head=6 model.mlp=gelu
    python -m causette.model model/demo --tensors      # every tensor's name and shape
    python -m causette.model --depth 8                  # the dial: the demo config at depth 8

The model is built on PyTorch's "meta" device: shapes only, no memory, instant even for big ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import torch

from causette.config import load_config
from causette.config_files import Setting
from causette.errors import CausetteError
from causette.model.counting import count_params, flops_per_token
from causette.model.transformer import Transformer
from causette.utils.ranges import Range, number_in


def describe_dial(cfg) -> str:
    """What ``model.depth`` set, shape and optimiser settings, in one line (empty without a depth)."""
    m, t = cfg.model, cfg.train
    if m.depth is None:
        return ""
    return (f"depth {m.depth}: {m.n_layer} layers × {m.n_embd}, {m.n_head} heads ({m.kv_heads} key/value); "
            f"train.lr {t.lr:g} → min_lr {t.min_lr:g}, warmup {t.warmup_steps} steps, batch {t.batch_size} × "
            f"{m.block_size} tokens, weight decay {t.weight_decay:g}")


def describe(cfg, tensors: bool = False) -> str:
    with torch.device("meta"):
        model = Transformer(cfg)
    c = count_params(cfg)
    lines = ["switches: " + ", ".join(f"{f.name}={getattr(cfg, f.name)}" for f in dataclasses.fields(cfg))]
    lines.append(f"head_dim {cfg.head_dim}, MLP hidden {cfg.hidden_size}, key/value heads {cfg.kv_heads}")
    lines.append(
        f"parameters: {c.total:,} total, {c.non_embedding:,} non-embedding, {c.active:,} active per token"
    )
    lines.append(f"training FLOPs per token at context {cfg.block_size}: {flops_per_token(cfg) / 1e6:,.1f} M")
    kv_bytes = 2 * cfg.n_layer * cfg.kv_heads * cfg.head_dim * 2  # keys and values, bf16
    lines.append(
        f"KV cache: {kv_bytes:,} bytes per token in bf16 ({kv_bytes * cfg.block_size / 2**20:.1f} MiB "
        f"for a full context)"
    )
    if not cfg.uses_attention:
        lines[-1] = (f"KV cache: none (n_layer={cfg.n_layer}, mixer={cfg.mixer}: no attention; generation "
                     "recomputes the context at each token)")
    if cfg.sliding_window is not None:
        lines.append(
            f"sliding window: each token sees itself and the {cfg.sliding_window - 1} previous tokens "
            f"(receptive field {cfg.n_layer} layers × {cfg.sliding_window} = "
            f"{cfg.n_layer * cfg.sliding_window} tokens); the KV cache keeps only the last "
            f"{min(cfg.sliding_window, cfg.block_size)} positions (a ring buffer): "
            f"{kv_bytes * min(cfg.sliding_window, cfg.block_size) / 2**20:.1f} MiB"
        )
    if tensors:
        lines += [f"  {name:<40} {tuple(p.shape)}" for name, p in model.named_parameters()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m causette.model", description=__doc__.splitlines()[0])
    ap.add_argument("config", nargs="?", default="demo",
                    help="a config file or shipped name, e.g. model/seed16m (default: demo)")
    ap.add_argument("--depth", type=number_in(Range(1, 256)), metavar="N",
                    help="the size dial (model.depth): layers N, width 64·N, and the optimiser settings")
    ap.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides, e.g. model.n_layer=4"
    )
    ap.add_argument("--tensors", action="store_true", help="list every parameter tensor")
    args = ap.parse_args(argv)
    overrides = list(args.set) + ([Setting("model.depth", args.depth, f"--depth {args.depth}")]
                                  if args.depth is not None else [])
    try:
        cfg = load_config(args.config, overrides)
        print("\n".join(filter(None, [describe_dial(cfg), describe(cfg.model, args.tensors)])))
    except CausetteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
