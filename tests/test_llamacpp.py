"""Our GGUF export against the real llama.cpp: same ids, same logits, same greedy text, same chat.

llama.cpp is built from PyPI's ``llama-cpp-python`` source by ``bash tools/llamacpp/build.sh``
(``.ci/run`` does it; ``make llamacpp`` too): its Python binding for tokenising and evaluating,
and ``causette-chat-render``, a small program of ours that asks llama.cpp's own chat code (the
Jinja engine and the built-in templates) to render a conversation. Without them this module is
skipped, saying how to get them.

The model is tiny and random (the numbers do not need training), the tokenizer is trained on
the demo corpus with the default settings, and every demo-corpus line is compared.
"""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from causette.checkpoint.steps import save_checkpoint
from causette.config import load_config
from causette.data.chat_template import render_chat, render_text
from causette.export.gguf import export_gguf, pre_tokenizer_mismatch
from causette.inference.config import SamplingParams
from causette.inference.engine import Engine
from causette.model import Transformer
from causette.tokenizer.config import TokenizerConfig
from causette.tokenizer.train import train_tokenizer
from causette.utils.paths import DEMO_CORPUS

try:
    import llama_cpp
except (ImportError, OSError, RuntimeError) as e:  # not installed, or its library does not load
    pytest.skip(
        f"llama.cpp is not installed ({type(e).__name__}: {e}); run `make llamacpp` "
        "(bash tools/llamacpp/build.sh) to build it from PyPI's llama-cpp-python source",
        allow_module_level=True,
    )

CHAT_RENDER = Path(llama_cpp.__file__).parent / "lib" / "causette-chat-render"
LINES = [line for line in gzip.decompress(DEMO_CORPUS.read_bytes()).decode("utf-8").splitlines() if line.strip()]

CONVERSATIONS = [
    [{"role": "user", "content": "Bonjour, qu'est-ce que l'amour ?"}],
    [
        {"role": "system", "content": "Tu es un assistant concis. Réponds en français."},
        {"role": "user", "content": "Quelle est la capitale de l'Italie ?"},
        {"role": "assistant", "content": "Rome, jusqu'à preuve du contraire."},
        {"role": "user", "content": "Et celle de l'Espagne ?\n\n  Merci d'avance !"},
    ],
    [{"role": "user", "content": "\n  L'été 1789 — « peut-être » ?\t😀"}],
]
PROMPTS = ["Le roi", "L'homme qu'il aimait", "Jusqu'à l'aube, elle n'avait", "« Qu'est-ce que c'est ? » dit-il"]


def make_run(root: Path, pattern: str, vocab_size: int, chars: int) -> dict[str, Path]:
    """A tokenizer trained on the demo corpus, a tiny random Llama model, as SFT and base checkpoints."""
    text = "\n".join(LINES)[:chars]
    tok = train_tokenizer(
        TokenizerConfig(vocab_size=vocab_size, workers=1, pattern=pattern), [text], out_dir=root / "tokenizer"
    )
    cfg = load_config(
        "model/llama",
        [
            "model.n_layer=2", "model.n_embd=64", "model.n_head=4", "model.n_kv_head=2",
            f"model.vocab_size={tok.vocab_size}", "model.block_size=256", "model.init_std=0.1",
        ],
    ).model
    torch.manual_seed(0)
    model = Transformer(cfg).eval()
    paths = {}
    for stage in ("sft", "pretrain"):
        ckpt = save_checkpoint(
            root / stage / "checkpoints", 1, model, None, state={"stage": stage},
            tokenizer_file=root / "tokenizer" / "tokenizer.json",
        )
        paths[stage] = export_gguf(ckpt, root / f"{stage}.gguf")
    paths["tokenizer"], paths["model"] = tok, model
    return paths


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("gpt4"), "gpt4", 2048, 600_000)


def llama(path: Path, **kw) -> "llama_cpp.Llama":
    # f32 KV cache (type 0) and one thread: the numbers are llama.cpp's best, and repeatable
    return llama_cpp.Llama(
        str(path), n_ctx=256, n_threads=1, type_k=0, type_v=0, verbose=False, seed=0, **kw
    )


@pytest.fixture(scope="module")
def sft(run):
    return llama(run["sft"], logits_all=True)


@pytest.fixture(scope="module")
def base(run):
    return llama(run["pretrain"])


def their_ids(llm, text: str) -> list[int]:
    """llama.cpp's ids for text typed by a user: no BOS, special tokens not parsed."""
    return llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)


# ------------------------------------------------------------------------------ tokenisation


def test_every_demo_corpus_line_gets_our_ids(run, sft):
    tok = run["tokenizer"]
    ours = tok.encode_batch(LINES)
    differ = [line for line, ids in zip(LINES, ours) if their_ids(sft, line) != ids]
    assert not differ, f"{len(differ)}/{len(LINES)} lines differ, e.g. {differ[:3]}"
    assert len(LINES) > 40_000


