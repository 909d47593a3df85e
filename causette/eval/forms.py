"""The treebanks' own inventory of word forms, and the spelling a changed word imposes on its neighbours.

:class:`Inventory` maps (lemma, UPOS, features) to the forms the treebanks attest for them
(``(être, AUX, Mood=Ind|Number=Plur|Person=3|Tense=Pres|VerbForm=Fin)`` → ``sont``), so that a
minimal pair's "bad" word is always a real spelling of the same lemma, never an invented one.
Only the features that make a form are kept (:data:`RELEVANT`): ``Voice``, ``Typo``, ``ExtPos``…
are dropped, and a word marked as a typo (``Typo=Yes``, ``CorrectForm=``) is not an attestation.

:func:`respell` decides what a one-word change does to the text around it: French elides
(``que`` + ``est`` → ``qu'est``, ``n'`` + ``sont`` → ``ne sont``) and some forms depend on the
next word's first sound (``ce``/``cet``, ``ma``/``mon``, ``beau``/``bel``). Where the right
spelling is certain the neighbour is rewritten; where it is not (``l'`` → ``le`` or ``la``? a word
starting with *h*, aspirated or not?) the change is refused, so that no "bad" sentence shows a
tokenisation artefact such as « le arbre ».
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from causette.eval.conllu import Sentence, Word

# the features that make a form, per part of speech (the others vary between treebanks)
RELEVANT = {
    "VERB": ("Gender", "Mood", "Number", "Person", "Tense", "VerbForm"),
    "AUX": ("Gender", "Mood", "Number", "Person", "Tense", "VerbForm"),
    "ADJ": ("Gender", "Number", "NumType"),
    "DET": ("Definite", "Gender", "Number", "Number[psor]", "Person[psor]"),
}
AGREEMENT = ("Gender", "Number", "Person")

Bundle = frozenset  # of (feature, value) pairs

VOWELS = set("aeiouyàâäéèêëîïôöùûüœæ")
APOSTROPHES = ("'", "’")
# an elided word → its full spelling before a consonant (l' is missing: le or la?)
UNELIDED = {"qu": "que", "n": "ne", "j": "je", "m": "me", "t": "te", "d": "de", "c": "ce",
            "jusqu": "jusque", "lorsqu": "lorsque", "puisqu": "puisque", "quoiqu": "quoique"}
ELIDABLE = {full: short for short, full in UNELIDED.items()} | {"le": "l", "la": "l", "se": "s"}
# forms whose spelling depends on whether the next word starts with a vowel sound
BEFORE_VOWEL = {"le", "la", "ce", "cet", "ma", "ta", "sa", "mon", "ton", "son", "beau", "bel", "nouveau", "nouvel",
                "vieux", "vieil", "fou", "fol", "mou", "mol", "de", "que", "ne", "je", "me", "te", "se", "du", "au"}


def bundle(word: Word) -> Bundle:
    """The word's features that make its form (:data:`RELEVANT`)."""
    names = RELEVANT.get(word.upos, ())
    return frozenset((k, v) for k, v in word.feats.items() if k in names)


def is_typo(word: Word) -> bool:
    return word.feats.get("Typo") == "Yes" or "CorrectForm" in word.misc or word.deprel == "goeswith"


