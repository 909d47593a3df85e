"""The one weight table (causette/model/tensors.py) and the one list of families
(causette/model/families.py): the table lists exactly each model's tensors, every format's names
go there and back, the exports lay their tensors out as they did before the table (the old
enumerations are kept below as the reference), the native step's pointer order is its C++
enums', and the families refuse what the exporters refused."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import torch

from causette.config import load_config
from causette.errors import CausetteError
from causette.model import Transformer, tensors
from causette.model.config import ModelConfig
from causette.model.families import FAMILIES, GPT2, LLAMA, MISTRAL, NATIVE_STEP

ROOT = Path(__file__).resolve().parents[1]
SIZE = ["model.n_layer=2", "model.n_embd=32", "model.n_head=4", "model.vocab_size=50", "model.block_size=16"]


def cfg_of(preset: str, *overrides: str) -> ModelConfig:
    return load_config(f"model/{preset}", [*SIZE, *overrides]).model


def build(preset: str, *overrides: str) -> Transformer:
    torch.manual_seed(0)
    model = Transformer(cfg_of(preset, *overrides)).eval()
    with torch.no_grad():  # every value distinct enough that a mix-up shows
        for p in model.parameters():
            p.uniform_(-1.0, 1.0)
    return model


LLAMA_LIKE = ("llama", "model.n_kv_head=2")
GPT2_LIKE = ("gpt2",)
MODELS = {
    "llama (GQA, tied)": LLAMA_LIKE,
    "llama untied, QK-norm, window": ("llama", "model.tie_embeddings=false", "model.qk_norm=true",
                                      "model.sliding_window=4"),
    "gpt2": GPT2_LIKE,
    "gpt2 untied, sinusoidal, relu2": ("gpt2", "model.tie_embeddings=false", "model.pos=sinusoidal",
                                       "model.mlp=relu2"),
    "layernorm without bias": ("llama", "model.norm=layernorm"),
    "MoE with a shared expert, biases": ("llama", "model.n_experts=3", "model.moe_shared_expert=true",
                                         "model.bias=true"),
    "window mixer, no MLP": ("llama", "model.mixer=window", "model.mlp=none", "model.bias=true"),
    "bigram (n_layer 0)": ("llama", "model.n_layer=0"),
}


# ============================================================================== the table


@pytest.mark.parametrize("name", list(MODELS))
def test_the_table_lists_exactly_the_models_tensors(name):
    model = build(*MODELS[name])
    table = tensors.model_tensors(model)
    saved = [t for t in table if t.row.saved]
    state = model.state_dict()
    assert len({t.path for t in saved}) == len(saved)  # each once
    assert {t.path for t in saved} == set(state)  # every tensor of the state dict, nothing else
    for t in saved:
        assert t.tensor.data_ptr() == state[t.path].data_ptr()
    # the tables computed from the config (buffers, in no file) are the model's buffers
    assert {t.path: t.tensor for t in table if not t.row.saved}.keys() == dict(model.named_buffers()).keys()
    # tied embeddings: the output layer is listed, marked as the token embedding's tensor
    (out,) = [t for t in table if t.role == "output.weight"]
    (emb,) = [t for t in table if t.role == "token_embd.weight"]
    assert out.tied == model.cfg.tie_embeddings == (out.tensor is emb.tensor)
    assert [t.tied for t in table].count(True) == int(model.cfg.tie_embeddings)
    # roles and layers: every block has the same roles, in the same order
    by_layer = {}
    for t in table:
        if t.layer is not None:
            by_layer.setdefault(t.layer, []).append((t.role, t.expert))
    assert len(by_layer) == model.cfg.n_layer and all(v == by_layer[0] for v in by_layer.values())


def test_the_roles_read_like_llama_cpp_and_are_each_one_row():
    roles = [row.role for row in tensors.ROWS]
    assert len(set(roles)) == len(roles) and len({row.path for row in tensors.ROWS}) == len(roles)
    for role in roles:
        assert re.fullmatch(r"[a-z_]+\.(weight|bias|cos|sin|table)", role), role
    cfg = cfg_of(*LLAMA_LIKE)
    t = {x.path: x for x in tensors.config_tensors(cfg)}
    assert (t["blocks.1.attn.qkv.weight"].role, t["blocks.1.attn.qkv.weight"].layer) == ("attn_qkv.weight", 1)
    assert t["blocks.1.attn.qkv.weight"].tensor.shape == (32 + 2 * 16, 32)
    assert tensors.state_path("token_embd.weight") == "wte.weight"
    assert tensors.state_path("attn_qkv.weight", 3) == "blocks.3.attn.qkv.weight"


@pytest.mark.parametrize("preset", sorted(p.stem for p in (ROOT / "causette/configs/model").glob("*.yaml")))
def test_the_table_covers_every_shipped_model_on_the_meta_device(preset):
    cfg = load_config(f"model/{preset}").model
    with torch.device("meta"):
        model = Transformer(cfg)
    listed = {t.path for t in tensors.config_tensors(cfg) if t.row.saved}
    assert listed == set(model.state_dict())


# ============================================================================== the formats

ROUND_TRIPS = [(LLAMA_LIKE, "hf_llama"), (("llama", "model.tie_embeddings=false"), "hf_llama"),
               (LLAMA_LIKE, "gguf"), (("llama", "model.n_kv_head=1", "model.tie_embeddings=false"), "gguf"),
               (GPT2_LIKE, "hf_gpt2")]


@pytest.mark.parametrize("spec, fmt", ROUND_TRIPS)
def test_names_and_tensors_go_there_and_back(spec, fmt):
    model = build(*spec)
    names = tensors.format_names(model.cfg, fmt)
    theirs = [n for ns in names.values() for n in ns]
    assert len(theirs) == len(set(theirs))  # no two of our tensors land on one name
    back = {n: ours for ours, ns in names.items() for n in ns}  # their name → ours
    assert set(back.values()) == set(names)
    exported = tensors.to_format(model, fmt)
    assert list(exported) == theirs  # the same names, in table order
    restored = tensors.from_format(model.cfg, fmt, exported.__getitem__)
    state = model.state_dict()
    if model.cfg.tie_embeddings:
        state.pop("lm_head.weight")
    assert restored.keys() == state.keys()
    for path, t in state.items():
        assert torch.equal(restored[path], t), path


def test_a_tensor_without_a_name_in_the_format_is_an_error():
    with pytest.raises(ValueError, match=r"blocks.0.attn.qkv.bias \(attn_qkv.bias\) has no name in"):
        tensors.to_format(build("llama", "model.bias=true"), "gguf")
    with pytest.raises(KeyError, match="unknown format"):
        tensors.to_format(build(*LLAMA_LIKE), "onnx")


# The enumerations that the table replaced, as they were: the exports must not have moved a byte.


def old_llama_state_dict(model):
    cfg = model.cfg
    q_rows, kv_rows, h = cfg.n_head * cfg.head_dim, cfg.kv_heads * cfg.head_dim, cfg.hidden_size
    out = {"model.embed_tokens.weight": model.wte.weight, "model.norm.weight": model.norm_f.weight}
    for i, block in enumerate(model.blocks):
        p = f"model.layers.{i}."
        q, k, v = block.attn.qkv.weight.split([q_rows, kv_rows, kv_rows])
        gate, up = block.mlp.up.weight.split([h, h])
        out |= {p + "input_layernorm.weight": block.norm1.weight, p + "self_attn.q_proj.weight": q,
                p + "self_attn.k_proj.weight": k, p + "self_attn.v_proj.weight": v,
                p + "self_attn.o_proj.weight": block.attn.proj.weight,
                p + "post_attention_layernorm.weight": block.norm2.weight, p + "mlp.gate_proj.weight": gate,
                p + "mlp.up_proj.weight": up, p + "mlp.down_proj.weight": block.mlp.down.weight}
    out["lm_head.weight"] = model.lm_head.weight
    return out


def old_gpt2_state_dict(model):
    out = {"transformer.wte.weight": model.wte.weight, "transformer.wpe.weight": model.positions.wpe.weight,
           "transformer.ln_f.weight": model.norm_f.weight, "transformer.ln_f.bias": model.norm_f.bias,
           "lm_head.weight": model.lm_head.weight}
    for i, block in enumerate(model.blocks):
        p = f"transformer.h.{i}."
        for ours, theirs in ((block.norm1, "ln_1"), (block.norm2, "ln_2")):
            out[p + theirs + ".weight"], out[p + theirs + ".bias"] = ours.weight, ours.bias
        for ours, theirs in ((block.attn.qkv, "attn.c_attn"), (block.attn.proj, "attn.c_proj"),
                             (block.mlp.up, "mlp.c_fc"), (block.mlp.down, "mlp.c_proj")):
            out[p + theirs + ".weight"] = ours.weight.t()
            out[p + theirs + ".bias"] = ours.bias
    return out


def old_gguf_tensors(model):
    cfg = model.cfg
    q_rows, kv_rows, h = cfg.n_head * cfg.head_dim, cfg.kv_heads * cfg.head_dim, cfg.hidden_size
    out = {"token_embd.weight": model.wte.weight}
    for i, block in enumerate(model.blocks):
        p = f"blk.{i}."
        q, k, v = block.attn.qkv.weight.split([q_rows, kv_rows, kv_rows])
        gate, up = block.mlp.up.weight.split([h, h])
        out |= {p + "attn_norm.weight": block.norm1.weight,
                p + "attn_q.weight": tensors.to_interleaved(q, cfg.n_head),
                p + "attn_k.weight": tensors.to_interleaved(k, cfg.kv_heads), p + "attn_v.weight": v,
                p + "attn_output.weight": block.attn.proj.weight, p + "ffn_norm.weight": block.norm2.weight,
                p + "ffn_gate.weight": gate, p + "ffn_up.weight": up,
                p + "ffn_down.weight": block.mlp.down.weight}
    out["output_norm.weight"] = model.norm_f.weight
    if not cfg.tie_embeddings:
        out["output.weight"] = model.lm_head.weight
    return out


def same(got: dict, expected: dict, ordered: bool = False):
    assert (list(got) == list(expected)) if ordered else (got.keys() == expected.keys())
    for k, v in expected.items():
        assert got[k].dtype == v.dtype and torch.equal(got[k], v.detach()), k


@pytest.mark.parametrize("spec", [LLAMA_LIKE, ("llama", "model.tie_embeddings=false", "model.n_kv_head=1")])
def test_llama_and_gguf_layouts_are_the_ones_before_the_table(spec):
    from causette.export.gguf import gguf_tensors
    from causette.model import hf_reference

    model = build(*spec)
    same(hf_reference.llama_state_dict(model), old_llama_state_dict(model))
    same(gguf_tensors(model), {k: v.float() for k, v in old_gguf_tensors(model).items()}, ordered=True)


def test_gpt2_layout_is_the_one_before_the_table():
    from causette.model import hf_reference

    model = build(*GPT2_LIKE)
    same(hf_reference.gpt2_state_dict(model), old_gpt2_state_dict(model))


def test_the_importer_reads_the_llama_names_back(tmp_path):
    from causette.export.importer import our_state

    model = build("llama", "model.tie_embeddings=false", "model.n_kv_head=2")
    hf = {k: v.detach().clone() for k, v in old_llama_state_dict(model).items()}
    rows = list(range(model.cfg.vocab_size))[::-1]  # their ids in reverse order
    state = our_state(hf, model.cfg, rows, tmp_path)
    expected = model.state_dict()
    for name in ("wte.weight", "lm_head.weight"):
        expected[name] = expected[name].flip(0)
    same(state, expected)
    del hf["model.layers.1.mlp.up_proj.weight"]
    with pytest.raises(CausetteError, match="missing tensor 'model.layers.1.mlp.up_proj.weight'"):
        our_state(hf, model.cfg, rows, tmp_path)


# ============================================================================== the native step


def cpp_enum(last: str) -> list[str]:
    """The names of native_step.cpp's enum that ends with ``last``."""
    source = (ROOT / "causette/inference/backends/native_step.cpp").read_text(encoding="utf-8")
    enums = [re.findall(r"\w+", body) for body in re.findall(r"enum\s*\{([^}]*)\}", source)]
    (names,) = [names for names in enums if names[-1] == last]
    return names


