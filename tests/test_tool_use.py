"""Tool calls in a reply (causette/inference/tool_use.py): found, run with the built-in tools,
refused when the user says no, shown in one line; a call that does not parse is reported back."""

from __future__ import annotations

import json
from datetime import datetime

from causette.inference.tool_use import describe, parse_tool_calls, run_calls
from causette.tools import ToolContext


def test_calls_are_split_from_the_text_in_order():
    text = ('Je calcule.<tool_call>\n{"name": "calculer", "arguments": {"expression": "17*23"}}\n</tool_call>'
            '<tool_call>\n{"name": "date_heure", "arguments": {}}\n</tool_call>')
    content, calls = parse_tool_calls(text)
    assert content == "Je calcule."
    assert [(c.name, c.arguments, c.id, c.error) for c in calls] == [
        ("calculer", {"expression": "17*23"}, "call_1", None), ("date_heure", {}, "call_2", None)]
    assert parse_tool_calls("Bonjour !") == ("Bonjour !", [])


def test_bad_and_unclosed_calls_are_kept_with_their_error():
    _, [bad] = parse_tool_calls('<tool_call>{"name": "calculer", "arguments": {"expression": }</tool_call>')
    assert bad.error.startswith("l'appel n'est pas du JSON valide") and bad.raw.startswith('{"name"')
    _, [cut] = parse_tool_calls('Voyons.<tool_call>\n{"name": "calculer", "argu')
    assert cut.error is not None
    _, [as_string] = parse_tool_calls('<tool_call>{"name": "calculer", "arguments": "{\\"expression\\": \\"2+2\\"}"}</tool_call>')
    assert as_string.arguments == {"expression": "2+2"} and as_string.error is None
    _, [not_object] = parse_tool_calls('<tool_call>["calculer"]</tool_call>')
    assert "objet" in not_object.error


def test_calls_run_with_the_tools_and_a_write_asks_first(tmp_path):
    ctx = ToolContext(data_dir=tmp_path, clock=lambda: datetime(2026, 12, 6, 14, 5))
    _, calls = parse_tool_calls(
        '<tool_call>{"name": "calculer", "arguments": {"expression": "17*23"}}</tool_call>'
        '<tool_call>{"name": "note_ajouter", "arguments": {"texte": "acheter du pain"}}</tool_call>'
        '<tool_call>{"name": "envoyer_mail", "arguments": {}}</tool_call>')
    asked = []
    results = run_calls(calls, confirm=lambda call: asked.append(call.name) or False, context=ctx)
    assert asked == ["note_ajouter"]
    assert [r["tool_call_id"] for r in results] == ["call_1", "call_2", "call_3"]
    assert json.loads(results[0]["content"]) == {"resultat": 391}
    assert json.loads(results[1]["content"]) == {"erreur": "l'utilisateur a refusé cet appel"}
    assert "erreur" in json.loads(results[2]["content"])
    assert not (tmp_path / "notes.json").exists()  # refused: nothing written
    results = run_calls(calls[1:2], context=ctx)
    assert json.loads(results[0]["content"])["ok"] is True and (tmp_path / "notes.json").is_file()
    assert describe(calls[0], '{"resultat": 391}') == "→ calculer(17*23) = 391"
    assert describe(calls[2], '{"erreur": "outil inconnu"}') == "→ envoyer_mail() = erreur : outil inconnu"
