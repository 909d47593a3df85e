"""``causette import hf``: a local Hugging Face Llama-family folder → a Causette checkpoint.

    HF_DIR/config.json, *.safetensors, tokenizer.json (+ tokenizer_config.json)
        ──▶ OUT/config.json, model.safetensors, tokenizer.json, state.json

The result is an ordinary checkpoint directory: ``causette chat --checkpoint OUT``,
``causette generate`` and ``causette sft --base OUT`` (full or LoRA) accept it.

Accepted: ``LlamaForCausalLM`` without RoPE scaling, biases or a head size other than
``hidden_size / num_attention_heads``, with a byte-level BPE tokenizer (hf_tokenizer.py says
which and how it is renumbered). Anything else is refused with the reason.

Stage: ``"sft"`` (a chat model for ``causette chat``) only when the model already uses our chat
template (a model exported by ``causette export hf``); any other model, even a chat model, was
trained on *its* conversation format, not ours, so it is imported as ``"pretrain"``: fine-tune it
with ``causette sft`` to teach it our format. ``--stage`` overrides this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from causette.checkpoint.files import state_path
from causette.checkpoint.weights import save_model
from causette.data.chat_jinja import CHAT_TEMPLATE_JINJA
from causette.errors import CausetteError
from causette.export.hf_tokenizer import convert_tokenizer
from causette.export.source import prepare_out_dir
from causette.model import tensors
from causette.model.config import ModelConfig
from causette.model.families import LLAMA
from causette.model.transformer import Transformer
from causette.tokenizer.io import save_tokenizer
from causette.tokenizer.special import CHAT_SPECIALS
from causette.utils.io import read_json, write_json

# A few sentences to check that the converted tokenizer cuts text as the original does.
PROBE = (
    "Le petit chat dort près de la fenêtre ; l'homme qu'il regarde rêve déjà. "
    "« Qu'est-ce que c'est ? » demanda-t-elle.\n\nEn 1789, 42 œuvres coûtaient 3,50 €.  Fin."
)


@dataclass
class ImportResult:
    path: Path
    stage: str
    vocab_size: int
    notes: list[str] = field(default_factory=list)


def _json(path: Path, required: bool = True) -> dict:
    if not path.is_file():
        if required:
            raise CausetteError(f"{path}: no such file (is this a Hugging Face model folder?)")
        return {}
    return read_json(path)


def model_config(hf: dict, vocab_size: int, path: Path, block_size: int | None = None) -> ModelConfig:
    """Our :class:`ModelConfig` for a Hugging Face Llama ``config.json``; refuses what we lack."""
    archs = hf.get("architectures") or []
    if hf.get("model_type") != LLAMA.name and LLAMA.hf_class not in archs:
        raise CausetteError(
            f"{path}: model_type {hf.get('model_type')!r} ({', '.join(archs) or 'no architecture'}); "
            f"Causette imports Llama-family models ({LLAMA.hf_class}) only"
        )
    rope = hf.get("rope_parameters") or {}
    scaling = hf.get("rope_scaling")
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if scaling or rope_type not in ("default", None):
        raise CausetteError(
            f"{path}: RoPE scaling ({scaling or rope_type}) is not supported: Causette's RoPE has no "
            "scaling variants (llama3, yarn, linear, dynamic...)"
        )
    problems = []
    if hf.get("attention_bias") or hf.get("mlp_bias"):
        problems.append("biases (attention_bias/mlp_bias)")
    if hf.get("hidden_act", "silu") != "silu":
        problems.append(f"hidden_act={hf.get('hidden_act')} (we have SwiGLU with silu)")
    n_embd, n_head = hf["hidden_size"], hf["num_attention_heads"]
    if hf.get("head_dim") not in (None, n_embd // n_head) or n_embd % n_head:
        problems.append(f"head_dim={hf.get('head_dim')} (ours is hidden_size / num_attention_heads)")
    if problems:
        raise CausetteError(f"{path}: cannot be expressed by Causette's model: {'; '.join(problems)}")
    theta = rope.get("rope_theta", hf.get("rope_theta", 10000.0))
    cfg = ModelConfig(
        vocab_size=vocab_size,
        block_size=int(block_size or hf.get("max_position_embeddings", 2048)),
        n_layer=hf["num_hidden_layers"],
        n_head=n_head,
        n_kv_head=hf.get("num_key_value_heads") or n_head,
        n_embd=n_embd,
        rope_theta=float(theta),
        norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
        mlp_hidden=hf["intermediate_size"],
        **LLAMA.pinned(),  # pos=rope, norm=rmsnorm, mlp=swiglu, no bias, ...: what Llama is
        tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
        init_std=float(hf.get("initializer_range", 0.02)),
    )
    try:
        cfg.validate()
    except ValueError as e:
        raise CausetteError(f"{path}: {e}") from None
    return cfg


def read_weights(directory: Path) -> dict[str, torch.Tensor]:
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise CausetteError(
            f"{directory}: no *.safetensors file (PyTorch .bin weights are not read: "
            "they are pickles; re-save the model with safe_serialization=True)"
        )
    state = {}
    for f in files:
        try:
            state |= load_file(str(f))
        except (SafetensorError, OSError) as e:
            raise CausetteError(f"{f}: not a valid safetensors file ({e})") from None
    return state


def our_state(
    hf: dict[str, torch.Tensor], cfg: ModelConfig, rows: list[int | None], path: Path
) -> dict[str, torch.Tensor]:
    """Our state dict from transformers' tensors (causette/model/tensors.py's ``hf_llama``
    names, read backwards); embedding rows renumbered by ``rows``."""

    def get(name: str) -> torch.Tensor:
        if name not in hf:
            raise CausetteError(f"{path}: missing tensor {name!r}")
        return hf[name]

    def renumber(matrix: torch.Tensor) -> torch.Tensor:
        if max((r for r in rows if r is not None), default=-1) >= matrix.shape[0]:
            raise CausetteError(
                f"{path}: the tokenizer has ids beyond the model's {matrix.shape[0]} embedding rows"
            )
        fill = matrix.float().mean(0).to(matrix.dtype)
        out = [matrix[r] if r is not None else fill for r in rows]
        return torch.stack(out)

    state = tensors.from_format(cfg, "hf_llama", get)
    for role in ("token_embd.weight", "output.weight"):  # the two matrices with a row per token
        if tensors.state_path(role) in state:
            state[tensors.state_path(role)] = renumber(state[tensors.state_path(role)])
    return state


def import_hf(
    hf_dir: str | Path,
    out: str | Path,
    stage: str = "auto",
    force: bool = False,
    block_size: int | None = None,
) -> ImportResult:
    """Convert the Hugging Face folder ``hf_dir`` into the checkpoint folder ``out``."""
    hf_dir = Path(hf_dir)
    if not hf_dir.is_dir():
        raise CausetteError(f"{hf_dir}: not a directory (give the folder of a downloaded Hugging Face model)")
    hf_cfg = _json(hf_dir / "config.json")
    tok_cfg = _json(hf_dir / "tokenizer_config.json", required=False)

    added = {t.get("id"): t.get("content") for t in _json(hf_dir / "tokenizer.json").get("added_tokens") or []}

    def role(name: str) -> str | None:
        """Their bos/eos/pad token: tokenizer_config.json, else the id in config.json."""
        value = tok_cfg.get(f"{name}_token")
        if isinstance(value, dict):
            value = value.get("content")
        if value is None:
            token_id = hf_cfg.get(f"{name}_token_id")
            token_id = token_id[0] if isinstance(token_id, list) and token_id else token_id
            value = added.get(token_id)
        return value

    converted = convert_tokenizer(hf_dir / "tokenizer.json", {r: role(r) for r in ("bos", "eos", "pad")})
    tok, rows, notes = converted.tokenizer, list(converted.source_ids), list(converted.notes)
    end_id = tok.end_id
    if rows[end_id] is None and converted.eos_source is not None:
        rows[end_id] = converted.eos_source  # a new <|im_end|> starts as a copy of their eos row
    cfg = model_config(hf_cfg, tok.vocab_size, hf_dir / "config.json", block_size)
    weights = read_weights(hf_dir)
    if cfg.tie_embeddings is False and tensors.format_name("hf_llama", "output.weight") not in weights:
        cfg.tie_embeddings = True  # some files leave the tied matrix out even when the flag is absent
    state = our_state(weights, cfg, rows, hf_dir)
    dtype = state[tensors.state_path("token_embd.weight")].dtype
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise CausetteError(f"{hf_dir}: weights of dtype {dtype} (expected float32, bfloat16 or float16)")
    model = Transformer(cfg).to(dtype)
    expected = set(model.state_dict()) - ({tensors.state_path("output.weight")} if cfg.tie_embeddings else set())
    if set(state) != expected:
        raise CausetteError(f"{hf_dir}: unexpected tensor layout ({sorted(set(state) ^ expected)[:4]})")
    model.load_state_dict(state, strict=False)
    _check_probe(hf_dir / "tokenizer.json", tok, rows, notes)

    template = tok_cfg.get("chat_template")
    if template is None and (hf_dir / "chat_template.jinja").is_file():  # where transformers 5 saves it
        template = (hf_dir / "chat_template.jinja").read_text(encoding="utf-8")
    if stage == "auto":
        stage = "sft" if template == CHAT_TEMPLATE_JINJA else "pretrain"
        if stage == "pretrain" and template:
            notes.append(
                "its own chat template is not Causette's: imported as a base model "
                "(fine-tune it with `causette sft` to chat, or pass --stage sft)"
            )
    assert set(CHAT_SPECIALS) <= set(tok.special_tokens)
    out = prepare_out_dir(out, force)
    save_model(model, out)
    save_tokenizer(tok, out)
    write_json(
        state_path(out),
        {
            "stage": stage,
            "step": 0,
            "tokens_seen": 0,
            "tokenizer_hash": tok.hash,
            "imported_from": str(hf_dir.resolve()),
        },
    )
    return ImportResult(out, stage, tok.vocab_size, notes)


def _check_probe(path: Path, tok, rows: list[int | None], notes: list[str]) -> None:
    """Compare our encoding of :data:`PROBE` with the original tokenizer's (when installed)."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return
    theirs = Tokenizer.from_file(str(path)).encode(PROBE, add_special_tokens=False).ids
    to_ours: dict[int, int] = {}
    for i, r in enumerate(rows):
        if r is not None:
            to_ours.setdefault(r, i)
    if [to_ours.get(i) for i in theirs] != tok.encode(PROBE):
        notes.append(
            "the converted tokenizer cuts a French test sentence differently from the original "
            "(the model still works, but its ids may differ on some text)"
        )
