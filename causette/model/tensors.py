"""The model's tensors in one table: what each one is, where it lives in our model, and what
every format calls it.

:data:`ROWS` has one row per kind of tensor, named by its **role** (llama.cpp's names where it has
one: ``token_embd``, ``attn_qkv``, ``ffn_up``..., then ``.weight`` or ``.bias``), with its path
in our state dict (``{i}``: the block, ``{e}``: the expert) and its names in each format:

* ``hf_llama``: transformers' ``LlamaForCausalLM`` and ``MistralForCausalLM`` (same names; the
  QK-norm scales as ``Qwen3ForCausalLM``, Llama plus QK-norm, names them);
* ``hf_gpt2``: transformers' ``GPT2LMHeadModel``;
* ``gguf``: llama.cpp's ``llama`` architecture;
* ``native``: the pointer slot of inference/backends/native_step.cpp (its enums ``G_*`` and ``L_*``).

A format may store one of our tensors as several (:class:`Name` with a ``part``): we keep q, k
and v in one matrix ``attn.qkv`` (rows ``[q | k | v]``) and SwiGLU's gate and up in one
``mlp.up`` (rows ``[gate | up]``), where Llama keeps them apart; and may store it rearranged
(``change``): GPT-2's ``Conv1D`` layers hold ``(in, out)`` matrices, the transpose of
``nn.Linear``'s, and llama.cpp pairs RoPE's features differently (export/gguf.py explains the
permutation of q and k, :func:`to_interleaved`).

:func:`model_tensors` reads the table against one model: the rows whose path exists in it, one
entry per block (and expert), in table order. Which rows exist follows from the model itself
(an absent bias, a norm without bias, an MoE layer instead of a dense MLP): the table needs no
copy of the config's rules. What derives from it:

* :func:`to_format` / :func:`from_format`: our tensors under a format's names and back
  (model/hf_reference.py and export/hf.py, export/gguf.py, export/importer.py);
* :func:`native_weights`: the pointer list of the C++ step (inference/backends/native.py), whose order is
  :data:`NATIVE_GLOBAL` then :data:`NATIVE_LAYER` per block: native_step.cpp's enums.

Which *configs* a format accepts at all is causette/model/families.py. The MoE tensors and the
window mixer's are listed so that the table covers every model, but no format has names for them
(every format refuses those models).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from causette.model.config import ModelConfig
from causette.model.transformer import Transformer

FORMATS = {
    "hf_llama": "transformers' LlamaForCausalLM / MistralForCausalLM",
    "hf_gpt2": "transformers' GPT2LMHeadModel",
    "gguf": "llama.cpp's llama architecture",
}
# native_step.cpp's pointer slots, in its order: `enum { G_WTE, ... }` and `enum { L_N1W, ... }`
# there (tests/test_tensors.py reads the source to check it).
NATIVE_GLOBAL = ("G_WTE", "G_POS", "G_SIN", "G_NORMF_W", "G_NORMF_B", "G_LM_HEAD")
NATIVE_LAYER = ("L_N1W", "L_N1B", "L_QKV_W", "L_QKV_B", "L_QN", "L_KN", "L_PROJ_W", "L_PROJ_B",
                "L_N2W", "L_N2B", "L_UP_W", "L_UP_B", "L_DOWN_W", "L_DOWN_B")


@dataclass(frozen=True)
class Name:
    """One tensor of a format, made from one of ours: all of it, or the rows of one ``part``
    (``q``, ``k``, ``v`` of ``attn_qkv``; ``gate``, ``up`` of a SwiGLU ``ffn_up``), possibly
    rearranged by ``change``: ``"transpose"`` (GPT-2's Conv1D) or ``"pairs"`` (llama.cpp's RoPE
    layout, on q and k)."""

    template: str
    part: str | None = None
    change: str | None = None


def conv1d(template: str) -> tuple[Name, ...]:
    """GPT-2's ``Conv1D`` weight: our matrix transposed, ``(in, out)``."""
    return (Name(template, change="transpose"),)


def qkv(q: str, k: str, v: str, rope_pairs: bool = False) -> tuple[Name, ...]:
    """Our ``attn.qkv`` rows ``[q | k | v]`` as three matrices."""
    pairs = "pairs" if rope_pairs else None
    return Name(q, "q", pairs), Name(k, "k", pairs), Name(v, "v")


def gate_up(gate: str, up: str) -> tuple[Name, ...]:
    """Our SwiGLU ``mlp.up`` rows ``[gate | up]`` as two matrices."""
    return Name(gate, "gate"), Name(up, "up")


