"""Tool use, measured: does a chat model call the right tool, with the right arguments, answer
with the result, and answer directly when no tool fits?

    evaluate_tools(model, tokenizer, n=300)   # held-out phrasings, greedy, constrained calls

The conversations come from the generator of tool data (causette/sft/tool_data.py) with
``split="eval"``: phrasing templates never used in training. For each one the model gets the
conversation up to the request, with the built-in tools offered as ``causette chat --tools``
offers them, and answers greedily, its calls constrained (causette/inference/constrain.py)
unless ``constrained=False``. Scored on the first message of its reply:

* **right tool**: the expected tool was called (requests that need one);
* **exact arguments**: ... with exactly the expected arguments (numbers compared as numbers,
  strings without case or surrounding blanks);
* **no-tool decision**: no call where none was expected (no tool needed, or a tool that does
  not exist: declined in words);
* **calls that parse**: JSON with a name and an object of arguments;
* **answer right, end to end**: the call was exact and, given the tool's true result, the
  model's next message states the values of that result that the reference answer states (the
  number computed or converted, the date or time asked, the note's number and text, the
  passage's source...). Requests that need no tool count as right when no call is made.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter

from causette.data.chat_template import render_chat
from causette.inference.constrain import TokenTrie, ToolCallProcessor
from causette.inference.engine import Engine
from causette.inference.sampling import SamplingParams
from causette.inference.tool_use import parse_tool_calls
from causette.sft.tool_data import generate_dialogues
from causette.sft.tool_material import french_number, spoken_time
from causette.utils.lang import num, tr

CALL_TOKENS = 96  # most tokens of the first message (a call is ~30)
ANSWER_TOKENS = 64  # most tokens of the answer after the result


def same(a, b) -> bool:
    """Whether two argument values are the same (numbers as numbers, text without case)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= 1e-9 * max(1.0, abs(b))
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    return a == b


def exact_arguments(got: dict, expected: dict) -> bool:
    return set(got) == set(expected) and all(same(got[k], v) for k, v in expected.items())


def _atoms(value) -> list[str]:
    """The ways a tool result's values may be written in an answer."""
    if isinstance(value, dict):
        out = [a for k, v in value.items() for a in _atoms(v)]
        if isinstance(value.get("heure"), str) and re.fullmatch(r"\d\d:\d\d", value["heure"]):
            out.append(spoken_time(value["heure"]))
        return out
    if isinstance(value, list):
        return [a for v in value for a in _atoms(v)]
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [french_number(value), str(value)]
    text = str(value)
    return [text] + text.split() + ([text[:24]] if len(text) > 24 else [])


def _says(text: str, atom: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(atom) + r"(?!\w)", text) is not None


def answer_keys(result: str, reference: str) -> list[str]:
    """The values of a tool's ``result`` (its JSON text) that the reference answer states."""
    try:
        value = json.loads(result)
    except json.JSONDecodeError:
        return []
    return sorted({a for a in _atoms(value) if a and _says(reference, a)})


def _first_reply(messages: list[dict]) -> int:
    """The index of the message the model must write: the call, or the direct answer."""
    for i, m in enumerate(messages):
        if m["role"] == "assistant" and (m.get("tool_calls") or i == len(messages) - 1):
            return i
    raise ValueError("a conversation without an assistant reply")


class _Asker:
    """Greedy replies of one model to rendered conversations, calls constrained or not."""

    def __init__(self, model, tokenizer, constrained: bool, decode: str = "fast"):
        self.engine = Engine(model, tokenizer, decode=decode)
        self.tok = tokenizer
        self.trie = TokenTrie(tokenizer) if constrained else None
        self.block = model.cfg.block_size

    def reply(self, messages: list[dict], tools: list[dict], most: int, calls: bool = True) -> str | None:
        ids = render_chat(self.tok, messages, add_generation_prompt=True, tools=tools)[0]
        room = self.block - len(ids) - 1
        if room < 24:
            return None
        processor = None
        if self.trie is not None:
            processor = ToolCallProcessor(self.tok, tools, self.trie, choice="auto" if calls else "none")
        params = SamplingParams(temperature=0, max_new_tokens=min(most, room), stop_token_ids=self.engine.special_ids)
        [g] = self.engine.generate([ids], params, processor=processor)
        return g.text


def _score_one(asker: _Asker, item: dict, counts: Counter, by_tool: dict[str, Counter]) -> None:
    messages = item["messages"]
    first = _first_reply(messages)
    text = asker.reply(messages[:first], item["tools"], CALL_TOKENS)
    if text is None:
        counts["too long"] += 1
        return
    _, calls = parse_tool_calls(text)
    expected = item.get("expected")
    counts[item["kind"]] += 1
    if expected is None:
        counts["no tool"] += 1
        counts["no-tool right"] += not calls
        return
    c = by_tool.setdefault(expected["name"], Counter())
    for counter in (counts, c):
        counter["asked"] += 1
    good = [call for call in calls if call.error is None]
    counts["any call"] += bool(calls)
    counts["parsed"] += bool(calls) and len(good) == len(calls)
    if not good or good[0].name != expected["name"]:
        return
    exact = exact_arguments(good[0].arguments, expected["arguments"])
    for counter in (counts, c):
        counter["right tool"] += 1
        counter["exact args"] += exact
    if exact and _answers_right(asker, item, first):
        counts["answer right"] += 1
        c["answer right"] += 1


