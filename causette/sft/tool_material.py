"""What the generated tool conversations are made of (causette/sft/tool_data.py builds them):
numbers written the French way, arithmetic expressions and how a request says them, units and
their names, spoken times and drawn moments, the passages of the demo novels that ``chercher``
must find and the rare words that ask for them, and :class:`ToolFolder` / :class:`Scene`, the
scratch context in which the real tools compute every result (never the user's data folder)."""

from __future__ import annotations

import contextlib
import functools
import gzip
import math
import os
import random
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from pathlib import Path

from causette.sft.demo import NOVEL, WORKS
from causette.tools import ToolContext, search
from causette.utils.paths import DEMO_CORPUS

# Passages that chercher returns: whole paragraphs of the demo novels, short enough for a
# 256-token context (the contract allows 300 characters; we keep them well under).
PASSAGE_CHARS = (40, 90)
QUOTE_CHARS = 40  # the answer quotes the start of the passage
RARE = 30  # a query word appears in at most this many lines of the corpus
SEARCH_EMPTY = 0.1  # searches that find nothing


# ----------------------------------------------------------------------------- numbers


def french_number(x: float) -> str:
    """A tool's number as an answer writes it: ``3.5`` → ``3,5`` (decimal comma, no thousands separator)."""
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    return str(x).replace(".", ",")


# ----------------------------------------------------------------------------- expressions

# An expression: ("n", "3.5") a number as the call writes it, ("neg", e), or (op, left, right).
PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "**": 3}
SYMBOLS = {"+": ["+"], "-": ["-"], "*": ["×", "*", "x"], "/": ["/", "÷"], "**": ["^", "**"]}
WORDS = {"+": ["plus"], "-": ["moins"], "*": ["fois", "multiplié par"], "/": ["divisé par"], "**": ["puissance"]}
FRENCH = {"+": "+", "-": "-", "*": "×", "/": "÷", "**": "^"}
CALL = {op: op for op in PRECEDENCE}  # the call writes Python's signs
OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b,
       "**": lambda a, b: a ** b}


def render(e: tuple, ops: dict[str, str], comma: bool = False, space: bool = False) -> str:
    """``e`` written with ``ops``' operator signs: parentheses where Python needs them, and always
    around a compound right operand (so that the call parses back into the same tree)."""
    if e[0] == "n":
        return e[1].replace(".", ",") if comma else e[1]
    if e[0] == "neg":
        return "-" + render(e[1], ops, comma, space)
    op, a, b = e
    left, right = render(a, ops, comma, space), render(b, ops, comma, space)
    if a[0] not in ("n", "neg") and PRECEDENCE[a[0]] < PRECEDENCE[op]:
        left = f"({left})"
    if b[0] != "n":
        right = f"({right})"
    sign = f" {ops[op]} " if space else ops[op]
    return left + sign + right


def exact_value(e: tuple) -> Fraction:
    """The value of ``e`` in exact arithmetic (to tell the results that read like it)."""
    if e[0] == "n":
        return Fraction(e[1])
    if e[0] == "neg":
        return -exact_value(e[1])
    return Fraction(OPS[e[0]](exact_value(e[1]), exact_value(e[2])))


def reads_exactly(r, exact: Fraction) -> bool:
    """A result worth training on: ``calculer``'s number ``r`` is written without an exponent and
    reads like the exact value, type included. ``66.4*85`` is 5644 exactly, but the tool answers
    ``5644.0`` (Python's float is ``5644.000000000001``): left out, and so is a float whose 10
    digits read as a whole number, an int once an answer writes it."""
    if isinstance(r, bool) or not isinstance(r, (int, float)) or abs(r) >= 1e12 or (r and abs(r) < 1e-3):
        return False
    if exact.denominator == 1:
        return type(r) is int and r == exact
    return type(r) is float and not r.is_integer() and r == float(f"{float(exact):.10g}")


