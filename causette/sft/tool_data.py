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

**Results are the tools' own.** Every ``tool`` message is what :func:`causette.tools.run_tool`
returns for the call's arguments, in a context the generator builds (:class:`ToolFolder`, in a
temporary folder, never the user's data folder): the conversation's clock (a drawn moment) for
``date_heure``; a notes file that starts with the notes the conversation assumes, added by
``note_ajouter`` itself, so that the numbers of later notes follow; for ``chercher``, short
paragraphs of the demo novels, one per file, the query made of rare words of the one it must find,
which no other line of the corpus holds together (kept when the tool finds that passage first).
The generator only chooses what to keep: ``calculer`` expressions whose result reads like the
exact value, conversions that give a plain number. :func:`dialogues_with_scenes` also gives the
:class:`Scene` of each conversation, from which the same results can be computed again.

**Phrasings.** The requests come from causette/sft/tool_phrases.py: the ``eval`` split uses only
phrasings that ``train`` never uses, so its score measures the task, not the sentences; each eval
conversation carries ``"expected": {"name", "arguments"}`` (the last call), or ``null`` when no tool
should be called. Everything is drawn from one ``random.Random`` seeded by (split, seed): the same
arguments always give the same conversations, and the same bytes once written (gzip without date).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import random
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path

from causette.errors import CausetteError
from causette.sft import tool_phrases as P
from causette.sft.tool_material import (
    CALL,
    CORPORA,
    FRENCH,
    SEARCH_EMPTY,
    UNITS,
    Scene,
    ToolFolder,
    exact_value,
    french_number,
    library,
    memory_folder,
    quote,
    random_expression,
    random_moment,
    random_number,
    reads_exactly,
    render,
    search_query,
    shown_expression,
    spoken_time,
    unit_name,
    unit_symbol,
)
from causette.tools import ToolContext, openai_tools, run_tool
from causette.tools.context import NOTES_FILE
from causette.utils.io import atomic_write

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

# The built-in tools themselves (causette/tools): the conversations offer exactly what the chat
# and the server offer, names, descriptions and schemas.
TOOLS = openai_tools()

# ----------------------------------------------------------------------------- one exchange


@dataclass(frozen=True)
class Call:
    """One call of a built-in tool and its result: ``content`` is :func:`run_tool`'s JSON text, as is."""

    name: str
    arguments: dict
    content: str

    @property
    def result(self) -> dict:
        return json.loads(self.content)

    def function(self) -> dict:
        return {"name": self.name, "arguments": self.arguments}


@dataclass
class Turn:
    """One request and what follows it: a call and its result (or none), then the answer."""

    user: str
    answer: str
    call: Call | None = None


@dataclass
class Draw:
    """The random choices of one split, the tools' folder, and the state of the conversation being
    written (its notes, its clock, the texts it searches: a second call sees what the first left)."""

    rng: random.Random
    split: str
    folder: ToolFolder
    notes: list[str] | None = None  # the texts in the notes file (None: not drawn yet)
    assumed: tuple[str, ...] = ()  # the notes taken before the conversation
    now: datetime | None = None
    corpus: str = "works"
    search_empty: bool = False  # drawn once per conversation, before any redrawing for length
    contexts: dict[str, ToolContext] = field(default_factory=dict)

    def phrase(self, family: str) -> str:
        return self.rng.choice(P.PHRASES[family][self.split])

    def answer(self, family: str, **slots) -> str:
        return self.rng.choice(P.ANSWERS[family]).format(**slots)

    def new_conversation(self) -> None:
        self.notes, self.assumed, self.now, self.corpus = None, (), None, "works"
        (self.folder.data_dir / NOTES_FILE).unlink(missing_ok=True)

    def scene(self) -> Scene:
        return Scene(self.now, self.assumed, self.corpus)

    def current_notes(self) -> list[str]:
        """The notes' texts; the first time, the notes the conversation assumes are drawn and added."""
        if self.notes is None:
            self.notes = self.rng.sample(P.NOTES, self.rng.choice([0, 1, 1, 2, 2, 3, 4]))
            self.assumed = tuple(self.notes)
            for text in self.notes:
                self.call("note_ajouter", {"texte": text})
        return self.notes

    def clock(self) -> datetime:
        if self.now is None:
            self.now = random_moment(self.rng)
        return self.now

    def call(self, name: str, arguments: dict, may_fail: bool = False) -> Call:
        """The tool ``name`` run on ``arguments`` in this conversation's context (its clock is
        :meth:`clock`, drawn when the tool reads it); an erreur raises unless ``may_fail``."""
        if self.corpus not in self.contexts:
            self.contexts[self.corpus] = self.folder.context(self.corpus, self.clock)
        call = Call(name, arguments, run_tool(name, arguments, self.contexts[self.corpus]))
        if not may_fail and "erreur" in call.result:
            raise RuntimeError(f"{name} {arguments}: the tool answered {call.content}")
        return call


