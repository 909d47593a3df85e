"""``causette export hf`` and ``causette export gguf`` on a tiny checkpoint (random weights).

HF: transformers loads the folder offline; logits, greedy generation, tokenizer ids and the chat
template agree with ours. GGUF: gguf's reader gives back every key and every tensor (q/k rows
un-permuted back to ours), and a forward pass written with llama.cpp's conventions (RoPE on adjacent
pairs) on the file's tensors gives our logits. The real llama.cpp runs our GGUF in
tests/test_llamacpp.py.
Tolerance: fp32, atol 1e-4 on logits (see tests/test_model_hf.py).
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from causette.checkpoint.weights import save_model
from causette.cli import main as cli_main
from causette.config import load_config
from causette.data.chat_jinja import CHAT_TEMPLATE_JINJA
from causette.data.chat_template import render_chat
from causette.errors import CausetteError
from causette.inference.engine import Engine
from causette.inference.sampling import SamplingParams
from causette.model import Transformer
from causette.tokenizer import train_tokenizer
from causette.tokenizer.config import TokenizerConfig
from causette.tokenizer.io import save_tokenizer
from causette.tokenizer.special import TOOL_TOKENS
from causette.utils.io import write_json

ROOT = Path(__file__).resolve().parents[1]
ATOL = 1e-4
FRENCH = [
    "Le petit chat dort près de la fenêtre, et l'homme qu'il regarde rêve.",
    "« Qu'est-ce que c'est ? » demanda-t-elle ; il répondit : 1789 !\n\nÀ demain.",
    "Des  espaces   multiples\tet un <|im_start|> littéral, puis œuvre, ça, déjà.",
]
CHAT = [
    {"role": "system", "content": "Tu es concis."},
    {"role": "user", "content": "Bonjour ! <|im_start|> Qui es-tu ?"},
    {"role": "assistant", "content": "Un petit modèle."},
    {"role": "user", "content": "Et ensuite ?"},
]


def french_text(chars: int = 8000) -> str:
    return gzip.decompress((ROOT / "data" / "demo_fr_pd.txt.gz").read_bytes()).decode("utf-8")[:chars]


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(TokenizerConfig(vocab_size=400, workers=1), [french_text()])


def make_checkpoint(path: Path, tok, preset: str = "llama", overrides=(), stage: str = "sft") -> Transformer:
    cfg = load_config(
        f"model/{preset}",
        [
            "model.n_layer=2",
            "model.n_embd=64",
            "model.n_head=4",
            f"model.vocab_size={tok.vocab_size}",
            "model.block_size=64",
            "model.init_std=0.3",
            *overrides,
        ],
    ).model
    torch.manual_seed(0)
    model = Transformer(cfg).eval()
    with torch.no_grad():  # norm scales away from 1 so that a mix-up would show
        for p in model.parameters():
            if p.dim() == 1:
                p.uniform_(0.5, 1.5)
    save_model(model, path)
    save_tokenizer(tok, path)
    write_json(path / "state.json", {"stage": stage, "step": 0})
    return model


def greedy(model, tok, prompt: list[int], n: int, stops) -> list[int]:
    params = SamplingParams(temperature=0.0, max_new_tokens=n, stop_token_ids=tuple(stops), seed=0)
    [g] = Engine(model, tok).generate([prompt], params)
    return g.token_ids


# ============================================================================== Hugging Face

try:
    import transformers
except ImportError:  # an optional dependency (pip install -e .[hf]): the GGUF tests still run
    transformers = None
needs_transformers = pytest.mark.skipif(transformers is None, reason="transformers is not installed")


@pytest.fixture(scope="module")
def llama_export(tmp_path_factory, tok):
    os.environ["HF_HUB_OFFLINE"] = "1"
    root = tmp_path_factory.mktemp("hf")
    model = make_checkpoint(root / "ckpt", tok, overrides=["model.n_kv_head=2", "model.rope_theta=500.0"])
    assert cli_main(["export", "hf", str(root / "ckpt"), str(root / "out")]) == 0
    return model, root / "out"


@needs_transformers
def test_hf_files_and_config(llama_export, tok):
    _, out = llama_export
    names = {p.name for p in out.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    } <= names
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "llama" and cfg["tie_word_embeddings"] is True
    assert cfg["num_key_value_heads"] == 2 and cfg["rope_theta"] == 500.0
    assert cfg["eos_token_id"] == tok.end_id and cfg["bos_token_id"] == tok.bos_id  # a chat checkpoint
    tc = json.loads((out / "tokenizer_config.json").read_text())
    assert tc["chat_template"] == CHAT_TEMPLATE_JINJA and tc["eos_token"] == "<|im_end|>"
    assert tc["add_bos_token"] is True


@needs_transformers
def test_hf_llama_logits_and_greedy_generation_match(llama_export, tok):
    model, out = llama_export
    hf = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    assert type(hf).__name__ == "LlamaForCausalLM"
    ids = torch.tensor([tok.encode(FRENCH[0] + FRENCH[1])[:64]])
    with torch.no_grad():
        expected = hf(ids).logits
        got, _ = model(ids)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)

    prompt = tok.encode(FRENCH[0])[:12]
    stops = sorted(tok.control_ids)  # every special but the tool tags (generation_config.json)
    with torch.no_grad():
        gen = hf.generate(torch.tensor([prompt]), max_new_tokens=20, do_sample=False)
    theirs = gen[0, len(prompt) :].tolist()
    if theirs and theirs[-1] in stops:
        theirs = theirs[:-1]  # HF keeps the eos it stopped on; our engine does not
    assert theirs == greedy(model, tok, prompt, 20, stops)


@needs_transformers
def test_hf_tokenizer_gives_our_ids_and_chat_template(llama_export, tok):
    _, out = llama_export
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    for text in FRENCH + [french_text(3000)]:
        # HF always reads special tokens in text; ours only when allowed. Like `causette
        # generate`, HF starts a sequence with <|bos|> (add_bos_token).
        assert hf_tok(text)["input_ids"] == [tok.bos_id] + tok.encode(text, allowed_special="all")
        assert hf_tok(text, split_special_tokens=True)["input_ids"] == [tok.bos_id] + tok.encode(text)
        assert hf_tok(text, add_special_tokens=False)["input_ids"] == tok.encode(text, allowed_special="all")
        assert hf_tok.decode(tok.encode(text)) == text
    ids, _ = render_chat(tok, CHAT, add_generation_prompt=True)
    got = hf_tok.apply_chat_template(CHAT, add_generation_prompt=True, tokenize=True, return_dict=False)
    text = hf_tok.apply_chat_template(CHAT, add_generation_prompt=True, tokenize=False)
    assert tok.decode(ids) == text
    # The contents of this chat contain no special-looking text except "<|im_start|>" in a user
    # message, which HF's tokenizer reads as a special; ours keeps it as plain text.
    assert list(got) == tok.encode(text, allowed_special="all")
    assert got[0] == tok.bos_id and list(got).count(tok.bos_id) == 1  # the template's, not a second
    without_typed = [CHAT[0], {"role": "user", "content": "Bonjour ! Qui es-tu ?"}]
    ids, _ = render_chat(tok, without_typed, add_generation_prompt=True)
    assert list(hf_tok.apply_chat_template(without_typed, add_generation_prompt=True, return_dict=False)) == ids
    assert hf_tok.bos_token == "<|bos|>" and hf_tok.eos_token == "<|im_end|>" and hf_tok.pad_token == "<|pad|>"


TOOL_CHAT = [
    {"role": "user", "content": "Combien font 17 fois 23 ?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "calculer", "arguments": {"expression": "17*23"}}}]},
    {"role": "tool", "tool_call_id": "call_1", "name": "calculer", "content": '{"resultat": 391}'},
]
CALCULER = {"type": "function", "function": {"name": "calculer", "description": "Calcule.", "parameters": {
    "type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}}}


@needs_transformers
def test_hf_export_keeps_the_tool_tags_as_text(llama_export, tok):
    """The tool tags are added tokens that are not "special": one id each, never skipped by
    decode(skip_special_tokens=True) (a tool-call parser reads them there), never a stop."""
    _, out = llama_export
    added = {t["content"]: t for t in json.loads((out / "tokenizer.json").read_text())["added_tokens"]}
    assert [name for name, t in added.items() if not t["special"]] == list(TOOL_TOKENS)
    stops = json.loads((out / "generation_config.json").read_text())["eos_token_id"]
    assert stops[0] == tok.end_id and not {tok.special_id(t) for t in TOOL_TOKENS} & set(stops)
    assert set(stops) == tok.control_ids
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    reply = '<tool_call>\n{"name": "calculer", "arguments": {"expression": "17*23"}}\n</tool_call>'
    ids = tok.encode(reply, allowed_special="all") + [tok.end_id]
    assert ids.count(tok.special_id("<tool_call>")) == 1
    assert hf_tok.decode(ids, skip_special_tokens=True) == reply
    assert hf_tok.decode(ids) == reply + "<|im_end|>"
    for tools in ([CALCULER], [dict(CALCULER, function=dict(CALCULER["function"], name="meteo"))]):
        ours, _ = render_chat(tok, TOOL_CHAT, add_generation_prompt=True, tools=tools)
        text = hf_tok.apply_chat_template(TOOL_CHAT, tools=tools, add_generation_prompt=True, tokenize=False)
        assert text == tok.decode(ours)
        got = hf_tok.apply_chat_template(TOOL_CHAT, tools=tools, add_generation_prompt=True, return_dict=False)
        assert list(got) == ours


@needs_transformers
def test_hf_gpt2_family_exports_to_gpt2lmheadmodel(tmp_path, tok):
    model = make_checkpoint(tmp_path / "ckpt", tok, preset="gpt2", stage="pretrain")
    assert cli_main(["export", "hf", str(tmp_path / "ckpt"), str(tmp_path / "out")]) == 0
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    assert type(hf).__name__ == "GPT2LMHeadModel"
    ids = torch.tensor([tok.encode(FRENCH[1])[:64]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids)[0], hf(ids).logits, atol=ATOL, rtol=0)
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    assert cfg["eos_token_id"] == tok.bos_id  # a base model ends a document with <|bos|>


def test_hf_export_refuses_other_switches_with_the_list(tmp_path, tok, capsys):
    make_checkpoint(tmp_path / "ckpt", tok, overrides=["model.qk_norm=true", "model.logit_softcap=30"])
    from causette.export.hf import export_hf

    with pytest.raises(CausetteError) as err:
        export_hf(tmp_path / "ckpt", tmp_path / "out")
    msg = str(err.value)
    assert "qk_norm=true" in msg and "logit_softcap=30" in msg and "pos=rope" in msg
    assert not (tmp_path / "out").exists()
    assert cli_main(["export", "hf", str(tmp_path / "ckpt"), str(tmp_path / "out2")]) == 1
    assert "qk_norm" in capsys.readouterr().err


# ============================================================================== GGUF

gguf = pytest.importorskip("gguf")


@pytest.fixture(scope="module", params=["tied", "untied"])
def gguf_export(request, tmp_path_factory, tok):
    root = tmp_path_factory.mktemp("gguf")
    extra = ["model.n_kv_head=2", "model.rope_theta=500.0"]
    if request.param == "untied":
        extra += ["model.tie_embeddings=false", "model.n_kv_head=1", "model.norm_eps=1e-6"]
    model = make_checkpoint(root / "ckpt", tok, overrides=extra)
    assert cli_main(["export", "gguf", str(root / "ckpt"), str(root / "model.gguf")]) == 0
    return model, root / "model.gguf"


def read_fields(path: Path) -> dict:
    reader = gguf.GGUFReader(path)
    fields = {}
    for name, field in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        value = field.contents()
        fields[name] = value
    return reader, fields


def test_gguf_metadata_and_tokenizer(gguf_export, tok):
    from causette.tokenizer.io import to_hf_dict

    model, path = gguf_export
    cfg = model.cfg
    _, fields = read_fields(path)
    hf = to_hf_dict(tok)
    tokens = sorted(hf["model"]["vocab"], key=hf["model"]["vocab"].get) + sorted(
        tok.special_tokens, key=tok.special_tokens.get
    )
    expected = {
        "general.architecture": "llama",
        "general.name": "ckpt",
        "general.file_type": 0,
        "general.quantization_version": 2,
        "llama.vocab_size": cfg.vocab_size,
        "llama.context_length": cfg.block_size,
        "llama.embedding_length": cfg.n_embd,
        "llama.block_count": cfg.n_layer,
        "llama.feed_forward_length": cfg.hidden_size,
        "llama.attention.head_count": cfg.n_head,
        "llama.attention.head_count_kv": cfg.kv_heads,
        "llama.rope.freq_base": cfg.rope_theta,
        "llama.rope.dimension_count": cfg.head_dim,
        "llama.attention.layer_norm_rms_epsilon": pytest.approx(cfg.norm_eps),
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "llama-bpe",  # exactly our default gpt4 pattern
        "tokenizer.ggml.tokens": tokens,
        # named specials are control tokens (3), the tool tags user-defined (4: text that
        # llama.cpp prints), the reserved slots unused (5)
        "tokenizer.ggml.token_type": [
            (5 if tok.special_names[i].startswith("<|reserved_") else 4 if tok.special_names[i] in TOOL_TOKENS else 3)
            if i in tok.special_ids else 1
            for i in range(tok.vocab_size)
        ],
        "tokenizer.ggml.merges": hf["model"]["merges"],
        "tokenizer.ggml.bos_token_id": tok.bos_id,
        "tokenizer.ggml.eos_token_id": tok.end_id,  # a chat checkpoint
        "tokenizer.ggml.padding_token_id": tok.pad_id,
        "tokenizer.ggml.add_bos_token": True,
        "tokenizer.ggml.add_eos_token": False,
        "tokenizer.chat_template": CHAT_TEMPLATE_JINJA,
        "causette.tokenizer.pattern": tok.pattern,
        "causette.stage": "sft",
    }
    assert set(fields) == set(expected)
    for key, value in expected.items():
        assert fields[key] == value, key


def test_gguf_tensors_read_back_equal_ours(gguf_export):
    from causette.export.gguf import from_interleaved
    from causette.model import hf_reference

    model, path = gguf_export
    cfg = model.cfg
    reader, _ = read_fields(path)
    got = {
        t.name: torch.from_numpy(np.array(t.data)).reshape(tuple(reversed(t.shape.tolist())))
        for t in reader.tensors
    }
    hf = hf_reference.llama_state_dict(model)
    rename = {
        "token_embd.weight": "model.embed_tokens.weight",
        "output_norm.weight": "model.norm.weight",
        "output.weight": "lm_head.weight",
    }
    per_block = {
        "attn_norm": "input_layernorm",
        "attn_q": "self_attn.q_proj",
        "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj",
        "ffn_norm": "post_attention_layernorm",
        "ffn_gate": "mlp.gate_proj",
        "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj",
    }
    for i in range(cfg.n_layer):
        for ours, theirs in per_block.items():
            rename[f"blk.{i}.{ours}.weight"] = f"model.layers.{i}.{theirs}.weight"
    if cfg.tie_embeddings:
        del rename["output.weight"]
    assert set(got) == set(rename)
    for name, t in got.items():
        if ".attn_q." in name:
            t = from_interleaved(t, cfg.n_head)
        elif ".attn_k." in name:
            t = from_interleaved(t, cfg.kv_heads)
        assert t.dtype == torch.float32
        torch.testing.assert_close(t, hf[rename[name]], atol=0, rtol=0, msg=name)


def llama_cpp_reference_logits(path: Path, ids: list[int]) -> torch.Tensor:
    """A forward pass written from llama.cpp's conventions, on the GGUF tensors: RoPE on
    *adjacent* pairs (2i, 2i+1), RMSNorm, grouped-query attention, SwiGLU; output = token_embd
    when output.weight is absent."""
    reader, f = read_fields(path)
    W = {
        t.name: torch.from_numpy(np.array(t.data)).reshape(tuple(reversed(t.shape.tolist()))).double()
        for t in reader.tensors
    }
    n_head, n_kv = f["llama.attention.head_count"], f["llama.attention.head_count_kv"]
    eps, theta, d = (
        f["llama.attention.layer_norm_rms_epsilon"],
        f["llama.rope.freq_base"],
        f["llama.rope.dimension_count"],
    )
    T = len(ids)

    def rms(x, w):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w

    def rope(x):  # (heads, T, d), pairs (2i, 2i+1)
        ang = torch.arange(T, dtype=torch.float64)[:, None] * theta ** (
            -torch.arange(0, d, 2, dtype=torch.float64) / d
        )
        a, b = x[..., 0::2], x[..., 1::2]
        out = torch.empty_like(x)
        out[..., 0::2] = a * torch.cos(ang) - b * torch.sin(ang)
        out[..., 1::2] = a * torch.sin(ang) + b * torch.cos(ang)
        return out

    x = W["token_embd.weight"][ids]
    mask = torch.full((T, T), float("-inf")).triu(1).double()
    for i in range(f["llama.block_count"]):
        p = f"blk.{i}."
        h = rms(x, W[p + "attn_norm.weight"])
        q = rope((h @ W[p + "attn_q.weight"].T).view(T, n_head, d).transpose(0, 1))
        k = rope((h @ W[p + "attn_k.weight"].T).view(T, n_kv, d).transpose(0, 1))
        v = (h @ W[p + "attn_v.weight"].T).view(T, n_kv, d).transpose(0, 1)
        k, v = k.repeat_interleave(n_head // n_kv, 0), v.repeat_interleave(n_head // n_kv, 0)
        att = torch.softmax(q @ k.transpose(1, 2) / d**0.5 + mask, -1) @ v
        x = x + att.transpose(0, 1).reshape(T, n_head * d) @ W[p + "attn_output.weight"].T
        h = rms(x, W[p + "ffn_norm.weight"])
        g = torch.nn.functional.silu(h @ W[p + "ffn_gate.weight"].T) * (h @ W[p + "ffn_up.weight"].T)
        x = x + g @ W[p + "ffn_down.weight"].T
    out = W.get("output.weight", W["token_embd.weight"])
    return (rms(x, W["output_norm.weight"]) @ out.T).float()


def test_gguf_with_llama_cpp_conventions_gives_our_logits(gguf_export, tok):
    """The q/k permutation is right: interleaved RoPE on the file's tensors gives our logits."""
    model, path = gguf_export
    ids = tok.encode(FRENCH[1])[:40]
    with torch.no_grad():
        ours = model(torch.tensor([ids]))[0][0]
    torch.testing.assert_close(llama_cpp_reference_logits(path, ids), ours, atol=ATOL, rtol=0)


