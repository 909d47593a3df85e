"""Exercise 2: causal attention by hand, checked against the model's own attention."""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from causette.config import load_config
from causette.explain.attention import heads_qkv
from causette.explain.common import capture, demo_tokenizer, encode
from causette.explain.exercises.common import _fail, _ok, _wrong_shape
from causette.model.transformer import Transformer
from causette.utils.lang import num, tr

# ============================================================================== 2. attention

ATTENTION_SHAPES = [(1, 4), (5, 8), (9, 16)]  # (T, d) of random q, k, v


def check_attention(attention: Callable) -> tuple[bool, str]:
    done = []
    g = torch.Generator().manual_seed(0)
    for T, d in ATTENTION_SHAPES:
        q, k, v = (torch.randn(T, d, generator=g) * 2 for _ in range(3))
        expected = F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True)[0]
        name = tr(f"q, k, v aléatoires de forme ({T}, {d})", f"random q, k, v of shape ({T}, {d})")
        got = attention(q.clone(), k.clone(), v.clone(), what=f"q, k, v ({T}, {d})")
        bad = _compare(expected, got, name, q, k, v)
        if bad:
            return bad
        done.append(tr(f"{name} : comme F.scaled_dot_product_attention(is_causal=True)",
                       f"{name}: same as F.scaled_dot_product_attention(is_causal=True)"))
    bad, line = _attention_on_the_model(attention)
    if bad:
        return bad
    return _ok(done + [line])




def _compare(expected, got, name, q, k, v):
    bad = _wrong_shape(expected, got, name, tr("rendez un tenseur (T, d) : une ligne par requête, poids @ v",
                                                "return a (T, d) tensor: one row per query, weights @ v"))
    if bad:
        return bad
    got = got.detach().float()
    if torch.allclose(got, expected, atol=1e-4, rtol=1e-4):
        return None
    i, j = divmod(int((got - expected).abs().argmax()), expected.shape[1])
    return _fail(tr(f"{name} : la ligne {i} (requête {i}), colonne {j}", f"{name}: row {i} (query {i}), column {j}"),
                 num(float(expected[i, j]), ".4f"), num(float(got[i, j]), ".4f"), _attention_hint(got, q, k, v, i))


def _attention_hint(got, q, k, v, i) -> str:
    T, d = q.shape
    scores = q @ k.T
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    variants = {
        "no_mask": (scores / math.sqrt(d)).softmax(-1) @ v,
        "no_scale": scores.masked_fill(future, float("-inf")).softmax(-1) @ v,
        "wrong_side": (scores / math.sqrt(d)).masked_fill(future.T, float("-inf")).softmax(-1) @ v,
        "wrong_axis": (scores / math.sqrt(d)).masked_fill(future, float("-inf")).softmax(0).nan_to_num() @ v,
    }
    hints = {
        "no_mask": tr("vous n'appliquez pas le masque causal : la requête i ne doit voir que les clés j <= i "
                      "(mettez -inf au-dessus de la diagonale avant le softmax)",
                      "no causal mask: query i may only see keys j <= i (put -inf above the diagonal "
                      "before the softmax)"),
        "no_scale": tr(f"divisez les scores q·k par √d = √{d} avant le softmax",
                       f"divide the q·k scores by √d = √{d} before the softmax"),
        "wrong_side": tr("le masque cache le passé au lieu du futur : masquez j > i (triu(1)), pas j < i",
                         "the mask hides the past instead of the future: mask j > i (triu(1)), not j < i"),
        "wrong_axis": tr("le softmax se prend sur chaque ligne (sur les clés, dim=-1), pas sur les colonnes",
                         "the softmax runs over each row (over the keys, dim=-1), not over columns"),
    }
    for key, value in variants.items():
        if torch.allclose(got, value, atol=1e-4, rtol=1e-4):
            return hints[key]
    if i == 0:
        return tr("la requête 0 ne voit que la clé 0 : sa sortie est exactement v[0]",
                  "query 0 sees key 0 only: its output is exactly v[0]")
    return tr("scores = q @ k.T / √d, -inf où j > i, softmax sur chaque ligne, puis poids @ v",
              "scores = q @ k.T / √d, -inf where j > i, softmax over each row, then weights @ v")


def _attention_on_the_model(attention: Callable):
    """The learner's function in place of the fused kernel, head by head, in layer 0 of the demo model."""
    tok = demo_tokenizer()
    cfg = load_config("model/demo").model
    cfg.vocab_size = tok.vocab_size
    torch.manual_seed(0)
    model = Transformer(cfg).eval()
    text = "Le chat dort sur le lit."
    ids = encode(tok, text)
    attn = model.blocks[0].attn
    (x, rope, _cache), out = capture(attn, model, ids)
    H, hd, T = attn.n_head, attn.head_dim, len(ids)
    with torch.no_grad():
        q, k, v = heads_qkv(attn, x, rope)  # the model's own split, RoPE and key sharing
        heads = []
        for h in range(H):
            y = attention(q[0, h].clone(), k[0, h].clone(), v[0, h].clone(), what=tr(f"tête {h}", f"head {h}"))
            if not isinstance(y, torch.Tensor) or y.shape != (T, hd):
                return _compare(torch.zeros(T, hd), y, tr(f"tête {h} du modèle", f"model head {h}"),
                                q[0, h], k[0, h], v[0, h]), ""
            heads.append(y.float())
        y = attn.proj(torch.stack(heads, 1).reshape(1, T, H * hd))
    diff = float((y - out).abs().max())
    if diff > 1e-4:
        bad = _fail(tr(f"couche 0 du modèle de démo sur « {text} »", f"layer 0 of the demo model on '{text}'"),
                    tr("la sortie de l'attention du modèle", "the model's attention output"),
                    tr(f"un écart de {num(diff, '.1e')}", f"a difference of {diff:.1e}"),
                    tr("votre fonction reçoit q, k, v d'une tête (T, taille de tête) : ne supposez pas d = 8",
                       "your function gets one head's q, k, v (T, head size): do not assume d = 8"))
        return bad, ""
    return None, tr(f"couche 0 du modèle de démo (poids aléatoires) sur « {text} » : vos {H} têtes, recollées et "
                    f"projetées, donnent la sortie de l'attention fusionnée du modèle (|écart| max {num(diff, '.1e')})",
                    f"layer 0 of the demo model (random weights) on '{text}': your {H} heads, concatenated and "
                    f"projected, give the model's fused attention output (max |difference| {diff:.1e})")