def test_the_native_slots_are_the_cpp_enums():
    assert cpp_enum("N_GLOBAL") == [*tensors.NATIVE_GLOBAL, "N_GLOBAL"]
    assert cpp_enum("PER_LAYER") == [*tensors.NATIVE_LAYER, "PER_LAYER"]
    used = {row.native for row in tensors.ROWS if row.native}
    assert used == set(tensors.NATIVE_GLOBAL) | set(tensors.NATIVE_LAYER)  # every slot has its tensor


def old_native_order(model):
    cfg = model.cfg
    if cfg.pos == "rope":
        pos_a, pos_b = model.rotary.cos, model.rotary.sin
    else:
        pos_a = model.positions.wpe.weight if hasattr(model.positions, "wpe") else model.positions.table
        pos_b = None
    out = [model.wte.weight, pos_a, pos_b, model.norm_f.weight, getattr(model.norm_f, "bias", None),
           model.lm_head.weight]
    for block in model.blocks:
        a, m = block.attn, block.mlp
        out += [block.norm1.weight, getattr(block.norm1, "bias", None), a.qkv.weight, a.qkv.bias,
                a.q_norm.weight if a.q_norm is not None else None,
                a.k_norm.weight if a.k_norm is not None else None,
                a.proj.weight, a.proj.bias, block.norm2.weight, getattr(block.norm2, "bias", None),
                m.up.weight, m.up.bias, m.down.weight, m.down.bias]
    return out


