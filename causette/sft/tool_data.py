"""Conversations in which Causette uses its tools: SFT data written by a program (no torch here).

    generate_dialogues(2000, seed=0)                 → training conversations
    generate_dialogues(300, seed=0, split="eval")    → held-out phrasings, each with its expected call
    causette sft tool-data --out outils.jsonl.gz --n 2000 --seed 0 [--split eval]
    sft.tool_data: 2000 (configs/assistant.yaml)    → generated into runs/<name>/sft/ and mixed in

A conversation follows the OpenAI chat format, with the arguments of a call as a JSON object::

    {"messages": [{"role": "user", "content": "Combien font 17 × 23 ?"},
                  {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function",
                   "function": {"name": "calculer", "arguments": {"expression": "17*23"}}}]},
                  {"role": "tool", "tool_call_id": "call_1", "name": "calculer", "content": "{\\"resultat\\": 391}"},
                  {"role": "assistant", "content": "17 × 23 = 391."}],
     "tools": [...the six built-in tools...], "id": "outils-train-00000", "kind": "single", "task": "calculer"}

**Kinds** (shares in :data:`DEFAULT_SHARES`, changed with ``shares=``): ``single``, one call, its
result, then a French answer that uses it; ``no_tool``, a request answered directly (small talk,
general questions, capitals, rewriting a sentence) although the tools are offered; ``unknown_tool``,
a request for a tool that does not exist (send an e-mail, play music…) declined politely; and
``multi_turn``, an earlier exchange (small talk, a question or another call), then a call.
Conversations are kept short for the demo model's 256 tokens (:data:`MAX_TOKENS`).

**Results are the tools' own.** Each result is what the built-in tool returns for those arguments
(the shared contract): ``calculer`` is evaluated here with Python's arithmetic on the very
expression of the call, and only expressions whose value is known exactly are kept (Python's float
must read like the exact value, int or float alike); ``convertir`` computes exactly with the factors
of the table below, 6 significant digits, an int when whole (values too close to a rounding tie
are drawn again); ``date_heure`` reads a drawn moment; ``notes_lister`` lists the notes of the
conversation (those drawn before it, plus any the conversation added); ``chercher`` returns
paragraphs of the demo corpus, the query made of rare words of the one it must find, which no
other line of the corpus holds together.

**Phrasings.** The requests come from causette/sft/tool_phrases.py: the ``eval`` split uses only
phrasings that ``train`` never uses, so its score measures the task, not the sentences; each eval
conversation carries ``"expected": {"name", "arguments"}`` (the last call), or ``null`` when no tool
should be called. Everything is drawn from one ``random.Random`` seeded by (split, seed): the same
arguments always give the same conversations, and the same bytes once written (gzip without date).
"""

from __future__ import annotations

import functools
import gzip
import json
import math
import random
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from pathlib import Path

from causette.errors import CausetteError
from causette.sft import tool_phrases as P
from causette.sft.demo import NOVEL, WORKS
from causette.tools import openai_tools
from causette.utils.io import atomic_write
from causette.utils.paths import DEMO_CORPUS

KINDS = ("single", "no_tool", "unknown_tool", "multi_turn")
DEFAULT_SHARES = {"single": 0.6, "no_tool": 0.2, "unknown_tool": 0.1, "multi_turn": 0.1}
SPLITS = ("train", "eval")
TOOL_NAMES = ("calculer", "date_heure", "note_ajouter", "notes_lister", "convertir", "chercher")
SHORT_RESULTS = ("calculer", "date_heure", "note_ajouter", "convertir")  # earlier calls of a multi-turn conversation
# The last call of a multi-turn conversation: not chercher, whose passages leave no room for an
# earlier exchange in 256 tokens.
MULTI_TURN_TOOLS = ("calculer", "date_heure", "note_ajouter", "notes_lister", "convertir")
SYSTEM_SHARE = 0.2  # conversations that open with a short system message
# The demo model reads 256 tokens. A conversation is drawn again while its estimated length is over
# MAX_TOKENS: tokens of the demo tokenizer (4,096 BPE) with the chat template's one-line list of the
# built-in tools, fitted on 3,000 conversations (letters, digits and JSON signs, spaces, messages,
# the fixed part); within 30 tokens of the real count, so that none passes 256. Drawing again
# favours the shorter forms a little (fewer notes in a listing, an earlier exchange without a call).
MAX_TOKENS = 240
TOKEN_ESTIMATE = (0.3, 1.3, 0.37, 5.5, 59)
MAX_DRAWS = 50
TOOL_DATA_FILE = "tool_data.jsonl.gz"  # where sft.tool_data writes its conversations, in runs/<name>/sft/

