"""``python -m causette.explain TOPIC --png FILE``: the picture of a topic, drawn from the same numbers.

One function per topic that has a picture, registered in :data:`PICTURES`:

* ``tokens``: the BPE merge tree of the text's longest chunk (bytes → merges → tokens);
* ``attention``: the attention weights of every head of every layer on the sentence, one grid
  of small maps (query rows, key columns; the masked upper triangle is blank);
* ``positions``: RoPE as rotating pairs: where one pair of coordinates of a vector lands at
  positions 0, 1, 2… for a fast, a middle and a slow frequency;
* ``schedule``: the learning rate step by step, cosine and WSD, warmup and floor marked;
* ``moe``: the share of the sentence's tokens each expert of each layer receives;
* ``curves``: a run's training and validation losses, the best validation step and the
  diagnosis of curves.py written on the picture.
* ``progression``: drawn by progression.py (its runs' curves), registered here the same way.

The files are reproducible: the same command gives the same bytes (matplotlib's "Agg" backend,
no date or software version in the file). Titles and labels follow the language (French by
default, ``--lang en``).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Callable

import torch

from causette.errors import CausetteError
from causette.explain.attention import attention_by_hand, require_attention
from causette.explain.cache import cache_steps, measured_mask, prefill_of, window_of
from causette.explain.common import capture, encode, label, visible
from causette.explain.curves import example_curves, read_curves
from causette.model.moe import MoE
from causette.tokenizer.pattern import split_chunks
from causette.train.schedule import lr_at
from causette.utils.io import atomic_write
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


def _save(plt, fig, path: str | Path, bottom: float = 0.0, top: float = 1.0) -> Path:
    """Write ``fig`` as PNG; ``bottom``, ``top``: the share of the height kept free below and above
    the axes (a ``suptitle`` needs some room above)."""
    path = Path(path)
    fig.tight_layout(rect=(0, bottom, 1, top))
    with atomic_write(path, "wb") as f:  # never a half-written image
        fig.savefig(f, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------ topics


@picture("attention")
def attention_picture(s, text: str, args, path) -> Path:
    ids = encode(s.tok, text)
    labels = [label(s.tok, i) for i in ids]
    cfg = s.model.cfg
    require_attention(cfg)
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


CURVE_KINDS = {"overfitting": ("surapprentissage", "overfitting"), "plateau": ("plateau", "plateau"),
               "still-learning": ("apprend encore", "still learning"), "diverging": ("divergence", "diverging")}


def _draw_curves(ax, c, legend_size: int = 8) -> str:
    """The training and validation losses of ``c`` on ``ax``, the best step marked; returns the kind."""
    kind, _fr, _en = c.diagnosis()
    best_step, best = c.best
    ax.plot([st for st, _ in c.train], [v for _, v in c.train], color="tab:blue", alpha=0.35, linewidth=0.8,
            label=tr("entraînement (chaque relevé)", "training (each record)"))
    ax.plot([st for st, _ in c.val], [c.train_near(st) for st, _ in c.val], color="tab:blue",
            label=tr("entraînement (moyenne locale)", "training (local mean)"))
    ax.plot([st for st, _ in c.val], [v for _, v in c.val], "o-", color="tab:orange",
            label=tr("validation", "validation"))
    ax.axvline(best_step, color="0.5", linestyle=":", linewidth=1)
    ax.annotate(tr(f"meilleure validation\n{num(best, '.3f')} (pas {best_step})",
                   f"best validation\n{best:.3f} (step {best_step})"),
                (best_step, best), textcoords="offset points", xytext=(8, 18), fontsize=8,
                arrowprops={"arrowstyle": "->", "color": "0.4"})
    if kind == "overfitting":
        ax.axvspan(best_step, c.val[-1][0], color="tab:red", alpha=0.08)
    ax.set_xlabel(tr("pas", "step"))
    ax.set_ylabel(tr("perte (nats / token)", "loss (nats / token)"))
    ax.legend(fontsize=legend_size)
    return kind


@picture("curves")
def curves_picture(s, text: str, args, path) -> Path:
    if getattr(args, "examples", False):
        return curves_examples_picture(args, path)

    c = read_curves(getattr(args, "checkpoint", None))
    _kind, fr, en = c.diagnosis()
    plt, fig, axes = _figure(1, 1, (8, 4.8))
    ax = axes[0][0]
    kind = _draw_curves(ax, c)
    name = tr(*CURVE_KINDS[kind])
    ax.set_title(tr(f"{c.run} : {name}", f"{c.run}: {name}"))
    fig.text(0.01, 0.01, "\n".join(textwrap.wrap(tr(fr, en), 120)), fontsize=7, va="bottom")
    return _save(plt, fig, path, bottom=0.08)


def curves_examples_picture(args, path) -> Path:
    """``curves --examples``: the three example runs side by side, each with its diagnosis."""
    runs = example_curves(args)
    plt, fig, axes = _figure(1, len(runs), (5.2 * len(runs), 4.8))
    for ax, ex in zip(axes[0], runs):
        kind = _draw_curves(ax, ex.curves, legend_size=7)
        _k, fr, en = ex.curves.diagnosis()
        ax.set_title(f"{tr(*ex.title)}\n{tr(*ex.setting)}", fontsize=9)
        diagnosis = tr(fr, en)
        diagnosis = diagnosis[0].upper() + diagnosis[1:]
        ax.text(0.0, -0.16, "\n".join(textwrap.wrap(diagnosis, 62)), transform=ax.transAxes, fontsize=7.5,
                va="top", color="tab:red" if kind in ("overfitting", "diverging") else "0.2")
    fig.suptitle(tr("trois entraînements réels du même petit modèle : ce qu'il faut savoir reconnaître",
                    "three real trainings of the same small model: what to recognise"), fontsize=11)
    return _save(plt, fig, path)


@picture("tokens")
def tokens_picture(s, text: str, args, path) -> Path:
    """The merge tree of the text's longest chunk: bytes at the bottom, each merge one level up
    (the lowest rank first, as the encoder does), the tokens it ends with at the top."""
    tok = s.tok
    chunks = split_chunks(text, tok.pattern) if tok.kind == "bpe" else []
    if not chunks:
        raise CausetteError(tr("l'arbre des fusions demande un tokeniseur BPE et un texte non vide",
                               "the merge tree needs a BPE tokenizer and a non-empty text"))
    chunk = max(chunks, key=lambda c: len(c.encode("utf-8"))).encode("utf-8")
    # Each piece: (bytes, left x, right x, level it was made at); merges replayed as bpe_steps does.
    pieces = [(chunk[i:i + 1], i, i + 1, 0) for i in range(len(chunk))]
    merges = []  # (rank, left piece, right piece, new piece)
    while len(pieces) > 1:
        ranks = [(tok.ranks.get(pieces[i][0] + pieces[i + 1][0]), i) for i in range(len(pieces) - 1)]
        ranks = [(r, i) for r, i in ranks if r is not None]
        if not ranks:
            break
        rank, i = min(ranks)
        a, b = pieces[i], pieces[i + 1]
        new = (a[0] + b[0], a[1], b[2], len(merges) + 1)
        merges.append((rank, a, b, new))
        pieces[i:i + 2] = [new]
    levels = len(merges) + 1
    plt, fig, axes = _figure(1, 1, (max(6.0, 0.6 * len(chunk) + 2), max(3.0, 0.45 * levels + 1.5)))
    ax = axes[0][0]

    def box(piece, color):
        data, x0, x1, level = piece
        label_ = visible(data.decode("utf-8", errors="backslashreplace"))
        ax.add_patch(plt.Rectangle((x0 + 0.05, level - 0.35), x1 - x0 - 0.1, 0.7, facecolor=color,
                                   edgecolor="0.3", linewidth=0.6))
        ax.text((x0 + x1) / 2, level, label_, ha="center", va="center", fontsize=8)

    for i in range(len(chunk)):
        leaf = (chunk[i:i + 1], i, i + 1, 0)
        box(leaf, "#fde9c9" if leaf in pieces else "#e8eef7")  # a byte no merge took is a final token
    for rank, a, b, new in merges:
        for child in (a, b):
            ax.plot([(child[1] + child[2]) / 2, (new[1] + new[2]) / 2], [child[3] + 0.35, new[3] - 0.35],
                    color="0.6", linewidth=0.7)
        box(new, "#fde9c9" if new in pieces else "#f4f4f4")
        ax.text(new[2] + 0.05, new[3], tr(f"rang {rank}", f"rank {rank}"), fontsize=6, va="center", color="0.4")
    ax.set_xlim(-0.2, len(chunk) + 2)
    ax.set_ylim(-0.8, levels - 0.2)
    ax.axis("off")
    ax.set_title(tr(f"les fusions BPE de « {visible(chunk.decode('utf-8', errors='replace'))} » : des octets (en bas) "
                    f"aux {len(pieces)} token(s) final(s) (en orange)",
                    f"the BPE merges of '{visible(chunk.decode('utf-8', errors='replace'))}': from bytes (bottom) "
                    f"to the {len(pieces)} final token(s) (orange)"), fontsize=9)
    return _save(plt, fig, path)


def _grid(ax, cells, labels, colors, title: str) -> None:
    """A ``T × T`` grid of coloured cells (``colors[i][j]`` or None for blank), tokens on both axes."""
    T = len(labels)
    for i in range(T):
        for j in range(T):
            color = colors[i][j]
            ax.add_patch(_rect(j, i, color if color else "white", cells[i][j]))
    ax.set_xlim(-0.5, T - 0.5)
    ax.set_ylim(T - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xticks(range(T), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(T), labels, fontsize=8)
    ax.tick_params(length=0)
    ax.set_xlabel(tr("clé (le token lu)", "key (the token read)"), fontsize=8)
    ax.set_ylabel(tr("requête (le token qui lit)", "query (the token reading)"), fontsize=8)
    ax.set_title(title, fontsize=9)


def _rect(x, y, color, text: str = ""):
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor=color, edgecolor="0.75", linewidth=0.5)


@picture("mask")
def mask_picture(s, text: str, args, path) -> Path:
    ids = encode(s.tok, text)
    labels = [label(s.tok, i) for i in ids]
    window = window_of(s, args)
    plt, fig, axes = _figure(1, 2, (11, 6.4))
    for ax, w in zip(axes[0], (None, window)):
        reads = measured_mask(s, ids, window=w)
        colors = [["tab:blue" if reads[i, j] else "#eeeeee" for j in range(len(ids))] for i in range(len(ids))]
        _grid(ax, [[""] * len(ids)] * len(ids), labels, colors,
              tr(f"masque causal : {int(reads.sum())} cases lues sur {len(ids) ** 2}",
                 f"causal mask: {int(reads.sum())} cells read out of {len(ids) ** 2}") if w is None else
              tr(f"fenêtre glissante de {w} : {int(reads.sum())} cases lues",
                 f"sliding window of {w}: {int(reads.sum())} cells read"))
    fig.suptitle(tr("quelles clés chaque requête lit (bleu : lue ; gris : masquée), mesuré sur la couche 0 du modèle",
                    "which keys each query reads (blue: read; grey: masked), measured on the model's layer 0"),
                 fontsize=10)
    return _save(plt, fig, path, top=0.95)


@picture("cache")
def cache_picture(s, text: str, args, path) -> Path:
    ids = encode(s.tok, text)
    T = len(ids)
    n = prefill_of(args, T)
    steps, _diff = cache_steps(s, ids, n)
    labels = [label(s.tok, i) for i in ids]
    plt, fig, axes = _figure(1, 2, (13, 6.4))
    ax = axes[0][0]
    colors = [[None] * T for _ in range(T)]
    for k, st in enumerate(steps):
        for q in st.queries:
            for j in range(st.keys):
                if j <= q and (st.window is None or j > q - st.window):
                    colors[q][j] = "tab:blue" if k == 0 else "tab:orange"
        if k > 0:  # the key/value this step appends to the cache
            colors[st.written[0]][st.written[0]] = "tab:red"
    _grid(ax, [[""] * T] * T, labels, colors, tr("les scores q·k calculés à chaque passe",
                                                "the q·k scores computed at each pass"))
    ax.axhline(n - 0.5, color="0.2", linewidth=1.2)
    from matplotlib.patches import Patch

    ax.legend(handles=[
        Patch(color="tab:blue", label=tr(f"prefill : {n} requêtes × leurs clés (le triangle),\n"
                                         f"{n} clés/valeurs écrites dans le cache",
                                         f"prefill: {n} queries × their keys (the triangle),\n"
                                         f"{n} keys/values written to the cache")),
        Patch(color="tab:orange", label=tr("décodage : une requête par pas,\ncontre toutes les clés du cache",
                                           "decoding: one query per step,\nagainst every cached key")),
        Patch(color="tab:red", label=tr("la clé/valeur que ce pas ajoute au cache",
                                        "the key/value this step appends to the cache")),
    ], loc="upper right", fontsize=7.5)
    ax = axes[0][1]
    names = ["prefill"] + [tr(f"pas {k}", f"step {k}") for k in range(1, len(steps))]
    xs = range(len(steps))
    ax.bar([x - 0.2 for x in xs], [st.cells_without_cache for st in steps], width=0.4, color="0.7",
           label=tr("sans cache (tout le triangle à chaque pas)", "without cache (the whole triangle each step)"))
    ax.bar([x + 0.2 for x in xs], [st.cells for st in steps], width=0.4,
           color=["tab:blue"] + ["tab:orange"] * (len(steps) - 1), label=tr("avec le cache", "with the cache"))
    for x, st in zip(xs, steps):
        ax.annotate(str(st.cells), (x + 0.2, st.cells), textcoords="offset points", xytext=(0, 2), ha="center",
                    fontsize=7)
    ax.set_xticks(list(xs), [f"{nm}\n{labels[st.queries[-1]]}" for nm, st in zip(names, steps)], fontsize=7)
    ax.set_ylabel(tr("scores q·k calculés (par tête et par couche)", "q·k scores computed (per head and layer)"),
                  fontsize=8)
    total, without = sum(st.cells for st in steps), sum(st.cells_without_cache for st in steps)
    ax.set_title(tr(f"le coût de chaque passe : {num(total, ',')} scores en tout avec le cache, {num(without, ',')} sans",
                    f"the cost of each pass: {total:,} scores in all with the cache, {without:,} without"), fontsize=9)
    ax.legend(fontsize=8)
    fig.suptitle(tr(f"le cache KV sur « {text} » : prefill de {n} tokens, puis {T - n} pas de décodage",
                    f"the KV cache on '{text}': prefill of {n} tokens, then {T - n} decoding steps"), fontsize=10)
    return _save(plt, fig, path, top=0.95)
