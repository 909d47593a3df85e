"""Topic ``moe`` (docs/moe.md): the router, the load of the experts, the auxiliary losses."""

from __future__ import annotations

import torch

from causette.errors import CausetteError
from causette.explain.attention import layer_head
from causette.explain.common import Setup, capture, encode, label, table, topic


@topic("moe", "the router: which experts each token goes to, the load, the auxiliary losses")
def explain_moe(s: Setup, text: str, args=None) -> str:
    from causette.model.counting import count_params

    model, cfg = s.model, s.model.cfg
    if not cfg.n_experts:
        raise CausetteError("this model has no experts (n_experts = 0): use the default model/moe or a MoE checkpoint")
    layer, _ = layer_head(s, args)
    ids = encode(s.tok, text)
    moe = model.blocks[layer].mlp
    (x,), _ = capture(moe, model, ids)
    with torch.no_grad():
        logits, experts, weights = moe.route(x.reshape(-1, x.shape[-1]))
    probs = logits.softmax(-1)
    k = cfg.experts_per_token
    out = [f"layer {layer}: {cfg.n_experts} experts, each token goes to its best {k}"
           + (" + the shared expert" if cfg.moe_shared_expert else ""), ""]
    rows = [[f"{t} {label(s.tok, i)}"] + [f"{p:.2f}" for p in probs[t].tolist()]
            + [" + ".join(f"{w:.2f}·E{e}" for e, w in zip(experts[t].tolist(), weights[t].tolist()))]
            for t, i in enumerate(ids)]
    headers = ["token"] + [f"E{e}" for e in range(cfg.n_experts)] + ["output ="]
    out.append(table(headers, rows, left=(0, cfg.n_experts + 1)))
    st = model.last_stats
    load = st["expert_load"][layer]
    c = count_params(cfg)
    out += [
        "",
        "load (share of assignments): " + ", ".join(f"E{e} {v:.2f}" for e, v in enumerate(load.tolist())),
        f"balancing loss n_experts·Σ f_e·P_e = {float(st['moe_aux']):.3f} "
        f"(1 = balanced, {cfg.n_experts} = one expert takes all); z-loss {float(st['moe_z']):.4f}",
        f"parameters: {c.total:,} in all, {c.active:,} used per token ({c.active / c.total:.0%})",
    ]
    return "\n".join(out)