# Passages that chercher returns: whole paragraphs of the demo novels, short enough for a
# 256-token context (the contract allows 300 characters; we keep them well under).
PASSAGE_CHARS = (40, 90)
QUOTE_CHARS = 40  # the answer quotes the start of the passage
RARE = 30  # a query word appears in at most this many lines of the corpus
SEARCH_EMPTY = 0.1  # searches that find nothing


# The built-in tools themselves (causette/tools): the conversations offer exactly what the chat
# and the server offer, names, descriptions and schemas.
TOOLS = openai_tools()

# ----------------------------------------------------------------------------- numbers


def calc_result(x: float) -> float:
    """The number ``calculer`` returns: an int when integral and below 1e15, else 10 significant digits."""
    if float(x).is_integer() and abs(x) < 1e15:
        return int(x)
    return float(f"{x:.10g}")


def convert_result(x: float | Fraction) -> float:
    """The number ``convertir`` returns: 6 significant digits, an int when that is whole (as calculer)."""
    rounded = float(f"{float(x):.6g}")
    return int(rounded) if rounded.is_integer() and abs(rounded) < 1e15 else rounded


def french_number(x: float | Fraction) -> str:
    """``3.5`` → ``3,5``; ``5000.0`` → ``5000`` (decimal comma, no thousands separator)."""
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


def python_value(e: tuple) -> float:
    """What Python computes for the call's expression (ints stay ints, ``/`` is a float division)."""
    if e[0] == "n":
        return float(e[1]) if "." in e[1] else int(e[1])
    if e[0] == "neg":
        return -python_value(e[1])
    return OPS[e[0]](python_value(e[1]), python_value(e[2]))


def exact_value(e: tuple) -> Fraction:
    if e[0] == "n":
        return Fraction(e[1])
    if e[0] == "neg":
        return -exact_value(e[1])
    return Fraction(OPS[e[0]](exact_value(e[1]), exact_value(e[2])))


def known(value: float, exact: Fraction) -> bool:
    """A result worth training on: written without an exponent, and the float Python gives reads
    like the exact value, type included. ``66.4*85`` is ``5644.000000000001`` for Python: kept,
    it would be ``5644.0`` or ``5644`` depending on whether a tool rounds before or after it
    checks for an integer, so it is left out."""
    if not math.isfinite(value) or abs(value) >= 1e12 or (value and abs(value) < 1e-3):
        return False
    ours, exact_one = calc_result(value), calc_result(float(exact))
    return ours == exact_one and type(ours) is type(exact_one) and type(calc_result(float(f"{value:.10g}"))) is type(ours)


def _number(rng: random.Random, low: int, high: int, decimals: int = 0) -> tuple:
    """A number ("n", text): an int in [low, high], or with ``decimals`` places (the last not 0)."""
    if not decimals:
        return ("n", str(rng.randint(low, high)))
    digits = "".join(str(rng.randint(0, 9)) for _ in range(decimals - 1)) + str(rng.randint(1, 9))
    return ("n", f"{rng.randint(low, high)}.{digits}")


def _binary(rng: random.Random, op: str) -> tuple:
    if op == "*":
        return (op, _number(rng, 2, 999), _number(rng, 2, 99))
    if op == "/":
        b = rng.randint(2, 50)
        if rng.random() < 0.25:  # a division that does not fall right: a decimal result
            return (op, _number(rng, 10, 999), ("n", str(rng.choice([2, 3, 4, 5, 6, 8, 10]))))
        return (op, ("n", str(b * rng.randint(2, 400))), ("n", str(b)))
    return (op, _number(rng, 2, 9999), _number(rng, 2, 9999))


