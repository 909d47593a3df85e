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


# ----------------------------------------------------------------------------- the chat loop

import pytest  # noqa: E402
import torch  # noqa: E402
from types import SimpleNamespace  # noqa: E402

from causette.inference.chat import ChatSession  # noqa: E402
from causette.inference.tool_use import hide_calls  # noqa: E402
from causette.inference.engine import Engine  # noqa: E402
from causette.inference.sampling import SamplingParams  # noqa: E402
from causette.tokenizer import train_tokenizer  # noqa: E402
from causette.tokenizer.config import TokenizerConfig  # noqa: E402
from causette.tools import openai_tools  # noqa: E402
from helpers import ToolUser  # noqa: E402


@pytest.fixture(scope="module")
def tok():
    text = "Combien font 17 fois 23 ? 17 × 23 font 391. " * 20 + '{"name": "calculer", "arguments": {}} ' * 5
    return train_tokenizer(TokenizerConfig(vocab_size=400, workers=1), [text])


def test_chat_runs_the_call_shows_it_and_answers_with_its_result(tok, tmp_path):
    model = ToolUser(tok, '\n{"name": "calculer", "arguments": {"expression": "17*23"}}\n', "17 × 23 font 391.")
    session = ChatSession(Engine(model, tok, decode="exact"), SamplingParams(temperature=0, max_new_tokens=80),
                          tools=openai_tools(), tool_context=ToolContext(data_dir=tmp_path))
    notes = []
    shown = "".join(session.reply("Combien font 17 fois 23 ?", notes.append))
    assert shown == "17 × 23 font 391."  # the call itself is not printed ...
    assert notes == ["→ calculer(17*23) = 391"]  # ... but shown as one line, with its result
    roles = [(m["role"], bool(m.get("tool_calls"))) for m in session.history]
    assert roles == [("user", False), ("assistant", True), ("tool", False), ("assistant", False)]
    assert json.loads(session.history[2]["content"]) == {"resultat": 391}
    assert [m["role"] for m in session.to_json()["messages"]] == ["user", "assistant", "tool", "assistant"]


def test_a_note_is_written_only_if_the_user_agrees(tok, tmp_path):
    model = ToolUser(tok, '\n{"name": "note_ajouter", "arguments": {"texte": "pain"}}\n', "C'est noté.")
    asked = []
    session = ChatSession(Engine(model, tok, decode="exact"), SamplingParams(temperature=0, max_new_tokens=80),
                          tools=openai_tools(), confirm=lambda call: asked.append(call.name) or False,
                          tool_context=ToolContext(data_dir=tmp_path))
    notes = []
    "".join(session.reply("Note : pain", notes.append))
    assert asked == ["note_ajouter"] and not (tmp_path / "notes.json").exists()
    assert notes == ["→ note_ajouter(pain) = erreur : l'utilisateur a refusé cet appel"]


def test_calls_are_hidden_from_the_stream_whatever_the_cut():
    text = 'Je calcule.<tool_call>\n{"name": "calculer"}\n</tool_call> Voilà.'
    for size in (1, 2, 3, 5, 11, 64):
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
        assert "".join(hide_calls(iter(pieces))) == "Je calcule. Voilà."
    assert "".join(hide_calls(iter(["a <tool_", "ca", "pas un appel"]))) == "a <tool_capas un appel"


def test_a_tokenizer_without_tool_tokens_refuses_tools_in_one_line():
    old = train_tokenizer(TokenizerConfig(vocab_size=300, workers=1, special_tokens=["<|bos|>", "<|pad|>",
                                                                                     "<|im_start|>", "<|im_end|>"]),
                          ["Il fait beau. " * 30])
    model = ToolUser.__new__(ToolUser)
    torch.nn.Module.__init__(model)
    model.cfg = SimpleNamespace(block_size=64, vocab_size=old.vocab_size, sliding_window=None)
    model.dummy = torch.nn.Parameter(torch.zeros(1))
    from causette.errors import CausetteError

    with pytest.raises(CausetteError, match="no tool tokens|pas les tokens des outils"):
        ChatSession(Engine(model, old), SamplingParams(), tools=openai_tools())


def test_the_terminal_shows_a_call_as_its_own_line(tok, tmp_path):
    """In ``causette chat`` the call is one line « → calculer(17*23) = 391 », not a « note : »."""
    import io

    from causette.inference.repl import Repl

    model = ToolUser(tok, '\n{"name": "calculer", "arguments": {"expression": "17*23"}}\n', "17 × 23 font 391.")
    session = ChatSession(Engine(model, tok, decode="exact"), SamplingParams(temperature=0, max_new_tokens=80),
                          tools=openai_tools(), tool_context=ToolContext(data_dir=tmp_path))
    typed = iter(["Combien font 17 fois 23 ?"])
    out = io.StringIO()
    repl = Repl(session, out=out, input_fn=lambda p: _next_or_eof(typed, out, p))
    repl.run()
    lines = out.getvalue().splitlines()
    assert "→ calculer(17*23) = 391" in lines
    assert any(line.endswith("17 × 23 font 391.") for line in lines)


def _next_or_eof(typed, out, prompt: str) -> str:
    out.write(prompt)
    try:
        line = next(typed)
    except StopIteration:
        raise EOFError from None
    out.write(line + "\n")  # what a terminal echoes
    return line


def test_a_long_tool_result_is_cut_to_leave_room_for_the_answer(tok, tmp_path):
    """A result too long for the context (a search in a small model) loses its end, marked « … »,
    rather than the whole exchange; when even half of it does not fit, nothing is cut."""
    call = {"id": "call_1", "type": "function", "function": {"name": "chercher", "arguments": {"requete": "chat"}}}
    long = json.dumps({"passages": [{"source": "a.txt", "texte": "Le chat dort. " * 30}]}, ensure_ascii=False)
    history = [{"role": "user", "content": "Cherche chat."}, {"role": "assistant", "content": "", "tool_calls": [call]},
               {"role": "tool", "tool_call_id": "call_1", "content": long}]

    def session(block: int) -> ChatSession:
        model = ToolUser(tok, '\n{"name": "calculer", "arguments": {}}\n', "Voilà.")
        model.cfg.block_size = block
        return ChatSession(Engine(model, tok, decode="exact"), SamplingParams(temperature=0, max_new_tokens=16),
                           tools=openai_tools(), tool_context=ToolContext(data_dir=tmp_path))

    full = len(session(4096)._render(history))
    small = session(full - 40 + 16)  # the answer keeps 16 tokens: 40 too many
    assert small.answer_room == 16
    limit = small.engine.block_size - small.answer_room
    shorter, cut = small._shorten_results(history)
    kept = shorter[2]["content"][:-1]
    assert cut > 0 and shorter[2]["content"].endswith("…") and long.startswith(kept) and len(kept) == len(long) - cut
    assert len(small._render(shorter)) <= limit  # it fits ...
    one_more = history[:2] + [dict(history[2], content=long[: len(kept) + 1] + "…")]
    assert len(small._render(one_more)) > limit  # ... and keeps all it can
    tiny = session(full // 2)
    assert tiny._shorten_results(history) == (history, 0)
