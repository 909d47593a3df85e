"""``causette export gguf``: a Llama-family checkpoint → one ``.gguf`` file for llama.cpp.

GGUF is llama.cpp's single-file format: a header of typed key/value metadata (architecture,
sizes, tokenizer), then named tensors. We write the layout of llama.cpp's ``llama``
architecture with the ``gguf`` package (llama.cpp's own Python writer). The tensors and their
names are the ``gguf`` column of causette/model/tensors.py, in its order: our ``attn.qkv`` split
into ``attn_q``, ``attn_k``, ``attn_v`` (q and k rows permuted, below), our ``mlp.up`` into
``ffn_gate`` and ``ffn_up``; ``output.weight`` only for an untied model (llama.cpp reuses
``token_embd.weight`` otherwise). The models it takes: the Llama family of
causette/model/families.py.

**Why q and k are permuted.** RoPE rotates pairs of features of each head. We (like Hugging Face)
pair feature ``i`` with ``i + d/2`` ("rotate half"); llama.cpp's ``llama`` architecture pairs
neighbours ``2i, 2i+1`` (Meta's original layout), with the same frequency for pair ``i``. The
two models are identical once, inside every head of q and k, row ``i`` moves to ``2i`` and
row ``i + d/2`` to ``2i + 1``: viewing a head's ``d`` rows as ``(2, d/2)`` (half, i) and
transposing to ``(d/2, 2)`` puts them in that order. Dot products ``q·k`` are unchanged because
both sides move alike, so attention scores, and therefore the logits, are the same.
:func:`~causette.model.tensors.to_interleaved` does this; ``from_interleaved`` undoes it (the
tests use it).

Tokenizer: ``tokenizer.ggml.model = "gpt2"`` (byte-level BPE), the tokens as the byte-level
strings of our Hugging Face export, its merges and token types: the named specials are
"control" tokens, the ``<|reserved_k|>`` slots "unused" (llama.cpp then never treats them as
text to parse nor asks whether they end generation), the tool tags ``<tool_call>``... "user
defined": llama.cpp prints them as text, where its tool-call parser finds them (as in Qwen2.5's
GGUF), never takes them for an end of turn, and reads them as one token in any text, even
text typed by a user (which Causette encodes as ordinary bytes). llama.cpp does not read a regex from the
file: ``tokenizer.ggml.pre`` names one of its built-in pre-tokenisers. Our ``gpt4`` pattern (the
default) is exactly its ``llama-bpe`` and our ``gpt2`` its ``gpt-2``: llama.cpp then gives our
ids on any text (tests/test_llamacpp.py checks it with the real llama.cpp). The ``french``
pattern (or a custom one) has no equivalent: we write ``llama-bpe``, the closest, and say in a
warning how many demo-corpus lines llama.cpp would cut differently (``l'homme`` as ``l`` +
``'homme``). Our pattern is kept under ``causette.tokenizer.pattern`` for reference.

Start and end: ``add_bos_token`` is true, as ``causette generate`` and chat start with
``<|bos|>``; the chat template (ChatML) is causette/data/chat_template.py's, which llama.cpp
renders with its Jinja engine or recognises as its built-in ``chatml``. The end of sequence is
``<|im_end|>`` for a chat model (llama.cpp also knows it as an end-of-turn by name), ``<|bos|>``
(our document separator) for a base model.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import gguf
import torch

from causette.data.chat_jinja import jinja_template
from causette.data.chat_template import LEGACY, chat_format
from causette.errors import CausetteError
from causette.export.hf import special_ids
from causette.export.source import check_llama, open_checkpoint, resolve_dtype
from causette.model import tensors
from causette.model.families import LLAMA
from causette.model.tensors import from_interleaved, to_interleaved  # noqa: F401 (tests import them here)
from causette.tokenizer.bpe import BPETokenizer
from causette.tokenizer.io import to_hf_dict
from causette.tokenizer.pattern import GPT4_PATTERN, pattern_name
from causette.tokenizer.special import TEXT_SPECIALS, reserved_name
from causette.utils.paths import DEMO_CORPUS

ARCH = LLAMA.name  # llama.cpp's architecture: the Llama family's tensors and names
# Our pattern name -> the llama.cpp pre-tokenizer that cuts text exactly as it does.
PRE_TOKENIZERS = {"gpt4": "llama-bpe", "gpt2": "gpt-2"}
FALLBACK_PRE = "llama-bpe"  # for any other pattern: GPT-4's regex, the closest to ours
TOKEN_NORMAL, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED = 1, 3, 4, 5  # gguf.TokenType


def gguf_tensors(model) -> dict[str, torch.Tensor]:
    """llama.cpp's tensors for our model (float32, q/k permuted), in file order."""
    return {k: v.float().contiguous() for k, v in tensors.to_format(model, "gguf").items()}


def gguf_tokenizer(tok) -> dict:
    """Tokens, types and merges as llama.cpp's byte-level BPE reads them."""
    hf = to_hf_dict(tok)
    tokens = [""] * tok.vocab_size
    for text, i in hf["model"]["vocab"].items():
        tokens[i] = text
    types = [TOKEN_NORMAL] * tok.vocab_size
    reserved = {reserved_name(k) for k in range(len(tok.special_tokens))}
    for name, i in tok.special_tokens.items():
        tokens[i] = name
        if name in reserved:
            types[i] = TOKEN_UNUSED
        else:
            types[i] = TOKEN_USER_DEFINED if name in TEXT_SPECIALS else TOKEN_CONTROL
    return {
        "tokens": tokens,
        "types": types,
        "merges": hf["model"]["merges"],
        "pre": PRE_TOKENIZERS.get(pattern_name(tok.pattern), FALLBACK_PRE),
    }