def random_expression(rng: random.Random) -> tuple:
    """One arithmetic expression of a few shapes: two numbers, decimals, three numbers, a minus sign, a power."""
    shape = rng.choices(["two", "decimal", "three", "neg", "pow"], [50, 15, 20, 10, 5])[0]
    if shape == "two":
        return _binary(rng, rng.choice("+-*/"))
    if shape == "decimal":
        d = rng.choice([1, 1, 2])
        return (rng.choice("+-*"), _number(rng, 0, 99, d), _number(rng, 1, 99, rng.choice([0, d])))
    if shape == "pow":
        a = rng.randint(2, 12)
        return ("**", ("n", str(a)), ("n", str(rng.randint(2, int(11 / math.log10(a + 1))))))
    nums = [_number(rng, 2, 99) for _ in range(3)]
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
    dimension: str
    factor: float | Fraction  # in the dimension's base unit (m, g, L, m/s, s); temperatures are converted apart
    singular: str
    plural: str
    named: bool = False  # the answer writes its name (« 3 pieds »), not its symbol


UNITS = {
    "km": Unit("length", 1000, "kilomètre", "kilomètres"), "m": Unit("length", 1, "mètre", "mètres"),
    "cm": Unit("length", 0.01, "centimètre", "centimètres"), "mm": Unit("length", 0.001, "millimètre", "millimètres"),
    "mi": Unit("length", 1609.344, "mile", "miles", True), "pied": Unit("length", 0.3048, "pied", "pieds", True),
    "pouce": Unit("length", 0.0254, "pouce", "pouces", True),
    "kg": Unit("mass", 1000, "kilogramme", "kilogrammes"), "g": Unit("mass", 1, "gramme", "grammes"),
    "mg": Unit("mass", 0.001, "milligramme", "milligrammes"), "lb": Unit("mass", 453.59237, "livre", "livres"),
    "oz": Unit("mass", 28.349523125, "once", "onces"),
    "L": Unit("volume", 1, "litre", "litres"), "mL": Unit("volume", 0.001, "millilitre", "millilitres"),
    "cL": Unit("volume", 0.01, "centilitre", "centilitres"), "gal": Unit("volume", 3.785411784, "gallon", "gallons", True),
    "km/h": Unit("speed", Fraction(1000, 3600), "kilomètre par heure", "kilomètres par heure"),
    "m/s": Unit("speed", 1, "mètre par seconde", "mètres par seconde"),
    "mph": Unit("speed", 0.44704, "mile par heure", "miles par heure"),
    "h": Unit("time", 3600, "heure", "heures"), "min": Unit("time", 60, "minute", "minutes"),
    "s": Unit("time", 1, "seconde", "secondes"), "jour": Unit("time", 86400, "jour", "jours", True),
    "°C": Unit("temperature", 0, "degré Celsius", "degrés Celsius"),
    "°F": Unit("temperature", 0, "degré Fahrenheit", "degrés Fahrenheit"),
    "K": Unit("temperature", 0, "kelvin", "kelvins"),
}


def _exact(x: float | Fraction) -> Fraction:
    return x if isinstance(x, Fraction) else Fraction(repr(x))  # a factor or value as written: 0.3048, 2.5


def convert(value: float, source: str, target: str) -> Fraction:
    """``value`` in ``source`` expressed in ``target``, exactly (the factors as written in decimal)."""
    a, b = UNITS[source], UNITS[target]
    if a.dimension != b.dimension:
        raise ValueError(f"cannot convert {source} to {target}")
    v = _exact(value)
    if a.dimension != "temperature":
        return v * _exact(a.factor) / _exact(b.factor)
    zero = Fraction("273.15")
    celsius = {"°C": v, "°F": (v - 32) * Fraction(5, 9), "K": v - zero}[source]
    return {"°C": celsius, "°F": celsius * Fraction(9, 5) + 32, "K": celsius + zero}[target]


def clear_of_ties(x: Fraction) -> bool:
    """``x`` does not sit (within a relative 1e-9) on a tie of its 6-digit rounding: any
    implementation of convertir, exact or in floats, rounds it the same way."""
    return convert_result(x * (1 + Fraction(1, 10 ** 9))) == convert_result(x * (1 - Fraction(1, 10 ** 9)))


def unit_name(unit: str, value: float) -> str:
    """The name of ``unit`` agreeing with ``value`` (French plural from 2: « 1,5 kilomètre », « 2 kilomètres »)."""
    return UNITS[unit].plural if abs(value) >= 2 else UNITS[unit].singular


