"""Topic ``mlp`` (docs/mlp-normalisation.md): activations, LayerNorm vs RMSNorm, the residual stream."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from causette.explain.common import Setup, encode, localize, num, table, topic, tr
from causette.model.counting import mlp_params
from causette.model.layers import LayerNorm, RMSNorm


@topic("mlp", ("activations (GELU, SiLU, ReLU²), LayerNorm contre RMSNorm, le flux résiduel",
               "activations (GELU, SiLU, ReLU²), LayerNorm vs RMSNorm, the residual stream"),
       trained=("un flux résiduel qui grandit de bloc en bloc, alors que norm(x) reste de taille 1",
                "a residual stream that grows from block to block, while norm(x) stays of size 1"))
def explain_mlp(s: Setup, text: str, args=None) -> str:
    xs = torch.tensor([-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0])
    acts = {
        "relu": F.relu(xs),
        "relu²": F.relu(xs).square(),
        "gelu": F.gelu(xs, approximate="tanh"),
        "silu": F.silu(xs),
    }
    out = [tr("activations :", "activations:"), table(["x"] + [num(v, "g") for v in xs.tolist()],
                                                     [[n] + [num(v, ".2f") for v in a.tolist()] for n, a in acts.items()])]
    gate, up = torch.tensor([3.0, 0.5, -3.0]), torch.tensor([2.0, 2.0, 2.0])
    swiglu = [round(v, 3) for v in (F.silu(gate) * up).tolist()]
    out.append(tr(f"SwiGLU : silu(gate)·up avec gate {vector(gate.tolist())}, up {vector(up.tolist())} → "
                  f"{vector(swiglu)} : ouvert, entrouvert, presque fermé",
                  f"SwiGLU: silu(gate)·up with gate {gate.tolist()}, up {up.tolist()} → {swiglu}: open, ajar, almost shut"))

    v = torch.tensor([[2.0, -1.0, 0.5, 3.5]])
    mean, var = v.mean(), v.var(unbiased=False)
    rms = v.pow(2).mean().sqrt()
    with torch.no_grad():
        ln, rn = LayerNorm(4, bias=False)(v), RMSNorm(4)(v)
    ln_, rn_ = [round(t, 3) for t in ln[0].tolist()], [round(t, 3) for t in rn[0].tolist()]
    mean, std, rms = float(mean), float(var.sqrt()), float(rms)
    out += [
        "",
        tr(f"x = {vector(v[0].tolist())} : moyenne {num(mean, '.3f')}, écart type {num(std, '.3f')}, "
           f"moyenne quadratique {num(rms, '.3f')}",
           f"x = {v[0].tolist()}: mean {mean:.3f}, standard deviation {std:.3f}, root mean square {rms:.3f}"),
        tr(f"  LayerNorm (x - moyenne)/écart type = {vector(ln_)}", f"  LayerNorm (x - mean)/std = {ln_}"),
        tr(f"  RMSNorm   x/rms                    = {vector(rn_)}", f"  RMSNorm   x/rms          = {rn_}"),
    ]

    cfg = s.model.cfg
    out += ["", tr(f"MLP de ce modèle : {cfg.mlp}, {cfg.n_embd} → {cfg.hidden_size} → {cfg.n_embd}, "
                   f"{num(mlp_params(cfg), ',')} paramètres par bloc",
                   f"MLP of this model: {cfg.mlp}, {cfg.n_embd} → {cfg.hidden_size} → {cfg.n_embd}, "
                   f"{mlp_params(cfg):,} parameters per block")]
    for kind in ("gelu", "swiglu", "relu2"):
        other = type(cfg)(**{**cfg.__dict__, "mlp": kind, "mlp_hidden": None})
        out.append(tr(f"  {kind:<7} couche cachée {other.hidden_size:>5}, {num(mlp_params(other), ','):>9} paramètres",
                      f"  {kind:<7} hidden {other.hidden_size:>5}, {mlp_params(other):>9,} parameters"))

    ids = encode(s.tok, text)
    rows, hooks = [], []
    for i, block in enumerate(s.model.blocks):
        hooks.append(block.norm1.register_forward_hook(
            lambda m, a, o, i=i: rows.append([tr(f"bloc {i}", f"block {i}"), num(float(a[0].pow(2).mean().sqrt()), ".4f"),
                                              num(float(o.pow(2).mean().sqrt()), ".4f")])))
    try:
        with torch.no_grad():
            s.model(torch.tensor([ids]))
    finally:
        for h in hooks:
            h.remove()
    out += ["", tr("flux résiduel pré-norm x = x + f(norm(x)) : moyenne quadratique sur tous les tokens et "
                   "toutes les composantes",
                   "pre-norm residual stream x = x + f(norm(x)): root mean square over all tokens and features"),
            table(["", tr("x entrant", "x entering"), "norm(x)"], rows)]
    return "\n".join(out)


def vector(values: list[float]) -> str:
    """``[2.0, -1.0]`` in the learner's language: ``[2,0 ; -1,0]`` in French."""
    return tr("[" + " ; ".join(localize(str(v)) for v in values) + "]", str(values))
