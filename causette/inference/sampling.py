"""Choosing the next token: the filters applied to the logits (their settings: config.py).

The model gives one score (a *logit*) per token of the vocabulary. ``softmax`` turns them into
probabilities; we could draw the next token from those directly, but the long tail of
improbable tokens then produces nonsense now and then. Each filter below reshapes the
distribution before the draw. They are small pure functions on a ``(B, V)`` tensor of logits
that return a new tensor, where a token that is ruled out gets ``-inf`` (probability 0).

Order, one step (:func:`filter_logits`)::

    logits ─▶ repetition penalty ─▶ / temperature ─▶ top-k ─▶ top-p ─▶ min-p ─▶ softmax ─▶ draw

``temperature == 0`` means greedy decoding: the most probable token (after the repetition
penalty), no draw at all.
"""

from __future__ import annotations

import os

import torch

from causette.inference.config import SamplingParams  # noqa: F401  (the settings these filters apply)


# ============================================================================== the filters

NEG_INF = float("-inf")


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL-style penalty on the tokens already seen (``seen``: a ``(B, V)`` bool mask).

    A seen token's logit is divided by ``penalty`` when positive and multiplied by it when
    negative: with ``penalty > 1`` both moves lower it. Example, penalty 2: logits
    ``[2.0, -1.0, 0.5]`` with tokens 0 and 1 seen become ``[1.0, -2.0, 0.5]``.
    """
    if penalty == 1.0:
        return logits
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide the logits by ``temperature`` (> 0). Logits ``[2, 1]`` at temperature 0.5 become
    ``[4, 2]``: probabilities 0.73/0.27 turn into 0.88/0.12."""
    if temperature == 1.0:
        return logits
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` highest logits of each row (0 or ``k >= V``: keep all).

    Tokens tied with the ``k``-th value are kept too (a tie has no better candidate to drop).
    Example, k = 2: ``[1.0, 3.0, 2.0, 0.5]`` → ``[-inf, 3.0, 2.0, -inf]``.
    """
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, NEG_INF)


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most probable tokens whose total probability
    reaches ``p``; the most probable token is always kept (``p >= 1``: keep all).

    Example, p = 0.8 and probabilities ``[0.5, 0.1, 0.3, 0.1]``: sorted, 0.5 then 0.5 + 0.3 = 0.8
    reaches p, so tokens 0 and 2 stay and the rest is removed.

    A token is kept when the mass of the tokens sorted before it is still below ``p``.
    """
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits.float(), dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs
    remove_sorted = mass_before >= p
    remove_sorted[..., 0] = False  # the best token always stays
    remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, NEG_INF)


def min_p_filter(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    """Keep the tokens whose probability is at least ``min_p`` times the best one's (0: keep all).

    The cut adapts to the model's confidence: with min_p = 0.1, a sure model (best at 0.9)
    keeps only tokens above 0.09; a hesitant one (best at 0.2) keeps everything above 0.02.
    Example: probabilities ``[0.6, 0.3, 0.05, 0.05]``, min_p 0.1 → threshold 0.06 → tokens 0, 1.
    """
    if min_p <= 0.0:
        return logits
    probs = torch.softmax(logits.float(), dim=-1)
    threshold = min_p * probs.max(dim=-1, keepdim=True).values
    return logits.masked_fill(probs < threshold, NEG_INF)


def filter_logits(logits: torch.Tensor, params: SamplingParams, seen: torch.Tensor | None = None) -> torch.Tensor:
    """Every filter of ``params`` in order (repetition penalty, temperature, top-k, top-p, min-p).

    For ``temperature == 0`` only the repetition penalty applies: greedy decoding takes the
    argmax, which the other filters would never remove.
    """
    logits = logits.float()
    if seen is not None:
        logits = apply_repetition_penalty(logits, seen, params.repetition_penalty)
    if params.temperature == 0:
        return logits
    logits = apply_temperature(logits, params.temperature)
    logits = top_k_filter(logits, params.top_k)
    logits = top_p_filter(logits, params.top_p)
    logits = min_p_filter(logits, params.min_p)
    return logits


def pick_tokens(
    logits: torch.Tensor,
    params: SamplingParams,
    generators: list[torch.Generator],
    seen: torch.Tensor | None = None,
    draw: list[bool] | None = None,
) -> torch.Tensor:
    """The next token of each row, ``(B,)`` int64 on the CPU.

    Greedy for temperature 0. Otherwise each row draws from its filtered distribution with its
    own CPU :class:`torch.Generator`: row ``i``'s draws do not depend on the other rows, the
    global RNG is never touched, and the result is the same on every device. Rows whose
    ``draw`` flag is False (a prompt still being read, a finished reply) get the argmax
    instead and leave their generator untouched.
    """
    logits = filter_logits(logits, params, seen)
    best = logits.argmax(dim=-1).cpu()
    if params.temperature == 0:
        return best
    probs = torch.softmax(logits, dim=-1).cpu()
    for i, g in enumerate(generators):
        if draw is None or draw[i]:
            best[i] = torch.multinomial(probs[i], 1, generator=g)[0]
    return best


def make_generators(seeds: list[int]) -> list[torch.Generator]:
    """One CPU generator per row of a batch, seeded with that row's seed."""
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


def fresh_seed() -> int:
    """A random seed from the operating system (the global torch RNG stays untouched)."""
    return int.from_bytes(os.urandom(6), "little")


__all__ = [
    "SamplingParams",
    "apply_repetition_penalty",
    "apply_temperature",
    "top_k_filter",
    "top_p_filter",
    "min_p_filter",
    "filter_logits",
    "pick_tokens",
    "make_generators",
    "fresh_seed",
]