def unit_symbol(unit: str, value: float) -> str:
    """How an answer writes ``unit`` after ``value``: its symbol, or its name for the named ones (pied, mile…)."""
    return unit_name(unit, value) if UNITS[unit].named else unit


# ----------------------------------------------------------------------------- dates

WEEKDAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre"]


def french_date(d: date) -> str:
    """``samedi 6 décembre 2026``."""
    return f"{WEEKDAYS[d.weekday()]} {d.day} {MONTHS[d.month - 1]} {d.year}"


def spoken_time(hhmm: str) -> str:
    """``14:05`` → ``14 h 05``; ``09:00`` → ``9 h``."""
    h, m = (int(x) for x in hhmm.split(":"))
    return f"{h} h {m:02d}" if m else f"{h} h"


def random_moment(rng: random.Random) -> datetime:
    """A moment between 2024 and 2030, never on the first of a month (« 1 » or « 1er »: the one
    spelling a tool could choose either way; the model copies the date it is given anyway)."""
    start = date(2024, 1, 1).toordinal()
    while True:
        d = date.fromordinal(rng.randint(start, date(2030, 12, 31).toordinal()))
        if d.day != 1:
            return datetime(d.year, d.month, d.day) + timedelta(minutes=rng.randrange(24 * 60))


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


# ----------------------------------------------------------------------------- one exchange


@dataclass
class Turn:
    """One request and what follows it: a call and its result (or none), then the answer."""

    user: str
    answer: str
    call: dict | None = None  # {"name": ..., "arguments": {...}}
    result: dict | None = None


@dataclass
class Draw:
    """The random choices of one split, and the state of the conversation being written (its notes
    and its clock: a second call in the same conversation sees what the first one left)."""

    rng: random.Random
    split: str
    notes: list[str] | None = None
    now: datetime | None = None
    search_empty: bool = False  # drawn once per conversation, before any redrawing for length

    def phrase(self, family: str) -> str:
        return self.rng.choice(P.PHRASES[family][self.split])

    def answer(self, family: str, **slots) -> str:
        return self.rng.choice(P.ANSWERS[family]).format(**slots)

    def new_conversation(self) -> None:
        self.notes, self.now = None, None

    def current_notes(self) -> list[str]:
        if self.notes is None:
            self.notes = self.rng.sample(P.NOTES, self.rng.choice([0, 1, 1, 2, 2, 3, 4]))
        return self.notes

    def clock(self) -> datetime:
        if self.now is None:
            self.now = random_moment(self.rng)
        return self.now


def call_turn(user: str, name: str, arguments: dict, result: dict, answer: str) -> Turn:
    return Turn(user, answer, {"name": name, "arguments": arguments}, result)


# ----------------------------------------------------------------------------- calculer

CALC_FAMILIES = {"calc.expr": 45, "calc.story": 15, "calc.percent": 6, "calc.sqrt": 6, "calc.round": 7,
                 "calc.power": 7, "calc.remainder": 5, "calc.quotient": 5, "calc.abs": 4}


def _calc_expr(d: Draw) -> Turn:
    while True:
        e = random_expression(d.rng)
        try:
            value, exact = python_value(e), exact_value(e)
        except ZeroDivisionError:
            continue
        if known(value, exact):
            break
    r = french_number(calc_result(value))
    user = d.phrase("calc.expr").format(e=shown_expression(d.rng, e))
    answer = d.answer("calc.expr", f=render(e, FRENCH, comma=True, space=True), r=r)
    return call_turn(user, "calculer", {"expression": render(e, CALL)},
                     {"resultat": calc_result(value)}, answer)


def _story_operands(rng: random.Random, how: str) -> tuple[str, str]:
    if how == "price":
        return str(rng.randint(2, 12)), _number(rng, 0, 4, rng.choice([1, 2]))[1]
    if how == "div":
        b = rng.randint(2, 12)
        return str(b * rng.randint(2, 40)), str(b)
    if how == "share":
        return str(rng.randint(10, 500)), str(rng.choice([2, 4, 5, 8, 10]))
    if how == "sub":
        a = rng.randint(20, 500)
        return str(a), str(rng.randint(1, a - 1))
    if how == "add":
        return str(rng.randint(5, 80)), str(rng.randint(1, 30))
    return str(rng.randint(2, 60)), str(rng.randint(2, 24))


