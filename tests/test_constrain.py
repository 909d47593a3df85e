"""Constrained tool calls (causette/inference/constrain.py): every valid call passes the byte
automaton, invalid ones are stopped at the first byte no valid call has, and the token mask lets
a model that knows nothing write only calls that parse and follow their tool's schema."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from causette.errors import CausetteError
from causette.inference.constrain import CallGrammar, ToolCallProcessor, TokenTrie
from causette.inference.engine import Engine
from causette.inference.sampling import SamplingParams
from causette.model import ModelConfig, Transformer
from causette.tokenizer import train_tokenizer
from causette.tokenizer.config import TokenizerConfig
from causette.tokenizer.special import DEFAULT_SPECIALS

TOOLS = [
    {"type": "function", "function": {"name": "calculer", "description": "calcule", "parameters": {
        "type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}}},
    {"type": "function", "function": {"name": "date_heure", "parameters": {"type": "object", "properties": {}}}},
    {"type": "function", "function": {"name": "convertir", "parameters": {
        "type": "object",
        "properties": {"valeur": {"type": "number"}, "de": {"type": "string"}, "vers": {"type": "string"},
                       "arrondi": {"type": "integer"}, "exact": {"type": "boolean"},
                       "mode": {"type": "string", "enum": ["court", "long"]}},
        "required": ["valeur", "de", "vers"]}}},
]


def verdict(grammar: CallGrammar, text: str) -> str:
    state = grammar.start()
    for byte in text.encode("utf-8"):
        state = grammar.step(state, byte)
        if state is None:
            return "refused"
    return "whole" if grammar.complete(state) else "prefix"


def call(name: str, arguments: dict) -> str:
    return "\n" + json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False) + "\n"


numbers = st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=False, allow_infinity=False, width=32))
convert_args = st.fixed_dictionaries(
    {"valeur": numbers, "de": st.text(max_size=20), "vers": st.text(max_size=20)},
    optional={"arrondi": st.integers(-99, 99), "exact": st.booleans(), "mode": st.sampled_from(["court", "long"])},
)


@settings(max_examples=150, deadline=None)
@given(args=convert_args, text=st.text(max_size=60))
def test_every_valid_call_is_whole(args, text):
    grammar = CallGrammar(TOOLS)
    assert verdict(grammar, call("convertir", args)) == "whole"
    assert verdict(grammar, call("calculer", {"expression": text})) == "whole"
    assert verdict(grammar, call("date_heure", {})) == "whole"
    # blanks between the parts, keys in another order inside the arguments
    compact = json.dumps({"name": "convertir", "arguments": dict(reversed(list(args.items())))},
                         ensure_ascii=False, separators=(",", ":"))
    assert verdict(grammar, compact) == "whole"


@pytest.mark.parametrize("text", [
    '{"name": "envoyer_mail", "arguments": {}}',  # not an offered tool
    '{"arguments": {}, "name": "date_heure"}',  # name first
    '{"name": "calculer", "arguments": {}}',  # a required argument missing
    '{"name": "calculer", "arguments": {"expression": "1", "expression": "2"}}',  # twice
    '{"name": "calculer", "arguments": {"x": "1"}}',  # not one of its arguments
    '{"name": "calculer", "arguments": {"expression": 12}}',  # a number for a string
    '{"name": "convertir", "arguments": {"valeur": "5", "de": "km", "vers": "m"}}',  # a string for a number
    '{"name": "convertir", "arguments": {"valeur": 5, "de": "km", "vers": "m", "arrondi": 1.5}}',  # not an integer
    '{"name": "convertir", "arguments": {"valeur": 05, "de": "km", "vers": "m"}}',  # not JSON
    '{"name": "convertir", "arguments": {"valeur": 5, "de": "km", "vers": "m", "mode": "moyen"}}',  # not in the enum
    '{"name": "convertir", "arguments": {"valeur": 5, "de": "km", "vers": "m", "exact": oui}}',
    '{"name": "calculer", "arguments": {"expression": "a\nb"}}',  # a raw line break in a string
    '{"name": "date_heure", "arguments": {}} x',  # text after the call
    '{"name": "date_heure",     "arguments": {}}',  # endless blanks are cut
])
def test_invalid_calls_are_refused(text):
    assert verdict(CallGrammar(TOOLS), text) == "refused"


def test_prefixes_and_unsupported_schemas():
    grammar = CallGrammar(TOOLS)
    assert verdict(grammar, '{"name": "calc') == "prefix"
    assert verdict(grammar, '{"name": "convertir", "arguments": {"valeur": -1.5e') == "prefix"
    with pytest.raises(CausetteError, match=r"tool liste\.items: .*not 'array'"):
        CallGrammar([{"name": "liste", "parameters": {"type": "object", "properties": {"items": {"type": "array"}}}}])


@pytest.fixture(scope="module")
def tok():
    specials = list(DEFAULT_SPECIALS)  # the tool tags are among them
    assert "<tool_call>" in specials and "</tool_call>" in specials
    text = ("Il fait beau. " * 20 + '{"name": "calculer", "arguments": {"expression": "2+2"}} ' * 5
            + "Le chat dort sur le canapé, près de la fenêtre. 0123456789 ")
    return train_tokenizer(TokenizerConfig(vocab_size=400, workers=1, special_tokens=specials), [text])


def test_the_mask_keeps_exactly_the_tokens_the_grammar_accepts(tok):
    grammar, trie = CallGrammar(TOOLS), TokenTrie(tok)
    state = grammar.start()
    for byte in b'{"name": "con':
        state = grammar.step(state, byte)
    allowed = set(trie.allowed(grammar, state))
    for token in range(tok.vocab_size):
        if token in tok.special_ids:
            assert token not in allowed
            continue
        st_ = state
        for byte in tok.token_bytes(token):
            st_ = st_ and grammar.step(st_, byte)
        assert (token in allowed) == (st_ is not None), tok.token_bytes(token)
    assert allowed and all(tok.token_bytes(t) and b"v"[0] in tok.token_bytes(t)[:1] for t in allowed)


@torch.no_grad()
def test_a_model_that_knows_nothing_writes_only_valid_calls(tok):
    """Random weights, sampling at temperature 1.5 from a prompt ending in <tool_call>: with the
    processor, every reply is a call that parses and follows its tool's schema."""
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=tok.vocab_size, block_size=192, n_layer=1, n_embd=32, n_head=2, mlp_hidden=64)
    engine = Engine(Transformer(cfg).eval(), tok, decode="exact")
    open_id, close_id = tok.special_tokens["<tool_call>"], tok.special_tokens["</tool_call>"]
    trie = TokenTrie(tok)
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
    for seed in range(6):
        params = SamplingParams(temperature=1.5, top_k=0, max_new_tokens=150, seed=seed, stop_token_ids=[close_id])
        processor = ToolCallProcessor(tok, TOOLS, trie, max_string=24)
        [g] = engine.generate([[tok.bos_id, open_id]], params, processor=_after_open(processor, open_id))
        assert g.finish_reason == "stop_token", g.text  # the call was closed by </tool_call>
        parsed = json.loads(g.text)
        assert list(parsed) == ["name", "arguments"] and parsed["name"] in schemas
        schema = schemas[parsed["name"]]
        assert set(parsed["arguments"]) <= set(schema["properties"]) >= set(schema.get("required", []))
        assert set(schema.get("required", [])) <= set(parsed["arguments"])