@dataclass(frozen=True)
class Row:
    """One kind of tensor: its role, its path in our state dict, its names in the formats."""

    role: str
    path: str
    native: str | None = None
    saved: bool = True  # False: a table recomputed from the config (a buffer), in no file
    tied_to: str | None = None  # the role whose tensor this one is when the model ties them
    # the names in each format: a string (the whole tensor under that name), Names, or none
    hf_llama: str | tuple[Name, ...] = ()
    hf_gpt2: str | tuple[Name, ...] = ()
    gguf: str | tuple[Name, ...] = ()

    def names(self, fmt: str) -> tuple[Name, ...]:
        names = getattr(self, fmt)
        return (Name(names),) if isinstance(names, str) else names


L = "model.layers.{i}."  # transformers' Llama block
H = "transformer.h.{i}."  # transformers' GPT-2 block
B = "blk.{i}."  # llama.cpp's block

# region doc:rows
ROWS: tuple[Row, ...] = (
    # --- before the blocks
    Row("token_embd.weight", "wte.weight", native="G_WTE",
        hf_llama="model.embed_tokens.weight", hf_gpt2="transformer.wte.weight", gguf="token_embd.weight"),
    Row("pos_embd.weight", "positions.wpe.weight", native="G_POS",  # pos: learned
        hf_gpt2="transformer.wpe.weight"),
    Row("pos_embd.table", "positions.table", native="G_POS", saved=False),  # pos: sinusoidal
    Row("rope.cos", "rotary.cos", native="G_POS", saved=False),  # pos: rope
    Row("rope.sin", "rotary.sin", native="G_SIN", saved=False),
    # --- each block ({i})
    Row("attn_norm.weight", "blocks.{i}.norm1.weight", native="L_N1W",
        hf_llama=L + "input_layernorm.weight", hf_gpt2=H + "ln_1.weight", gguf=B + "attn_norm.weight"),
    Row("attn_norm.bias", "blocks.{i}.norm1.bias", native="L_N1B", hf_gpt2=H + "ln_1.bias"),
    Row("attn_qkv.weight", "blocks.{i}.attn.qkv.weight", native="L_QKV_W",
        hf_llama=qkv(L + "self_attn.q_proj.weight", L + "self_attn.k_proj.weight",
                     L + "self_attn.v_proj.weight"),
        hf_gpt2=conv1d(H + "attn.c_attn.weight"),
        gguf=qkv(B + "attn_q.weight", B + "attn_k.weight", B + "attn_v.weight", rope_pairs=True)),
    Row("attn_qkv.bias", "blocks.{i}.attn.qkv.bias", native="L_QKV_B", hf_gpt2=H + "attn.c_attn.bias"),
    # QK-norm: under Qwen3ForCausalLM's names (the Llama architecture plus these two)
    Row("attn_q_norm.weight", "blocks.{i}.attn.q_norm.weight", native="L_QN",
        hf_llama=L + "self_attn.q_norm.weight"),
    Row("attn_k_norm.weight", "blocks.{i}.attn.k_norm.weight", native="L_KN",
        hf_llama=L + "self_attn.k_norm.weight"),
    Row("attn_output.weight", "blocks.{i}.attn.proj.weight", native="L_PROJ_W",
        hf_llama=L + "self_attn.o_proj.weight", hf_gpt2=conv1d(H + "attn.c_proj.weight"),
        gguf=B + "attn_output.weight"),
    Row("attn_output.bias", "blocks.{i}.attn.proj.bias", native="L_PROJ_B", hf_gpt2=H + "attn.c_proj.bias"),
    Row("mix_proj.weight", "blocks.{i}.mix.proj.weight"),  # mixer: window (progression), for attn_*
    Row("mix_proj.bias", "blocks.{i}.mix.proj.bias"),
    Row("ffn_norm.weight", "blocks.{i}.norm2.weight", native="L_N2W",
        hf_llama=L + "post_attention_layernorm.weight", hf_gpt2=H + "ln_2.weight",
        gguf=B + "ffn_norm.weight"),
    Row("ffn_norm.bias", "blocks.{i}.norm2.bias", native="L_N2B", hf_gpt2=H + "ln_2.bias"),
    Row("ffn_up.weight", "blocks.{i}.mlp.up.weight", native="L_UP_W",
        hf_llama=gate_up(L + "mlp.gate_proj.weight", L + "mlp.up_proj.weight"),
        hf_gpt2=conv1d(H + "mlp.c_fc.weight"), gguf=gate_up(B + "ffn_gate.weight", B + "ffn_up.weight")),
    Row("ffn_up.bias", "blocks.{i}.mlp.up.bias", native="L_UP_B", hf_gpt2=H + "mlp.c_fc.bias"),
    Row("ffn_down.weight", "blocks.{i}.mlp.down.weight", native="L_DOWN_W",
        hf_llama=L + "mlp.down_proj.weight", hf_gpt2=conv1d(H + "mlp.c_proj.weight"),
        gguf=B + "ffn_down.weight"),
    Row("ffn_down.bias", "blocks.{i}.mlp.down.bias", native="L_DOWN_B", hf_gpt2=H + "mlp.c_proj.bias"),
    # Mixture-of-Experts (n_experts > 0) in place of ffn_up / ffn_down; {e}: the expert
    Row("ffn_gate_inp.weight", "blocks.{i}.mlp.router.weight"),
    Row("ffn_up_exps.weight", "blocks.{i}.mlp.experts.{e}.up.weight"),
    Row("ffn_up_exps.bias", "blocks.{i}.mlp.experts.{e}.up.bias"),
    Row("ffn_down_exps.weight", "blocks.{i}.mlp.experts.{e}.down.weight"),
    Row("ffn_down_exps.bias", "blocks.{i}.mlp.experts.{e}.down.bias"),
    Row("ffn_up_shexp.weight", "blocks.{i}.mlp.shared.up.weight"),  # moe_shared_expert
    Row("ffn_up_shexp.bias", "blocks.{i}.mlp.shared.up.bias"),
    Row("ffn_down_shexp.weight", "blocks.{i}.mlp.shared.down.weight"),
    Row("ffn_down_shexp.bias", "blocks.{i}.mlp.shared.down.bias"),
    # --- after the blocks
    Row("output_norm.weight", "norm_f.weight", native="G_NORMF_W",
        hf_llama="model.norm.weight", hf_gpt2="transformer.ln_f.weight", gguf="output_norm.weight"),
    Row("output_norm.bias", "norm_f.bias", native="G_NORMF_B", hf_gpt2="transformer.ln_f.bias"),
    Row("output.weight", "lm_head.weight", native="G_LM_HEAD", tied_to="token_embd.weight",
        hf_llama="lm_head.weight", hf_gpt2="lm_head.weight", gguf="output.weight"),
)
# endregion doc:rows
ROW = {row.role: row for row in ROWS}