PIECES = list("'’-«» \u00a0\u202f\n\r\t0123456789éèàçœ") + ["qu'", "l'", "L'", "  ", "e\u0301", "'s", "'LL"]
TEXT = st.lists(
    st.one_of(st.characters(codec="utf-8", exclude_categories=("Cs", "Co", "Cn")), st.sampled_from(PIECES)),
    max_size=40,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_any_text_gets_our_ids(run, sft, text):
    assert their_ids(sft, text) == run["tokenizer"].encode(text)


def test_text_that_looks_like_a_special_token_stays_text(run, sft):
    tok = run["tokenizer"]
    text = "Je tape <|im_start|>assistant et <|im_end|><|bos|>"
    assert their_ids(sft, text) == tok.encode(text)
    assert not set(tok.encode(text)) & tok.special_ids


def test_a_pattern_without_equivalent_is_announced_with_the_right_share(tmp_path):
    """The ``french`` pattern has no llama.cpp pre-tokenizer: the export warns with the share
    of demo lines cut differently, and that share is exactly what llama.cpp does."""
    paths = make_run(tmp_path, "french", 512, 200_000)
    tok, warnings = paths["tokenizer"], []
    export_gguf(tmp_path / "sft" / "checkpoints", tmp_path / "again.gguf", warn=warnings.append)
    share = pre_tokenizer_mismatch(tok)
    assert len(warnings) == 1 and f"cuts {share:.1%} of the demo corpus lines" in warnings[0]
    llm = llama(paths["sft"])
    ours = tok.encode_batch(LINES)
    measured = sum(their_ids(llm, line) != ids for line, ids in zip(LINES, ours)) / len(LINES)
    assert measured == pytest.approx(share, abs=1e-12) and 0.2 < share < 0.8


def test_the_gpt2_pattern_is_reproduced_too(tmp_path):
    paths = make_run(tmp_path, "gpt2", 512, 200_000)
    tok, warnings = paths["tokenizer"], []
    export_gguf(tmp_path / "sft" / "checkpoints", tmp_path / "again.gguf", warn=warnings.append)
    assert not warnings
    llm = llama(paths["sft"])
    ours = tok.encode_batch(LINES)
    assert sum(their_ids(llm, line) != ids for line, ids in zip(LINES, ours)) == 0


# ------------------------------------------------------------------------------ the model


def test_logits_match(run, sft):
    tok, model = run["tokenizer"], run["model"]
    ids = [tok.bos_id] + tok.encode(" ".join(LINES[100:110]))[:200]
    sft.reset()
    sft.eval(ids)
    theirs = torch.tensor(sft.scores[: len(ids)])
    with torch.no_grad():
        ours = model.logits(torch.tensor([ids]))[0]
    assert ours.abs().max() > 1.0
    assert (ours - theirs).abs().max() <= 1e-4
    assert torch.equal(ours.argmax(-1), theirs.argmax(-1))


def greedy_theirs(llm, ids: list[int], n: int) -> list[int]:
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    out = []
    for token in llm.generate(ids, temp=0.0, repeat_penalty=1.0, reset=True):
        if llama_cpp.llama_vocab_is_eog(vocab, token) or len(out) == n:
            break
        out.append(token)
    return out


def greedy_ours(run, ids: list[int], n: int, stop: int) -> list[int]:
    engine = Engine(run["model"], run["tokenizer"])
    params = SamplingParams(temperature=0, max_new_tokens=n, stop_token_ids=(stop,))
    return engine.generate([ids], params)[0].token_ids


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_text_from_a_text_prompt(run, base, prompt):
    """What a user does: type French, let the base model continue. llama.cpp adds <|bos|>
    itself (add_bos_token), as `causette generate` does."""
    tok = run["tokenizer"]
    theirs_prompt = base.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)
    ours_prompt = Engine(run["model"], tok).encode_prompt(prompt)
    assert theirs_prompt == ours_prompt
    ours = greedy_ours(run, ours_prompt, 40, stop=tok.bos_id)
    assert greedy_theirs(base, theirs_prompt, 40) == ours
    # The same through llama-cpp-python's text API. A random model writes anything: llama.cpp
    # does not print special tokens and drops bytes that are not valid UTF-8, so compare alike.
    completion = base.create_completion(prompt, max_tokens=40, temperature=0.0, repeat_penalty=1.0)
    shown = tok.decode_bytes([i for i in ours if i not in tok.special_ids]).decode("utf-8", errors="ignore")
    assert completion["choices"][0]["text"] == shown


# ------------------------------------------------------------------------------ chat