NOT_NATIVE = ["MoE with a shared expert, biases", "window mixer, no MLP", "bigram (n_layer 0)"]


@pytest.mark.parametrize("name", [n for n in MODELS if n not in NOT_NATIVE])
def test_the_native_pointer_order_is_the_one_before_the_table(name):
    from causette.inference.backends import native

    model = build(*MODELS[name])
    got, expected = tensors.native_weights(model), old_native_order(model)
    assert len(got) == len(tensors.NATIVE_GLOBAL) + model.cfg.n_layer * len(tensors.NATIVE_LAYER)
    assert all(a is b for a, b in zip(got, expected, strict=True))
    assert native.supports(model)


@pytest.mark.parametrize("name", NOT_NATIVE)
def test_the_native_step_leaves_what_it_cannot_read(name):
    from causette.inference.backends import native

    model = build(*MODELS[name])
    assert not native.supports(model) and not NATIVE_STEP.allows(model.cfg)
    assert not tensors.native_reads_all(model) or model.cfg.n_layer == 0


# ============================================================================== the families


def test_the_families_refuse_what_the_exporters_refused():
    """The lines of export/source.py before the families, word for word."""
    from causette.export.hf import hf_architecture
    from causette.export.source import gpt2_blockers, llama_blockers

    assert llama_blockers(cfg_of(*LLAMA_LIKE)) == [] and gpt2_blockers(cfg_of(*GPT2_LIKE)) == []
    everything = cfg_of("llama", "model.pos=learned", "model.norm=layernorm", "model.mlp=gelu",
                        "model.bias=true", "model.qk_norm=true", "model.logit_softcap=30",
                        "model.sliding_window=4", "model.tie_embeddings=false")
    assert llama_blockers(everything) == [
        "pos=learned (Llama uses rope)",
        "norm=layernorm (Llama uses rmsnorm)",
        "mlp=gelu (Llama uses swiglu)",
        "bias=true (Llama has no biases)",
        "qk_norm=true (Llama has no QK-norm)",
        "logit_softcap=30.0 (Llama has no logit soft-cap)",
        "sliding_window=4 (Llama has no sliding-window attention)",
    ]
    assert gpt2_blockers(everything) == [
        "tie_embeddings=false (GPT-2 ties them)",
        "n_kv_head=2 (GPT-2 has one key/value head per query head)",
        "qk_norm=true (GPT-2 has no QK-norm)",
        "logit_softcap=30.0 (GPT-2 has no logit soft-cap)",
        "sliding_window=4 (GPT-2 has no sliding-window attention)",
    ]
    assert gpt2_blockers(cfg_of("llama", "model.n_experts=2", "model.n_layer=0", "model.mixer=window")) == [
        "n_layer=0 (a bigram model: the formats expect at least one block)",
        "mixer=window (the formats know attention only)",
        "pos=rope (GPT-2 uses learned)",
        "norm=rmsnorm (GPT-2 uses layernorm)",
        "mlp=swiglu (GPT-2 uses gelu)",
        "bias=false (GPT-2 has biases everywhere)",
        "n_kv_head=2 (GPT-2 has one key/value head per query head)",
        "n_experts=2 (GPT-2 has no Mixture-of-Experts)",
    ]
    windowed = ("llama", "model.sliding_window=4")
    assert MISTRAL.blockers(cfg_of(*windowed)) == []
    chosen = [hf_architecture(cfg_of(*s)) for s in (LLAMA_LIKE, windowed, GPT2_LIKE)]
    assert chosen == ["llama", "mistral", "gpt2"]