def _after_open(processor: ToolCallProcessor, open_id: int):
    """The prompt already ends with <tool_call>: the processor sees it as the first token."""
    return lambda tokens, logits: processor([open_id, *tokens], logits)


def test_a_tokenizer_without_tool_tokens_is_one_clear_line(tok):
    old = ["<|bos|>", "<|pad|>", "<|im_start|>", "<|im_end|>"]  # a tokenizer trained before tools
    plain = train_tokenizer(TokenizerConfig(vocab_size=300, workers=1, special_tokens=old), ["Il fait beau. " * 30])
    with pytest.raises(CausetteError, match="no tool tokens"):
        ToolCallProcessor(plain, TOOLS)


@settings(max_examples=40, deadline=None)
@given(args=convert_args)
def test_no_dead_end_along_a_valid_call(tok, args):
    """At every byte of a valid call, some token may come next (or the call is whole): the mask
    never leaves a row with nothing to draw."""
    grammar, trie = CallGrammar(TOOLS), _trie(tok)
    state = grammar.start()
    for byte in call("convertir", args).encode("utf-8"):
        assert trie.allowed(grammar, state) or grammar.complete(state)
        state = grammar.step(state, byte)
    assert grammar.complete(state)


_tries: dict[int, TokenTrie] = {}


def _trie(tok) -> TokenTrie:
    return _tries.setdefault(id(tok), TokenTrie(tok))