# ----------------------------------------------------------------------------- calculer

CALC_FAMILIES = {"calc.expr": 45, "calc.story": 15, "calc.percent": 6, "calc.sqrt": 6, "calc.round": 7,
                 "calc.power": 7, "calc.remainder": 5, "calc.quotient": 5, "calc.abs": 4}


def _calc_expr(d: Draw) -> Turn:
    while True:
        e = random_expression(d.rng)
        call = d.call("calculer", {"expression": render(e, CALL)}, may_fail=True)  # 5/(3-3): an erreur
        if "erreur" not in call.result and reads_exactly(call.result["resultat"], exact_value(e)):
            break
    r = french_number(call.result["resultat"])
    user = d.phrase("calc.expr").format(e=shown_expression(d.rng, e))
    return Turn(user, d.answer("calc.expr", f=render(e, FRENCH, comma=True, space=True), r=r), call)


def _story_operands(rng: random.Random, how: str) -> tuple[str, str]:
    if how == "price":
        return str(rng.randint(2, 12)), random_number(rng, 0, 4, rng.choice([1, 2]))[1]
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
        call = d.call("calculer", {"expression": render(e, CALL)})
        if reads_exactly(call.result["resultat"], exact_value(e)):
            break
    slots = {"a": a.replace(".", ","), "b": b.replace(".", ","), "r": french_number(call.result["resultat"])}
    return Turn(template.format(**slots), answer.format(**slots), call)


