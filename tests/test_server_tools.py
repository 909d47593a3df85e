"""Tool calling through ``causette serve``, driven by the official ``openai`` client: ``tools`` and
``tool_choice`` in the request, ``tool_calls`` in the reply (whole and streamed) with
``finish_reason: "tool_calls"``, ``role: "tool"`` results sent back, and the checks of what a
client may send."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

from helpers import ToolUser  # noqa: E402
from server_helpers import make_checkpoints  # noqa: E402

from causette.checkpoint.load import load_checkpoint  # noqa: E402
from causette.inference.server import Limits, ServerThread, create_app  # noqa: E402
from causette.tokenizer import train_tokenizer  # noqa: E402
from causette.tokenizer.config import TokenizerConfig  # noqa: E402
from causette.tools import ToolContext, openai_tools, run_tool  # noqa: E402

WEATHER = {"type": "function", "function": {
    "name": "météo", "description": "Le temps qu'il fait dans une ville.",
    "parameters": {"type": "object", "properties": {"ville": {"type": "string", "maxLength": 40}, "jours": {"type": "integer"}},
                   "required": ["ville"]}}}
CALL = '\n{"name": "calculer", "arguments": {"expression": "17*23"}}\n'


@pytest.fixture(scope="module")
def tok():
    text = "Combien font 17 fois 23 ? 17 × 23 font 391. " * 20 + '{"name": "calculer", "arguments": {}} ' * 5
    return train_tokenizer(TokenizerConfig(vocab_size=400, workers=1), [text])


def serve(model, tok, **limits):
    model.cfg.block_size = 2048  # a tools block in 400 tokens of vocabulary is long
    loaded = SimpleNamespace(model=model, tokenizer=tok, is_chat_model=True, stage="sft")
    return ServerThread(create_app(loaded, decode="exact", limits=Limits(max_batch=1, **limits)))


def client_of(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def test_the_openai_client_tool_loop(tok, tmp_path):
    """The loop of the client's documentation: offer tools, run the calls the reply asks for, send
    their results as ``role: "tool"`` messages, read the answer."""
    model = ToolUser(tok, CALL, "17 × 23 font 391.")
    with serve(model, tok) as server:
        client = client_of(server)
        messages = [{"role": "user", "content": "Combien font 17 fois 23 ?"}]
        first = client.chat.completions.create(model="causette", messages=messages, tools=openai_tools(),
                                               temperature=0)
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content is None
        [call] = choice.message.tool_calls
        assert call.type == "function" and call.function.name == "calculer" and call.id.startswith("call_")
        assert json.loads(call.function.arguments) == {"expression": "17*23"}
        messages.append(choice.message.model_dump(exclude_none=True))  # as the client's docs do
        context = ToolContext(data_dir=tmp_path)
        messages.append({"role": "tool", "tool_call_id": call.id,
                         "content": run_tool(call.function.name, call.function.arguments, context)})
        second = client.chat.completions.create(model="causette", messages=messages, tools=openai_tools(),
                                                temperature=0)
        assert second.choices[0].finish_reason == "stop"
        assert second.choices[0].message.content == "17 × 23 font 391."
        assert not second.choices[0].message.tool_calls
        # the result was read by the model: the prompt holds it in a <tool_response> block
        assert model.response_id in model.context
        assert "391" in tok.decode(model.context)


def test_streamed_calls_come_as_tool_call_deltas(tok):
    calls = [CALL, '\n{"name": "météo", "arguments": {"ville": "Besançon", "jours": 2}}\n']
    model = ToolUser(tok, calls, "Voilà.", before="Je regarde.")
    with serve(model, tok) as server:
        client = client_of(server)
        messages = [{"role": "user", "content": "Calcule et dis-moi le temps."}]
        tools = openai_tools(["calculer"]) + [WEATHER]
        whole = client.chat.completions.create(model="causette", messages=messages, tools=tools, temperature=0)
        message = whole.choices[0].message
        assert message.content == "Je regarde." and whole.choices[0].finish_reason == "tool_calls"
        assert [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == [
            ("calculer", {"expression": "17*23"}), ("météo", {"ville": "Besançon", "jours": 2})]
        content, got, reasons = "", {}, []
        for chunk in client.chat.completions.create(model="causette", messages=messages, tools=tools,
                                                    temperature=0, stream=True):
            delta = chunk.choices[0].delta
            content += delta.content or ""
            for part in delta.tool_calls or []:
                entry = got.setdefault(part.index, {"id": part.id, "name": "", "arguments": ""})
                entry["name"] += part.function.name or ""
                entry["arguments"] += part.function.arguments or ""
            reasons.append(chunk.choices[0].finish_reason)
    assert content == "Je regarde."
    assert [(c["name"], json.loads(c["arguments"])) for c in got.values()] == [
        ("calculer", {"expression": "17*23"}), ("météo", {"ville": "Besançon", "jours": 2})]
    assert all(c["id"].startswith("call_") for c in got.values()) and len({c["id"] for c in got.values()}) == 2
    assert [r for r in reasons if r] == ["tool_calls"]


def test_without_tools_a_call_is_text_and_none_forbids_calls(tok):
    model = ToolUser(tok, CALL, "Réponse.")
    with serve(model, tok) as server:
        client = client_of(server)
        messages = [{"role": "user", "content": "Bonjour"}]
        plain = client.chat.completions.create(model="causette", messages=messages, temperature=0)
        assert "<tool_call>" in plain.choices[0].message.content and not plain.choices[0].message.tool_calls
        assert plain.choices[0].finish_reason == "stop"
        none = client.chat.completions.create(model="causette", messages=messages, tools=openai_tools(),
                                              tool_choice="none", temperature=0, max_tokens=5)
        assert not none.choices[0].message.tool_calls and "<tool_call>" not in none.choices[0].message.content


@pytest.fixture(scope="module")
def random_model(tmp_path_factory):
    """A tiny random model with the tool tokens and a context long enough for a tools block."""
    from helpers import make_chat_checkpoints

    root = tmp_path_factory.mktemp("tools-serve")
    return load_checkpoint(make_chat_checkpoints(root, block_size=1024)["sft"], device="cpu")


def test_required_and_named_choices_give_valid_calls_from_any_model(random_model):
    """A random model knows nothing of tools: with ``tool_choice`` required (or one function) its
    reply still opens with a call that parses and follows the schema (constrain.py)."""
    with ServerThread(create_app(random_model, limits=Limits(max_batch=2))) as server:
        client = client_of(server)
        messages = [{"role": "user", "content": "Quel temps fait-il ?"}]
        for choice in ("required", {"type": "function", "function": {"name": "météo"}}):
            for seed in range(3):
                r = client.chat.completions.create(model="causette", messages=messages, temperature=1.0,
                                                   tools=[WEATHER] + openai_tools(["calculer"]), seed=seed,
                                                   tool_choice=choice, max_tokens=400, parallel_tool_calls=False)
                calls = r.choices[0].message.tool_calls
                assert calls, r.choices[0].message.content
                assert len(calls) == 1  # parallel_tool_calls: false
                args = json.loads(calls[0].function.arguments)
                if isinstance(choice, dict):
                    assert calls[0].function.name == "météo"
                if calls[0].function.name == "météo":
                    assert set(args) <= {"ville", "jours"} and isinstance(args["ville"], str)
                    assert len(args["ville"].encode()) <= 40  # maxLength holds
                    assert isinstance(args.get("jours", 0), int)
                else:
                    assert set(args) == {"expression"}


def post(server, body) -> httpx.Response:
    return httpx.post(server.url + "/v1/chat/completions", json=body, timeout=60)


@pytest.mark.parametrize("body, fragment", [
    ({"tools": "calculer"}, "tools must be a list"),
    ({"tools": [{"type": "function", "function": {"name": 'a"b'}}]}, "without quotes"),
    ({"tools": [{"type": "retrieval", "function": {"name": "f"}}]}, "tools[0] must be"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": []}}]}, "tools[0] must be"),
    ({"tool_choice": "required"}, "'tool_choice' needs 'tools'"),
    ({"tools": [WEATHER], "tool_choice": "sometimes"}, "must be auto, none, required"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "calculer"}}}, "météo"),
    ({"tools": [WEATHER], "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
    ({"messages": [{"role": "user", "content": "x"},
                   {"role": "assistant", "content": None, "tool_calls": [
                       {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{pas du json"}}]},
                   {"role": "tool", "tool_call_id": "c1", "content": "1"}]}, "arguments must be a JSON object"),
    ({"messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "1"}]},
     "must follow an assistant message with tool_calls"),
    ({"messages": [{"role": "user", "content": "x"},
                   {"role": "assistant", "tool_calls": [
                       {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]},
     "a reply can only be asked for after a user message or tool results"),
])
def test_tool_mistakes_are_400_with_a_clear_message(random_model, body, fragment):
    with ServerThread(create_app(random_model)) as server:
        r = post(server, {"messages": [{"role": "user", "content": "x"}], **body})
    assert r.status_code == 400, r.text
    assert fragment in r.json()["error"]["message"], r.json()["error"]["message"]


def test_old_tokenizers_and_base_models_refuse_tools(tmp_path):
    checkpoints = make_checkpoints(tmp_path)
    base = load_checkpoint(checkpoints["pretrain"], device="cpu")
    with ServerThread(create_app(base)) as server:
        r = post(server, {"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER]})
    assert r.status_code == 400 and "tools need a chat model" in r.json()["error"]["message"]
    sft = load_checkpoint(checkpoints["sft"], device="cpu")
    old = SimpleNamespace(model=sft.model, tokenizer=_without_tool_tokens(sft.tokenizer), is_chat_model=True,
                          stage="sft")
    with ServerThread(create_app(old)) as server:
        r = post(server, {"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER]})
        ok = post(server, {"messages": [{"role": "user", "content": "x"}], "max_tokens": 2})
    assert r.status_code == 400 and "no tool tokens" in r.json()["error"]["message"]
    assert ok.status_code == 200  # without tools it serves as before


def _without_tool_tokens(tok):
    """A view of ``tok`` whose special tokens lack the tool tags (a tokenizer trained before them)."""
    specials = {k: v for k, v in tok.special_tokens.items() if "tool" not in k}
    return type("Old", (), {"special_tokens": specials, "__getattr__": lambda self, name: getattr(tok, name)})()
