"""Topics ``attention`` (docs/attention.md) and ``heads`` (docs/multi-tetes.md).

:func:`attention_by_hand` writes out the computation of one layer's attention so that its
``T × T`` matrices can be printed; the ``moe`` topic reuses :func:`layer_head`.
"""

from __future__ import annotations

import math

import torch

from causette.errors import CausetteError
from causette.explain.common import Setup, capture, encode, label, matrix, num, table, topic, tr
from causette.model.layers import apply_rope


def heads_qkv(attn, x: torch.Tensor, rope) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries, keys and values of one layer, ``(1, H, T, head_dim)`` each: split into heads, RoPE
    applied, each key/value head repeated for the query heads that share it."""
    H, K, hd = attn.n_head, attn.n_kv_head, attn.head_dim
    T = x.shape[1]
    q, k, v = attn.qkv(x).split([H * hd, K * hd, K * hd], dim=-1)
    q = q.view(1, T, H, hd).transpose(1, 2)
    k = k.view(1, T, K, hd).transpose(1, 2)
    v = v.view(1, T, K, hd).transpose(1, 2)
    if attn.q_norm is not None:
        q, k = attn.q_norm(q), attn.k_norm(k)
    if rope is not None:
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
    # region doc:repeat-kv
    k = k.repeat_interleave(H // K, dim=1)  # query head h reads key/value head h // (H/K)
    v = v.repeat_interleave(H // K, dim=1)
    # endregion doc:repeat-kv
    return q, k, v


def attention_by_hand(attn, x: torch.Tensor, rope) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The attention of one layer written out: scores, weights ``(H, T, T)`` and output ``(1, T, d)``.

    The same computation as :class:`CausalSelfAttention` without the fused kernel, so that the
    ``T × T`` matrices exist and can be printed.
    """
    H, hd, T = attn.n_head, attn.head_dim, x.shape[1]
    q, k, v = heads_qkv(attn, x, rope)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)  # (1, H, T, T)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)  # key j > query i: not visible
    weights = scores.masked_fill(future, float("-inf")).softmax(dim=-1)
    y = (weights @ v).transpose(1, 2).reshape(1, T, H * hd)
    return scores[0], weights[0], attn.proj(y)


def require_attention(cfg) -> None:
    """A clear error for the progression's models that have no attention to show."""
    if not cfg.uses_attention:
        raise CausetteError(tr(
            f"ce modèle n'a pas d'attention (n_layer={cfg.n_layer}, mixer={cfg.mixer}) : "
            "prenez une étape de la progression à partir de la 3 (docs/progression.md)",
            f"this model has no attention (n_layer={cfg.n_layer}, mixer={cfg.mixer}): "
            "take a progression step from 3 on (docs/progression.md)"))


def layer_head(s: Setup, args) -> tuple[int, int]:
    layer = getattr(args, "layer", 0) if args is not None else 0
    head = getattr(args, "head", 0) if args is not None else 0
    cfg = s.model.cfg
    require_attention(cfg)
    if not 0 <= layer < cfg.n_layer:
        raise CausetteError(tr(f"--layer doit être entre 0 et {cfg.n_layer - 1}",
                               f"--layer must be between 0 and {cfg.n_layer - 1}"))
    if not 0 <= head < cfg.n_head:
        raise CausetteError(tr(f"--head doit être entre 0 et {cfg.n_head - 1}",
                               f"--head must be between 0 and {cfg.n_head - 1}"))
    return layer, head


@topic("attention", ("les scores q·k/√d d'une tête, le masque causal et les poids du softmax",
                     "one head's scores q·k/√d, the causal mask and the softmax weights"),
       trained=("des têtes qui se concentrent sur quelques tokens (le précédent, le début de phrase) au lieu de "
                "poids presque uniformes",
                "heads that focus on a few tokens (the previous one, the start of the sentence) instead of "
                "nearly uniform weights"))
