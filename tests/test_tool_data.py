"""The generated tool-use conversations (causette/sft/tool_data.py): their shape, that every tool
result is what the tool returns for those arguments, held-out eval phrasings, shares, determinism.

Every result is checked twice: replayed with the built-in tools themselves (``run_tool`` in a
context built from the conversation's scene), and against the shared contract of issue 27, written
here and not taken from the generator nor the tools: the arguments' schema, Python's own arithmetic
for ``calculer``, a factor table of our own for ``convertir``, the calendar for ``date_heure``.
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import re
import subprocess
import sys
from collections import Counter
from datetime import date
from fractions import Fraction

import pytest
from helpers import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from causette.errors import CausetteError
from causette.sft import tool_data
from causette.sft import tool_phrases as P
from causette.sft.tool_data import (
    DEFAULT_SHARES,
    KINDS,
    MAX_TOKENS,
    TOOL_NAMES,
    TOOLS,
    dialogues_with_scenes,
    estimated_tokens,
    generate_dialogues,
    write_tool_data,
)
from causette.sft.tool_material import UNITS, ToolFolder, library
from causette.tools import ToolContext, run_tool
from causette.utils.paths import DEMO_CORPUS

# ----------------------------------------------------------------------------- the contract

ARGUMENTS = {"calculer": {"expression": str}, "date_heure": {}, "note_ajouter": {"texte": str}, "notes_lister": {},
             "convertir": {"valeur": (int, float), "de": str, "vers": str}, "chercher": {"requete": str}}
MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre"]
WEEKDAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
DATE = re.compile(rf"({'|'.join(WEEKDAYS)}) (1er|\d{{1,2}}) ({'|'.join(MONTHS)}) (\d{{4}})")  # « 1er » as in French
# convertir, from the definitions of the units: in metres, grams, litres, metres per second, seconds
FACTORS = {"km": 1e3, "m": 1, "cm": 1e-2, "mm": 1e-3, "mi": 1609.344, "pied": 0.3048, "pouce": 0.0254,
           "kg": 1e3, "g": 1, "mg": 1e-3, "lb": 453.59237, "oz": 453.59237 / 16,
           "L": 1, "mL": 1e-3, "cL": 1e-2, "gal": 231 * 0.0254 ** 3 * 1000,
           "km/h": 1 / 3.6, "m/s": 1, "mph": 1609.344 / 3600, "h": 3600, "min": 60, "s": 1, "jour": 86400}
KELVIN = {"°C": (1, 273.15), "°F": (5 / 9, 273.15 - 32 * 5 / 9), "K": (1, 0)}  # kelvins = a·x + b


def calculer(expression: str):
    """What the contract's calculer returns: Python's arithmetic, an int when integral."""
    value = eval(expression, {"__builtins__": {}}, {"racine": math.sqrt, "abs": abs, "arrondi": round})
    if float(value).is_integer() and abs(value) < 1e15:
        return int(value)
    return float(f"{value:.10g}")


def converted(value: float, source: str, target: str) -> float:
    if source in KELVIN:
        (a, b), (c, d) = KELVIN[source], KELVIN[target]
        return ((a * value + b) - d) / c
    return value * FACTORS[source] / FACTORS[target]


def result_problems(name: str, args: dict, result: dict) -> list[str]:
    """What is wrong with ``result`` as the answer of tool ``name`` to ``args``."""
    if name == "calculer":
        r = result.get("resultat")
        ok = set(result) == {"resultat"} and r == calculer(args["expression"]) and type(r) is type(calculer(args["expression"]))
    elif name == "date_heure":
        m = DATE.fullmatch(str(result.get("date")))
        ok = set(result) == {"date", "heure"} and m is not None and re.fullmatch(r"\d\d:\d\d", result["heure"]) and \
            int(result["heure"][:2]) < 24 and int(result["heure"][3:]) < 60 and \
            WEEKDAYS[date(int(m[4]), MONTHS.index(m[3]) + 1, int(m[2].removesuffix("er"))).weekday()] == m[1] and \
            m[2] != "1"  # the first of the month is « 1er »
    elif name == "note_ajouter":
        ok = result == {"ok": True, "numero": result.get("numero"), "texte": args["texte"]} and \
            isinstance(result["numero"], int) and result["numero"] >= 1
    elif name == "notes_lister":
        notes = result.get("notes")
        ok = set(result) == {"notes"} and isinstance(notes, list) and \
            all(n == {"numero": i, "texte": n.get("texte")} and isinstance(n["texte"], str) for i, n in enumerate(notes, 1))
    elif name == "convertir":  # 6 significant digits (a value on a rounding tie may go either way here)
        v = result.get("valeur")
        ok = set(result) == {"valeur", "unite"} and result["unite"] == args["vers"] and \
            isinstance(v, (int, float)) and isinstance(v, int) == float(v).is_integer() and \
            math.isclose(v, converted(args["valeur"], args["de"], args["vers"]), rel_tol=1e-5, abs_tol=1e-9)
    else:
        passages = result.get("passages")
        ok = set(result) == {"passages"} and isinstance(passages, list) and len(passages) <= 3 and \
            all(set(p) == {"source", "texte"} and len(p["texte"]) <= 300 for p in passages)
    return [] if ok else [f"{name}{args}: wrong result {result}"]


def call_problems(call: dict, messages: list, i: int, ids: set) -> list[str]:
    if call.get("type") != "function" or set(call) != {"id", "type", "function"}:
        return [f"message {i}: malformed call {call}"]
    fn, bad = call["function"], []
    name, args = fn.get("name"), fn.get("arguments")
    if name not in ARGUMENTS or not isinstance(args, dict) or set(args) != set(ARGUMENTS[name]):
        return [f"message {i}: call {fn} does not match the contract"]
    bad += [f"message {i}: {name}.{k} is {type(v).__name__}" for k, v in args.items()
            if not isinstance(v, ARGUMENTS[name][k]) or isinstance(v, bool)]
    reply = messages[i + 1] if i + 1 < len(messages) else {}
    if call["id"] in ids or reply.get("role") != "tool" or reply.get("tool_call_id") != call["id"] or reply.get("name") != name:
        return bad + [f"message {i}: call {call['id']} has no tool reply with its id and name right after it"]
    ids.add(call["id"])
    result = json.loads(reply["content"])
    if json.dumps(result, ensure_ascii=False) != reply["content"]:
        bad.append(f"message {i + 1}: result not serialized as json.dumps(obj, ensure_ascii=False)")
    return bad + result_problems(name, args, result)


def problems(record: dict) -> list[str]:
    """Everything wrong with one conversation (empty: well formed and consistent)."""
    messages, bad, ids = record["messages"], [], set()
    if [t["function"]["name"] for t in record.get("tools", [])] != list(TOOL_NAMES):
        bad.append("the six built-in tools are not offered")
    roles = [m["role"] for m in messages]
    if roles[0] == "system":
        roles = roles[1:]
    if not roles or roles[0] != "user" or roles[-1] != "assistant" or not messages[-1]["content"].strip():
        bad.append(f"roles {roles}: a conversation goes from a user message to an assistant answer")
    for i, m in enumerate(messages):
        calls = m.get("tool_calls")
        if calls:
            if m["role"] != "assistant" or m["content"] != "" or len(calls) != 1:
                bad.append(f"message {i}: a call is one assistant message with empty content")
            bad += call_problems(calls[0], messages, i, ids)
        elif m["role"] == "tool":
            if messages[i - 1].get("tool_calls") is None:
                bad.append(f"message {i}: a tool result without its call")
        elif m["role"] not in ("system", "user", "assistant") or not m["content"].strip():
            bad.append(f"message {i}: role {m['role']!r} or empty content")
    calls = [m["tool_calls"][0]["function"] for m in messages if m.get("tool_calls")]
    if (record["kind"] in ("no_tool", "unknown_tool")) != (not calls):
        bad.append(f"{record['kind']} conversation with {len(calls)} calls")
    if "expected" in record and record["expected"] != (calls[-1] if calls and messages[-3].get("tool_calls") else None):
        bad.append(f"expected {record['expected']} is not the last call")
    return bad


def read_text(path) -> str:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.read()


def records_of(path) -> list[dict]:
    return [json.loads(line) for line in read_text(path).splitlines()]


def user_messages(records: list[dict]) -> set[str]:
    return {m["content"] for r in records for m in r["messages"] if m["role"] == "user"}


# ----------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def train():
    return generate_dialogues(2000, 0)


@pytest.fixture(scope="module")
def held_out():
    return generate_dialogues(600, 0, split="eval")


def test_every_conversation_is_well_formed_and_its_results_are_the_tools(train, held_out):
    bad = [f"{r['id']}: {p}" for r in train + held_out for p in problems(r)]
    assert not bad, "\n".join(bad[:20])
    assert all("expected" in r for r in held_out) and not any("expected" in r for r in train)
    assert {r["expected"]["name"] for r in held_out if r["expected"]} == set(TOOL_NAMES)
    assert [r["id"] for r in train[:2]] == ["outils-train-00000", "outils-train-00001"]


def test_the_checker_finds_what_is_wrong(train):
    """problems() can fail: a wrong sum, a renamed argument, a call id without its reply, a call in a no-tool item."""
    calc = next(r for r in train if r["task"] == "calculer" and r["kind"] == "single")
    broken = json.loads(json.dumps(calc))
    tool = next(m for m in broken["messages"] if m["role"] == "tool")
    tool["content"] = json.dumps({"resultat": json.loads(tool["content"])["resultat"] + 1})
    assert any("wrong result" in p for p in problems(broken))
    broken = json.loads(json.dumps(calc))
    fn = next(m for m in broken["messages"] if m.get("tool_calls"))["tool_calls"][0]["function"]
    fn["arguments"] = {"expr": fn["arguments"]["expression"]}
    assert any("does not match the contract" in p for p in problems(broken))
    broken = json.loads(json.dumps(calc))
    next(m for m in broken["messages"] if m["role"] == "tool")["tool_call_id"] = "call_9"
    assert any("no tool reply" in p for p in problems(broken))
    assert any("calls" in p for p in problems({**calc, "kind": "no_tool"}))
    assert not problems(calc)


def test_calculer_results_are_pythons_arithmetic_on_the_expression(train):
    calls = [(m["tool_calls"][0]["function"]["arguments"]["expression"], json.loads(n["content"])["resultat"], a["content"])
             for r in train for m, n, a in zip(r["messages"], r["messages"][1:], r["messages"][2:])
             if m.get("tool_calls") and m["tool_calls"][0]["function"]["name"] == "calculer"]
    assert len(calls) > 200
    for expression, result, answer in calls:
        assert result == calculer(expression), expression
        assert str(result).replace(".", ",") in answer, (expression, answer)  # the answer uses the result
        if "racine" not in expression:  # exactly right, not only Python's float
            exact = eval(re.sub(r"(?<![\d.])(?<!, )(\d+(?:\.\d+)?)", r"F('\1')", expression.replace("arrondi", "round")),
                         {"__builtins__": {}}, {"F": Fraction, "abs": abs, "round": round})
            assert result == calculer(repr(float(exact))), expression
    kinds = {re.sub(r"[\d.]+", "N", e) for e, _, _ in calls}
    assert {"N*N", "N/N", "N+N", "N-N", "racine(N)", "arrondi(N, N)", "N%N", "N//N", "abs(-N)", "N**N"} <= kinds


def test_each_tool_answer_uses_its_result(train):
    for r in train:
        for m, tool, answer in zip(r["messages"], r["messages"][1:], r["messages"][2:]):
            if not m.get("tool_calls"):
                continue
            name, result, text = tool["name"], json.loads(tool["content"]), answer["content"]
            if name == "date_heure":
                h, mn = (int(x) for x in result["heure"].split(":"))
                assert result["date"] in text or f"{h} h" in text or result["date"].split()[0] in text \
                    or result["date"][-4:] in text, text
                if f"{h} h" in text:
                    assert text.count(f"{h} h {mn:02d}") == (mn != 0), text
            elif name == "convertir":
                assert str(result["valeur"]).replace(".", ",") in text, text
            elif name == "note_ajouter":
                assert f"n° {result['numero']}" in text and result["texte"] in text
            elif name == "notes_lister":
                assert all(f"{n['numero']}. {n['texte']}" in text for n in result["notes"])
                assert result["notes"] or "note" in text
            elif name == "chercher" and result["passages"]:
                quoted = text.split("« ", 1)[1].removesuffix(" »").removesuffix("…")
                assert result["passages"][0]["texte"].startswith(quoted), text


def test_searches_find_their_passage_in_the_demo_corpus(train):
    corpus_lines = read_text(DEMO_CORPUS).split("\n")
    holders: dict[str, set[int]] = {}
    for n, line in enumerate(corpus_lines):
        for w in re.findall(r"\w+", line.lower()):
            holders.setdefault(w, set()).add(n)
    lines, found, empty = set(corpus_lines), 0, 0
    for r in train:
        for m, tool in zip(r["messages"], r["messages"][1:]):
            if not (m.get("tool_calls") and tool.get("name") == "chercher"):
                continue
            words = m["tool_calls"][0]["function"]["arguments"]["requete"].split()
            passages = json.loads(tool["content"])["passages"]
            if not passages:
                empty += 1
                assert not any(w in holders for w in words), words
                continue
            found += 1
            assert all(p["texte"] in lines and p["source"].endswith((".txt", ".txt.gz")) for p in passages)
            assert all(w in re.findall(r"\w+", passages[0]["texte"].lower()) for w in words), (words, passages[0])
            # the line (paragraph, verse, title…) that holds every word of the query is this one alone
            assert len(set.intersection(*(holders[w] for w in words))) == 1, words
    assert found > 100 and empty > 5


def test_notes_listed_after_an_addition_include_it():
    records = generate_dialogues(1500, 4, shares={"single": 0, "no_tool": 0, "unknown_tool": 0, "multi_turn": 1},
                                 max_tokens=None)  # an addition then a listing rarely fits 256 tokens
    both = 0
    for r in records:
        results = [(m["name"], json.loads(m["content"])) for m in r["messages"] if m["role"] == "tool"]
        if [n for n, _ in results] == ["note_ajouter", "notes_lister"]:
            added, listed = results[0][1], results[1][1]["notes"]
            assert listed[added["numero"] - 1] == {"numero": added["numero"], "texte": added["texte"]}
            assert len(listed) == added["numero"]
            both += 1
    assert both > 20


def test_each_tool_message_is_what_run_tool_returns(tmp_path, monkeypatch):
    """Every result is the built-in tool's own: each call replayed with run_tool, in order, in a
    context built from the conversation's scene (its clock, the notes it assumes, the texts
    searched), gives the very text of its tool message. The generator works in a scratch folder
    that it removes, and never in the user's data folder."""
    scratch, user = tmp_path / "scratch", tmp_path / "user"
    scratch.mkdir()
    monkeypatch.setattr(tool_data, "memory_folder", lambda: str(scratch))
    monkeypatch.setenv("CAUSETTE_DATA_DIR", str(user))
    monkeypatch.setenv("HOME", str(user))
    pairs = dialogues_with_scenes(300, 0)
    assert list(scratch.iterdir()) == [] and not user.exists()
    assert [r for r, _ in pairs] == generate_dialogues(300, 0)
    folder, calls = ToolFolder(tmp_path / "replay"), Counter()
    for record, scene in pairs:
        context = ToolContext(tmp_path / "notes" / record["id"], folder.roots(scene.corpus),
                              clock=lambda moment=scene.moment: moment)
        for text in scene.notes:
            run_tool("note_ajouter", {"texte": text}, context)
        messages = record["messages"]
        for m, tool in itertools.pairwise(messages):
            if m.get("tool_calls"):
                fn = m["tool_calls"][0]["function"]
                assert tool["content"] == run_tool(fn["name"], fn["arguments"], context), (record["id"], fn)
                calls[fn["name"]] += 1
    assert set(calls) == set(TOOL_NAMES) and sum(calls.values()) > 200
    assert sum(bool(s.notes) for _, s in pairs) > 20 and {s.corpus for _, s in pairs} == {"works", "demo"}
    # the replay can fail: the same listing without the notes the conversation assumed differs
    record, scene = next((r, s) for r, s in pairs if s.notes and r["messages"][-2].get("name") == "notes_lister")
    assert run_tool("notes_lister", {}, ToolContext(tmp_path / "empty")) != record["messages"][-2]["content"]


