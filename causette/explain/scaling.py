"""Topic ``scaling`` (docs/echelle.md): what doubling the time or the model buys, measured.

The numbers are a grid of real training runs (bench/scaling.py: depths × time budgets on the
novels and plays of ../shared/data, on this project's 2-core CPU), shipped in scaling_data.json
beside this module. The topic prints the grid, the best depth for each budget and its tokens per
parameter (what ``model.depth: auto`` aims at, causette/train/sizing.py), and what doubling the
budget or the depth changed; ``--png`` draws validation bits per byte against the training
compute, one line per depth: the lower envelope of the lines is the best a budget can buy.
Your own grid (``python bench/scaling.py … --out FILE``) is read with ``--file FILE``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from causette.errors import CausetteError
from causette.explain.common import num, table, topic, tr
from causette.explain.pictures import _figure, _save, picture
from causette.train.sizing import TOKENS_PER_PARAM

SHIPPED = Path(__file__).with_name("scaling_data.json")


def read_grid(path: str | Path | None = None) -> dict:
    """The grid of ``path`` (default: the shipped one): ``{"machine": {...}, "cells": [...]}``."""
    path = Path(path) if path else SHIPPED
    try:
        grid = json.loads(path.read_text(encoding="utf-8"))
        cells = [c for c in grid["cells"] if not c.get("extra")]
        for c in cells:
            float(c["val_bpb"]), int(c["depth"]), float(c["minutes"]), float(c["tokens"]), int(c["params"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CausetteError(tr(f"{path} : grille illisible ({e})", f"{path}: unreadable grid ({e})")) from None
    if not cells:
        raise CausetteError(tr(f"{path} : aucune mesure", f"{path}: no measurement"))
    return {**grid, "cells": cells}


def best_by_budget(cells: list[dict]) -> list[dict]:
    """For each budget (minutes, ascending), its cell of lowest validation bits per byte."""
    budgets = sorted({c["minutes"] for c in cells})
    return [min((c for c in cells if c["minutes"] == m), key=lambda c: c["val_bpb"]) for m in budgets]


def _cell(cells: list[dict], depth: int, minutes: float) -> dict | None:
    return next((c for c in cells if c["depth"] == depth and c["minutes"] == minutes), None)


def doubling_lines(cells: list[dict]) -> list[str]:
    """What the grid says about doubling the budget (same depth) and the depth (same budget)."""
    budgets, depths = sorted({c["minutes"] for c in cells}), sorted({c["depth"] for c in cells})
    out = []
    best = best_by_budget(cells)
    for a, b in zip(best, best[1:]):
        gain = (a["val_bpb"] - b["val_bpb"]) / a["val_bpb"]
        out.append(tr(f"× {num(b['minutes'] / a['minutes'], '.1f')} de temps ({num(a['minutes'], 'g')} → "
                      f"{num(b['minutes'], 'g')} min, chacun à sa meilleure profondeur) : "
                      f"{num(a['val_bpb'], '.3f')} → {num(b['val_bpb'], '.3f')} bits par octet "
                      f"({num(100 * gain, '.1f')} % de mieux)",
                      f"× {b['minutes'] / a['minutes']:.1f} the time ({a['minutes']:g} → {b['minutes']:g} min, "
                      f"each at its best depth): {a['val_bpb']:.3f} → {b['val_bpb']:.3f} bits per byte "
                      f"({100 * gain:.1f} % better)"))
    for m in budgets:
        row = [c for c in (_cell(cells, d, m) for d in depths) if c]
        for a, b in zip(row, row[1:]):
            sign = tr("mieux", "better") if b["val_bpb"] < a["val_bpb"] else tr("moins bien", "worse")
            out.append(tr(f"{num(m, 'g')} min : profondeur {a['depth']} → {b['depth']} "
                          f"(× {num(b['params'] / a['params'], '.1f')} paramètres, × "
                          f"{num(b['tokens'] / a['tokens'], '.2f')} tokens vus) : "
                          f"{num(a['val_bpb'], '.3f')} → {num(b['val_bpb'], '.3f')} ({sign})",
                          f"{m:g} min: depth {a['depth']} → {b['depth']} (× {b['params'] / a['params']:.1f} "
                          f"parameters, × {b['tokens'] / a['tokens']:.2f} tokens seen): "
                          f"{a['val_bpb']:.3f} → {b['val_bpb']:.3f} ({sign})"))
    return out


@topic("scaling", ("ce que rapporte deux fois plus de temps ou de modèle : une grille mesurée sur ce CPU",
                   "what twice the time or the model buys: a grid measured on this CPU"), text=False)
def explain_scaling(s=None, text: str = "", args=None) -> str:
    grid = read_grid(getattr(args, "file", None))
    cells = grid["cells"]
    rows = [[c["depth"], num(c["params"] / 1e6, ".1f") + " M", num(c["minutes"], "g"),
             num(c["tokens"] / 1e6, ".1f") + " M", num(c["tokens_per_param"], ".1f"),
             num(c["flops"] / 1e15, ".2f"), num(c["val_bpb"], ".3f"),
             "—" if c.get("grammar") is None else num(100 * c["grammar"], ".1f") + " %"]
            for c in sorted(cells, key=lambda c: (c["minutes"], c["depth"]))]
    heads = [tr("profondeur", "depth"), tr("paramètres", "parameters"), "minutes", tr("tokens vus", "tokens seen"),
             tr("tokens/paramètre", "tokens/parameter"), "PFLOP", tr("bits/octet (val)", "bits/byte (val)"),
             tr("grammaire", "grammar")]
    machine = grid.get("machine", {})
    out = [tr(f"Chaque case : `causette train` du modèle de la démo à cette profondeur (model.depth), "
              f"pendant ce nombre de minutes, sur les romans et pièces de ../shared/data "
              f"({machine.get('threads', '?')} fils, {machine.get('cpu', 'CPU')}).",
              f"Each cell: `causette train` of the demo model at that depth (model.depth) for that many "
              f"minutes, on the novels and plays of ../shared/data ({machine.get('threads', '?')} threads, "
              f"{machine.get('cpu', 'CPU')})."), "", table(heads, rows), ""]
    for c in best_by_budget(cells):
        out.append(tr(f"{num(c['minutes'], 'g')} min : la meilleure profondeur est {c['depth']} "
                      f"({num(c['tokens_per_param'], '.1f')} tokens par paramètre)",
                      f"{c['minutes']:g} min: the best depth is {c['depth']} "
                      f"({c['tokens_per_param']:.1f} tokens per parameter)"))
    out += [""] + doubling_lines(cells)
    ratios = [c["tokens_per_param"] for c in best_by_budget(cells)]
    target = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    out += ["", tr(f"Cette grille désigne ~{num(target, '.2g')} tokens par paramètre (moyenne géométrique des "
                   f"meilleures cases) ; model.depth: auto choisit la profondeur dont le rapport, dans son budget, "
                   f"est le plus proche de {num(TOKENS_PER_PARAM, 'g')} (causette/train/sizing.py).",
                   f"This grid points at ~{target:.2g} tokens per parameter (geometric mean of the best cells); "
                   f"model.depth: auto chooses the depth whose ratio in its budget is closest to "
                   f"{TOKENS_PER_PARAM:g} (causette/train/sizing.py).")]
    return "\n".join(out)


@picture("scaling")
def scaling_picture(s, text: str, args, path) -> Path:
    cells = read_grid(getattr(args, "file", None))["cells"]
    plt, fig, axes = _figure(size=(7.0, 4.8))
    ax = axes[0][0]
    for depth in sorted({c["depth"] for c in cells}):
        row = sorted((c for c in cells if c["depth"] == depth), key=lambda c: c["flops"])
        ax.plot([c["flops"] for c in row], [c["val_bpb"] for c in row], marker="o",
                label=tr(f"profondeur {depth} ({row[0]['params'] / 1e6:.1f} M)",
                         f"depth {depth} ({row[0]['params'] / 1e6:.1f} M)"))
        for c in row:
            ax.annotate(f"{c['minutes']:g} min", (c["flops"], c["val_bpb"]), fontsize=7,
                        textcoords="offset points", xytext=(3, 3))
    ax.set_xscale("log")
    ax.set_xlabel(tr("calcul d'entraînement (FLOP)", "training compute (FLOPs)"))
    ax.set_ylabel(tr("bits par octet (val, plus bas = mieux)", "bits per byte (val, lower is better)"))
    ax.set_title(tr("Perte selon le calcul, une ligne par profondeur", "Loss against compute, one line per depth"))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(plt, fig, path)
