"""Read Universal Dependencies treebanks (CoNLL-U) and write their words back as French text.

A CoNLL-U sentence is a block of comment lines (``# sent_id = …``, ``# text = …``) then one line
per word with ten tab-separated columns: ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC.
French contractions are *multiword tokens*: the line ``3-4  du`` is followed by the two
syntactic words ``3 de`` and ``4 le``. Elisions are ordinary words that end in an apostrophe and
carry ``SpaceAfter=No`` (``l'`` ``origine``).

:func:`read_conllu` keeps the syntactic words (what the annotation is about) and where each
surface token ends with no space. :func:`detokenize` turns a list of words back into text: it
contracts ``de``/``à`` + the article (``du``, ``aux``, ``auquel``…) by rule, not by reading the
treebank's multiword lines, so a sentence whose words were changed (``de la`` → ``de le``) comes out
as a French writer would write it (``du``). On the six French treebanks of ``shared/data/eval/ud``
it gives back the ``# text`` of 5,989 of the 5,991 sentences exactly; the two others are a typo
annotated as two words (« au dessus ») and a heading in capitals (« À Le » written « AU »), listed in
``tests/test_pair_builder.py``. The pair builder skips sentences that do not round-trip.

We read the format ourselves rather than through the ``conllu`` package: the ten columns are a few
lines of code, and our errors name the file and line of a malformed word.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from causette.errors import CausetteError

# de/à + definite article (or lequel, ledit) → one token, as French spells them
CONTRACTIONS = {
    ("de", "le"): "du", ("de", "les"): "des", ("à", "le"): "au", ("à", "les"): "aux",
    ("de", "lequel"): "duquel", ("de", "lesquels"): "desquels", ("de", "lesquelles"): "desquelles",
    ("à", "lequel"): "auquel", ("à", "lesquels"): "auxquels", ("à", "lesquelles"): "auxquelles",
    ("de", "ledit"): "dudit", ("de", "lesdits"): "desdits", ("de", "lesdites"): "desdites",
    ("à", "ledit"): "audit", ("à", "lesdits"): "auxdits", ("à", "lesdites"): "auxdites",
}
_SECOND_UPOS = {"le": "DET", "les": "DET", "ledit": "DET", "lesdits": "DET", "lesdites": "DET",
                "lequel": "PRON", "lesquels": "PRON", "lesquelles": "PRON"}


@dataclass(frozen=True)
class Word:
    """One syntactic word of a sentence (ids start at 1; ``head`` 0 is the root)."""

    id: int
    form: str
    lemma: str
    upos: str
    feats: dict = field(hash=False)
    head: int
    deprel: str
    space_after: bool = True  # False when its surface token is followed by no space (SpaceAfter=No)
    lower: str = ""  # the form in lower case (GSD's ``wordform=`` when given)
    misc: dict = field(default_factory=dict, hash=False)  # the MISC column (SpaceAfter, Typo, CorrectForm…)

    def feat(self, name: str) -> str | None:
        return self.feats.get(name)


@dataclass(frozen=True)
class Sentence:
    sent_id: str
    text: str
    words: tuple[Word, ...]
    file: str  # the treebank file's name, e.g. fr_sequoia-ud-train.conllu.gz
    line: int  # line of ``# sent_id`` (or of the first line of the block)

    def word(self, word_id: int) -> Word:
        return self.words[word_id - 1]

    def children(self, word_id: int) -> list[Word]:
        return [w for w in self.words if w.head == word_id]


def parse_feats(text: str) -> dict[str, str]:
    """``Gender=Fem|Number=Sing`` → ``{"Gender": "Fem", "Number": "Sing"}`` (``_``: none)."""
    if text == "_":
        return {}
    out = {}
    for item in text.split("|"):
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ValueError(f"feature {item!r} is not Name=Value")
        out[name] = value
    return out


def _open(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_conllu(path: str | Path) -> Iterator[Sentence]:
    """The sentences of a ``.conllu`` or ``.conllu.gz`` file, in order.

    A malformed line raises :class:`CausetteError` naming the file and the line. Empty nodes
    (decimal ids, enhanced dependencies only) are skipped: they are not written words.
    """
    path = Path(path)
    try:
        with _open(path) as f:
            yield from _sentences(f, path)
    except FileNotFoundError:
        raise CausetteError(f"{path}: no such file") from None
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as e:
        raise CausetteError(f"{path}: not a readable CoNLL-U file ({e})") from None


def _sentences(lines, path: Path) -> Iterator[Sentence]:
    comments: dict[str, str] = {}
    rows: list[tuple[int, list[str]]] = []
    start = 0
    number = 0
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\n").rstrip("\r")
        if not line.strip():
            if rows:
                yield _sentence(comments, rows, path, start)
            comments, rows, start = {}, [], 0
            continue
        start = start or number
        if line.startswith("#"):
            name, sep, value = line[1:].partition("=")
            if sep:
                comments.setdefault(name.strip(), value.strip())
            continue
        cols = line.split("\t")
        if len(cols) != 10:
            raise CausetteError(f"{path}:{number}: expected 10 tab-separated columns, found {len(cols)}")
        rows.append((number, cols))
    if rows:
        yield _sentence(comments, rows, path, start)


def _sentence(comments: dict, rows: list, path: Path, start: int) -> Sentence:
    words: list[Word] = []
    token_end: dict[int, bool] = {}  # last word id of a multiword token → its SpaceAfter
    covered: set[int] = set()
    capital: set[int] = set()  # first words of a multiword token written with a capital (« Au »)
    for number, cols in rows:
        ident, form, lemma, upos, _xpos, feats, head, deprel, _deps, misc = cols
        misc_items = dict(item.partition("=")[::2] for item in misc.split("|")) if misc != "_" else {}
        space_after = misc_items.get("SpaceAfter") != "No"
        if "." in ident:
            continue  # empty node
        if "-" in ident:
            first, _, last = ident.partition("-")
            if not (first.isdigit() and last.isdigit() and int(first) < int(last)):
                raise CausetteError(f"{path}:{number}: bad multiword token id {ident!r}")
            token_end[int(last)] = space_after
            if form[:1].isupper():
                capital.add(int(first))
            covered.update(range(int(first), int(last)))
            continue
        if not ident.isdigit() or int(ident) != len(words) + 1:
            raise CausetteError(f"{path}:{number}: word id {ident!r} out of sequence (expected {len(words) + 1})")
        if not head.isdigit():
            raise CausetteError(f"{path}:{number}: HEAD {head!r} is not a word id")
        try:
            parsed = parse_feats(feats)
        except ValueError as e:
            raise CausetteError(f"{path}:{number}: {e}") from None
        word_id = int(ident)
        if word_id in capital and form[:1].islower():
            form = form[0].upper() + form[1:]  # GSD writes « Au » as the words « à le »
        if word_id in covered:
            space_after = True  # inside a contraction: detokenize joins it to the next word by rule
        elif word_id in token_end:
            space_after = token_end[word_id]
        lower = misc_items.get("wordform") or form.lower()
        words.append(Word(word_id, form, lemma, upos, parsed, int(head), deprel, space_after, lower, misc_items))
    for number, cols in rows:
        if "-" not in cols[0] and "." not in cols[0] and int(cols[6]) > len(words):
            raise CausetteError(f"{path}:{number}: HEAD {cols[6]} is past the last word ({len(words)})")
    if "text" not in comments:
        raise CausetteError(f"{path}:{start}: sentence without a '# text =' line")
    sent_id = comments.get("sent_id") or f"line{start}"
    return Sentence(sent_id, comments["text"], tuple(words), path.name, start)


def _contracted(first: str, second: str, second_upos: str) -> str | None:
    """``du`` for (``de``, ``le`` DET), ``Aux`` for (``À``, ``les`` DET)…; None when the two stay apart."""
    low = first.lower()
    joined = CONTRACTIONS.get(("à" if low == "a" else low, second))  # « A les » at the start: Aux
    if joined is None or _SECOND_UPOS[second] != second_upos:
        return None
    if first.isupper() and len(first) > 1:
        return joined.upper()
    return joined[0].upper() + joined[1:] if first[0].isupper() else joined


def detokenize(words: Sequence[tuple[str, str, bool]]) -> str:
    """The text of a sentence from its words, each ``(form, upos, space_after)``.

    ``de``/``à`` (ADP) followed by the article ``le``/``les`` (DET) or by ``lequel``/``lesquels``/
    ``lesquelles`` (PRON) are written as one word (``du``, ``aux``, ``auquel``); a word is followed by
    a space unless its ``space_after`` is false (elisions such as ``l'``, punctuation the treebank
    glues). The article must be written in lower case to be contracted: ``de Le Monde`` stays apart.
    """
    out: list[str] = []
    i = 0
    while i < len(words):
        form, upos, space = words[i]
        if upos == "ADP" and i + 1 < len(words):
            nxt_form, nxt_upos, nxt_space = words[i + 1]
            joined = _contracted(form, nxt_form, nxt_upos) if nxt_form in _SECOND_UPOS else None
            if joined is not None:
                form, space = joined, nxt_space
                i += 1
        out.append(form)
        if space and i + 1 < len(words):
            out.append(" ")
        i += 1
    return "".join(out)


def sentence_text(sentence: Sentence, replace: dict[int, tuple[str, bool]] | None = None) -> str:
    """:func:`detokenize` of a sentence's words, ``replace`` giving some words (by id) a new
    ``(form, space_after)``."""
    replace = replace or {}
    return detokenize([(replace[w.id][0], w.upos, replace[w.id][1]) if w.id in replace else (w.form, w.upos, w.space_after)
                       for w in sentence.words])
