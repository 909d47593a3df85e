"""One dial for the model's size: ``model.depth: N`` derives the shape and the optimiser settings.

Choosing a model means choosing a dozen numbers that depend on each other: layers, width, heads,
learning rate, batch, warmup... nanochat showed that one integer can set them all by written
rules. Ours, adapted to CPU at our sizes (the measurements behind each are in bench/LOG.md,
« Issue 28 »):

    setting               rule                                   depth 4   depth 6   depth 8
    model.n_layer         N                                      4         6         8
    model.n_embd          64·N        (the aspect ratio 64)       256       384       512
    model.n_head          N           (heads of 64 dimensions)    4         6         8
    model.n_kv_head       n_head / g  (g: the config's grouping)   2         3         4
    train.lr              2e-3·√(4/N) (AdamW: ∝ 1/√width)        2e-3      1.63e-3   1.41e-3
    train.min_lr          lr / 10     (of train.lr, derived or given)
    train.warmup_steps    15·N                                   60        90        120
    train.batch_size      16 sequences (× block_size tokens)
    train.weight_decay    0.1

The grouping ``g`` of grouped-query attention is the one of the config the dial applies to
(``n_head / n_kv_head``: 2 in the Llama-family shipped models, 1 in GPT-2's, which has no GQA),
kept when it divides the new number of heads, else 1. Depth 4 on the demo config is the demo's
model (4 × 256, 4 heads, 2 key/value heads) with the demo's settings. The width grows with the depth
(wider layers make the products more efficient on a CPU too), the heads keep 64 dimensions,
and the learning rate shrinks as 1/√width, the usual rule for Adam when the width grows (each
weight's update adds up over more inputs). Muon's learning rate (``train.muon_lr``) needs no rule:
its updates are orthogonalised, their size does not grow with the width.

Explicit settings win over the dial. Precisely: a setting written in the same file as
``depth``, in a file that extends it, or given with ``--set`` keeps its value; one inherited from
a file that the depth's file extends is replaced by the rule (causette/config.py,
:func:`causette.config.apply_depth`). ``causette run --depth 6`` on the demo config thus trains 6 × 384
with the rules' learning rate, and ``--depth 6 --set train.lr=1e-3`` keeps that learning rate.
"""

from __future__ import annotations

import math

# The width of each layer per unit of depth (nanochat's "aspect ratio"), and each head's size.
ASPECT = 64
HEAD_DIM = 64
# The reference point of the learning-rate rule: the demo's 4 × 256 model trains at 2e-3.
REF_DEPTH, REF_LR = 4, 2.0e-3


def shape_for_depth(depth: int, kv_group: int = 1) -> dict:
    """The ``model:`` settings that ``model.depth: depth`` derives; ``kv_group`` query heads share
    each key/value head (when it divides the number of heads)."""
    _check(depth)
    width = ASPECT * depth
    heads = width // HEAD_DIM
    kv = heads // kv_group if kv_group >= 1 and heads % kv_group == 0 else heads
    return {"n_layer": depth, "n_embd": width, "n_head": heads, "n_kv_head": None if kv == heads else kv}


def depth_lr(depth: int) -> float:
    """AdamW's peak learning rate at ``depth``: the demo's 2e-3 at depth 4, ∝ 1/√width."""
    _check(depth)
    return _round(REF_LR * math.sqrt(REF_DEPTH / depth))


def training_for_depth(depth: int, lr: float | None = None) -> dict:
    """The ``train:`` settings that ``model.depth: depth`` derives; ``min_lr`` is a tenth of
    ``lr`` when one is given (a learning rate set by hand), else of the rule's."""
    lr_rule = depth_lr(depth)
    return {"lr": lr_rule, "min_lr": _round((lr_rule if lr is None else lr) / 10), "warmup_steps": 15 * depth,
            "batch_size": 16, "weight_decay": 0.1}


def derived(depth: int, kv_group: int = 1, lr: float | None = None) -> dict[str, dict]:
    """Every setting the dial derives, by section: ``{"model": {...}, "train": {...}}``."""
    return {"model": shape_for_depth(depth, kv_group), "train": training_for_depth(depth, lr)}


def _round(x: float) -> float:
    """Three significant digits: a number as a person would write it in a config."""
    return float(f"{x:.3g}")


def _check(depth: int) -> None:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be an integer >= 1, got {depth!r}")
