"""``chercher``: BM25 over the user's own texts, passages of at most 300 characters.

The texts are the ``.txt`` and ``.md`` files under the context's roots (``$CAUSETTE_NOTES_DIR``),
else the demo corpus shipped with the package. Each file is cut into passages: blocks separated
by a blank line; a block whose lines are long (a novel written one paragraph per line) gives
one passage per line, a long block of short lines is cut into pieces of about 800 characters;
then a passage shorter than 250 characters (a title, a line of dialogue) is joined to the next,
so that passages have comparable lengths.

Words are lower-cased, their accents folded (``été`` and ``ete`` match), a final plural ``s`` or
``x`` dropped, and the French stop words (``le``, ``de``, ``qui``...) and single letters left
out. A passage's score for a query is BM25 (Robertson and Spärck Jones; k1 = 1.5, b = 0.75)::

    score = Σ_t idf(t) · f(t) · (k1 + 1) / (f(t) + k1 · (1 − b + b · len / avglen))
    idf(t) = ln(1 + (N − n(t) + 0.5) / (n(t) + 0.5))

with ``f(t)`` the count of the query's word ``t`` in the passage, ``len`` its number of words,
``N`` the number of passages and ``n(t)`` those that contain ``t``. The index is built the first
time it is needed and kept in memory for the process, as long as the files stay the same.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from causette.tools.schema import ToolError
from causette.utils.paths import DEMO_CORPUS
from causette.utils.text import valid_unicode

K1, B = 1.5, 0.75
MAX_RESULTS = 3
EXCERPT = 300
SUFFIXES = (".txt", ".md", ".txt.gz", ".md.gz")
MAX_FILE_BYTES = 20_000_000  # larger files are left out of the index
LONG_LINE = 200  # a block with a line this long is one paragraph per line
PIECE = 800  # a block of short lines is cut into pieces of about this many characters
SHORT = 250  # a shorter paragraph is joined to the next

STOP_WORDS = frozenset("""
a ai aie aient ait alors as au aucun aussi autre aux avec avez avoir avons ayant c ce ceci cela celle celles celui
ces cet cette ceux chaque ci comme comment d dans de des du donc dont elle elles en encore es est et etaient etait
etant ete etes etre eu eux fait faut il ils j je jusqu l la le les leur leurs lui m ma mais me meme mes moi mon n
ne ni nos notre nous on ont ou par pas peu peut plus pour pourquoi qu quand que quel quelle quelles quels qui quoi
s sa sans se ses si sien son sont sous suis sur t ta te tes toi ton tous tout toute toutes tres tu un une vos
votre vous y etc avait avais avaient sera serait seront soit sont ceux-ci voici voila
""".split())

_WORD = re.compile(r"\w+")


def plain(word: str) -> str:
    """``Été`` → ``ete``, ``Cœurs`` → ``coeurs``: lower case, accents folded."""
    word = unicodedata.normalize("NFKD", word.lower().replace("œ", "oe").replace("æ", "ae"))
    return "".join(c for c in word if not unicodedata.combining(c))


def words(text: str) -> list[tuple[str, int, int]]:
    """``(term, start, end)`` of each word of ``text`` that counts: stop words and single letters
    left out, then a final plural ``s`` or ``x`` dropped (``coeurs`` → ``coeur``)."""
    out = []
    for m in _WORD.finditer(text):
        word = plain(m.group(0))
        if len(word) > 1 and word not in STOP_WORDS:
            out.append((word[:-1] if len(word) > 3 and word[-1] in "sx" else word, m.start(), m.end()))
    return out


def terms(text: str) -> list[str]:
    return [t for t, _, _ in words(text)]


@dataclass(frozen=True)
class Passage:
    source: str
    text: str


def passages_of(text: str) -> list[str]:
    """The passages of one file (see the module's docstring): its paragraphs, the short ones
    (a line of dialogue, a title) joined to the next until they make ``SHORT`` characters."""
    out: list[str] = []
    current = ""
    for unit in _paragraphs(text):
        current = f"{current} {unit}" if current else unit
        if len(current) >= SHORT:
            out.append(current)
            current = ""
    if current:
        out.append(current)
    return out


def _paragraphs(text: str):
    for block in re.split(r"\n[ \t]*\n", text):
        lines = [" ".join(line.split()) for line in block.splitlines()]
        lines = [line for line in lines if line]
        if not lines:
            continue
        if max(map(len, lines)) >= LONG_LINE:  # one paragraph per line
            yield from lines
            continue
        piece: list[str] = []
        for line in lines:  # a block of short lines (verse, a wrapped paragraph), cut when very long
            piece.append(line)
            if sum(map(len, piece)) >= PIECE:
                yield " ".join(piece)
                piece = []
        if piece:
            yield " ".join(piece)


class Index:
    """BM25 over a list of passages: an inverted index, ``term → [(passage, count)]``."""

    def __init__(self, passages: list[Passage]):
        self.passages: list[Passage] = []
        self.lengths: list[int] = []
        self.postings: dict[str, list[tuple[int, int]]] = {}
        for passage in passages:
            counts = Counter(terms(passage.text))
            if not counts:
                continue
            i = len(self.passages)
            self.passages.append(passage)
            self.lengths.append(sum(counts.values()))
            for term, n in counts.items():
                self.postings.setdefault(term, []).append((i, n))
        self.average = sum(self.lengths) / len(self.lengths) if self.lengths else 0.0

    def idf(self, term: str) -> float:
        n = len(self.postings.get(term, ()))
        return math.log(1 + (len(self.passages) - n + 0.5) / (n + 0.5))

    def search(self, query: str, k: int = MAX_RESULTS) -> list[tuple[float, Passage]]:
        """The ``k`` best passages for ``query`` with their score (none that shares no word with it)."""
        scores: dict[int, float] = {}
        for term in set(terms(query)):
            idf = self.idf(term)
            for i, n in self.postings.get(term, ()):
                norm = K1 * (1 - B + B * self.lengths[i] / self.average)
                scores[i] = scores.get(i, 0.0) + idf * n * (K1 + 1) / (n + norm)
        best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]
        return [(score, self.passages[i]) for i, score in best]


def excerpt(text: str, query_terms: set[str], width: int = EXCERPT) -> str:
    """At most ``width`` characters of ``text`` around the place where most of ``query_terms`` meet."""
    if len(text) <= width:
        return text
    starts = [s for t, s, _ in words(text) if t in query_terms] or [0]
    lead = width // 5

    def hits(p: int) -> int:
        begin = max(0, p - lead)
        return sum(begin <= s < begin + width - 2 for s in starts)

    begin = max(0, max(starts, key=lambda p: (hits(p), -p)) - lead)
    end = min(len(text), begin + width - 2)  # room for the two "…"
    if begin > 0 and " " in text[begin:end]:
        begin = text.index(" ", begin, end) + 1
    if end < len(text) and " " in text[begin:end]:
        end = text.rindex(" ", begin, end)
    return ("…" if begin > 0 else "") + text[begin:end].strip() + ("…" if end < len(text) else "")


# ----------------------------------------------------------------------------- the user's files

_CACHE: dict[tuple, Index] = {}
_CACHE_SIZE = 4
_PINNED: dict[int, tuple[tuple[Path, ...], Index]] = {}  # id(roots): (roots, their index)


def source_files(roots: tuple[Path, ...] | None) -> list[tuple[str, Path]]:
    """``(name shown, path)`` of every text to index: the files under ``roots``, else the demo corpus."""
    if roots is None:
        return [(DEMO_CORPUS.name, DEMO_CORPUS)]
    found = []
    for root in roots:
        if root.is_file():
            found.append((root.name, root))
        elif root.is_dir():
            for path in sorted(root.rglob("*")):
                relative = path.relative_to(root)
                if (path.is_file() and path.name.lower().endswith(SUFFIXES)
                        and not any(part.startswith(".") for part in relative.parts)):
                    found.append((relative.as_posix(), path))
        else:
            raise ToolError(f"Le dossier de textes {root} n'existe pas : vérifiez $CAUSETTE_NOTES_DIR.")
    return found


def read_text(path: Path) -> str:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        return valid_unicode(f.read())


def index_for(roots: tuple[Path, ...] | None) -> Index:
    """The index of ``roots``' texts: built once, rebuilt when a file is added, removed or changed
    (unless :func:`pinned`)."""
    pin = _PINNED.get(id(roots))
    if pin is not None and pin[0] is roots:
        return pin[1]
    files = source_files(roots)
    key = tuple((name, str(p), p.stat().st_mtime_ns, p.stat().st_size) for name, p in files)
    if key not in _CACHE:
        passages = []
        for name, path in files:
            if path.stat().st_size <= MAX_FILE_BYTES:
                passages.extend(Passage(name, text) for text in passages_of(read_text(path)))
        while len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = Index(passages)
    return _CACHE[key]


@contextlib.contextmanager
def pinned(roots: tuple[Path, ...]):
    """Inside ``with pinned(context.roots):``, the index of those roots is the one built on
    entering, without looking at the files again at each search: for texts that stay as they are
    meanwhile and are searched thousands of times (the generated SFT conversations), where checking
    every file each time would cost more than the search itself. What is pinned is that very tuple
    (the one a ToolContext holds), found at once without comparing or hashing its paths."""
    key = id(roots)
    _PINNED[key] = (roots, index_for(roots))
    try:
        yield
    finally:
        if _PINNED.get(key, (None,))[0] is roots:
            del _PINNED[key]


def search(query: str, roots: tuple[Path, ...] | None) -> dict:
    """The result of ``chercher``: ``{"passages": [{"source", "texte"}, ...]}``, the best first."""
    wanted = set(terms(query))
    if not wanted:
        raise ToolError("L'argument « requete » ne contient aucun mot à chercher (seulement des mots "
                        "trop courts ou trop fréquents, comme « le » ou « de »).")
    try:
        index = index_for(roots)
    except OSError as e:
        raise ToolError(f"Les textes à chercher n'ont pas pu être lus ({e.strerror or e}).") from None
    found = index.search(query)
    return {"passages": [{"source": p.source, "texte": excerpt(p.text, wanted)} for _, p in found]}