def test_every_conversion_drawn_is_one_the_tool_makes(tmp_path):
    """The generator's units (their names in the requests and answers) are the tool's: any two of
    one dimension convert, as the definitions of the units say; two of different dimensions do not."""
    context = ToolContext(tmp_path)
    for a, unit_a in UNITS.items():
        for b, unit_b in UNITS.items():
            if a == b:
                continue
            result = json.loads(run_tool("convertir", {"valeur": 7.5, "de": a, "vers": b}, context))
            if unit_a.dimension != unit_b.dimension:
                assert set(result) == {"erreur"}, (a, b)
                continue
            assert result["unite"] == b and math.isclose(result["valeur"], converted(7.5, a, b), rel_tol=1e-5), (a, b)
    assert {u.dimension for u in UNITS.values()} == {"length", "mass", "volume", "speed", "time", "temperature"}


def test_eval_phrasings_are_never_used_in_train(train, held_out):
    for family, split in P.PHRASES.items():
        assert split["eval"] and not set(split["train"]) & set(split["eval"]), family
    for table in (P.STORIES, P.SMALL_TALK, P.QUESTIONS, P.UNKNOWN):
        requests = {s: {item[0] if table is not P.UNKNOWN else item[2] for item in table[s]} for s in ("train", "eval")}
        assert requests["eval"] and not requests["train"] & requests["eval"]
    more_train = [x for seed in (1, 2) for x in generate_dialogues(1000, seed)]
    shared = user_messages(train + more_train) & user_messages(held_out + generate_dialogues(600, 1, split="eval"))
    assert not shared, sorted(shared)[:5]


