"""Exercise 1: a BPE trainer, checked against ``train_bpe``'s merges."""

from __future__ import annotations

from typing import Callable

from causette.explain.exercises.common import _fail, _ok
from causette.tokenizer.bpe import BPETokenizer, train_bpe
from causette.tokenizer.pattern import GPT4_PATTERN
from causette.tokenizer.train import count_chunks
from causette.utils.lang import num, tr

# ============================================================================== 1. BPE

BPE_PARAGRAPH = (
    "Le petit chat de la voisine dort sur le rebord de la fenêtre. Quand le soleil tourne, il se "
    "lève, s'étire et va dormir un peu plus loin, sur le tapis du salon. La voisine dit que son "
    "chat est le plus paresseux du quartier ; les enfants de l'école disent qu'il est le plus sage. "
    "Le dimanche, il regarde passer les vélos et les chiens, puis il retourne dormir.\n"
)
BPE_INPUTS = [  # ((French, English name), text, number of merges)
    (("le paragraphe", "the paragraph"), BPE_PARAGRAPH, 60),
    (("« aaaaaaa aaa »", "'aaaaaaa aaa'"), "aaaaaaa aaa", 10),
    (("« été été été »", "'été été été'"), "été été été", 10),
]


def reference_merges(text: str, num_merges: int) -> list[tuple[int, int]]:
    """Causette's merges for ``text``: GPT-4's pre-tokenisation, then :func:`train_bpe` (min_frequency 2)."""
    counts, _ = count_chunks([text], GPT4_PATTERN, [], workers=1)
    return train_bpe(counts, num_merges, min_frequency=2)


def _as_merges(value) -> list[tuple[int, int]] | None:
    try:
        out = [(int(a), int(b)) for a, b in value]
    except (TypeError, ValueError):
        return None
    return out


def check_bpe(train: Callable) -> tuple[bool, str]:
    done = []
    for names, text, n in BPE_INPUTS:
        name = tr(*names)
        expected = reference_merges(text, n)
        got_raw = train(text, n, what=f"{name}, {n}")
        got = _as_merges(got_raw)
        if got is None:
            return _fail(tr(f"train({name}, {n}) doit rendre une liste de paires d'entiers",
                            f"train({name}, {n}) must return a list of pairs of ints"),
                         "[(101, 32), ...]", repr(got_raw)[:80],
                         tr("une fusion est un tuple (id gauche, id droit)", "a merge is a tuple (left id, right id)"))
        vocab = [bytes([b]) for b in range(256)]
        for k in range(max(len(expected), len(got))):
            e = expected[k] if k < len(expected) else None
            g = got[k] if k < len(got) else None
            if e != g:
                return _fail(tr(f"{name}, {n} fusions demandées : la fusion n° {k} (le token {256 + k})",
                                f"{name}, {n} merges asked: merge {k} (token {256 + k})"),
                             _show_merge(e, vocab), _show_merge(g, vocab), _bpe_hint(k, e, g, expected, len(got)))
            vocab.append(vocab[e[0]] + vocab[e[1]])
        tok_ref = BPETokenizer(expected, GPT4_PATTERN, {})
        ids = BPETokenizer(got, GPT4_PATTERN, {}).encode(text)
        assert ids == tok_ref.encode(text)  # same merges, same ids: what the merges are for
        done.append(tr(f"{name} : {len(expected)} fusions identiques, {len(ids)} tokens identiques "
                       f"({num(len(text.encode()), ',')} octets)",
                       f"{name}: {len(expected)} identical merges, {len(ids)} identical tokens "
                       f"({len(text.encode()):,} bytes)"))
    return _ok(done)


def _show_merge(m, vocab) -> str:
    if m is None:
        return tr("aucune (la liste s'arrête là)", "none (the list ends there)")
    a, b = m
    if not (0 <= a < len(vocab) and 0 <= b < len(vocab)):
        return tr(f"{m} (id inconnu à ce stade)", f"{m} (unknown id at this point)")
    return f"{m} = {vocab[a]!r} + {vocab[b]!r}"


def _bpe_hint(k, e, g, expected, n_got) -> str:
    if e is None:
        return tr("arrêtez-vous quand la paire la plus fréquente apparaît moins de 2 fois",
                  "stop when the most frequent pair occurs fewer than 2 times")
    if g is None:
        return tr(f"vous rendez {n_got} fusions : continuez tant qu'une paire apparaît au moins 2 fois "
                  "(ou que le nombre demandé n'est pas atteint)",
                  f"you return {n_got} merges: go on while a pair occurs at least 2 times "
                  "(or the number asked is not reached)")
    if k == 0 or g in expected:
        return tr("à égalité de fréquence, la paire la plus petite gagne : min des (a, b) par ordre de tuple ; "
                  "et comptez les paires à l'intérieur de chaque morceau du pré-découpage (GPT4_PATTERN), "
                  "pondérées par le nombre de fois où le morceau apparaît",
                  "on a tie in frequency the smallest pair wins: min of the (a, b) as tuples; and count "
                  "pairs inside each chunk of the pre-tokenisation (GPT4_PATTERN), weighted by how often "
                  "the chunk occurs")
    return tr("après une fusion, remplacez chaque occurrence de la paire de gauche à droite (« a a a » → "
              "« X a ») avant de recompter, et ne comptez jamais une paire à cheval sur deux morceaux",
              "after a merge, replace every occurrence of the pair left to right ('a a a' → 'X a') before "
              "counting again, and never count a pair across two chunks")
