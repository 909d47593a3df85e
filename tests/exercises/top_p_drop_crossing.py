"""Typical mistake: the token that crosses p is dropped (cumulative mass < p instead of mass before < p)."""

import torch


def top_p(logits, p):
    probs = torch.softmax(logits.float(), dim=-1)
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True, stable=True)
    remove_sorted = torch.cumsum(sorted_probs, dim=-1) >= p
    remove_sorted[..., 0] = False
    remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))