def test_the_built_in_tools_schemas_are_covered():
    """The grammar takes the built-in tools' own schemas (causette/tools) and accepts a call to each."""
    from causette.tools import openai_tools

    grammar = CallGrammar(openai_tools())
    examples = {"calculer": {"expression": "17*23"}, "date_heure": {}, "note_ajouter": {"texte": "acheter du pain à 8 h"},
                "notes_lister": {}, "convertir": {"valeur": 5, "de": "km", "vers": "mi"}, "chercher": {"requete": "Molière"}}
    assert sorted(examples) == sorted(t["function"]["name"] for t in openai_tools())
    for name, args in examples.items():
        assert verdict(grammar, call(name, args)) == "whole", name
    assert verdict(grammar, call("calculer", {"expression": "1", "x": 2})) == "refused"


def _string_verdict(grammar: CallGrammar, raw: bytes) -> bool:
    """Whether ``raw`` is accepted as the inside of a string argument, closing quote and all."""
    state = grammar.start()
    for byte in b'{"name": "calculer", "arguments": {"expression": "' + raw + b'"}}':
        state = grammar.step(state, byte)
        if state is None:
            return False
    return grammar.complete(state)


@settings(max_examples=400, deadline=None)
@given(raw=st.binary(max_size=8).filter(lambda b: not set(b) & {0x22, 0x5C} and min(b, default=0x20) >= 0x20))
def test_strings_take_exactly_the_valid_utf8(raw):
    """No overlong form, surrogate or code point above U+10FFFF gets through: what the automaton
    accepts in a string is what Python decodes as UTF-8."""
    try:
        raw.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        valid = False
    assert _string_verdict(CallGrammar(TOOLS), raw) == valid


@pytest.mark.parametrize("raw", [b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xf0\x80\x80\x80", b"\xf4\x90\x80\x80",
                                 b"\xc0\xaf", b"\xf5\x80\x80\x80"])
def test_invalid_utf8_is_refused(raw):
    assert not _string_verdict(CallGrammar(TOOLS), raw)
    assert _string_verdict(CallGrammar(TOOLS), "é€𝄞".encode())


def test_max_length_caps_a_string_in_bytes():
    capped = [{"type": "function", "function": {"name": "calculer", "parameters": {
        "type": "object", "properties": {"expression": {"type": "string", "maxLength": 4}}}}}]
    assert _string_verdict(CallGrammar(capped), b"abcd") and not _string_verdict(CallGrammar(capped), b"abcde")
    assert not _string_verdict(CallGrammar(capped), "ééé".encode())  # 6 bytes: at most 4 characters, never more


def test_a_schema_not_covered_leaves_the_calls_free_only_when_asked(tok):
    """``constrain=None`` (the server with client tools): an array argument, which the automaton
    does not cover, leaves the calls free but the choice still holds; ``True`` refuses it."""
    arrays = [{"type": "function", "function": {"name": "liste", "parameters": {
        "type": "object", "properties": {"items": {"type": "array"}}}}}]
    with pytest.raises(CausetteError, match="not 'array'"):
        ToolCallProcessor(tok, arrays)
    free = ToolCallProcessor(tok, arrays, choice="required", constrain=None)
    assert free.grammar is None
    logits = free([], torch.zeros(tok.vocab_size))
    assert torch.isfinite(logits).sum() == 1 and logits[free.open_id] == 0  # the reply opens with a call
    assert ToolCallProcessor(tok, TOOLS, constrain=None).grammar is not None