def random_number(rng: random.Random, low: int, high: int, decimals: int = 0) -> tuple:
    """A number ("n", text): an int in [low, high], or with ``decimals`` places (the last not 0)."""
    if not decimals:
        return ("n", str(rng.randint(low, high)))
    digits = "".join(str(rng.randint(0, 9)) for _ in range(decimals - 1)) + str(rng.randint(1, 9))
    return ("n", f"{rng.randint(low, high)}.{digits}")


def _binary(rng: random.Random, op: str) -> tuple:
    if op == "*":
        return (op, random_number(rng, 2, 999), random_number(rng, 2, 99))
    if op == "/":
        b = rng.randint(2, 50)
        if rng.random() < 0.25:  # a division that does not fall right: a decimal result
            return (op, random_number(rng, 10, 999), ("n", str(rng.choice([2, 3, 4, 5, 6, 8, 10]))))
        return (op, ("n", str(b * rng.randint(2, 400))), ("n", str(b)))
    return (op, random_number(rng, 2, 9999), random_number(rng, 2, 9999))


def random_expression(rng: random.Random) -> tuple:
    """One arithmetic expression of a few shapes: two numbers, decimals, three numbers, a minus sign, a power."""
    shape = rng.choices(["two", "decimal", "three", "neg", "pow"], [50, 15, 20, 10, 5])[0]
    if shape == "two":
        return _binary(rng, rng.choice("+-*/"))
    if shape == "decimal":
        d = rng.choice([1, 1, 2])
        return (rng.choice("+-*"), random_number(rng, 0, 99, d), random_number(rng, 1, 99, rng.choice([0, d])))
    if shape == "pow":
        a = rng.randint(2, 12)
        return ("**", ("n", str(a)), ("n", str(rng.randint(2, int(11 / math.log10(a + 1))))))
    nums = [random_number(rng, 2, 99) for _ in range(3)]
    if shape == "neg":
        op = rng.choice("+-*")
        return (op, ("neg", nums[0]), nums[1]) if rng.random() < 0.5 else (op, nums[0], ("neg", nums[1]))
    op1, op2 = rng.choice("+-*/"), rng.choice("+-*")
    if rng.random() < 0.5:
        return (op2, (op1, nums[0], nums[1]), nums[2])
    return (op1, nums[0], (op2, nums[1], nums[2]))


def shown_expression(rng: random.Random, e: tuple) -> str:
    """``e`` as a user types it: signs (×, *, x, ÷…) or words for a single operation, comma or point."""
    comma = "." in render(e, FRENCH) and rng.random() < 0.8
    if e[0] in WORDS and e[1][0] == "n" and e[2][0] == "n" and rng.random() < 0.3:
        return render(e, {e[0]: rng.choice(WORDS[e[0]])}, comma, space=True)
    ops = {op: rng.choice(signs) for op, signs in SYMBOLS.items()}
    return render(e, ops, comma, space=rng.random() < 0.75 or ops["*"] == "x")


# ----------------------------------------------------------------------------- units

@dataclass(frozen=True)
class Unit:
    """How the requests and answers write a unit (``convertir`` itself knows its units and factors)."""

    dimension: str  # units of one dimension are drawn together
    singular: str
    plural: str
    named: bool = False  # the answer writes its name (« 3 pieds »), not its symbol


UNITS = {
    "km": Unit("length", "kilomètre", "kilomètres"), "m": Unit("length", "mètre", "mètres"),
    "cm": Unit("length", "centimètre", "centimètres"), "mm": Unit("length", "millimètre", "millimètres"),
    "mi": Unit("length", "mile", "miles", True), "pied": Unit("length", "pied", "pieds", True),
    "pouce": Unit("length", "pouce", "pouces", True),
    "kg": Unit("mass", "kilogramme", "kilogrammes"), "g": Unit("mass", "gramme", "grammes"),
    "mg": Unit("mass", "milligramme", "milligrammes"), "lb": Unit("mass", "livre", "livres"),
    "oz": Unit("mass", "once", "onces"),
    "L": Unit("volume", "litre", "litres"), "mL": Unit("volume", "millilitre", "millilitres"),
    "cL": Unit("volume", "centilitre", "centilitres"), "gal": Unit("volume", "gallon", "gallons", True),
    "km/h": Unit("speed", "kilomètre par heure", "kilomètres par heure"),
    "m/s": Unit("speed", "mètre par seconde", "mètres par seconde"),
    "mph": Unit("speed", "mile par heure", "miles par heure"),
    "h": Unit("time", "heure", "heures"), "min": Unit("time", "minute", "minutes"),
    "s": Unit("time", "seconde", "secondes"), "jour": Unit("time", "jour", "jours", True),
    "°C": Unit("temperature", "degré Celsius", "degrés Celsius"),
    "°F": Unit("temperature", "degré Fahrenheit", "degrés Fahrenheit"),
    "K": Unit("temperature", "kelvin", "kelvins"),
}


