"""Topic ``moe`` (docs/moe.md): the router, the load of the experts, the auxiliary losses."""

from __future__ import annotations

import torch

from causette.errors import CausetteError
from causette.explain.attention import layer_head
from causette.explain.common import Setup, capture, encode, label, num, table, topic, tr
from causette.model.counting import count_params


@topic("moe", ("le routeur : vers quels experts va chaque token, la charge, les pertes auxiliaires",
               "the router: which experts each token goes to, the load, the auxiliary losses"),
       trained=("un routeur aux choix tranchés (probabilités loin de 1/n_experts) et une charge équilibrée par la perte "
                "auxiliaire (il faut un run MoE)",
                "a router with clear-cut choices (probabilities far from 1/n_experts) and a load kept even by the "
                "auxiliary loss (a MoE run is needed)"))
def explain_moe(s: Setup, text: str, args=None) -> str:
    model, cfg = s.model, s.model.cfg
    if not cfg.n_experts:
        raise CausetteError(tr("ce modèle n'a pas d'experts (n_experts = 0) : prenez model/moe (le défaut) ou un "
                               "point de contrôle MoE",
                               "this model has no experts (n_experts = 0): use the default model/moe or a MoE checkpoint"))
    layer, _ = layer_head(s, args)
    ids = encode(s.tok, text)
    moe = model.blocks[layer].mlp
    (x,), _ = capture(moe, model, ids)
    with torch.no_grad():
        logits, experts, weights = moe.route(x.reshape(-1, x.shape[-1]))
    probs = logits.softmax(-1)
    k = cfg.experts_per_token
    out = [tr(f"couche {layer} : {cfg.n_experts} experts, chaque token va vers ses {k} meilleurs"
              + (" + l'expert partagé" if cfg.moe_shared_expert else ""),
              f"layer {layer}: {cfg.n_experts} experts, each token goes to its best {k}"
              + (" + the shared expert" if cfg.moe_shared_expert else "")), ""]
    rows = [[f"{t} {label(s.tok, i)}"] + [num(p, ".2f") for p in probs[t].tolist()]
            + [" + ".join(f"{num(w, '.2f')}·E{e}" for e, w in zip(experts[t].tolist(), weights[t].tolist()))]
            for t, i in enumerate(ids)]
    headers = ["token"] + [f"E{e}" for e in range(cfg.n_experts)] + [tr("sortie =", "output =")]
    out.append(table(headers, rows, left=(0, cfg.n_experts + 1)))
    st = model.last_stats
    load = st["expert_load"][layer]
    c = count_params(cfg)
    out += [
        "",
        tr("charge (part des affectations) : " + " ; ".join(f"E{e} {num(v, '.2f')}" for e, v in enumerate(load.tolist())),
           "load (share of assignments): " + ", ".join(f"E{e} {v:.2f}" for e, v in enumerate(load.tolist()))),
        tr(f"perte d'équilibrage n_experts·Σ f_e·P_e = {num(float(st['moe_aux']), '.3f')} "
           f"(1 = équilibré, {cfg.n_experts} = un seul expert prend tout) ; z-loss {num(float(st['moe_z']), '.4f')}",
           f"balancing loss n_experts·Σ f_e·P_e = {float(st['moe_aux']):.3f} "
           f"(1 = balanced, {cfg.n_experts} = one expert takes all); z-loss {float(st['moe_z']):.4f}"),
        tr(f"paramètres : {num(c.total, ',')} en tout, {num(c.active, ',')} utilisés par token "
           f"({num(c.active / c.total, '.0%')})",
           f"parameters: {c.total:,} in all, {c.active:,} used per token ({c.active / c.total:.0%})"),
    ]
    return "\n".join(out)