@dataclass(frozen=True)
class ModelTensor:
    """One tensor of one model: a row of the table, the block (and expert) it belongs to."""

    row: Row
    layer: int | None
    expert: int | None
    path: str  # in our state dict: "blocks.3.attn.qkv.weight"
    tensor: torch.Tensor
    tied: bool  # this is the tensor of ``row.tied_to`` (the output layer of a tied model)

    @property
    def role(self) -> str:
        return self.row.role

    def their_name(self, name: Name) -> str:
        """``name``'s template for this tensor's block and expert."""
        return name.template.format(i=self.layer, e=self.expert)


def _lookup(model: nn.Module, path: str) -> torch.Tensor | None:
    """The tensor at ``path`` (a parameter or buffer), or None when the model has none there."""
    module_path, _, attr = path.rpartition(".")
    try:
        module = model.get_submodule(module_path)
    except AttributeError:
        return None
    t = getattr(module, attr, None)
    return t if isinstance(t, torch.Tensor) else None


def model_tensors(model: nn.Module) -> list[ModelTensor]:
    """Every tensor of ``model`` (a :class:`~causette.model.transformer.Transformer`) that the
    table names, in table order: the rows before the blocks, each block's rows, the rows after."""
    cfg = model.cfg
    layered = [i for i, row in enumerate(ROWS) if "{i}" in row.path]
    order = [(row, None) for row in ROWS[: layered[0]]]
    order += [(ROWS[k], i) for i in range(cfg.n_layer) for k in layered]
    order += [(row, None) for row in ROWS[layered[-1] + 1 :]]
    out, by_role = [], {}
    for row, layer in order:
        experts = range(cfg.n_experts) if "{e}" in row.path else [None]
        for e in experts:
            path = row.path.format(i=layer, e=e)
            t = _lookup(model, path)
            if t is None:
                continue
            tied = row.tied_to is not None and by_role.get(row.tied_to) is t
            out.append(ModelTensor(row, layer, e, path, t, tied))
            if layer is None:
                by_role[row.role] = t
    return out


def config_tensors(cfg: ModelConfig) -> list[ModelTensor]:
    """:func:`model_tensors` of the model ``cfg`` describes, on the ``meta`` device: the names
    and shapes, without memory or computation."""
    with torch.device("meta"):
        return model_tensors(Transformer(cfg))


def state_path(role: str, layer: int | None = None) -> str:
    """Our state-dict path of ``role`` (in block ``layer``): ``state_path("token_embd.weight")``
    is ``"wte.weight"``."""
    return ROW[role].path.format(i=layer, e=None)


# ---------------------------------------------------------------------------------- the formats


def format_name(fmt: str, role: str, layer: int | None = None) -> str:
    """The name ``fmt`` gives the tensor of ``role`` when it keeps it whole:
    ``format_name("hf_llama", "output.weight")`` is ``"lm_head.weight"``."""
    (name,) = ROW[role].names(fmt)
    return name.template.format(i=layer, e=None)