def unit_name(unit: str, value: float) -> str:
    """The name of ``unit`` agreeing with ``value`` (French plural from 2: « 1,5 kilomètre », « 2 kilomètres »)."""
    return UNITS[unit].plural if abs(value) >= 2 else UNITS[unit].singular


def unit_symbol(unit: str, value: float) -> str:
    """How an answer writes ``unit`` after ``value``: its symbol, or its name for the named ones (pied, mile…)."""
    return unit_name(unit, value) if UNITS[unit].named else unit


# ----------------------------------------------------------------------------- dates

def spoken_time(hhmm: str) -> str:
    """``14:05`` → ``14 h 05``; ``09:00`` → ``9 h``."""
    h, m = (int(x) for x in hhmm.split(":"))
    return f"{h} h {m:02d}" if m else f"{h} h"


def random_moment(rng: random.Random) -> datetime:
    """A moment between 2024 and 2030: the clock of a conversation (date_heure reads it)."""
    day = date.fromordinal(rng.randint(date(2024, 1, 1).toordinal(), date(2030, 12, 31).toordinal()))
    return datetime(day.year, day.month, day.day) + timedelta(minutes=rng.randrange(24 * 60))


# ----------------------------------------------------------------------------- the demo corpus

WORD = re.compile(r"[a-zàâäçéèêëîïôöùûüÿœæ]+")
STOP = {"comme", "alors", "leurs", "cette", "était", "avait", "elles", "aussi", "toute", "toutes", "quand",
        "avoir", "faire", "quelque", "encore", "depuis", "entre", "après", "avant", "point", "notre", "votre",
        "rien", "dans", "pour", "mais", "plus", "tout", "sans", "sous", "même", "très", "peut", "fait", "être"}


def file_name(title: str) -> str:
    """``Le Petit Chose`` → ``le_petit_chose.txt``."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_title.lower()).strip("_") + ".txt"


@dataclass
class Library:
    """The paragraphs of the demo novels: short ones are the passages chercher returns."""

    passages: list[tuple[str, str]] = field(default_factory=list)  # (file name, paragraph)
    words: list[list[str]] = field(default_factory=list)  # each passage's words, in order
    frequency: Counter = field(default_factory=Counter)  # in how many lines of the corpus a word is
    holders: dict[str, set[int]] = field(default_factory=dict)  # word → the lines of the corpus with it
    by_word: dict[str, list[int]] = field(default_factory=dict)  # word → passages with it
    sentences: list[str] = field(default_factory=list)  # short sentences, for rewriting requests


@functools.lru_cache(maxsize=2)
def library(corpus: Path = DEMO_CORPUS) -> Library:
    """Passages and sentences from the novels; word counts over every line of the corpus (plays
    and titles too: whatever a search reads)."""
    lib = Library()
    with gzip.open(corpus, "rt", encoding="utf-8") as f:
        text = f.read()
    for n, line in enumerate(text.split("\n")):
        for w in set(WORD.findall(line.lower())):
            lib.frequency[w] += 1
            lib.holders.setdefault(w, set()).add(n)
    for doc in text.split("\n\n\n"):
        head, _, body = doc.partition("\n")
        work = WORKS.get(head.strip())
        if work is None or work[2] != NOVEL:
            continue
        for line in body.partition("\n")[2].split("\n"):
            line = line.strip()
            if PASSAGE_CHARS[0] <= len(line) <= PASSAGE_CHARS[1] and line[-1] in ".!?»" and line[0].isupper():
                words = WORD.findall(line.lower())
                for w in set(words):
                    lib.by_word.setdefault(w, []).append(len(lib.passages))
                lib.passages.append((file_name(work[0]), line))
                lib.words.append(words)
            first = re.split(r"(?<=[.!?])\s", line)[0]
            if 25 <= len(first) <= 80 and first.endswith(".") and first[0].isupper() and "«" not in first:
                lib.sentences.append(first)
    return lib


def search_query(lib: Library, rng: random.Random, index: int) -> str | None:
    """One or two rare words of passage ``index`` that no other line of the corpus holds together (None: none)."""
    rare = [w for w in dict.fromkeys(lib.words[index]) if len(w) >= 5 and w not in STOP and lib.frequency[w] <= RARE]
    if not rare:
        return None
    k = min(len(rare), rng.choice([1, 2, 2]))
    for _ in range(4):
        chosen = sorted(rng.sample(rare, k), key=lib.words[index].index)
        if len(set.intersection(*(lib.holders[w] for w in chosen))) == 1:
            return " ".join(chosen)
    return None


def quote(text: str, limit: int = QUOTE_CHARS) -> str:
    """The start of ``text``, cut between words, with « … » when cut."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"


