"""Topic ``positions`` (docs/positions.md): the sinusoidal table and RoPE, relative positions."""

from __future__ import annotations

import math

import torch

from causette.explain.common import Setup, num, table, topic, tr
from causette.model.layers import apply_rope, rope_tables, sinusoidal_table


@topic("positions", ("table sinusoïdale, fréquences et rotation de RoPE, positions relatives",
                     "sinusoidal table, RoPE frequencies and rotation, relative positions"), text=False)
def explain_positions(s: Setup | None = None, text: str = "", args=None) -> str:
    dim = getattr(args, "dim", 8) if args is not None else 8
    pe = sinusoidal_table(64, dim)
    out = [tr(f"table sinusoïdale (d = {dim}) : pe[p, 2i] = sin(p·ω_i), pe[p, 2i+1] = cos(p·ω_i), ω_i = 10000^(-2i/d)",
              f"sinusoidal table (d = {dim}): pe[p, 2i] = sin(p·ω_i), pe[p, 2i+1] = cos(p·ω_i), ω_i = 10000^(-2i/d)")]
    cols = min(dim, 8)  # a wide table would not fit a terminal: the first 8 features
    rows = [[p] + [num(v, "+.3f") for v in pe[p, :cols].tolist()] for p in range(6)]
    out.append(table(["p"] + [f"d{j}" for j in range(cols)], rows))
    dots = [float(pe[p] @ pe[p + 3]) for p in (0, 7, 40)]
    out.append(tr("pe[p]·pe[p+3] pour p = 0, 7, 40 : " + " ; ".join(num(v, ".4f") for v in dots)
                  + "  (ne dépend que de l'écart)",
                  "pe[p]·pe[p+3] for p = 0, 7, 40: " + ", ".join(f"{v:.4f}" for v in dots) + "  (depends on the gap only)"))

    cos, sin = rope_tables(64, dim)
    angle = torch.atan2(sin[1], cos[1])  # rotation per position of each pair
    out += ["", tr(f"RoPE, taille de tête {dim} : la paire i = composantes (i, i+{dim // 2}) tourne de θ_i radians "
                   f"par position",
                   f"RoPE, head size {dim}: pair i = features (i, i+{dim // 2}) turns by θ_i radians per position")]
    out.append(
        table(
            [tr("paire", "pair"), "θ_i (rad/position)", tr("période (positions)", "period (positions)")],
            [[i, num(a, ".4f"), num(2 * math.pi / a, ".1f")] for i, a in enumerate(angle.tolist())],
        )
    )
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 1, 1, 1, dim, generator=g)
    rot = lambda x, p: apply_rope(x, cos[p : p + 1], sin[p : p + 1])  # noqa: E731
    out += ["", tr("le même vecteur requête aux positions 0, 1, 2 (première paire montrée ; la longueur ne change "
                   "jamais) :",
                   "the same query vector at positions 0, 1, 2 (first pair shown; the length never changes):")]
    for p in range(3):
        r = rot(q, p).flatten()
        a, b, norm = float(r[0]), float(r[dim // 2]), float(r.norm())
        out.append(tr(f"  p={p} : ({num(a, '+.3f')} ; {num(b, '+.3f')})  norme {num(norm, '.4f')}",
                      f"  p={p}: ({a:+.3f}, {b:+.3f})  norm {norm:.4f}"))
    out += ["", tr("score q·k avec q à la position m et k à la position n :",
                   "score q·k with q at position m and k at position n:")]
    rows = []
    for m, n in [(2, 0), (9, 7), (50, 48), (5, 5), (40, 40), (7, 2), (60, 55)]:
        score = float((rot(q, m) * rot(k, n)).sum())
        rows.append([m, n, m - n, num(score, "+.5f")])
    out.append(table(["m", "n", "m-n", "score"], rows))
    out.append(tr("même m-n, même score : l'attention voit des positions relatives",
                  "same m-n, same score: attention sees relative positions"))
    return "\n".join(out)