def to_interleaved(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Rows of q or k from our "rotate half" RoPE layout to llama.cpp's adjacent pairs: inside
    each head, row ``i`` moves to ``2i`` and row ``i + d/2`` to ``2i + 1`` (export/gguf.py)."""
    rows = w.shape[0]
    d = rows // n_heads
    return w.reshape(n_heads, 2, d // 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def from_interleaved(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """The inverse of :func:`to_interleaved`."""
    d = w.shape[0] // n_heads
    return w.reshape(n_heads, d // 2, 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def _part_rows(cfg: ModelConfig) -> dict[str, int]:
    """How many rows of our fused tensor each ``part`` takes."""
    q, kv, h = cfg.n_head * cfg.head_dim, cfg.kv_heads * cfg.head_dim, cfg.hidden_size
    return {"q": q, "k": kv, "v": kv, "gate": h, "up": h}


def _heads(cfg: ModelConfig, part: str | None) -> int:
    return cfg.n_head if part == "q" else cfg.kv_heads


def _change(t: torch.Tensor, name: Name, cfg: ModelConfig, inverse: bool = False) -> torch.Tensor:
    if name.change == "transpose":
        return t.t()
    if name.change == "pairs":
        return (from_interleaved if inverse else to_interleaved)(t, _heads(cfg, name.part))
    return t


def _names(t: ModelTensor, fmt: str) -> tuple[Name, ...]:
    if fmt not in FORMATS:
        raise KeyError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    names = t.row.names(fmt)
    if not names:
        raise ValueError(f"{t.path} ({t.role}) has no name in {FORMATS[fmt]}")
    return names


def _stored(entries: list[ModelTensor], tied: bool) -> list[ModelTensor]:
    """The entries a file holds: saved ones, the tied output layer only with ``tied``."""
    return [t for t in entries if t.row.saved and (tied or not t.tied)]


def format_names(cfg: ModelConfig, fmt: str, tied: bool = False) -> dict[str, list[str]]:
    """Our path → the names of the tensors ``fmt`` makes of it, in table order."""
    return {t.path: [t.their_name(n) for n in _names(t, fmt)] for t in _stored(config_tensors(cfg), tied)}


def to_format(model: nn.Module, fmt: str, tied: bool = False) -> dict[str, torch.Tensor]:
    """``model``'s tensors under the names of ``fmt`` (a key of :data:`FORMATS`), in table order,
    split and rearranged as that format stores them: detached views of the model's tensors (copy
    them before changing them). ``tied``: include the output layer of a tied model (transformers'
    state dicts have it; its files, like GGUF, do not)."""
    cfg = model.cfg
    sizes = _part_rows(cfg)
    out = {}
    for t in _stored(model_tensors(model), tied):
        names = _names(t, fmt)
        whole = t.tensor.detach()
        pieces = whole.split([sizes[n.part] for n in names]) if names[0].part else [whole]
        for name, piece in zip(names, pieces, strict=True):
            out[t.their_name(name)] = _change(piece, name, cfg)
    return out


def from_format(cfg: ModelConfig, fmt: str, get: Callable[[str], torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`to_format`: our state dict (without the tied output layer) from the
    tensors ``get(name)`` of ``fmt`` for the model ``cfg`` describes."""
    out = {}
    for t in _stored(config_tensors(cfg), tied=False):
        pieces = [_change(get(t.their_name(n)), n, cfg, inverse=True) for n in _names(t, fmt)]
        out[t.path] = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
    return out


def native_weights(model: nn.Module) -> list[torch.Tensor | None]:
    """The tensors native_step.cpp reads, in its pointer order (None where the model has none):
    :data:`NATIVE_GLOBAL`, then :data:`NATIVE_LAYER` for each block."""
    slot = {(t.row.native, t.layer): t.tensor for t in model_tensors(model) if t.row.native}
    out = [slot.get((s, None)) for s in NATIVE_GLOBAL]
    for i in range(model.cfg.n_layer):
        out += [slot.get((s, i)) for s in NATIVE_LAYER]
    return out


def unlisted(model: nn.Module) -> list[str]:
    """The parameters and buffers of ``model`` that no row of the table names: an int8 layer's
    scales, LoRA's matrices... (a reader of the table would miss them)."""
    named = {t.path for t in model_tensors(model)}
    every = [n for n, _ in model.named_parameters()] + [n for n, _ in model.named_buffers()]
    return [n for n in every if n not in named]


def native_reads_all(model: nn.Module) -> bool:
    """Whether native_step.cpp has a slot for every tensor of ``model`` (none would be ignored)."""
    return not unlisted(model) and all(t.row.native for t in model_tensors(model))
