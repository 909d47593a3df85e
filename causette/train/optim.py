"""Optimisers: AdamW with decay / no-decay groups, or Muon for hidden matrices + AdamW for the rest.

Weight decay pulls weights towards zero. It helps on the big matrices of attention and MLPs,
but it should not touch gains and biases (norm weights, linear biases): there it only fights
the function the model is learning. Embeddings are matrices but act as look-up tables; like
GPT-2 and most recipes since, we decay them with the other matrices — except with Muon, see
below.

Muon (``torch.optim.Muon``) orthogonalises each update of a 2-D weight with a few
Newton–Schulz iterations, so every direction of the matrix moves by the same amount. It is
meant for the *hidden* matrices only: the token embedding (a look-up table), the output layer
and the 1-D parameters stay with AdamW.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from causette.train.config import TrainConfig


def param_groups(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter], list[nn.Parameter]]:
    """(hidden 2-D matrices, embedding/output matrices, 1-D gains and biases), each parameter once."""
    hidden, embed, flat = [], [], []
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        if p.dim() < 2:
            flat.append(p)
        elif any(k in name for k in ("wte", "wpe", "lm_head", "positions")):
            embed.append(p)
        else:
            hidden.append(p)
    return hidden, embed, flat


def build_optimizers(model: nn.Module, cfg: TrainConfig, fused: bool = False) -> list[torch.optim.Optimizer]:
    """The optimiser(s) of a run. Every group carries ``base_lr`` so schedules can scale it."""
    hidden, embed, flat = param_groups(model)
    betas = (cfg.beta1, cfg.beta2)
    extra = {"fused": True} if fused else {}
    if cfg.optimizer == "adamw":
        groups = [
            {"params": hidden + embed, "weight_decay": cfg.weight_decay, "base_lr": cfg.lr},
            {"params": flat, "weight_decay": 0.0, "base_lr": cfg.lr},
        ]
        return [torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=betas, **extra)]
    adam_groups = [
        {"params": embed, "weight_decay": 0.0, "base_lr": cfg.lr},
        {"params": flat, "weight_decay": 0.0, "base_lr": cfg.lr},
    ]
    adam = torch.optim.AdamW([g for g in adam_groups if g["params"]], lr=cfg.lr, betas=betas, **extra)
    muon = torch.optim.Muon(
        [{"params": hidden, "base_lr": cfg.muon_lr}],
        lr=cfg.muon_lr,
        weight_decay=cfg.weight_decay,
        momentum=cfg.muon_momentum,
        adjust_lr_fn=None,  # "original" scaling sqrt(max(1, rows/cols)): lr ≈ 0.02 works
    )
    return [muon, adam]


def set_lr(optimizers: list[torch.optim.Optimizer], scale: float) -> None:
    """Scale every group's ``base_lr`` by ``scale`` (the schedule's value divided by the peak)."""
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group["base_lr"] * scale