def _calc_story(d: Draw) -> Turn:
    """A word problem: its own expression (``{a}*{b}``…) and its own answer."""
    while True:
        template, pattern, answer, how = d.rng.choice(P.STORIES[d.split])
        a, b = _story_operands(d.rng, how)
        first, op, second = re.fullmatch(r"\{(a|b)\}([-+*/])\{(a|b)\}", pattern).groups()
        operands = {"a": ("n", a), "b": ("n", b)}
        e = (op, operands[first], operands[second])
        value, exact = python_value(e), exact_value(e)
        if known(value, exact):
            break
    r = calc_result(value)
    slots = {"a": a.replace(".", ","), "b": b.replace(".", ","), "r": french_number(r)}
    return call_turn(template.format(**slots), "calculer", {"expression": render(e, CALL)}, {"resultat": r},
                     answer.format(**slots))


def _calc_function(d: Draw, family: str) -> tuple[str, float, Fraction, dict]:
    """(expression of the call, Python's value, the exact value, the slots of request and answer)."""
    rng = d.rng
    if family == "calc.sqrt":
        x = rng.randint(2, 100) ** 2 if rng.random() < 0.7 else rng.randint(2, 999)
        root = math.isqrt(x)
        exact = Fraction(root) if root * root == x else Fraction(math.sqrt(x))  # the float root is correctly rounded
        return f"racine({x})", math.sqrt(x), exact, {"x": x}
    if family == "calc.round":
        n = rng.randint(0, 3)
        text = _number(rng, 0, 999, n + 2)[1]  # n + 2 decimals, the last not 0: never a tie
        scaled = Fraction(text) * 10 ** n
        exact = Fraction(round(scaled), 10 ** n)
        call = f"arrondi({text}, {n})" if n else f"arrondi({text})"
        value = round(float(text), n) if n else round(float(text))
        return call, value, exact, {"x": text.replace(".", ","), "prec": rng.choice(P.ROUNDING[n])}
    if family == "calc.power":
        a, b = (rng.randint(2, 30), rng.choice([2, 3])) if rng.random() < 0.5 else (rng.randint(2, 9), rng.randint(4, 10))
        pw = rng.choice(P.POWERS.get(b, [f"puissance {b}"]))
        return f"{a}**{b}", a ** b, Fraction(a) ** b, {"a": a, "pw": pw}
    if family == "calc.abs":
        text = _number(rng, 1, 999, rng.choice([0, 0, 1]))[1]
        value = abs(-float(text) if "." in text else -int(text))
        return f"abs(-{text})", value, Fraction(text), {"x": "-" + text.replace(".", ",")}
    a, b = rng.randint(10, 999), rng.randint(2, 30)
    if family == "calc.remainder":
        return f"{a}%{b}", a % b, Fraction(a % b), {"a": a, "b": b}
    if family == "calc.quotient":
        return f"{a}//{b}", a // b, Fraction(a // b), {"a": a, "b": b}
    p, x = rng.choice([5, 10, 12, 15, 20, 25, 30, 40, 50, 75, rng.randint(1, 99)]), rng.randint(10, 2000)
    return f"{x}*{p}/100", x * p / 100, Fraction(x * p, 100), {"p": p, "x": x}


def _calculer(d: Draw) -> Turn:
    family = d.rng.choices(list(CALC_FAMILIES), list(CALC_FAMILIES.values()))[0]
    if family == "calc.expr":
        return _calc_expr(d)
    if family == "calc.story":
        return _calc_story(d)
    while True:
        call, value, exact, slots = _calc_function(d, family)
        if known(value, exact):
            break
    r = calc_result(value)
    return call_turn(d.phrase(family).format(**slots), "calculer", {"expression": call}, {"resultat": r},
                     d.answer(family, r=french_number(r), **slots))


# ----------------------------------------------------------------------------- the other tools


def _date_heure(d: Draw) -> Turn:
    family = d.rng.choices(["date.day", "date.time", "date.both", "date.weekday", "date.year"], [30, 30, 20, 10, 10])[0]
    now = d.clock()
    result = {"date": french_date(now.date()), "heure": now.strftime("%H:%M")}
    answer = d.answer(family, date=result["date"], h=spoken_time(result["heure"]),
                      weekday=WEEKDAYS[now.weekday()], year=now.year)
    return call_turn(d.phrase(family), "date_heure", {}, result, answer)