def _answers_right(asker: _Asker, item: dict, first: int) -> bool:
    """Given the true result of its (exact) call, does the model's answer state it?"""
    messages = item["messages"]
    results = [m for m in messages[first + 1:] if m["role"] == "tool"]
    reference = next(m["content"] for m in messages[first + 1:] if m["role"] == "assistant")
    keys = [k for r in results for k in answer_keys(r["content"], reference)]
    end = first + 1 + len(results)
    text = asker.reply(messages[:end], item["tools"], ANSWER_TOKENS, calls=False)
    return text is not None and all(_says(text, k) for k in keys)


def evaluate_tools(model, tokenizer, n: int = 300, seed: int = 0, constrained: bool = True,
                   decode: str = "fast") -> dict:
    """The measures of the module docstring on ``n`` held-out conversations (``decode``: the
    engine's, causette/inference/engine.py)."""
    start = time.perf_counter()
    asker = _Asker(model, tokenizer, constrained, decode)
    counts: Counter = Counter()
    by_tool: dict[str, Counter] = {}
    for item in generate_dialogues(n, seed, split="eval"):
        _score_one(asker, item, counts, by_tool)
    asked, no_tool = counts["asked"], counts["no tool"]

    def share(k: str, of: int) -> float | None:
        return counts[k] / of if of else None

    return {
        "conversations": n, "seed": seed, "constrained": constrained,
        "asked": asked, "no_tool": no_tool, "too_long": counts["too long"],
        "right_tool": share("right tool", asked), "exact_arguments": share("exact args", asked),
        "answer_right": share("answer right", asked), "no_tool_right": share("no-tool right", no_tool),
        "parsed": share("parsed", counts["any call"]), "calls": counts["any call"],
        "tools": {name: {"asked": c["asked"], "right_tool": c["right tool"] / c["asked"],
                         "exact_arguments": c["exact args"] / c["asked"], "answer_right": c["answer right"] / c["asked"]}
                  for name, c in sorted(by_tool.items())},
        "seconds": round(time.perf_counter() - start, 1),
    }


def _pct(x: float | None, lang: bool = True) -> str:
    """A share as a percentage, with the decimal comma in French (``lang=False``: English)."""
    if x is None:
        return "—"
    text = f"{100 * x:.1f} %"
    return tr(text.replace(".", ","), text) if lang else text


def tools_table(result: dict) -> list[str]:
    """The measures as a Markdown table (the report's, docs/outils.md's), in the learner's language."""
    rows = [
        (tr("bon outil", "right tool"), result["right_tool"], result["asked"]),
        (tr("arguments exacts", "exact arguments"), result["exact_arguments"], result["asked"]),
        (tr("réponse juste (appel exact, résultat repris)", "answer right (exact call, result stated)"),
         result["answer_right"], result["asked"]),
        (tr("bonne décision sans outil", "right no-tool decision"), result["no_tool_right"], result["no_tool"]),
        (tr("appels lisibles", "calls that parse"), result["parsed"], result["calls"]),
    ]
    lines = [tr("| mesure | part | sur |", "| measure | share | of |"), "|---|---:|---:|"]
    lines += [f"| {name} | {_pct(x)} | {of} |" for name, x, of in rows]
    lines += ["", tr("| outil | demandes | bon outil | arguments exacts | réponse juste |",
                     "| tool | requests | right tool | exact arguments | answer right |"), "|---|---:|---:|---:|---:|"]
    lines += [f"| `{name}` | {t['asked']} | {_pct(t['right_tool'])} | {_pct(t['exact_arguments'])} | "
              f"{_pct(t['answer_right'])} |" for name, t in result["tools"].items()]
    return lines


def format_tools(result: dict) -> list[str]:
    """One line for ``causette eval``."""
    def pct(k: str) -> str:
        return _pct(result[k], lang=False)

    return [f"tools: right tool {pct('right_tool')}, exact arguments {pct('exact_arguments')}, answer right "
            f"{pct('answer_right')} of {result['asked']} requests; no-tool decision right {pct('no_tool_right')} "
            f"of {result['no_tool']} ({result['seconds']} s)"]


def tools_section(result: dict | None) -> list[str]:
    """The report's « Outils » section (empty without a measure)."""
    if not result:
        return []
    how = tr("contraints", "constrained") if result.get("constrained") else tr("libres", "free")
    lines = [tr("## Outils", "## Tools"), "",
             tr(f"{result['conversations']} conversations aux tournures jamais vues à l'entraînement (seed "
                f"{result['seed']}), réponses gloutonnes, appels {how} ; {num(result['seconds'], '.1f')} s. Le détail des "
                "mesures : docs/outils.md.",
                f"{result['conversations']} conversations with phrasings never seen in training (seed "
                f"{result['seed']}), greedy replies, {how} calls; {result['seconds']} s. What each measure "
                "means: docs/outils.md."), "", *tools_table(result), ""]
    return lines