# ----------------------------------------------------------------------------- the tools' folder

CORPORA = ("works", "demo")  # how chercher names the texts it searches (see ToolFolder)


class ToolFolder:
    """What the built-in tools read and write while conversations are generated, under ``root``
    (a temporary folder, never the user's data folder): the notes, in ``donnees/notes.json``, and
    the texts ``chercher`` searches, the library's passages. The tool joins a paragraph shorter
    than 250 characters to the next, so each passage is a file of its own, and a root of the
    context: named after its work (``le_petit_chose.txt``, a folder of the user's texts) for the
    ``works`` corpus, or, as the tool names the shipped corpus when no folder is set, after the
    demo corpus (``demo_fr_pd.txt.gz``) for the ``demo`` one. Written on first use, then searched
    without the tool checking the files again (:func:`search.pinned`) until :meth:`close`."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.data_dir = self.root / "donnees"
        self._roots: dict[str, tuple[Path, ...]] = {}
        self._pins = contextlib.ExitStack()

    def close(self) -> None:
        """Unpin the texts (the folder itself belongs to whoever made it)."""
        self._pins.close()

    def roots(self, corpus: str) -> tuple[Path, ...]:
        """The files of ``corpus`` (one of :data:`CORPORA`), one passage each, in the library's order."""
        if corpus not in self._roots:
            paths = []
            for i, (work_file, text) in enumerate(library().passages):
                path = self.root / corpus / f"{i:04d}" / (DEMO_CORPUS.name if corpus == "demo" else work_file)
                path.parent.mkdir(parents=True, exist_ok=True)
                data = (text + "\n").encode("utf-8")  # a scratch folder of our own: plain writes
                path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)
                paths.append(path)
            self._roots[corpus] = tuple(paths)
        return self._roots[corpus]

    def context(self, corpus: str, clock) -> ToolContext:
        """The tools' context: this folder's notes and ``corpus``' texts (pinned), ``clock`` for the date."""
        context = ToolContext(self.data_dir, self.roots(corpus), clock=clock)
        self._pins.enter_context(search.pinned(context.roots))
        return context


def memory_folder() -> str | None:
    """Where the tools' scratch folder goes: ``/dev/shm``, in memory, where there is one (the notes
    tool syncs each write to the disk, thousands of times per run), else the usual temporary folder."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


@dataclass(frozen=True)
class Scene:
    """What the tools of one conversation start from: its clock's moment (None: never read), the
    notes already taken, the texts searched. The same calls in a context built from it (a fresh
    notes file with these notes added, ``clock`` returning ``moment``) give the same results."""

    moment: datetime | None = None
    notes: tuple[str, ...] = ()
    corpus: str = "works"