def _note_ajouter(d: Draw) -> Turn:
    notes = d.current_notes()
    text = d.rng.choice([n for n in P.NOTES if n not in notes])
    notes.append(text)
    result = {"ok": True, "numero": len(notes), "texte": text}
    return call_turn(d.phrase("note.add").format(t=text), "note_ajouter", {"texte": text}, result,
                     d.answer("note.add", k=len(notes), t=text))


def _notes_lister(d: Draw) -> Turn:
    notes = d.current_notes()
    items = "\n".join(f"{i}. {t}" for i, t in enumerate(notes, 1))
    family = "note.list" if len(notes) > 1 else "note.list.one" if notes else "note.list.none"
    result = {"notes": [{"numero": i, "texte": t} for i, t in enumerate(notes, 1)]}
    return call_turn(d.phrase("note.list"), "notes_lister", {}, result, d.answer(family, n=len(notes), items=items))


def _convert_value(rng: random.Random, unit: str) -> float:
    if unit in ("°C", "°F", "K"):
        low, high = {"°C": (-20, 40), "°F": (0, 110), "K": (250, 320)}[unit]
        return rng.randint(low, high)
    if rng.random() < 0.3:
        return round(rng.uniform(0.5, 100), 1)
    return rng.choice([rng.randint(1, 10), rng.randint(10, 100), rng.randint(100, 1000)])


def _convertir(d: Draw) -> Turn:
    rng = d.rng
    while True:
        dimension = rng.choice(sorted({u.dimension for u in UNITS.values()}))
        source, target = rng.sample([k for k, u in UNITS.items() if u.dimension == dimension], 2)
        value = _convert_value(rng, source)
        exact = convert(value, source, target)
        r = convert_result(exact)
        if (r == 0 or 1e-3 <= abs(r) < 1e9) and clear_of_ties(exact):
            break
    v = french_number(value)
    slots = {"v": v, "u1": rng.choice([unit_symbol(source, value), unit_name(source, value)]),
             "u2": rng.choice([unit_symbol(target, 2), UNITS[target].plural]), "u2p": UNITS[target].plural}
    answer = d.answer("convert", v=v, s1=unit_symbol(source, value), r=french_number(r), s2=unit_symbol(target, r))
    return call_turn(d.phrase("convert").format(**slots), "convertir", {"valeur": value, "de": source, "vers": target},
                     {"valeur": r, "unite": target}, answer)


def _chercher(d: Draw) -> Turn:
    lib, rng = library(), d.rng
    if d.search_empty:
        q = rng.choice(P.NOTHING_FOUND)
        return call_turn(d.phrase("search").format(q=q), "chercher", {"requete": q}, {"passages": []},
                         d.answer("search.none", q=q))
    while True:
        index = rng.randrange(len(lib.passages))
        q = search_query(lib, rng, index)
        if q:
            break
    found = [index]
    others = [i for i in lib.by_word[q.split()[0]] if i != index]
    if others and rng.random() < 0.1:
        found.append(rng.choice(others))
    # The texts searched: a folder of the user's files (one per work here), or, when none is set,
    # the demo corpus itself, which chercher names by its file name.
    shipped = rng.random() < 0.5
    passages = [{"source": DEMO_CORPUS.name if shipped else lib.passages[i][0], "texte": lib.passages[i][1]}
                for i in found]
    answer = d.answer("search", src=passages[0]["source"], quote=quote(passages[0]["texte"]))
    return call_turn(d.phrase("search").format(q=q), "chercher", {"requete": q}, {"passages": passages}, answer)


MAKERS = {"calculer": _calculer, "date_heure": _date_heure, "note_ajouter": _note_ajouter,
          "notes_lister": _notes_lister, "convertir": _convertir, "chercher": _chercher}


# ----------------------------------------------------------------------------- no call

OPENERS = ("Bonjour", "Salut", "Bonsoir", "Coucou", "Hello", "Qui es-tu", "Que sais-tu", "Comment vas-tu",
           "Qu'est-ce que tu peux", "Vous êtes là", "Quoi de neuf")