def test_gguf_float16_and_refusals(tmp_path, tok):
    make_checkpoint(tmp_path / "ckpt", tok, stage="pretrain")
    assert (
        cli_main(["export", "gguf", str(tmp_path / "ckpt"), str(tmp_path / "m.gguf"), "--dtype", "f16"]) == 0
    )
    reader, fields = read_fields(tmp_path / "m.gguf")
    assert fields["general.file_type"] == 1 and fields["tokenizer.ggml.eos_token_id"] == tok.bos_id
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types["blk.0.attn_q.weight"] == "F16" and types["blk.0.attn_norm.weight"] == "F32"
    assert cli_main(["export", "gguf", str(tmp_path / "ckpt"), str(tmp_path / "m.gguf")]) == 1  # exists
    make_checkpoint(tmp_path / "gpt2", tok, preset="gpt2")
    from causette.export.gguf import export_gguf

    with pytest.raises(CausetteError, match="pos=learned.*norm=layernorm"):
        export_gguf(tmp_path / "gpt2", tmp_path / "g.gguf")



def test_gguf_of_a_chat_model_in_the_older_format_warns(tmp_path):
    """A tokenizer from before ChatML: its own template is written, and one warning says that
    llama.cpp's built-in templates do not know it."""
    from causette.data.chat_jinja import LEGACY_CHAT_TEMPLATE_JINJA
    from causette.export.gguf import export_gguf

    specials = ["<|bos|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
    old = train_tokenizer(TokenizerConfig(vocab_size=400, workers=1, special_tokens=specials), [french_text()])
    make_checkpoint(tmp_path / "ckpt", old)
    warnings: list[str] = []
    export_gguf(tmp_path / "ckpt", tmp_path / "old.gguf", warn=warnings.append)
    assert len(warnings) == 1 and "older chat format" in warnings[0] and "phi3" in warnings[0]
    _, fields = read_fields(tmp_path / "old.gguf")
    assert fields["tokenizer.chat_template"] == LEGACY_CHAT_TEMPLATE_JINJA
    assert fields["tokenizer.ggml.eos_token_id"] == old.special_tokens["<|end|>"]
