"""Topic ``embeddings`` (docs/embeddings.md): the vectors of tokens and their nearest neighbours."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from causette.explain.common import Setup, label, topic


@topic("embeddings", "each token's vector, its nearest neighbours (cosine), the matrix's size")
def explain_embeddings(s: Setup, text: str, args=None) -> str:
    tok, model = s.tok, s.model
    W = model.wte.weight.detach().float()
    V, d = W.shape
    n = sum(p.numel() for p in model.parameters())
    tied = model.lm_head.weight is model.wte.weight
    out = [
        f"wte: a {V} × {d} table, {V * d:,} parameters = {V * d / n:.0%} of the model; "
        f"output layer tied to it: {tied}",
    ]
    unit = F.normalize(W, dim=-1)
    ordinary = torch.tensor([not tok.is_special(i) for i in range(V)])
    top = getattr(args, "top", 6) if args is not None else 6
    for i in tok.encode(text)[:4]:
        sims = unit @ unit[i]
        sims[~ordinary] = -2.0
        sims[i] = -2.0  # not itself
        best = sims.topk(top)
        vec = ", ".join(f"{v:+.3f}" for v in W[i, :6].tolist())
        out += [
            "",
            f"token {i} '{label(tok, i)}': [{vec}, ...]  norm {W[i].norm():.3f}",
            "  nearest: "
            + ", ".join(f"'{label(tok, j)}' {c:.2f}" for c, j in zip(best.values.tolist(), best.indices.tolist())),
        ]
    g = torch.Generator().manual_seed(0)
    a, b = torch.randint(0, V, (2, 2000), generator=g)
    cos = (unit[a] * unit[b]).sum(-1).abs().mean()
    out += [
        "",
        f"mean |cosine| of 2,000 random pairs of tokens: {cos:.3f} "
        f"(random vectors in {d} dimensions: √(2/(π·{d})) = {math.sqrt(2 / (math.pi * d)):.3f})",
    ]
    return "\n".join(out)