def test_hf_reference_refuses_with_the_switch_named():
    from causette.model import hf_reference

    with pytest.raises(ValueError, match=r"^LlamaForCausalLM needs .*qk_norm=true \(Llama has no QK-norm\)$"):
        hf_reference.llama_config(cfg_of("llama", "model.qk_norm=true"))
    with pytest.raises(ValueError, match="^LlamaForCausalLM has no sliding window: use mistral_config$"):
        hf_reference.llama_config(cfg_of("llama", "model.sliding_window=4"))
    with pytest.raises(ValueError, match=r"^MistralForCausalLM needs .*n_experts=2"):
        hf_reference.mistral_config(cfg_of("llama", "model.n_experts=2", "model.sliding_window=4"))
    with pytest.raises(ValueError, match=r"^GPT2LMHeadModel needs .*sliding_window=4"):
        hf_reference.gpt2_config(cfg_of("gpt2", "model.sliding_window=4"))
    assert hf_reference.mistral_config(cfg_of("llama", "model.sliding_window=4"))["sliding_window"] == 4


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_a_family_allows_the_config_built_from_its_pinned_switches(family):
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    assert all(rule.setting in fields for rule in family.rules)  # a setting one can --set
    cfg = ModelConfig(vocab_size=50, n_layer=1, n_embd=32, n_head=4, block_size=16, **family.pinned())
    assert family.allows(cfg)
    for setting, value in family.pinned().items():  # each pinned switch, changed, is refused by name
        if isinstance(value, str):
            other = {"attention": "window", "rope": "learned", "learned": "rope", "rmsnorm": "layernorm",
                     "layernorm": "rmsnorm", "swiglu": "gelu", "gelu": "swiglu"}[value]
        else:
            other = (not value) if isinstance(value, bool) else 2  # None (off) or 0 experts → 2
        changed = dataclasses.replace(cfg, **{setting: other})
        assert [b.split("=")[0] for b in family.blockers(changed)] == [setting]


def test_the_importer_builds_a_llama_from_the_family():
    from causette.export.importer import model_config

    hf = {"model_type": "llama", "hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 2,
          "intermediate_size": 64, "num_key_value_heads": 2}
    cfg = model_config(hf, 50, Path("config.json"))
    assert LLAMA.allows(cfg) and not GPT2.allows(cfg)
    got = (cfg.pos, cfg.norm, cfg.mlp, cfg.bias, cfg.kv_heads, cfg.hidden_size)
    assert got == ("rope", "rmsnorm", "swiglu", False, 2, 64)