def explain_attention(s: Setup, text: str, args=None) -> str:
    layer, head = layer_head(s, args)
    ids = encode(s.tok, text)
    attn = s.model.blocks[layer].attn
    (x, rope, _cache), out = capture(attn, s.model, ids)
    with torch.no_grad():
        scores, weights, y = attention_by_hand(attn, x, rope)
    T = len(ids)
    labels = [label(s.tok, i) for i in ids]
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    hd = attn.head_dim
    sums = weights[head].sum(-1).tolist()
    diff = (y - out).abs().max()
    return "\n".join(
        [
            tr(f"couche {layer}, tête {head} (sur {attn.n_head}), taille de tête {hd}, {T} tokens",
               f"layer {layer}, head {head} (of {attn.n_head}), head size {hd}, {T} tokens"),
            "",
            tr("masque causal (1 : la requête i peut regarder la clé j, c'est-à-dire j <= i) :",
               "causal mask (1: query i may look at key j, that is j <= i):"),
            matrix((~future).int(), labels, fmt="{:.0f}"),
            "",
            tr(f"scores q·k/√{hd} (· = masqué, devient -inf) :", f"scores q·k/√{hd} (· = masked, becomes -inf):"),
            matrix(scores[head], labels, future),
            "",
            tr("poids = softmax de chaque ligne (chaque ligne a pour somme 1) :",
               "weights = softmax of each row (each row sums to 1):"),
            matrix(weights[head], labels, future),
            "",
            tr(f"sommes des lignes : {' ; '.join(num(v, '.3f') for v in sums)}",
               f"row sums: {', '.join(f'{v:.3f}' for v in sums)}"),
            tr(f"toutes les têtes recalculées à la main contre l'attention fusionnée du modèle : |écart| max "
               f"{num(diff, '.1e')}",
               f"all heads recomputed by hand vs the model's fused attention: max |difference| {diff:.1e}"),
        ]
    )


@topic("heads", ("toutes les têtes d'une couche, attention à requêtes groupées, taille du cache KV",
                 "every head of a layer, grouped-query attention, KV cache size"),
       trained=("des têtes spécialisées, à l'entropie basse, qui ne regardent pas toutes les mêmes tokens",
                "specialised heads with low entropy, not all looking at the same tokens"))
def explain_heads(s: Setup, text: str, args=None) -> str:
    layer, _ = layer_head(s, args)
    cfg = s.model.cfg
    ids = encode(s.tok, text)
    attn = s.model.blocks[layer].attn
    (x, rope, _cache), _ = capture(attn, s.model, ids)
    with torch.no_grad():
        _, weights, _ = attention_by_hand(attn, x, rope)
    H, K, hd, T = attn.n_head, attn.n_kv_head, attn.head_dim, len(ids)
    group = H // K
    out = [
        tr(f"couche {layer} : n_embd {cfg.n_embd} = {H} têtes × {hd} ; "
           f"{K} têtes clé/valeur, chacune partagée par {group} têtes de requête",
           f"layer {layer}: n_embd {cfg.n_embd} = {H} heads × {hd}; "
           f"{K} key/value heads, each shared by {group} query heads"),
        tr(f"  x {tuple(x.shape)} → qkv {(1, T, (H + 2 * K) * hd)} → q {(1, H, T, hd)}, k et v {(1, K, T, hd)}",
           f"  x {tuple(x.shape)} → qkv {(1, T, (H + 2 * K) * hd)} → q {(1, H, T, hd)}, k and v {(1, K, T, hd)}"),
        tr("  tête de requête → tête clé/valeur : ", "  query head → key/value head: ")
        + ", ".join(f"{h}→{h // group}" for h in range(H)),
        "",
        tr(f"ce que regarde le dernier token « {label(s.tok, ids[-1])} », tête par tête (entropie en bits ; "
           f"uniforme sur {T} tokens = {num(math.log2(T), '.2f')}) :",
           f"what the last token '{label(s.tok, ids[-1])}' looks at, head by head (entropy in bits; "
           f"uniform over {T} tokens = {math.log2(T):.2f}):"),
    ]
    rows = []
    for h in range(H):
        w = weights[h, -1]
        entropy = -(w * w.clamp_min(1e-12).log2()).sum()
        rows.append([tr(f"tête {h}", f"head {h}")] + [num(v, ".2f") for v in w.tolist()] + [num(float(entropy), ".2f")])
    out.append(table(["", *[f"{j}:{label(s.tok, i)[:6]}" for j, i in enumerate(ids)], tr("entropie", "entropy")], rows))
    per_kv = 2 * cfg.n_layer * hd * 2  # keys + values, all layers, bf16 bytes, per key/value head
    out += [
        "",
        tr(f"cache KV par token (bf16, {cfg.n_layer} couches) : multi-têtes ({H} têtes kv) {num(per_kv * H, ',')} octets, "
           f"ce modèle ({K}) {num(per_kv * K, ',')} octets, une seule tête kv (1) {num(per_kv, ',')} octets",
           f"KV cache per token (bf16, {cfg.n_layer} layers): multi-head ({H} kv heads) {per_kv * H:,} bytes, "
           f"this model ({K}) {per_kv * K:,} bytes, multi-query (1) {per_kv:,} bytes"),
    ]
    return "\n".join(out)
