"""Exercise 4: the top-p filter, checked against ``top_p_filter``."""

from __future__ import annotations

from typing import Callable

import torch

from causette.explain.exercises.common import _fail, _ok, _wrong_shape
from causette.inference.sampling import top_p_filter
from causette.utils.lang import num, tr

# ============================================================================== 4. top-p

def _top_p_inputs() -> list[tuple[str, torch.Tensor, float]]:
    g = torch.Generator().manual_seed(0)
    inf = float("-inf")
    return [
        (tr("10 logits aléatoires, p = 0,9", "10 random logits, p = 0.9"), torch.randn(10, generator=g) * 2, 0.9),
        (tr("50 logits aléatoires, p = 0,5", "50 random logits, p = 0.5"), torch.randn(50, generator=g) * 3, 0.5),
        (tr("un lot (4, 20), p = 0,7", "a batch (4, 20), p = 0.7"), torch.randn(4, 20, generator=g), 0.7),
        (tr("p = 1 (tout garder)", "p = 1 (keep all)"), torch.randn(12, generator=g), 1.0),
        (tr("p minuscule (1e-6)", "tiny p (1e-6)"), torch.randn(12, generator=g), 1e-6),
        (tr("des ex aequo, p = 0,6", "ties, p = 0.6"), torch.tensor([1.0, 3.0, 3.0, 1.0, 0.0, 3.0]), 0.6),
        (tr("tout égal, p = 0,3", "all equal, p = 0.3"), torch.zeros(8), 0.3),
        (tr("déjà des -inf (après top-k), p = 0,9", "already -inf (after top-k), p = 0.9"),
         torch.tensor([inf, 1.0, 2.5, inf, 0.5, 2.0]), 0.9),
    ]


def check_top_p(top_p: Callable) -> tuple[bool, str]:
    done = []
    for name, logits, p in _top_p_inputs():
        expected = top_p_filter(logits.clone(), p)
        got = top_p(logits.clone(), p, what=name)
        bad = _wrong_shape(expected, got, name, tr("rendez des logits de la même forme, -inf pour les tokens écartés",
                                                   "return logits of the same shape, -inf for the removed tokens"))
        if bad:
            return bad
        got = got.detach().float()
        kept_e, kept_g = torch.isfinite(expected), got > float("-inf")
        rows_e, rows_g = kept_e.reshape(-1, kept_e.shape[-1]), kept_g.reshape(-1, kept_g.shape[-1])
        for r in range(rows_e.shape[0]):
            if not torch.equal(rows_e[r], rows_g[r]):
                row = tr(f", ligne {r}", f", row {r}") if logits.dim() > 1 else ""
                probs = torch.softmax(logits.reshape(-1, logits.shape[-1])[r].float(), -1)
                return _fail(tr(f"{name}{row} : les tokens gardés", f"{name}{row}: the tokens kept"),
                             _kept(rows_e[r], probs), _kept(rows_g[r], probs),
                             _top_p_hint(rows_e[r], rows_g[r], probs, p))
        if not torch.equal(torch.where(kept_e, got, 0), torch.where(kept_e, expected, 0)):
            return _fail(tr(f"{name} : les valeurs gardées", f"{name}: the values kept"),
                         tr("les logits d'origine", "the original logits"), tr("d'autres valeurs", "other values"),
                         tr("ne changez pas les logits gardés (pas de softmax ni de renormalisation) : mettez "
                            "seulement -inf sur les autres",
                            "do not change the kept logits (no softmax, no renormalisation): only put -inf on "
                            "the others"))
        n = int(kept_e.sum())
        done.append(tr(f"{name} : {n} token{'s' if n > 1 else ''} gardé{'s' if n > 1 else ''} sur {kept_e.numel()}, "
                       "comme top_p_filter", f"{name}: {n} of {kept_e.numel()} tokens kept, as top_p_filter"))
    return _ok(done)


def _kept(mask: torch.Tensor, probs: torch.Tensor) -> str:
    idx = mask.nonzero().flatten().tolist()
    mass = float(probs[mask].sum())
    shown = ", ".join(map(str, idx[:12])) + (", …" if len(idx) > 12 else "")
    return tr(f"{len(idx)} token{'s' if len(idx) > 1 else ''} [{shown}], masse {num(mass, '.3f')}",
              f"{len(idx)} tokens [{shown}], mass {mass:.3f}")


def _top_p_hint(expected, got, probs, p) -> str:
    if got.sum() == 0:
        return tr("gardez toujours au moins le token le plus probable", "always keep at least the most probable token")
    if bool((got & ~expected).any()) and not bool((expected & ~got).any()):
        return tr("vous en gardez trop : arrêtez dès que la masse des tokens gardés atteint p (le token qui fait "
                  "franchir p est le dernier gardé)",
                  "you keep too many: stop as soon as the mass of the kept tokens reaches p (the token that "
                  "crosses p is the last one kept)")
    if bool((expected & ~got).any()) and not bool((got & ~expected).any()):
        return tr("il vous en manque : le token qui fait franchir p est gardé ; un token est gardé quand la masse "
                  "des tokens triés AVANT lui est encore < p",
                  "some are missing: the token that crosses p is kept; a token is kept when the mass of the "
                  "tokens sorted BEFORE it is still < p")
    return tr("triez par probabilité décroissante ; à égalité, le plus petit indice passe d'abord "
              "(torch.sort(..., descending=True, stable=True))",
              "sort by decreasing probability; on a tie the smallest index comes first "
              "(torch.sort(..., descending=True, stable=True))")