def chat_render(gguf: Path, messages: list[dict], tmp_path: Path, tools=None, parse: str | None = None) -> dict:
    """llama.cpp's rendering of the conversation (and, with ``parse``, its reading of that text as
    the model's reply), from the messages in OpenAI's form, as a client sends them to llama-server."""
    request = tmp_path / "messages.json"
    body = {"messages": [openai_message(m) for m in messages], "add_generation_prompt": True}
    body |= ({"tools": tools} if tools else {}) | ({"parse": parse} if parse is not None else {})
    request.write_text(json.dumps(body), encoding="utf-8")
    done = subprocess.run([str(CHAT_RENDER), str(gguf), str(request)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def openai_message(message: dict) -> dict:
    """A message of ours in OpenAI's wire form: a call's arguments as JSON text."""
    if not message.get("tool_calls"):
        return message
    calls = [
        dict(c, function=dict(c["function"], arguments=json.dumps(c["function"]["arguments"], ensure_ascii=False)))
        for c in message["tool_calls"]
    ]
    return dict(message, tool_calls=calls)


needs_chat_render = pytest.mark.skipif(
    not CHAT_RENDER.is_file(), reason="causette-chat-render not built (tools/llamacpp/build.sh)"
)


@needs_chat_render
@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_both_chat_paths_of_llamacpp_give_our_ids(run, sft, messages, tmp_path):
    """llama.cpp renders the conversation with its Jinja engine (llama-cli, llama-server) or its
    built-in ChatML (--no-jinja); it then tokenises the text adding <|bos|> and parsing specials."""
    ours, _ = render_chat(run["tokenizer"], messages, add_generation_prompt=True)
    rendered = chat_render(run["sft"], messages, tmp_path)
    assert rendered["add_bos"] is True
    for path in ("jinja", "legacy"):
        assert isinstance(rendered[path], str), rendered[path]
        assert sft.tokenize(rendered[path].encode("utf-8"), add_bos=True, special=True) == ours, path


def test_llamacpp_detects_chatml_without_jinja(run, sft):
    """llama_chat_apply_template with the model's own template: recognised as ChatML."""
    template = llama_cpp.llama_model_chat_template(sft.model, None)
    messages = CONVERSATIONS[1]
    array = (llama_cpp.llama_chat_message * len(messages))(
        *[llama_cpp.llama_chat_message(role=m["role"].encode(), content=m["content"].encode()) for m in messages]
    )
    import ctypes

    def apply(name: bytes) -> str:
        buf = ctypes.create_string_buffer(8192)
        n = llama_cpp.llama_chat_apply_template(name, array, len(messages), True, buf, len(buf))
        assert 0 < n < len(buf)
        return buf.raw[:n].decode("utf-8")

    assert apply(template) == apply(b"chatml")
    ours, _ = render_chat(run["tokenizer"], messages, add_generation_prompt=True)
    assert run["tokenizer"].decode(ours) == "<|bos|>" + apply(template)


def test_end_of_turn_metadata(run, sft, base):
    tok = run["tokenizer"]
    vocab = llama_cpp.llama_model_get_vocab(sft.model)
    assert llama_cpp.llama_vocab_get_add_bos(vocab) and sft.token_bos() == tok.bos_id
    assert sft.token_eos() == tok.end_id and llama_cpp.llama_vocab_is_eog(vocab, tok.end_id)
    assert not llama_cpp.llama_vocab_is_eog(vocab, tok.special_id("<|im_start|>"))
    assert not any(llama_cpp.llama_vocab_is_eog(vocab, i) for i in range(tok.bos_id - 256, tok.bos_id))
    assert base.token_eos() == tok.bos_id  # a base model's document ends where the next starts


@pytest.mark.parametrize("messages", CONVERSATIONS[:2])
def test_greedy_chat_reply(run, sft, messages):
    tok = run["tokenizer"]
    ids, _ = render_chat(tok, messages, add_generation_prompt=True)
    ours = greedy_ours(run, ids, 40, stop=tok.end_id)
    assert greedy_theirs(sft, ids, 40) == ours


# ------------------------------------------------------------------------------ tools


def tool(name: str, args: list[str]) -> dict:
    properties = {a: {"type": "string", "description": f"l'argument {a}"} for a in args}
    return {"type": "function", "function": {"name": name, "description": "Un outil.",
                                             "parameters": {"type": "object", "properties": properties, "required": args}}}


def call(name: str, arguments: dict, n: int = 1) -> dict:
    return {"id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": arguments}}


BUILTIN = [tool("calculer", ["expression"]), tool("date_heure", []), tool("convertir", ["valeur", "de", "vers"])]
METEO = tool("météo", ["ville"])
TOOL_CONVERSATIONS = {
    "builtin tools, results": ([
        {"role": "user", "content": "Combien font 17 fois 23 ?"},
        {"role": "assistant", "content": "", "tool_calls": [call("calculer", {"expression": "17*23"})]},
        {"role": "tool", "tool_call_id": "call_1", "name": "calculer", "content": '{"resultat": 391}'},
    ], BUILTIN),
    "system, content and two calls, client tools": ([
        {"role": "system", "content": "Tu es Causette."},
        {"role": "user", "content": "Quel temps fait-il à Besançon ?"},
        {"role": "assistant", "content": "Je regarde.", "tool_calls": [
            call("météo", {"ville": "Besançon", "jours": 3, "précis": True}, 1),
            call("convertir", {"valeur": 3.5, "de": "km", "vers": "mi"}, 2)]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temps": "beau"}'},
        {"role": "tool", "tool_call_id": "call_2", "content": '{"valeur": 2.17479, "unite": "mi"}'},
        {"role": "assistant", "content": "Il fait beau."},
        {"role": "user", "content": "Merci « beaucoup » !"},
    ], [METEO, BUILTIN[2]]),
    "calls in the history, no tools offered": ([
        {"role": "user", "content": "Quelle heure est-il ?"},
        {"role": "assistant", "content": "", "tool_calls": [call("date_heure", {})]},
        {"role": "tool", "content": '{"date": "samedi 6 décembre 2026", "heure": "14:05"}'},
    ], None),
}


@needs_chat_render
@pytest.mark.parametrize("case", TOOL_CONVERSATIONS)
def test_llamacpp_renders_tool_conversations_as_we_do(run, sft, case, tmp_path):
    """llama-server's path: OpenAI messages (arguments as JSON text, which llama.cpp parses back
    into an object for our template) and tools, rendered by its Jinja engine: our text, our ids."""
    messages, tools = TOOL_CONVERSATIONS[case]
    ours, _ = render_chat(run["tokenizer"], messages, add_generation_prompt=True, tools=tools)
    rendered = chat_render(run["sft"], messages, tmp_path, tools=tools)
    assert isinstance(rendered["jinja"], str), rendered["jinja"]
    assert "<|bos|>" + rendered["jinja"] == render_text(messages, add_generation_prompt=True, tools=tools)
    assert sft.tokenize(rendered["jinja"].encode("utf-8"), add_bos=True, special=True) == ours


@needs_chat_render
def test_llamacpp_reads_the_calls_the_model_writes(run, tmp_path):
    """What llama-server does with a reply: its parser (built from our template, no format named
    by us) turns the text after the generation prompt into content and tool calls."""
    messages = [{"role": "user", "content": "Quel temps fait-il à Besançon et à Paris ?"}]
    reply = "Je regarde." + "".join(
        '\n<tool_call>\n{"name": "météo", "arguments": {"ville": "' + city + '", "jours": 2}}\n</tool_call>'
        for city in ("Besançon", "Paris")
    )
    parsed = chat_render(run["sft"], messages, tmp_path, tools=[METEO], parse=reply)["parsed"]
    assert parsed["content"].strip() == "Je regarde."
    assert [(c["name"], json.loads(c["arguments"])) for c in parsed["tool_calls"]] == [
        ("météo", {"ville": "Besançon", "jours": 2}), ("météo", {"ville": "Paris", "jours": 2})]
    alone = '<tool_call>\n{"name": "calculer", "arguments": {"expression": "17*23"}}\n</tool_call>'
    parsed = chat_render(run["sft"], messages, tmp_path, tools=BUILTIN, parse=alone)["parsed"]
    assert parsed["content"] == "" and parsed["tool_calls"] == [{"name": "calculer", "arguments": '{"expression": "17*23"}'}]
    # without tools offered, a reply is plain text
    assert chat_render(run["sft"], messages, tmp_path, parse="Bonjour.")["parsed"]["tool_calls"] == []


def test_the_tool_tags_are_text_to_llamacpp(run, sft):
    """User-defined tokens: printed as their text (so a parser sees them), never an end of turn.
    llama.cpp also reads one in any text, even typed by a user: there it differs from Causette,
    which encodes a typed "<tool_call>" as ordinary bytes (as Qwen2.5's GGUF does)."""
    tok = run["tokenizer"]
    vocab = llama_cpp.llama_model_get_vocab(sft.model)
    for name in ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"):
        i = tok.special_id(name)
        assert llama_cpp.llama_vocab_get_attr(vocab, i) & llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
        assert not llama_cpp.llama_vocab_is_eog(vocab, i)
        assert sft.detokenize([i]) == name.encode()
        assert their_ids(sft, name) == [i] and tok.encode(name) != [i]
    reply = tok.encode('<tool_call>\n{"name": "date_heure", "arguments": {}}\n</tool_call>', allowed_special="all")
    assert sft.detokenize(reply).decode() == tok.decode(reply)