def de_country(country: str) -> str:
    """« de la France », « du Japon », « de l'Italie », « des Pays-Bas », « de Cuba »."""
    for article, contracted in (("le ", "du "), ("les ", "des ")):
        if country.startswith(article):
            return contracted + country[len(article):]
    return "de " + country


def elided_de(phrase: str) -> str:
    """« de passer », « d'envoyer »."""
    return ("d'" if phrase[0] in "aeiouyéèêh" else "de ") + phrase


def _no_tool(d: Draw, what: str | None = None) -> tuple[str, Turn]:
    """A request that needs no tool, answered directly: (sub-kind, turn)."""
    rng = d.rng
    what = what or rng.choices(["smalltalk", "question", "capital", "rewrite"], [30, 30, 20, 20])[0]
    if what in ("smalltalk", "opener"):
        pairs = P.SMALL_TALK[d.split]
        if what == "opener":
            pairs = [p for p in pairs if p[0].startswith(OPENERS)]
        return "smalltalk", Turn(*rng.choice(pairs))
    if what == "question":
        return what, Turn(*rng.choice(P.QUESTIONS[d.split]))
    if what == "capital":
        country, city = rng.choice(P.CAPITALS)
        de_c = de_country(country)
        return what, Turn(d.phrase("capital").format(de_c=de_c), d.answer("capital", de_c=de_c, cap=city))
    how = rng.choice(["upper", "lower", "quote", "repeat"])
    s = rng.choice(library().sentences)
    answer = {"upper": s.upper(), "lower": s.lower(), "quote": f"« {s} »", "repeat": s}[how]
    return "rewrite", Turn(d.phrase(f"rewrite.{how}").format(s=s), answer)


def _unknown_tool(d: Draw) -> Turn:
    pos, neg, request = d.rng.choice(P.UNKNOWN[d.split])
    return Turn(request, d.answer("unknown", pos=pos, neg=neg, de_pos=elided_de(pos)))


# ----------------------------------------------------------------------------- conversations


def turn_messages(turn: Turn, call_id: str) -> list[dict]:
    """The messages of one turn in the OpenAI chat format (arguments as an object)."""
    out = [{"role": "user", "content": turn.user}]
    if turn.call is not None:
        out.append({"role": "assistant", "content": "", "tool_calls": [
            {"id": call_id, "type": "function", "function": dict(turn.call)}]})
        out.append({"role": "tool", "tool_call_id": call_id, "name": turn.call["name"],
                    "content": json.dumps(turn.result, ensure_ascii=False)})
    out.append({"role": "assistant", "content": turn.answer})
    return out


def _turns(d: Draw, kind: str, tool: str | None) -> tuple[str, list[Turn]]:
    """The task name and the turns of one conversation of ``kind``."""
    if kind == "single":
        return tool, [MAKERS[tool](d)]
    if kind == "no_tool":
        task, turn = _no_tool(d)
        return task, [turn]
    if kind == "unknown_tool":
        return "unknown", [_unknown_tool(d)]
    first = d.rng.choices(["opener", "question", "tool"], [40, 25, 35])[0]
    if first == "tool":  # an earlier call with a short result (no listing, no passages)
        earlier = "note_ajouter" if tool == "notes_lister" and d.rng.random() < 0.5 else \
            d.rng.choice([t for t in SHORT_RESULTS if t != tool])
        return tool, [MAKERS[earlier](d), MAKERS[tool](d)]
    return tool, [_no_tool(d, first)[1], MAKERS[tool](d)]


def conversation(d: Draw, kind: str, tool: str | None, with_system: bool) -> dict:
    """One record: messages, the tools offered, its kind and task; ``expected``: its last call."""
    d.new_conversation()
    task, turns = _turns(d, kind, tool)
    messages = [{"role": "system", "content": d.rng.choice(P.SYSTEMS)}] if with_system else []
    calls = 0
    for turn in turns:
        calls += turn.call is not None
        messages += turn_messages(turn, f"call_{calls}")
    record = {"kind": kind, "task": task, "messages": messages, "tools": TOOLS}
    if d.split == "eval":
        record["expected"] = turns[-1].call
    return record