def _calc_function(d: Draw, family: str) -> tuple[str, Fraction, dict]:
    """(expression of the call, its exact value, the slots of request and answer)."""
    rng = d.rng
    if family == "calc.sqrt":
        x = rng.randint(2, 100) ** 2 if rng.random() < 0.7 else rng.randint(2, 999)
        root = math.isqrt(x)
        exact = Fraction(root) if root * root == x else Fraction(math.sqrt(x))  # the float root is correctly rounded
        return f"racine({x})", exact, {"x": x}
    if family == "calc.round":
        n = rng.randint(0, 3)
        text = random_number(rng, 0, 999, n + 2)[1]  # n + 2 decimals, the last not 0: never a tie
        scaled = Fraction(text) * 10 ** n
        exact = Fraction(round(scaled), 10 ** n)
        call = f"arrondi({text}, {n})" if n else f"arrondi({text})"
        return call, exact, {"x": text.replace(".", ","), "prec": rng.choice(P.ROUNDING[n])}
    if family == "calc.power":
        a, b = (rng.randint(2, 30), rng.choice([2, 3])) if rng.random() < 0.5 else (rng.randint(2, 9), rng.randint(4, 10))
        pw = rng.choice(P.POWERS.get(b, [f"puissance {b}"]))
        return f"{a}**{b}", Fraction(a) ** b, {"a": a, "pw": pw}
    if family == "calc.abs":
        text = random_number(rng, 1, 999, rng.choice([0, 0, 1]))[1]
        return f"abs(-{text})", Fraction(text), {"x": "-" + text.replace(".", ",")}
    a, b = rng.randint(10, 999), rng.randint(2, 30)
    if family == "calc.remainder":
        return f"{a}%{b}", Fraction(a % b), {"a": a, "b": b}
    if family == "calc.quotient":
        return f"{a}//{b}", Fraction(a // b), {"a": a, "b": b}
    p, x = rng.choice([5, 10, 12, 15, 20, 25, 30, 40, 50, 75, rng.randint(1, 99)]), rng.randint(10, 2000)
    return f"{x}*{p}/100", Fraction(x * p, 100), {"p": p, "x": x}


def _calculer(d: Draw) -> Turn:
    family = d.rng.choices(list(CALC_FAMILIES), list(CALC_FAMILIES.values()))[0]
    if family == "calc.expr":
        return _calc_expr(d)
    if family == "calc.story":
        return _calc_story(d)
    while True:
        expression, exact, slots = _calc_function(d, family)
        call = d.call("calculer", {"expression": expression})
        if reads_exactly(call.result["resultat"], exact):
            break
    r = french_number(call.result["resultat"])
    return Turn(d.phrase(family).format(**slots), d.answer(family, r=r, **slots), call)


# ----------------------------------------------------------------------------- the other tools


def _date_heure(d: Draw) -> Turn:
    family = d.rng.choices(["date.day", "date.time", "date.both", "date.weekday", "date.year"], [30, 30, 20, 10, 10])[0]
    call = d.call("date_heure", {})  # the tool reads the conversation's clock
    date_text, hhmm = call.result["date"], call.result["heure"]
    weekday, *_, year = date_text.split()
    answer = d.answer(family, date=date_text, h=spoken_time(hhmm), weekday=weekday, year=year)
    return Turn(d.phrase(family), answer, call)


def _note_ajouter(d: Draw) -> Turn:
    notes = d.current_notes()
    text = d.rng.choice([n for n in P.NOTES if n not in notes])
    call = d.call("note_ajouter", {"texte": text})
    added = call.result
    notes.append(added["texte"])
    return Turn(d.phrase("note.add").format(t=text), d.answer("note.add", k=added["numero"], t=added["texte"]), call)


def _notes_lister(d: Draw) -> Turn:
    d.current_notes()  # the notes the conversation assumes, added before the listing
    call = d.call("notes_lister", {})
    notes = call.result["notes"]
    items = "\n".join(f"{n['numero']}. {n['texte']}" for n in notes)
    family = "note.list" if len(notes) > 1 else "note.list.one" if notes else "note.list.none"
    return Turn(d.phrase("note.list"), d.answer(family, n=len(notes), items=items), call)


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
        call = d.call("convertir", {"valeur": value, "de": source, "vers": target})
        r = call.result["valeur"]
        if r == 0 or 1e-3 <= abs(r) < 1e9:
            break
    v = french_number(value)
    slots = {"v": v, "u1": rng.choice([unit_symbol(source, value), unit_name(source, value)]),
             "u2": rng.choice([unit_symbol(target, 2), UNITS[target].plural]), "u2p": UNITS[target].plural}
    answer = d.answer("convert", v=v, s1=unit_symbol(source, value), r=french_number(r), s2=unit_symbol(target, r))
    return Turn(d.phrase("convert").format(**slots), answer, call)


def _chercher(d: Draw) -> Turn:
    """A search for rare words of one passage, kept when the tool finds that passage first (or, for
    one conversation in ten, a search for words no text holds)."""
    lib, rng = library(), d.rng
    if d.search_empty:
        q = rng.choice(P.NOTHING_FOUND)
        call = d.call("chercher", {"requete": q})
        if call.result["passages"]:
            raise RuntimeError(f"chercher {q!r} finds a passage: not a search that finds nothing")
        return Turn(d.phrase("search").format(q=q), d.answer("search.none", q=q), call)
    while True:
        index = rng.randrange(len(lib.passages))
        q = search_query(lib, rng, index)
        if not q:
            continue
        d.corpus = rng.choice(CORPORA)
        call = d.call("chercher", {"requete": q})
        found = call.result["passages"]
        if found and found[0]["texte"] == lib.passages[index][1]:
            break
    answer = d.answer("search", src=found[0]["source"], quote=quote(found[0]["texte"]))
    return Turn(d.phrase("search").format(q=q), answer, call)


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
            {"id": call_id, "type": "function", "function": turn.call.function()}]})
        out.append({"role": "tool", "tool_call_id": call_id, "name": turn.call.name, "content": turn.call.content})
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
        record["expected"] = turns[-1].call.function() if turns[-1].call else None
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
    return [record for record, _ in dialogues_with_scenes(n, seed, split, shares, system_share, max_tokens)]


def dialogues_with_scenes(n: int, seed: int = 0, split: str = "train", shares: dict | None = None,
                          system_share: float = SYSTEM_SHARE,
                          max_tokens: float | None = MAX_TOKENS) -> list[tuple[dict, Scene]]:
    """:func:`generate_dialogues`, each conversation with the :class:`Scene` its tools ran in. The
    tools run in a temporary folder, removed at the end (see :class:`ToolFolder`)."""
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
    out = []
    with tempfile.TemporaryDirectory(prefix="causette-outils-", dir=memory_folder()) as scratch, \
            contextlib.closing(ToolFolder(scratch)) as folder:
        d = Draw(rng, split, folder)
        for i, kind in enumerate(kinds):
            tool = singles.pop() if kind == "single" else rng.choice(MULTI_TURN_TOOLS) if kind == "multi_turn" else None
            with_system = rng.random() < system_share
            d.search_empty = rng.random() < SEARCH_EMPTY
            best = None
            for attempt in range(MAX_DRAWS):  # the second half without the system message, the shortest kept
                record = conversation(d, kind, tool, with_system and attempt < MAX_DRAWS // 2)
                size = estimated_tokens(record)
                if best is None or size < best[0]:
                    best = (size, record, d.scene())
                if max_tokens is None or size <= max_tokens:
                    break
            out.append(({"id": f"outils-{split}-{i:05d}", **best[1]}, best[2]))
    return out


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
