"""``python -m causette.explain TOPIC --png FILE``: the picture of a topic, drawn from the same numbers.

One function per topic that has a picture, registered in :data:`PICTURES`:

* ``attention``: the attention weights of every head of every layer on the sentence, one grid
  of small maps (query rows, key columns; the masked upper triangle is blank);
* ``positions``: RoPE as rotating pairs: where one pair of coordinates of a vector lands at
  positions 0, 1, 2… for a fast, a middle and a slow frequency;
* ``schedule``: the learning rate step by step, cosine and WSD, warmup and floor marked;
* ``moe``: the share of the sentence's tokens each expert of each layer receives.

The files are reproducible: the same command gives the same bytes (matplotlib's "Agg" backend,
no date or software version in the file). Titles and labels follow the language (French by
default, ``--lang en``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import torch

from causette.explain.common import encode, label
from causette.utils.lang import num, tr

PICTURES: dict[str, Callable] = {}


def picture(name: str):
    def register(fn):
        PICTURES[name] = fn
        return fn

    return register


def _figure(rows: int = 1, cols: int = 1, size: tuple[float, float] = (6.4, 4.8)):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False)
    return plt, fig, axes


def _save(plt, fig, path: str | Path) -> Path:
    from causette.utils.io import atomic_write

    path = Path(path)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:  # never a half-written image
        fig.savefig(f, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------ topics


@picture("attention")
def attention_picture(s, text: str, args, path) -> Path:
    from causette.explain.attention import attention_by_hand
    from causette.explain.common import capture

    ids = encode(s.tok, text)
    labels = [label(s.tok, i) for i in ids]
    cfg = s.model.cfg
    plt, fig, axes = _figure(cfg.n_layer, cfg.n_head, (2.2 * cfg.n_head + 1, 2.2 * cfg.n_layer + 1))
    for layer, block in enumerate(s.model.blocks):
        (x, rope, _cache), _out = capture(block.attn, s.model, ids)
        with torch.no_grad():
            _scores, weights, _y = attention_by_hand(block.attn, x, rope)
        future = torch.ones(len(ids), len(ids), dtype=torch.bool).triu(1)
        for head in range(cfg.n_head):
            ax = axes[layer][head]
            shown = weights[head].masked_fill(future, float("nan")).numpy()
            ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=1.0)
            ax.set_title(tr(f"couche {layer}, tête {head}", f"layer {layer}, head {head}"), fontsize=8)
            ax.set_xticks(range(len(ids)), labels, rotation=90, fontsize=6)
            ax.set_yticks(range(len(ids)), labels, fontsize=6)
    fig.suptitle(tr("poids d'attention (ligne : la requête ; colonne : la clé qu'elle regarde)",
                    "attention weights (row: the query; column: the key it looks at)"), fontsize=10)
    return _save(plt, fig, path)


@picture("positions")
def positions_picture(s, text: str, args, path) -> Path:
    dim = 64
    plt, fig, axes = _figure(1, 3, (12, 4.2))
    positions = range(0, 13)
    for ax, pair in zip(axes[0], (0, 8, 31)):
        theta = 10000.0 ** (-2 * pair / dim)
        xs = [math.cos(p * theta) for p in positions]
        ys = [math.sin(p * theta) for p in positions]
        ax.plot([math.cos(a / 50 * 2 * math.pi) for a in range(51)],
                [math.sin(a / 50 * 2 * math.pi) for a in range(51)], color="0.85")
        ax.plot(xs, ys, "o-", color="tab:blue")
        for p, x, y in zip(positions, xs, ys):
            ax.annotate(str(p), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_aspect("equal")
        ax.set_xlim(-1.3, 1.3)
        ax.set_ylim(-1.3, 1.3)
        ax.set_title(tr(f"paire {pair} : {num(theta, '.3g')} radian par position",
                        f"pair {pair}: {theta:.3g} radian per position"), fontsize=9)
    fig.suptitle(tr("RoPE : la paire de coordonnées (1, 0) tournée à la position 0, 1, 2… (tête de 64)",
                    "RoPE: the coordinate pair (1, 0) rotated at position 0, 1, 2… (head of 64)"), fontsize=10)
    return _save(plt, fig, path)


@picture("schedule")
def schedule_picture(s, text: str, args, path) -> Path:
    from causette.train.schedule import lr_at

    total = getattr(args, "steps", 1200)
    warmup = getattr(args, "warmup", 60)
    kw = dict(lr=2e-3, min_lr=2e-4, warmup_steps=warmup, total_steps=total)
    steps = list(range(total + 1))
    plt, fig, axes = _figure(1, 1, (7, 4))
    ax = axes[0][0]
    ax.plot(steps, [lr_at(t, schedule="cosine", **kw) for t in steps], label=tr("cosinus", "cosine"))
    ax.plot(steps, [lr_at(t, schedule="wsd", **kw) for t in steps], label="WSD", linestyle="--")
    ax.axvline(warmup, color="0.6", linewidth=0.8)
    ax.annotate(tr("fin de la montée", "end of warmup"), (warmup, 2e-3), textcoords="offset points",
                xytext=(5, -12), fontsize=8)
    ax.axhline(2e-4, color="0.6", linewidth=0.8)
    ax.annotate("min_lr", (total, 2e-4), textcoords="offset points", xytext=(-40, 5), fontsize=8)
    ax.set_xlabel(tr("pas", "step"))
    ax.set_ylabel(tr("taux d'apprentissage", "learning rate"))
    ax.legend()
    ax.set_title(tr(f"le calendrier de la démo ({total} pas, montée de {warmup})",
                    f"the demo's schedule ({total} steps, warmup {warmup})"))
    return _save(plt, fig, path)


@picture("moe")
def moe_picture(s, text: str, args, path) -> Path:
    from causette.model.moe import MoE

    ids = encode(s.tok, text)
    loads = []
    handles = [m.register_forward_hook(lambda mod, a, out: loads.append(out[1]["load"].float()))
               for m in s.model.modules() if isinstance(m, MoE)]
    try:
        with torch.no_grad():
            s.model(torch.tensor([ids]))
    finally:
        for h in handles:
            h.remove()
    E = s.model.cfg.n_experts
    plt, fig, axes = _figure(1, 1, (7, 4))
    ax = axes[0][0]
    width = 0.8 / max(1, len(loads))
    for layer, load in enumerate(loads):
        ax.bar([e + layer * width for e in range(E)], load.tolist(), width=width,
               label=tr(f"couche {layer}", f"layer {layer}"))
    ax.axhline(1.0 / E, color="0.5", linewidth=0.8, linestyle=":")
    ax.annotate(tr("charge égale", "equal load"), (E - 1, 1.0 / E), textcoords="offset points",
                xytext=(-30, 4), fontsize=8)
    ax.set_xticks([e + 0.4 - width / 2 for e in range(E)], [str(e) for e in range(E)])
    ax.set_xlabel(tr("expert", "expert"))
    ax.set_ylabel(tr("part des affectations", "share of the assignments"))
    ax.legend(fontsize=7)
    ax.set_title(tr(f"routage des {len(ids)} tokens de la phrase", f"routing of the sentence's {len(ids)} tokens"))
    return _save(plt, fig, path)