def estimated_tokens(record: dict) -> float:
    """About how many tokens of the demo tokenizer ``record`` takes once rendered (see MAX_TOKENS)."""
    texts = []
    for m in record["messages"]:
        for call in m.get("tool_calls") or []:
            texts.append(json.dumps({"name": call["function"]["name"], "arguments": call["function"]["arguments"]},
                                    ensure_ascii=False))
        texts.append(m["content"])
    text = "".join(texts)
    signs, spaces = len(re.findall(r"[\d{}\[\]\":,._]", text)), text.count(" ")
    letters = len(text) - signs - spaces
    per_letter, per_sign, per_space, per_message, fixed = TOKEN_ESTIMATE
    return per_letter * letters + per_sign * signs + per_space * spaces + per_message * len(texts) + fixed


def allocate(n: int, shares: dict[str, float]) -> dict[str, int]:
    """``n`` split by ``shares`` (largest remainders): exact counts, summing to ``n``."""
    total = sum(shares.values())
    raw = {k: n * v / total for k, v in shares.items()}
    counts = {k: int(x) for k, x in raw.items()}
    for k in sorted(raw, key=lambda k: counts[k] - raw[k])[: n - sum(counts.values())]:
        counts[k] += 1
    return counts


def check_shares(shares: dict | None) -> dict[str, float]:
    """``shares`` completed by the defaults; ValueError naming the bad kind or value."""
    out = dict(DEFAULT_SHARES)
    for k, v in (shares or {}).items():
        if k not in KINDS:
            raise ValueError(f"shares: unknown kind {k!r} (kinds: {', '.join(KINDS)})")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 or not math.isfinite(v):
            raise ValueError(f"shares.{k}: expected a number >= 0, got {v!r}")
        out[k] = float(v)
    if not sum(out.values()) > 0:
        raise ValueError("shares: at least one kind must have a share above 0")
    return out


def generate_dialogues(n: int, seed: int = 0, split: str = "train", shares: dict | None = None,
                       system_share: float = SYSTEM_SHARE, max_tokens: float | None = MAX_TOKENS) -> list[dict]:
    """``n`` tool-use conversations (module docstring): kinds in ``shares`` exactly (largest
    remainders), tools evenly among the single calls, in a seeded order; each drawn again (same
    kind, same tool) while its :func:`estimated_tokens` is over ``max_tokens`` (None: any length)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n: expected a whole number >= 0, got {n!r}")
    if split not in SPLITS:
        raise ValueError(f"split: expected train or eval, got {split!r}")
    if not 0 <= system_share <= 1:
        raise ValueError(f"system_share: expected a number between 0 and 1, got {system_share!r}")
    counts = allocate(n, check_shares(shares))
    rng = random.Random(f"causette-outils/{split}/{seed}")
    kinds = [k for k in KINDS for _ in range(counts[k])]
    rng.shuffle(kinds)
    singles = [t for t, c in allocate(counts["single"], dict.fromkeys(TOOL_NAMES, 1)).items() for _ in range(c)]
    rng.shuffle(singles)
    d = Draw(rng, split)
    records = []
    for i, kind in enumerate(kinds):
        tool = singles.pop() if kind == "single" else rng.choice(MULTI_TURN_TOOLS) if kind == "multi_turn" else None
        with_system = rng.random() < system_share
        d.search_empty = rng.random() < SEARCH_EMPTY
        best = None
        for attempt in range(MAX_DRAWS):  # the second half without the system message, the shortest kept
            record = conversation(d, kind, tool, with_system and attempt < MAX_DRAWS // 2)
            size = estimated_tokens(record)
            if best is None or size < best[0]:
                best = (size, record)
            if max_tokens is None or size <= max_tokens:
                break
        records.append({"id": f"outils-{split}-{i:05d}", **best[1]})
    return records


def write_tool_data(path: str | Path, n: int, seed: int = 0, split: str = "train", shares: dict | None = None) -> Counter:
    """Generate and write ``n`` conversations to ``path`` atomically (JSONL; ``.gz``: gzip without a
    date, so the same arguments give the same bytes); returns the count of each kind."""
    path = Path(path)
    if path.is_dir():
        raise CausetteError(f"{path}: is a directory; give a file name such as {path / 'outils.jsonl.gz'}")
    records = generate_dialogues(n, seed, split, shares)
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    with atomic_write(path, "wb") as raw:
        if path.suffix == ".gz":
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as z:
                z.write(data)
        else:
            raw.write(data)
    return Counter(r["kind"] for r in records)
