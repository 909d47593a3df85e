"""Topic ``model`` (docs/architecture.md): shapes through the network, parameters, FLOPs."""

from __future__ import annotations

import torch

from causette.explain.common import Setup, encode, label, num, table, topic, tr
from causette.model.counting import count_params, flops_per_token


@topic("model", ("les formes à travers le réseau, les paramètres par partie, les FLOPs, les paris sur le token suivant",
                 "shapes through the network, parameters by part, FLOPs, next-token guesses"),
       trained=("des paris sur le token suivant qui ont du sens, avec des probabilités bien plus hautes que 1/V",
                "next-token guesses that make sense, with probabilities far above 1/V"))
def explain_model(s: Setup, text: str, args=None) -> str:
    model, cfg = s.model, s.model.cfg
    ids = encode(s.tok, text)
    watched = [("wte", model.wte)]
    for i, b in enumerate(model.blocks):  # parts a progression step leaves out are None
        watched += [(f"blocks.{i}.{n}", m) for n, m in
                    (("norm1", b.norm1), ("attn", b.attn), ("mix", b.mix), ("norm2", b.norm2), ("mlp", b.mlp))
                    if m is not None]
    watched += [("norm_f", model.norm_f), ("lm_head", model.lm_head)]
    rows, hooks = [], []
    for name, m in watched:
        hooks.append(m.register_forward_hook(
            lambda mod, a, o, name=name: rows.append([name, str(tuple((o[0] if isinstance(o, tuple) else o).shape))])
        ))
    try:
        with torch.no_grad():
            logits, _ = model(torch.tensor([ids]))
    finally:
        for h in hooks:
            h.remove()
    out = [tr(f"{len(ids)} tokens : ", f"{len(ids)} tokens: ") + " ".join(label(s.tok, i) for i in ids), "",
           table(["module", tr("forme de la sortie", "output shape")], rows)]

    parts: dict[str, int] = {}
    for name, p in model.named_parameters():  # a tied matrix appears once, as wte
        part = ("embeddings" if name.startswith(("wte", "positions")) else "attention" if ".attn." in name
                else "window" if ".mix." in name else "MLP" if ".mlp." in name
                else "output layer" if name.startswith("lm_head") else "norms")
        parts[part] = parts.get(part, 0) + p.numel()
    c = count_params(cfg)
    total = sum(parts.values())
    names = {"embeddings": "plongements", "attention": "attention", "window": "fenêtre", "MLP": "MLP",
             "output layer": "couche de sortie", "norms": "normalisations"}
    out += ["", table([tr("partie", "part"), tr("paramètres", "parameters"), tr("part", "share")],
                      [[tr(names[k], k), num(v, ","), num(v / total, ".1%")] for k, v in parts.items()]),
            tr(f"total {num(total, ',')} (count_params : {num(c.total, ',')}), actifs par token {num(c.active, ',')}",
               f"total {total:,} (count_params: {c.total:,}), active per token {c.active:,}")]
    if model.lm_head.weight is model.wte.weight:
        out.append(tr("couche de sortie : liée, c'est la table des plongements lue à l'envers (aucun paramètre propre)",
                      "output layer: tied, it is the embedding table read backwards (no parameters of its own)"))
    attention = 12 * cfg.n_layer * cfg.n_head * cfg.head_dim * cfg.block_size if cfg.uses_attention else 0
    f = flops_per_token(cfg)
    out.append(tr(f"FLOPs d'entraînement par token au contexte {cfg.block_size} : {num(f / 1e6, '.1f')} M "
                  f"= 6 × {num((f - attention) / 6e6, '.2f')} M poids des produits matriciels "
                  f"+ {num(attention / 1e6, '.1f')} M attention",
                  f"training FLOPs per token at context {cfg.block_size}: {f / 1e6:.1f} M "
                  f"= 6 × {(f - attention) / 6e6:.2f} M matmul weights + {attention / 1e6:.1f} M attention"))
    probs = logits[0, -1].softmax(-1)
    best = probs.topk(5)
    guesses = list(zip(best.values.tolist(), best.indices.tolist()))
    out.append(tr("token suivant après le dernier : " + " ; ".join(f"« {label(s.tok, j)} » {num(p, '.4f')}"
                                                               for p, j in guesses),
                  "next token after the last one: " + ", ".join(f"'{label(s.tok, j)}' {p:.4f}" for p, j in guesses)))
    return "\n".join(out)
