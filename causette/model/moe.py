"""Mixture-of-Experts MLP: several MLPs ("experts"), each token uses only its top-k.

A small linear **router** scores the ``n_experts`` experts for every token; the token goes to
the ``k = experts_per_token`` best ones and its output is their weighted sum, the weights being
the router's softmax probabilities renormalised over the chosen experts (they sum to 1). The
model thus holds ``n_experts`` MLPs' worth of parameters but spends only ``k`` per token.
An optional **shared expert** is a dense MLP that every token always goes through, added on top.

Two auxiliary losses keep the router healthy; the model adds them to the language-model loss
(averaged over MoE layers, times ``moe_aux_coef`` and ``moe_z_coef``):

* **load balancing** (Switch Transformer): ``n_experts · Σ_e f_e · P_e`` where ``f_e`` is the
  fraction of token→expert assignments that went to expert ``e`` and ``P_e`` the mean router
  probability of ``e``. It equals 1 when the load is uniform and grows up to
  ``n_experts / experts_per_token`` when the same experts take every token (an expert gets at
  most ``1/k`` of the assignments). ``f_e`` is not differentiable; ``P_e`` carries the gradient.
* **router z-loss** (ST-MoE): the mean of ``logsumexp(router logits)²``: keeps the logits
  small, so the softmax stays numerically calm.

Dispatch is vectorised: the ``N·k`` (token, expert) assignments are sorted by expert, the
tokens gathered in that order, so each expert sees one contiguous slice of rows; the outputs
are scaled by their weights and summed back into place with one ``index_add_``. The only
Python loop is over experts (a few), never over tokens. Every expert runs even on zero rows,
so every parameter always receives a (possibly zero) gradient, as distributed training wants.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from causette.model.config import ModelConfig
from causette.model.layers import MLP


class MoE(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_experts, self.top_k = cfg.n_experts, cfg.experts_per_token
        self.router = nn.Linear(cfg.n_embd, cfg.n_experts, bias=False)
        self.experts = nn.ModuleList(MLP(cfg) for _ in range(cfg.n_experts))
        self.shared = MLP(cfg) if cfg.moe_shared_expert else None

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Router logits ``(N, E)`` (float32), chosen experts ``(N, k)`` and their weights ``(N, k)``."""
        logits = self.router(x).float()
        probs = logits.softmax(dim=-1)
        weights, experts = probs.topk(self.top_k, dim=-1)
        weights = weights / weights.sum(dim=-1, keepdim=True)  # renormalise over the chosen k
        return logits, experts, weights

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``x`` ``(B, T, d)`` → output ``(B, T, d)`` and ``{"aux", "z", "load"}`` for this layer.

        ``load`` ``(n_experts,)`` is the fraction of assignments each expert received (sums to 1).
        """
        shape = x.shape
        x = x.reshape(-1, shape[-1])  # N tokens
        logits, experts, weights = self.route(x)

        # Sort the N·k (token, expert) assignments by expert: each expert's tokens then form one
        # contiguous slice of `rows` (counts[e] rows long, possibly empty).
        flat_expert = experts.reshape(-1)  # (N·k,) the expert of each assignment
        order = flat_expert.argsort(stable=True)
        token = order // self.top_k  # the token of each sorted assignment
        counts = torch.zeros(self.n_experts, dtype=torch.long, device=x.device)
        counts.index_add_(0, flat_expert, torch.ones_like(flat_expert))  # assignments per expert
        rows = x[token]  # (N·k, d): inputs gathered in expert order
        slices = rows.split(counts.tolist())
        out_sorted = torch.cat([expert(s) for expert, s in zip(self.experts, slices, strict=True)])
        out_sorted = out_sorted * weights.reshape(-1)[order, None].to(x.dtype)  # times the router weights
        out = torch.zeros_like(x).index_add_(0, token, out_sorted)  # each token sums its k outputs
        if self.shared is not None:
            out = out + self.shared(x)

        load = counts.float() / flat_expert.numel()
        probs_mean = logits.softmax(dim=-1).mean(dim=0)
        stats = {
            "aux": self.n_experts * (load * probs_mean).sum(),
            "z": torch.logsumexp(logits, dim=-1).square().mean(),
            "load": load.detach(),
        }
        return out.view(shape), stats