class Inventory:
    """Which forms the treebanks attest for each (lemma, UPOS, features) — in lower case."""

    def __init__(self, sentences: Iterable[Sentence] = ()):
        self.forms: dict[tuple[str, str], dict[Bundle, Counter]] = defaultdict(lambda: defaultdict(Counter))
        self.noun_genders: dict[str, set[str]] = defaultdict(set)  # lemma → genders of the NOUN
        for sentence in sentences:
            self.add(sentence)

    def add(self, sentence: Sentence) -> None:
        for word in sentence.words:
            if word.upos in RELEVANT and not is_typo(word) and not word.lower.endswith(APOSTROPHES):
                self.forms[(word.lemma, word.upos)][bundle(word)][word.lower] += 1
            elif word.upos == "NOUN" and "Gender" in word.feats:
                self.noun_genders[word.lemma].add(word.feats["Gender"])

    def attested(self, lemma: str, upos: str, form: str, feats: Bundle) -> bool:
        return self.forms.get((lemma, upos), {}).get(feats, Counter())[form] > 0

    def analyses(self, lemma: str, upos: str, form: str) -> list[Bundle]:
        """Every feature bundle under which ``form`` is attested for (lemma, UPOS)."""
        return [b for b, forms in self.forms.get((lemma, upos), {}).items() if forms[form] > 0]

    def alternative(self, word: Word, target: dict[str, str]) -> str | None:
        """The most frequent attested form of ``word``'s lemma with exactly the features ``target``
        that is spelt differently and is never attested with an analysis that could agree as the
        word does (« pris » is masculine singular and plural: no wrong form of « pris » masculine
        singular). Ties: alphabetical order."""
        want = frozenset(target.items())
        counts = self.forms.get((word.lemma, word.upos), {}).get(want)
        if not counts:
            return None
        own = {k: word.feats.get(k) for k in AGREEMENT}
        for form, _n in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            if form == word.lower or (not form.isalpha() and "-" not in form):
                continue
            if any(self._compatible(b, own) for b in self.analyses(word.lemma, word.upos, form)):
                continue  # syncretism: this spelling can also be the right one here
            return form
        return None

    @staticmethod
    def _compatible(analysis: Bundle, own: dict) -> bool:
        """Could ``analysis`` be the word's own agreement? None of its Gender, Number, Person
        conflicts with the word's (an absent feature conflicts with nothing)."""
        feats = dict(analysis)
        return all(feats.get(k) in (None, own[k]) for k in AGREEMENT if own[k] is not None)


def starts_with_vowel(form: str) -> bool:
    return form[:1].lower() in VOWELS


def _match_case(form: str, model: str) -> str:
    if len(model) > 1 and model.isupper():
        return form.upper()
    return form[:1].upper() + form[1:] if model[:1].isupper() else form


def respell(sentence: Sentence, index: int, new_form: str) -> dict[int, tuple[str, bool]] | None:
    """The words to rewrite, ``{id: (form, space_after)}``, when word ``index`` (0-based) becomes
    ``new_form`` (in lower case): the word itself, in the case of the original, and an elided or
    elidable word just before it. None when French spelling would make the change more than one
    word, or when the right spelling is uncertain."""
    words = sentence.words
    word = words[index]
    nxt = words[index + 1] if index + 1 < len(words) else None
    if word.lower.endswith(APOSTROPHES) or not word.space_after and nxt is not None and nxt.upos != "PUNCT":
        return None  # an elided or glued word: its spelling depends on the next one
    if nxt is not None and nxt.form.startswith(("-", "‑")):
        return None  # « a-t-il », « est-ce »: inversion, not one word
    if (nxt is not None and (word.lower in BEFORE_VOWEL or new_form in BEFORE_VOWEL)
            and (starts_with_vowel(nxt.lower) or nxt.lower.startswith("h"))):
        return None  # « le arbre », « ce homme », « ma amie »
    out = {word.id: (_match_case(new_form, word.form), word.space_after)}
    if index == 0:
        return out
    prev = words[index - 1]
    if prev.upos == "PUNCT":
        return out
    old_vowel, new_vowel = starts_with_vowel(word.lower), starts_with_vowel(new_form)
    if new_form.startswith("h") and not word.lower.startswith("h") and (
            prev.lower.endswith(APOSTROPHES) or prev.lower in ELIDABLE):
        return None  # h aspiré or h muet: we cannot tell
    if prev.lemma == "de" and prev.upos == "ADP" and new_form in ("des", "du"):
        return None  # « de des » is no French spelling (« d'un » → « de des »)
    if prev.lower.endswith(APOSTROPHES) and prev.space_after is False and not new_vowel:
        full = UNELIDED.get(prev.lower[:-1])
        if prev.lower[:-1] == "s":
            full = "se" if prev.lemma == "se" else "si" if prev.lemma == "si" else None
        if full is None:
            return None
        out[prev.id] = (_match_case(full, prev.form), True)
    elif prev.lower in ELIDABLE and prev.space_after and new_vowel and not old_vowel:
        if prev.lower == "ce" and prev.upos != "PRON":
            return None  # the determiner « ce » becomes « cet », not « c' »
        out[prev.id] = (_match_case(ELIDABLE[prev.lower] + "'", prev.form), False)
    return out