def test_many_phrasings_per_tool():
    for tool, families in P.TOOL_FAMILIES.items():
        count = {s: sum(len(P.STORIES[s]) if f == "calc.story" else len(P.PHRASES[f][s]) for f in families)
                 for s in ("train", "eval")}
        assert count["train"] >= 15 and count["eval"] >= 3, (tool, count)
    registers = " ".join(P.PHRASES["calc.expr"]["train"])
    assert "-moi" in registers and "Pouvez-vous" in registers and "s'il vous plaît" in registers and "?" in registers


def test_shares_of_each_kind(train):
    counts = {k: sum(r["kind"] == k for r in train) for k in KINDS}
    assert counts == {k: round(2000 * v) for k, v in DEFAULT_SHARES.items()}
    singles = [r["task"] for r in train if r["kind"] == "single"]
    assert {singles.count(t) for t in TOOL_NAMES} == {200}
    custom = generate_dialogues(101, 3, shares={"no_tool": 1, "single": 0, "unknown_tool": 0, "multi_turn": 0})
    assert {r["kind"] for r in custom} == {"no_tool"}
    tasks = {r["task"] for r in train if r["kind"] == "no_tool"}
    assert tasks == {"smalltalk", "question", "capital", "rewrite"}


@pytest.mark.parametrize("kwargs, message", [
    ({"n": -1}, "n: expected a whole number"), ({"n": 5, "split": "test"}, "split: expected train or eval"),
    ({"n": 5, "shares": {"single": -1}}, "shares.single: expected a number >= 0"),
    ({"n": 5, "shares": {"calls": 1}}, "shares: unknown kind 'calls'"),
    ({"n": 5, "shares": dict.fromkeys(KINDS, 0)}, "at least one kind"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        generate_dialogues(**kwargs)


def test_the_same_seed_gives_the_same_bytes(tmp_path, train):
    assert generate_dialogues(2000, 0) == train
    assert generate_dialogues(50, 1) != generate_dialogues(50, 2)
    a, b = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    write_tool_data(a, 300, 7)
    write_tool_data(b, 300, 7)
    assert a.read_bytes() == b.read_bytes()
    assert records_of(a) == generate_dialogues(300, 7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl.gz", "b.jsonl.gz"]  # no temporary file left


def test_conversations_stay_short(train, held_out):
    """The demo model reads 256 tokens: every conversation's estimate stays under MAX_TOKENS, which
    takes redrawing a few (without the limit, some multi-turn ones and long passages go over)."""
    assert max(estimated_tokens(r) for r in train + held_out) <= MAX_TOKENS
    unbounded = generate_dialogues(2000, 0, max_tokens=None)
    assert sum(estimated_tokens(r) > MAX_TOKENS for r in unbounded) > 50
    assert [r["kind"] for r in unbounded] == [r["kind"] for r in train]  # the same kinds, in the same order
    # the estimate grows with the text: a longer answer, a longer estimate
    longer = json.loads(json.dumps(train[0]))
    longer["messages"][-1]["content"] += " Et voilà, c'est tout pour aujourd'hui."
    assert estimated_tokens(longer) > estimated_tokens(train[0]) + 8


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2 ** 32), n=st.integers(1, 25), split=st.sampled_from(["train", "eval"]))
def test_any_seed_gives_well_formed_conversations(seed, n, split):
    records = generate_dialogues(n, seed, split=split)
    assert len(records) == n
    assert not [p for r in records for p in problems(r)]
    assert generate_dialogues(n, seed, split=split) == records


def test_tools_offered_follow_the_openai_form():
    for tool in TOOLS:
        fn = tool["function"]
        assert tool["type"] == "function" and fn["parameters"]["type"] == "object"
        assert set(fn["parameters"]["properties"]) == set(fn["parameters"]["required"]) == set(ARGUMENTS[fn["name"]])


def test_the_command_writes_the_file_without_torch(tmp_path):
    out = tmp_path / "outils.jsonl.gz"
    probe = ("import sys\nfrom causette.cli import main\ncode = main(sys.argv[1:])\n"
             "print('TORCH' if 'torch' in sys.modules else 'NO TORCH')\nsys.exit(code)")
    r = subprocess.run([sys.executable, "-c", probe, "sft", "tool-data", "--out", str(out), "--n", "40", "--seed", "5",
                        "--split", "eval"], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    summary = f"tool data (eval, seed 5): 40 conversations (single 24, no_tool 8, unknown_tool 4, multi_turn 4) → {out}"
    assert r.stdout.splitlines() == [summary, "NO TORCH"]
    assert records_of(out) == generate_dialogues(40, 5, split="eval")
    r = subprocess.run([sys.executable, "-m", "causette", "sft", "tool-data", "--out", str(out), "--n", "0"],
                       cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: causette sft tool-data: argument -n/--n: must be >= 1, got 0 (see causette sft tool-data --help)"]


def test_sft_tool_data_setting(tmp_path):
    from types import SimpleNamespace

    from causette.config import load_config
    from causette.sft.finetune import tool_data_paths

    cfg = load_config("assistant")
    assert cfg.sft.tool_data == 10000 and load_config("demo").sft.tool_data == 0
    # the 15-minute recipe (docs/outils.md): pretraining and SFT on the clock, the SFT compiled
    assert (cfg.train.max_minutes, cfg.sft.train.max_minutes, cfg.sft.train.max_steps) == (5, 8, 3000)
    assert cfg.sft.train.compile is True and load_config("demo").sft.train.compile is False
    with pytest.raises(CausetteError, match="sft.tool_data"):
        load_config("assistant", ["sft.tool_data=-3"])
    lines = []
    sc = SimpleNamespace(tool_data=30, train=SimpleNamespace(seed=11))
    [path] = tool_data_paths(sc, tmp_path, lines.append)
    assert records_of(path) == generate_dialogues(30, 11)
    assert lines == [f"tool data: 30 generated conversations (single 18, no_tool 6, unknown_tool 3, multi_turn 3) → {path}"]
    assert tool_data_paths(SimpleNamespace(tool_data=0), tmp_path, lines.append) == []


def test_library_passages_are_short_paragraphs_of_the_novels():
    lib = library()
    assert len(lib.passages) > 500 and len(lib.sentences) > 1000
    assert all(40 <= len(t) <= 90 for _, t in lib.passages)


def test_sft_trains_on_the_demo_and_the_tool_data(tmp_path):
    """``sft.tool_data`` end to end: the demo conversations plus the generated ones, in one SFT."""
    from helpers import make_tiny_run, tiny_config

    from causette.sft.finetune import finetune
    from causette.train.pretrain import train

    make_tiny_run(tmp_path, "outils")
    cfg = tiny_config(tmp_path, "outils", ["model.block_size=256", "train.max_steps=2", "train.eval_every=0",
                                           "sft.tool_data=40", "sft.train.max_steps=2", "sft.train.device=cpu",
                                           "sft.train.batch_size=2", "sft.eval_answers=0", "sft.train.eval_every=0"])
    train(cfg, progress=False, echo=lambda s: None)
    lines: list[str] = []
    result, report = finetune(cfg, progress=False, echo=lines.append)
    assert result.steps == 2 and report["train_conversations"] + report["val_conversations"] > 415 + 30
    assert any(line.startswith("tool data: 40 generated conversations") for line in lines)


def test_a_folder_as_out_is_one_clear_line(tmp_path, capsys):
    from causette.cli import main

    assert main(["sft", "tool-data", "--out", str(tmp_path), "--n", "3"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {tmp_path}: is a directory; give a file name such as {tmp_path / 'outils.jsonl.gz'}"]
    assert list(tmp_path.iterdir()) == []
