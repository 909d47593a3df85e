"""Tokenizer files: our ``tokenizer.json``, loading with checks, and the Hugging Face export.

Our format (one JSON object, UTF-8; merges one per line so the file reads well)::

    {
      "format": "causette-tokenizer",
      "version": 1,
      "type": "bpe",                        # or "char"
      "vocab_size": 8192,                   # bytes + merges (or characters) + specials
      "pattern_name": "french",             # "gpt4", "gpt2", or "custom"
      "pattern": "...",                     # the pre-tokenisation regex itself
      "special_tokens": {"<|bos|>": 8160, "<|pad|>": 8161, ...},
      "metadata": {...},                    # how it was trained (informative only)
      "merges": [[32, 100], [101, 32], ...] # bpe: merge k joins two ids into id 256 + k
      "chars": ["«", "é", ...]              # char: the characters with ids 256, 257, ...
    }

The Hugging Face export (``hf/tokenizer.json``) is a byte-level BPE that
``tokenizers.Tokenizer.from_file`` loads and that gives our ids: our pattern as a ``Split``
pre-tokenizer, then the ``ByteLevel`` byte → character mapping; our specials as added tokens
(``special: false`` for the tool tags, which are text: tokenizer/special.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from causette.errors import CausetteError
from causette.tokenizer.base import Tokenizer
from causette.tokenizer.special import TEXT_SPECIALS
from causette.utils.io import atomic_write, write_json

FORMAT = "causette-tokenizer"
VERSION = 1
FILENAME = "tokenizer.json"
HF_DIR = "hf"


# ============================================================================== saving


def save_tokenizer(tok: Tokenizer, directory: str | os.PathLike) -> Path:
    """Write ``directory/tokenizer.json`` (+ ``hf/tokenizer.json`` for BPE); return our file.

    Each file is written atomically; ours last, so a complete ``tokenizer.json`` means a
    complete directory.
    """
    directory = Path(directory)
    if tok.kind == "bpe":
        write_json(directory / HF_DIR / FILENAME, to_hf_dict(tok))
    data = tok.to_dict()
    header = {
        "format": FORMAT,
        "version": VERSION,
        "type": data.pop("type"),
        "vocab_size": tok.vocab_size,
    }
    if "pattern" in data:
        from causette.tokenizer.pattern import pattern_name

        header["pattern_name"] = pattern_name(data["pattern"])
        header["pattern"] = data.pop("pattern")
    header["special_tokens"] = data.pop("special_tokens")
    header["metadata"] = getattr(tok, "metadata", {})
    path = directory / FILENAME
    with atomic_write(path) as f:
        f.write(_dump_with_one_item_per_line(header, data))
    return path


def _dump_with_one_item_per_line(header: dict, lists: dict) -> str:
    """JSON text: the header pretty-printed, then each long list with one item per line."""
    text = json.dumps(header, ensure_ascii=False, indent=2)[: -len("\n}")]
    for key, items in lists.items():
        lines = ",\n".join("    " + json.dumps(item, ensure_ascii=False) for item in items)
        text += f',\n  "{key}": [\n{lines}\n  ]' if items else f',\n  "{key}": []'
    return text + "\n}\n"


# ============================================================================== loading


def load_tokenizer(path: str | os.PathLike, use_fast: bool = True) -> Tokenizer:
    """Load a tokenizer from its directory or its ``tokenizer.json``: a :class:`BPETokenizer`
    or a :class:`CharTokenizer`, as the file says. Any problem is one clear line."""
    from causette.tokenizer.bpe import BPETokenizer
    from causette.tokenizer.char import CharTokenizer

    path = Path(path)
    if path.is_dir():
        path = path / FILENAME
    data = _read_json(path)
    kind = _field(data, "type", str, path)
    special_tokens = _field(data, "special_tokens", dict, path)
    if not all(isinstance(k, str) and _is_int(v) for k, v in special_tokens.items()):
        raise CausetteError(f"{path}: 'special_tokens' must map token strings to integer ids")
    metadata = data.get("metadata") or {}
    try:
        if kind == "bpe":
            pattern = _field(data, "pattern", str, path)
            merges = _field(data, "merges", list, path)
            if not all(isinstance(m, list) and len(m) == 2 and all(map(_is_int, m)) for m in merges):
                raise CausetteError(f"{path}: 'merges' must be a list of [id, id] pairs")
            from causette.tokenizer.pattern import compile_pattern

            compile_pattern(pattern)
            tok: Tokenizer = BPETokenizer(
                merges, pattern, special_tokens, use_fast=use_fast, metadata=metadata
            )
        elif kind == "char":
            chars = _field(data, "chars", list, path)
            if not all(isinstance(c, str) for c in chars):
                raise CausetteError(f"{path}: 'chars' must be a list of characters")
            tok = CharTokenizer(chars, special_tokens, metadata=metadata)
        else:
            raise CausetteError(f"{path}: unknown tokenizer type {kind!r} (expected 'bpe' or 'char')")
    except ValueError as e:
        raise CausetteError(f"{path}: corrupt tokenizer ({e})") from None
    size = data.get("vocab_size")
    if size is not None and size != tok.vocab_size:
        raise CausetteError(f"{path}: says vocab_size {size} but holds {tok.vocab_size} tokens")
    return tok


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise CausetteError(f"{path}: no tokenizer here (run `causette tokenizer train` first)")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise CausetteError(f"{path}: cannot read tokenizer file ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise CausetteError(f"{path}: not a tokenizer file (not UTF-8 text: byte {e.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CausetteError(
            f"{path}: not a tokenizer file (invalid JSON at line {e.lineno}: {e.msg})"
        ) from None
    if not isinstance(data, dict):
        raise CausetteError(f"{path}: not a tokenizer file (expected a JSON object)")
    if data.get("format") != FORMAT:
        if "model" in data and "added_tokens" in data:
            raise CausetteError(
                f"{path}: this is a Hugging Face tokenizer.json; give Causette's own (the folder above hf/)"
            )
        raise CausetteError(f'{path}: not a Causette tokenizer file (no "format": "{FORMAT}")')
    version = data.get("version")
    if version != VERSION:
        raise CausetteError(
            f"{path}: tokenizer format version {version!r}, but this Causette reads version {VERSION}"
            " (retrain it with `causette tokenizer train`)"
        )
    return data


def _field(data: dict, key: str, tp: type, path: Path):
    if key not in data:
        raise CausetteError(f"{path}: missing field '{key}'")
    value = data[key]
    if not isinstance(value, tp):
        raise CausetteError(f"{path}: field '{key}' must be a {tp.__name__}, got {type(value).__name__}")
    return value


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# ============================================================================== Hugging Face


def byte_to_unicode() -> dict[int, str]:
    """The byte-level alphabet of GPT-2 and Hugging Face: each byte as one visible character.

    Printable Latin-1 bytes stand for themselves (``a`` → ``a``, ``é``'s bytes C3 A9 → ``Ã©``);
    the other 68 (controls, space, ...) take the code points 256, 257, ... in byte order, so the
    space 0x20 becomes ``Ġ`` (U+0120) and the newline ``Ċ``.
    """
    visible = set(range(ord("!"), ord("~") + 1)) | set(range(0xA1, 0xAC + 1)) | set(range(0xAE, 0xFF + 1))
    mapping: dict[int, str] = {}
    extra = 0
    for b in range(256):
        if b in visible:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def to_hf_dict(tok, add_bos: bool = False) -> dict:
    """The Hugging Face ``tokenizer.json`` of a :class:`BPETokenizer`, as a dict.

    ``add_bos``: ``encode(text)`` starts with ``<|bos|>`` (a post-processor), as ``causette
    generate`` does; the model export asks for it, the tokenizer stage's own file does not
    (it encodes text exactly as :meth:`encode` does).

    tiktoken (our rule) joins *any* adjacent pair whose bytes form a token; Hugging Face joins
    only the pairs listed in ``merges``. So for each token we list every split of it into two
    tokens, in rank order of the token built: both then make the same choices. And tiktoken takes
    a chunk that is itself a token directly, which ``ignore_merges: true`` does in Hugging Face.
    """
    char = byte_to_unicode()

    def show(b: bytes) -> str:
        return "".join(char[x] for x in b)

    vocab = {show(token): i for i, token in enumerate(tok.vocab)}
    merges: list[str] = []
    for rank in range(256, len(tok.vocab)):
        token = tok.vocab[rank]
        a, b = tok.merges[rank - 256]
        splits = [(a, b)]  # the merge that created it first, then every other split
        others = []
        for cut in range(1, len(token)):
            left, right = tok.ranks.get(token[:cut]), tok.ranks.get(token[cut:])
            if left is not None and right is not None and (left, right) != (a, b):
                others.append((left, right))
        for left, right in splits + sorted(others):
            merges.append(f"{show(tok.vocab[left])} {show(tok.vocab[right])}")
    added = [
        {
            "id": i,
            "content": s,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": s not in TEXT_SPECIALS,  # the tool tags are text (tokenizer/special.py)
        }
        for s, i in sorted(tok.special_tokens.items(), key=lambda kv: kv[1])
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": tok.pattern}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
            ],
        },
        "post_processor": _bos_processor(tok) if add_bos else None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": True,
            "vocab": vocab,
            "merges": merges,
        },
    }


def _bos_processor(tok) -> dict:
    """A ``TemplateProcessing`` that puts ``<|bos|>`` before each sequence (``add_special_tokens``)."""
    bos = {"SpecialToken": {"id": "<|bos|>", "type_id": 0}}
    return {
        "type": "TemplateProcessing",
        "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}}, bos, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<|bos|>": {"id": "<|bos|>", "ids": [tok.bos_id], "tokens": ["<|bos|>"]}},
    }
