"""Topic ``mlp`` (docs/mlp-normalisation.md): activations, LayerNorm vs RMSNorm, the residual stream."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from causette.explain.common import Setup, encode, table, topic


@topic("mlp", "activations (GELU, SiLU, ReLU²), LayerNorm vs RMSNorm, the residual stream")
def explain_mlp(s: Setup, text: str, args=None) -> str:
    from causette.model.counting import mlp_params
    from causette.model.layers import LayerNorm, RMSNorm

    xs = torch.tensor([-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0])
    acts = {
        "relu": F.relu(xs),
        "relu²": F.relu(xs).square(),
        "gelu": F.gelu(xs, approximate="tanh"),
        "silu": F.silu(xs),
    }
    out = ["activations:", table(["x"] + [f"{v:g}" for v in xs.tolist()],
                                 [[n] + [f"{v:.2f}" for v in a.tolist()] for n, a in acts.items()])]
    gate, up = torch.tensor([3.0, 0.5, -3.0]), torch.tensor([2.0, 2.0, 2.0])
    out.append(f"SwiGLU: silu(gate)·up with gate {gate.tolist()}, up {up.tolist()} → "
               f"{[round(v, 3) for v in (F.silu(gate) * up).tolist()]}: open, ajar, almost shut")

    v = torch.tensor([[2.0, -1.0, 0.5, 3.5]])
    mean, var = v.mean(), v.var(unbiased=False)
    rms = v.pow(2).mean().sqrt()
    with torch.no_grad():
        ln, rn = LayerNorm(4, bias=False)(v), RMSNorm(4)(v)
    out += [
        "",
        f"x = {v[0].tolist()}: mean {mean:.3f}, standard deviation {var.sqrt():.3f}, root mean square {rms:.3f}",
        f"  LayerNorm (x - mean)/std = {[round(t, 3) for t in ln[0].tolist()]}",
        f"  RMSNorm   x/rms          = {[round(t, 3) for t in rn[0].tolist()]}",
    ]

    cfg = s.model.cfg
    out += ["", f"MLP of this model: {cfg.mlp}, {cfg.n_embd} → {cfg.hidden_size} → {cfg.n_embd}, "
                f"{mlp_params(cfg):,} parameters per block"]
    for kind in ("gelu", "swiglu", "relu2"):
        other = type(cfg)(**{**cfg.__dict__, "mlp": kind, "mlp_hidden": None})
        out.append(f"  {kind:<7} hidden {other.hidden_size:>5}, {mlp_params(other):>9,} parameters")

    ids = encode(s.tok, text)
    rows, hooks = [], []
    for i, block in enumerate(s.model.blocks):
        hooks.append(block.norm1.register_forward_hook(
            lambda m, a, o, i=i: rows.append([f"block {i}", f"{a[0].pow(2).mean().sqrt():.4f}",
                                              f"{o.pow(2).mean().sqrt():.4f}"])))
    try:
        with torch.no_grad():
            s.model(torch.tensor([ids]))
    finally:
        for h in hooks:
            h.remove()
    out += ["", "pre-norm residual stream x = x + f(norm(x)): root mean square over all tokens and features",
            table(["", "x entering", "norm(x)"], rows)]
    return "\n".join(out)
