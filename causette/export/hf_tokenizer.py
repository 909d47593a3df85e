"""A Hugging Face byte-level BPE ``tokenizer.json`` → our :class:`BPETokenizer` + an id map.

Our tokenizer has a fixed shape (causette/tokenizer/bpe.py): ids 0..255 are the bytes in byte
order, id ``256 + k`` is built by merge ``k`` from two earlier ids, and the special tokens come
last. A Hugging Face vocabulary numbers its tokens in its own order, so importing renumbers
them, and :attr:`ConvertedTokenizer.source_ids` says, for each of our ids, which Hugging Face
id it was (``None``: a token they did not have). The model importer moves the embedding rows
the same way.

Rules:

* Accepted: ``model.type == "BPE"`` over the byte-level alphabet, no normaliser, no byte
  fallback, a ``ByteLevel`` pre-tokeniser (its built-in GPT-2 regex, or one ``Split`` regex
  before it, as Llama 3, Qwen 2 or our own export write). SentencePiece-style BPE (``▁`` words,
  ``<0x41>`` byte tokens), Unigram and WordPiece are refused with a clear message.
* Merges are replayed in order (one whose parts are not built yet is skipped: our own export
  lists such alternative splits); a token that no merge builds but that splits into two tokens
  already present is added after them; a token that cannot be built at all (it could never be
  produced by encoding) is dropped, with a note.
* Every Hugging Face added token becomes one of our special tokens. Ours must exist:
  a token already named ``<|bos|>``, ``<|im_end|>``... keeps its role (ChatML models such as
  SmolLM2 or Qwen have ``<|im_start|>`` and ``<|im_end|>``); otherwise ``<|bos|>`` takes
  their ``bos_token`` (or ``eos_token`` when there is no bos), ``<|im_end|>`` their ``eos_token``
  (when ``<|bos|>`` did not take it), ``<|pad|>`` their ``pad_token``. Our specials that are
  still missing are new tokens at the end (their embedding rows are initialised by the model
  importer: ``<|im_end|>`` from the eos row, the others from the mean row).
* The tool tags are not added: a model that has them (Qwen2.5's ``<tool_call>``,
  ``<tool_response>``...) keeps them under their names, and then chats with tools; any other
  chats without (causette/tokenizer/special.py, ``supports_tools``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from causette.errors import CausetteError
from causette.tokenizer.bpe import BPETokenizer
from causette.tokenizer.io import byte_to_unicode
from causette.tokenizer.pattern import GPT2_PATTERN
from causette.tokenizer.special import CHAT_SPECIALS
from causette.utils.io import read_json


@dataclass
class ConvertedTokenizer:
    tokenizer: BPETokenizer
    source_ids: list[int | None]  # our id → their id (None: a new token)
    notes: list[str] = field(default_factory=list)
    eos_source: int | None = None  # their eos id (to initialise a new <|im_end|> row)


def _read(path: Path) -> dict:
    return read_json(path, "no such file (the Hugging Face folder needs a tokenizer.json)")


def _pattern(pre: dict | None, path: Path) -> str:
    """The pre-tokenisation regex of a byte-level tokenizer."""
    steps = (
        (pre or {}).get("pretokenizers") if (pre or {}).get("type") == "Sequence" else [pre] if pre else []
    )
    kinds = [s.get("type") for s in steps]
    if "ByteLevel" not in kinds:
        raise CausetteError(
            f"{path}: not a byte-level BPE tokenizer (pre-tokenizer {kinds or None}); Causette imports "
            "byte-level BPE only (GPT-2, Llama 3, Qwen style), not SentencePiece or WordPiece"
        )
    byte_level = steps[kinds.index("ByteLevel")]
    if byte_level.get("add_prefix_space"):
        raise CausetteError(f"{path}: ByteLevel add_prefix_space=true is not supported")
    splits = [s for s in steps if s.get("type") == "Split"]
    if set(kinds) - {"ByteLevel", "Split"} or len(splits) > 1 or kinds[-1] != "ByteLevel":
        raise CausetteError(
            f"{path}: unsupported pre-tokenizer sequence {kinds} (expected [Split,] ByteLevel)"
        )
    if splits:
        s = splits[0]
        regex = (s.get("pattern") or {}).get("Regex")
        if regex is None or s.get("behavior") != "Isolated" or s.get("invert"):
            raise CausetteError(f"{path}: unsupported Split pre-tokenizer {s} (expected an Isolated regex)")
        if byte_level.get("use_regex", True):
            raise CausetteError(
                f"{path}: a Split regex and ByteLevel use_regex=true together are not supported"
            )
        return regex
    if not byte_level.get("use_regex", True):
        raise CausetteError(f"{path}: ByteLevel without a regex and no Split: no pre-tokenisation to import")
    return GPT2_PATTERN  # what ByteLevel(use_regex=true) applies


def convert_tokenizer(path: Path, roles: dict[str, str | None]) -> ConvertedTokenizer:
    """Read the Hugging Face ``tokenizer.json`` at ``path``; ``roles``: their bos/eos/pad token
    strings (from tokenizer_config.json), any of them None."""
    data = _read(path)
    model = _bpe_model(data, path)
    pattern = _pattern(data.get("pre_tokenizer"), path)
    to_byte = {c: b for b, c in byte_to_unicode().items()}
    added = {t["id"]: t["content"] for t in data.get("added_tokens") or []}
    vocab = _byte_vocab(model, added, to_byte, path)
    built = _Rebuilt(vocab)
    _replay_merges(built, model.get("merges") or [], to_byte, path)
    notes = _build_leftovers(built)
    special_tokens, eos_source = _add_specials(built.source, added, roles, notes)
    tok = BPETokenizer(built.merges, pattern, special_tokens, metadata={"imported_from": str(path)})
    return ConvertedTokenizer(tok, built.source, notes, eos_source)


def _bpe_model(data: dict, path: Path) -> dict:
    """The ``model`` part of a ``tokenizer.json``, once it is known to be a byte-level BPE."""
    model = data.get("model") or {}
    if model.get("type") != "BPE":
        raise CausetteError(
            f"{path}: a {model.get('type')!r} tokenizer; Causette imports byte-level BPE only "
            "(SentencePiece/Unigram/WordPiece vocabularies cannot become ours)"
        )
    if data.get("normalizer") or model.get("byte_fallback"):
        raise CausetteError(
            f"{path}: a tokenizer with a normalizer or byte fallback (SentencePiece style); "
            "Causette imports byte-level BPE only"
        )
    return model


def _as_bytes(text: str, to_byte: dict[str, int]) -> bytes | None:
    """A token of the byte-level alphabet (GPT-2's printable stand-ins) as its bytes; None if it is not one."""
    try:
        return bytes(to_byte[c] for c in text)
    except KeyError:
        return None


def _byte_vocab(model: dict, added: dict[int, str], to_byte: dict[str, int], path: Path) -> dict[bytes, int]:
    """Their ordinary tokens (the added ones left out), as bytes → their id; all 256 bytes must be there."""
    vocab: dict[bytes, int] = {}
    for text, i in (model.get("vocab") or {}).items():
        if i in added:
            continue
        b = _as_bytes(text, to_byte)
        if b is None:
            raise CausetteError(
                f"{path}: token {text!r} is not in the byte-level alphabet: not a byte-level BPE"
            )
        vocab[b] = i
    missing = [b for b in range(256) if bytes([b]) not in vocab]
    if missing:
        raise CausetteError(
            f"{path}: the vocabulary lacks {len(missing)} of the 256 byte tokens (e.g. byte {missing[0]})"
        )
    return vocab


class _Rebuilt:
    """Our vocabulary as it is rebuilt from theirs: the 256 bytes first, then one id per merge."""

    def __init__(self, vocab: dict[bytes, int]):
        self.vocab = vocab  # theirs: bytes → their id
        self.ours: dict[bytes, int] = {bytes([b]): b for b in range(256)}  # built so far: bytes → our id
        self.source: list[int | None] = [vocab[bytes([b])] for b in range(256)]  # our id → their id
        self.merges: list[tuple[int, int]] = []

    def add(self, left: bytes, right: bytes) -> None:
        self.merges.append((self.ours[left], self.ours[right]))
        self.ours[left + right] = len(self.source)
        self.source.append(self.vocab[left + right])


def _replay_merges(built: _Rebuilt, merges: list, to_byte: dict[str, int], path: Path) -> None:
    """Their merges, in order, each building one of their tokens that is not built yet."""
    ours, vocab = built.ours, built.vocab
    for m in merges:
        left, right = m.split(" ", 1) if isinstance(m, str) else m
        lb, rb = _as_bytes(left, to_byte), _as_bytes(right, to_byte)
        if lb is None or rb is None:
            raise CausetteError(
                f"{path}: merge {m!r} is not in the byte-level alphabet: not a byte-level BPE"
            )
        # A merge whose parts are not built yet is an alternative split of a token (our own
        # export lists those): the token comes from its first buildable merge, or below.
        if lb in ours and rb in ours and lb + rb in vocab and lb + rb not in ours:
            built.add(lb, rb)


def _build_leftovers(built: _Rebuilt) -> list[str]:
    """Their tokens that no merge built: each one that splits into two built tokens is added after
    them (shortest first, until no more can be); the notes say how many could not be built."""
    ours, vocab = built.ours, built.vocab
    notes = []
    leftovers = sorted((b for b in vocab if b not in ours), key=lambda b: (len(b), vocab[b]))
    progress = True
    while leftovers and progress:
        progress, rest = False, []
        for b in leftovers:
            cut = next((c for c in range(1, len(b)) if b[:c] in ours and b[c:] in ours), None)
            if cut is None:
                rest.append(b)
            else:
                built.add(b[:cut], b[cut:])
                progress = True
        leftovers = rest
    if leftovers:
        notes.append(
            f"{len(leftovers)} token(s) that no merge can build were dropped (never produced by encoding)"
        )
    return notes


def _add_specials(
    source: list[int | None], added: dict[int, str], roles: dict[str, str | None], notes: list[str]
) -> tuple[dict[str, int], int | None]:
    """Our special tokens appended after the merges (``source`` grows, ``notes`` says which are
    new); returns them (name → our id) and their eos id."""
    specials, eos_source = _map_specials(added, roles)
    special_tokens = {}
    for name, their_id in specials:
        special_tokens[name] = len(source)
        source.append(their_id)
    new = [name for name, i in specials if i is None]
    if new:
        notes.append(
            f"new special token(s) {', '.join(new)} (embeddings initialised; fine-tune to teach them)"
        )
    return special_tokens, eos_source


def _map_specials(
    added: dict[int, str], roles: dict[str, str | None]
) -> tuple[list[tuple[str, int | None]], int | None]:
    """Our special tokens in order (our four first, then their other added tokens), each with
    the id of theirs it takes over (None: new). See the module docstring for the rules."""
    by_name = {name: i for i, name in added.items()}
    taken: dict[str, int | None] = {name: by_name[name] for name in CHAT_SPECIALS if name in by_name}
    used = {i for i in taken.values()}

    def claim(ours: str, theirs: str | None) -> None:
        if ours not in taken and theirs in by_name and by_name[theirs] not in used:
            taken[ours] = by_name[theirs]
            used.add(by_name[theirs])

    bos, eos, pad = roles.get("bos"), roles.get("eos"), roles.get("pad")
    claim("<|bos|>", bos if bos in by_name else eos)
    claim("<|im_end|>", eos)
    claim("<|pad|>", pad)
    out = [(name, taken.get(name)) for name in CHAT_SPECIALS]
    out += [(name, i) for i, name in sorted(added.items()) if i not in used]
    return out, by_name.get(eos) if eos else None