def pre_tokenizer_mismatch(tok, lines: list[str] | None = None) -> float:
    """Share of ``lines`` (default: the demo corpus's) that llama.cpp would cut into other ids.

    llama.cpp pre-tokenises with GPT-4's regex (``llama-bpe``) whatever our pattern is: the
    same tokenizer with that pattern gives its ids, so no llama.cpp is needed to count.
    """
    if lines is None:
        with gzip.open(DEMO_CORPUS, "rt", encoding="utf-8") as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
    theirs = BPETokenizer(tok.merges, GPT4_PATTERN, dict(tok.special_tokens))
    ours_ids, their_ids = tok.encode_batch(lines), theirs.encode_batch(lines)
    return sum(a != b for a, b in zip(ours_ids, their_ids)) / max(1, len(lines))


def pattern_warning(tok) -> str | None:
    """One line when llama.cpp cannot reproduce this tokenizer's pre-tokenisation, else None."""
    name = pattern_name(tok.pattern)
    if name in PRE_TOKENIZERS:
        return None
    share = pre_tokenizer_mismatch(tok)
    return (
        f"llama.cpp has no pre-tokenizer for this tokenizer's pattern ({name}): it will use "
        f"{FALLBACK_PRE} (GPT-4's), which cuts {share:.1%} of the demo corpus lines into other ids, "
        "so answers may differ from Causette's; a tokenizer trained with tokenizer.pattern=gpt4 "
        "gives identical ids"
    )


def export_gguf(
    source: str | Path, out: str | Path, dtype: str = "float32", force: bool = False, warn=None
) -> Path:
    """Write the ``.gguf`` file ``out`` for the checkpoint ``source``; return its path.

    ``warn(line)`` receives the warnings, if any: a pattern llama.cpp cannot reproduce
    (:func:`pattern_warning`), a chat model of Causette's older chat format.
    """
    loaded = open_checkpoint(source)
    model, tok, cfg = loaded.model, loaded.tokenizer, loaded.model.cfg
    check_llama(cfg, "llama.cpp's llama architecture")
    torch_dtype = resolve_dtype(dtype, ("float32", "float16"))
    out = Path(out)
    if out.is_dir():
        raise CausetteError(f"{out}: is a directory; give a file name such as {out / 'model.gguf'}")
    if out.exists() and not force:
        raise CausetteError(f"{out}: exists (use --force to overwrite it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    ids = special_ids(tok, loaded.stage)
    vocab = gguf_tokenizer(tok)

    warnings = [pattern_warning(tok)]
    if loaded.stage == "sft" and chat_format(tok) == LEGACY:
        warnings.append(
            "this chat model uses Causette's older chat format (<|user|>...<|end|>): llama.cpp's Jinja "
            "path renders it, but its built-in templates (--no-jinja) take it for phi3 and write "
            "another prompt; fine-tune from a current tokenizer (ChatML) to be recognised everywhere"
        )
    for line in filter(None, warnings):
        if warn is not None:
            warn(line)

    tmp = out.with_name(f".{out.name}.tmp")  # written whole, then renamed: never a half file
    w = gguf.GGUFWriter(str(tmp), ARCH)
    w.add_name(loaded.path.name)
    w.add_file_type(
        gguf.LlamaFileType.ALL_F32 if torch_dtype == torch.float32 else gguf.LlamaFileType.MOSTLY_F16
    )
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_vocab_size(cfg.vocab_size)
    w.add_context_length(cfg.block_size)
    w.add_embedding_length(cfg.n_embd)
    w.add_block_count(cfg.n_layer)
    w.add_feed_forward_length(cfg.hidden_size)
    w.add_head_count(cfg.n_head)
    w.add_head_count_kv(cfg.kv_heads)
    w.add_rope_freq_base(cfg.rope_theta)
    w.add_rope_dimension_count(cfg.head_dim)
    w.add_layer_norm_rms_eps(cfg.norm_eps)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(vocab["pre"])
    w.add_token_list(vocab["tokens"])
    w.add_token_types(vocab["types"])
    w.add_token_merges(vocab["merges"])
    w.add_bos_token_id(ids["bos"])
    w.add_eos_token_id(ids["eos"])
    w.add_pad_token_id(ids["pad"])
    w.add_add_bos_token(True)  # as causette generate and chat: every sequence starts with <|bos|>
    w.add_add_eos_token(False)
    w.add_chat_template(jinja_template(tok))
    w.add_string("causette.tokenizer.pattern", tok.pattern)
    w.add_string("causette.stage", loaded.stage)
    for name, t in gguf_tensors(model).items():
        # 1-D tensors (norm scales) stay float32, as llama.cpp's own converter does.
        w.add_tensor(name, t.to(torch_dtype if t.dim() > 1 else torch.float32).numpy())
    try:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        os.replace(tmp, out)
    finally:
        w.close()
        tmp.unlink(missing_ok=True)
    return out
