"""An offline "is this French?" check, light enough to run on every document.

The method is the share of words that are French function words (articles, pronouns,
prepositions, auxiliaries...). They make up about a third of any French text, whatever its
subject or century, and almost none of an English, German or Latin one:

    French novels, plays, law (../shared/data)   0.33 – 0.45
    English prose (a Gutenberg licence, say)     0.02 – 0.08

A threshold around 0.15 therefore separates them with a wide margin. Long documents are
sampled (a few windows spread over the text) so the check stays cheap on a whole novel.
"""

from __future__ import annotations

import regex

# Function words of French, lower case, accents kept. Elided forms (l', d', qu', ...) are
# counted through their letter(s) before the apostrophe, see _WORD.
FRENCH_STOPWORDS = frozenset(
    """
    a à ai aie aient ait as au aucun aucune aussi autre aux avaient avais avait avec avez avoir avons
    ayant c ça car ce ceci cela celle celles celui ces cet cette ceux chaque ci comme comment d dans de
    des donc dont du elle elles en encore entre es est et étaient étais était été être eu eux fait
    faut fut furent hors il ils j je jusqu l la le les leur leurs lui m ma mais me même mes moi mon
    n ne ni non nos notre nous on ont ou où par parce pas peu peut plus pour pourquoi puis qu quand que
    quel quelle quelles quels qui quoi s sa sans se sera serait ses si sien son sont sous suis sur t ta
    te tes toi ton tous tout toute toutes très tu un une vos votre vous y
    """.split()
)

_WORD = regex.compile(r"\p{L}+")


def french_ratio(text: str, sample_chars: int = 20_000, windows: int = 5) -> float:
    """Share of words of ``text`` that are French function words (0.0 for no words).

    Texts longer than ``sample_chars`` are judged on ``windows`` evenly spaced windows whose
    total length is ``sample_chars``, so a whole novel costs the same as a page.
    """
    if len(text) > sample_chars:
        width = sample_chars // windows
        step = (len(text) - width) // max(windows - 1, 1)
        text = " ".join(text[i * step : i * step + width] for i in range(windows))
    words = _WORD.findall(text.lower())
    if not words:
        return 0.0
    return sum(w in FRENCH_STOPWORDS for w in words) / len(words)
