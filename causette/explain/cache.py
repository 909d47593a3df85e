"""Topics ``mask`` (docs/attention.md) and ``cache`` (docs/generation.md).

Both measure on the model itself instead of drawing a rule:

* :func:`measured_mask` finds which key each query of a layer's attention really reads: it
  changes the input of one position at a time and looks at which outputs move. With the
  causal mask that is ``j <= i``; with a sliding window of ``N``, ``i - N < j <= i``.
* :func:`cache_steps` generates with the model's KV cache (the sentence's own tokens, fed one at a
  time after the prompt) and records, for every forward pass, how many queries came in, how many
  keys they read and where the new keys/values were written in the cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from causette.errors import CausetteError
from causette.explain.attention import require_attention
from causette.explain.common import Setup, capture, encode, label, matrix, num, table, topic, tr


def mask_rule(T: int, window: int | None = None) -> torch.Tensor:
    """``(T, T)`` booleans: True where query ``i`` may read key ``j`` (causal, and within the window)."""
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    allowed = j <= i
    return allowed if window is None else allowed & (j > i - window)


def measured_mask(s: Setup, ids: list[int], layer: int = 0, window: int | None = None) -> torch.Tensor:
    """``(T, T)`` booleans: True where the output of query ``i`` of ``layer``'s attention changes
    when the input at position ``j`` changes. ``window``: the attention's sliding window for this
    measurement (the model's switch ``sliding_window``), None for full causal attention."""
    attn = s.model.blocks[layer].attn
    (x, rope, _cache), _out = capture(attn, s.model, ids)
    saved = attn.window
    attn.window = window
    try:
        with torch.no_grad():
            base = attn(x, rope)
            T = x.shape[1]
            reads = torch.zeros(T, T, dtype=torch.bool)
            for j in range(T):
                moved = x.clone()
                moved[:, j] += 1.0
                reads[:, j] = (attn(moved, rope) - base).abs().amax(-1)[0] > 1e-6
    finally:
        attn.window = saved
    return reads


def window_of(s: Setup, args) -> int:
    window = getattr(args, "window", None) or s.model.cfg.sliding_window or 3
    if window < 1:
        raise CausetteError(tr("--window doit être >= 1", "--window must be >= 1"))
    return window


@topic("mask", ("le masque causal mesuré sur le modèle : quelles clés chaque requête lit, avec ou sans fenêtre "
                "glissante",
                "the causal mask measured on the model: which keys each query reads, with or without a sliding "
                "window"))
def explain_mask(s: Setup, text: str, args=None) -> str:
    require_attention(s.model.cfg)
    ids = encode(s.tok, text)
    T, window = len(ids), window_of(s, args)
    labels = [label(s.tok, i) for i in ids]
    causal = measured_mask(s, ids)
    band = measured_mask(s, ids, window=window)
    same = bool(torch.equal(causal, mask_rule(T)) and torch.equal(band, mask_rule(T, window)))
    return "\n".join([
        tr(f"{T} tokens ; une case vaut 1 si changer l'entrée du token j (colonne) change la sortie de "
           f"l'attention de la couche 0 pour le token i (ligne)",
           f"{T} tokens; a cell is 1 if changing the input of token j (column) changes the output of layer 0's "
           f"attention for token i (row)"),
        "",
        tr(f"masque causal : {int(causal.sum())} cases lues sur {T * T} (T(T+1)/2)",
           f"causal mask: {int(causal.sum())} cells read out of {T * T} (T(T+1)/2)"),
        matrix(causal.int(), labels, fmt="{:.0f}"),
        "",
        tr(f"fenêtre glissante de {window} (model.sliding_window={window}) : {int(band.sum())} cases lues, au plus "
           f"{window} par ligne",
           f"sliding window of {window} (model.sliding_window={window}): {int(band.sum())} cells read, at most "
           f"{window} per row"),
        matrix(band.int(), labels, fmt="{:.0f}"),
        "",
        tr("mesuré = règle (j <= i ; i - N < j <= i) : " + ("oui" if same else "NON"),
           "measured = rule (j <= i; i - N < j <= i): " + ("yes" if same else "NO")),
    ])


# ---------------------------------------------------------------------------------------- cache


@dataclass
class Step:
    """One forward pass of generation with the cache, as layer 0's attention saw it."""

    queries: list[int]  # absolute positions of the tokens that came in (the whole prompt, then one)
    keys: int  # keys the last query reads: the cache so far plus the new ones (at most the window)
    written: list[int]  # cache positions written by this pass (= ``queries``)
    window: int | None = None  # the model's sliding window, if any

    def seen(self, p: int) -> int:
        return p + 1 if self.window is None else min(p + 1, self.window)

    @property
    def cells(self) -> int:
        """Scores q·k this pass computes (visible cells only, per head and layer)."""
        return sum(self.seen(p) for p in self.queries)

    @property
    def cells_without_cache(self) -> int:
        """What the same step costs without a cache: every position so far again."""
        return sum(self.seen(p) for p in range(self.queries[-1] + 1))


def cache_steps(s: Setup, ids: list[int], prefill: int) -> tuple[list[Step], float]:
    """Prefill ``ids[:prefill]``, then feed the rest one token at a time through the model's KV
    cache; returns each pass as layer 0's attention saw it, and the largest difference between
    the logits obtained this way and those of one pass over all of ``ids`` without cache."""
    model = s.model
    steps: list[Step] = []

    def seen(module, args):
        x, cache = args[0], args[2] if len(args) > 2 else None
        past, T = cache.pos, x.shape[1]
        window = module.window
        keys = past + T if window is None else min(past + T, window)
        steps.append(Step(list(range(past, past + T)), keys, list(range(past, past + T)), window))

    handle = model.blocks[0].attn.register_forward_pre_hook(seen)
    try:
        with torch.no_grad():
            cache = model.new_cache(1, len(ids))
            outs = [model.logits(torch.tensor([ids[:prefill]]), cache)]
            for t in range(prefill, len(ids)):
                outs.append(model.logits(torch.tensor([[ids[t]]]), cache))
    finally:
        handle.remove()
    with torch.no_grad():
        full = model.logits(torch.tensor([ids]))
    diff = float((torch.cat(outs, dim=1) - full).abs().max())
    return steps, diff


def prefill_of(args, T: int) -> int:
    n = getattr(args, "prefill", None)
    n = (T + 1) // 2 if n is None else n
    if not 1 <= n < T:
        raise CausetteError(tr(f"--prefill doit être entre 1 et {T - 1} (la phrase a {T} tokens)",
                               f"--prefill must be between 1 and {T - 1} (the sentence has {T} tokens)"))
    return n


@topic("cache", ("le cache KV : le prefill du prompt, puis un pas de décodage par token, et ce que chacun calcule",
                 "the KV cache: prefill of the prompt, then one decoding step per token, and what each computes"))
def explain_cache(s: Setup, text: str, args=None) -> str:
    require_attention(s.model.cfg)
    ids = encode(s.tok, text)
    T = len(ids)
    if T < 2:
        raise CausetteError(tr("il faut au moins un token après <|bos|>", "at least one token after <|bos|> is needed"))
    n = prefill_of(args, T)
    steps, diff = cache_steps(s, ids, n)
    labels = [label(s.tok, i) for i in ids]
    cfg = s.model.cfg
    rows = []
    for k, st in enumerate(steps):
        name = "prefill" if k == 0 else tr(f"décodage {k}", f"decode {k}")
        toks = " ".join(labels[p] for p in st.queries)
        rows.append([name, toks, len(st.queries), st.keys, f"{st.written[0]}…{st.written[-1]}"
                     if len(st.written) > 1 else str(st.written[0]), st.cells, st.cells_without_cache])
    with_cache = sum(st.cells for st in steps)
    without = sum(st.cells_without_cache for st in steps)
    per_token = 2 * cfg.n_layer * cfg.kv_heads * cfg.head_dim * 4
    return "\n".join([
        tr(f"{T} tokens : les {n} premiers forment le prompt (prefill), les {T - n} suivants entrent un par un "
           f"(décodage), comme si le modèle les avait générés",
           f"{T} tokens: the first {n} are the prompt (prefill), the next {T - n} come in one at a time "
           f"(decoding), as if the model had generated them"),
        "",
        table([tr("passe", "pass"), tr("tokens entrés", "tokens in"), tr("requêtes", "queries"),
               tr("clés lues", "keys read"), tr("écrit dans le cache", "written to the cache"),
               tr("scores q·k", "q·k scores"), tr("sans cache", "without cache")], rows, left=(0, 1)),
        "",
        tr(f"scores calculés (par tête et par couche) : {num(with_cache, ',')} avec le cache, {num(without, ',')} "
           f"sans (chaque pas refait tout le triangle)",
           f"scores computed (per head and layer): {with_cache:,} with the cache, {without:,} without (each step "
           f"redoes the whole triangle)"),
        tr(f"mémoire du cache : {num(per_token, ',')} octets par token (fp32 : clés et valeurs, {cfg.n_layer} couches "
           f"× {cfg.kv_heads} têtes clé/valeur × {cfg.head_dim}), {num(per_token * T, ',')} pour ces {T} tokens",
           f"cache memory: {per_token:,} bytes per token (fp32: keys and values, {cfg.n_layer} layers × "
           f"{cfg.kv_heads} key/value heads × {cfg.head_dim}), {per_token * T:,} for these {T} tokens"),
        tr(f"logits avec le cache contre une seule passe sans cache : |écart| max {num(diff, '.1e')}",
           f"logits with the cache vs one pass without: max |difference| {diff:.1e}"),
    ])
