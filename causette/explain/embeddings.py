"""Topic ``embeddings`` (docs/embeddings.md): the vectors of tokens and their nearest neighbours."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from causette.explain.common import Setup, label, num, topic, tr


@topic("embeddings", ("le vecteur de chaque token, ses plus proches voisins (cosinus), la taille de la matrice",
                      "each token's vector, its nearest neighbours (cosine), the matrix's size"),
       trained=("des voisins qui se ressemblent (« roi » près de « reine », les formes d'un même verbe) et des "
                "cosinus plus grands que ceux du hasard",
                "neighbours that resemble each other (« roi » near « reine », forms of one verb) and cosines "
                "larger than chance"))
def explain_embeddings(s: Setup, text: str, args=None) -> str:
    tok, model = s.tok, s.model
    W = model.wte.weight.detach().float()
    V, d = W.shape
    n = sum(p.numel() for p in model.parameters())
    tied = model.lm_head.weight is model.wte.weight
    out = [
        tr(f"wte : une table {V} × {d}, {num(V * d, ',')} paramètres = {num(V * d / n, '.0%')} du modèle ; "
           f"couche de sortie liée à elle : {'oui' if tied else 'non'}",
           f"wte: a {V} × {d} table, {V * d:,} parameters = {V * d / n:.0%} of the model; "
           f"output layer tied to it: {tied}"),
    ]
    unit = F.normalize(W, dim=-1)
    ordinary = torch.tensor([not tok.is_special(i) for i in range(V)])
    top = getattr(args, "top", 6) if args is not None else 6
    for i in tok.encode(text)[:4]:
        sims = unit @ unit[i]
        sims[~ordinary] = -2.0
        sims[i] = -2.0  # not itself
        best = sims.topk(top)
        sep = tr(" ; ", ", ")
        vec = sep.join(num(v, "+.3f") for v in W[i, :6].tolist())
        near = zip(best.values.tolist(), best.indices.tolist())
        out += [
            "",
            tr(f"token {i} « {label(tok, i)} » : [{vec} ; ...]  norme {num(float(W[i].norm()), '.3f')}",
               f"token {i} '{label(tok, i)}': [{vec}, ...]  norm {W[i].norm():.3f}"),
            tr("  plus proches : ", "  nearest: ")
            + sep.join(tr(f"« {label(tok, j)} » {num(c, '.2f')}", f"'{label(tok, j)}' {c:.2f}") for c, j in near),
        ]
    g = torch.Generator().manual_seed(0)
    a, b = torch.randint(0, V, (2, 2000), generator=g)
    cos = (unit[a] * unit[b]).sum(-1).abs().mean()
    out += [
        "",
        tr(f"|cosinus| moyen de {num(2000, ',')} paires de tokens tirées au hasard : {num(float(cos), '.3f')} "
           f"(vecteurs aléatoires en dimension {d} : √(2/(π·{d})) = {num(math.sqrt(2 / (math.pi * d)), '.3f')})",
           f"mean |cosine| of 2,000 random pairs of tokens: {cos:.3f} "
           f"(random vectors in {d} dimensions: √(2/(π·{d})) = {math.sqrt(2 / (math.pi * d)):.3f})"),
    ]
    return "\n".join(out)
