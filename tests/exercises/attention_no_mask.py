"""Typical mistake: no causal mask."""

import math


def attention(q, k, v):
    return (q @ k.T / math.sqrt(q.shape[1])).softmax(dim=-1) @ v
