"""Instruction data for SFT: reading, checking, and batching with the right loss mask.

Two JSONL formats are accepted, one conversation per line (docs/sft.md):

    {"messages": [{"role": "system|user|assistant", "content": "..."}, ...]}
    {"instruction": "...", "input": "...", "output": "..."}          (Alpaca; input may be empty)

An Alpaca record becomes ``user: instruction (+ blank line + input)`` → ``assistant: output``.

**The loss.** A conversation is rendered by the one chat template (chat_template.py) into ids
and a mask (1 = a token the assistant wrote, and its ``<|im_end|>``). The model reads ids[:-1] and
is trained to predict ids[1:] — the labels are *shifted by one* — and a label counts only where
the mask of the *predicted* token is 1; elsewhere it is ``-100``, which the loss ignores. The
loss is the sum over counted labels divided by their number: padding, prompts and role tokens
never train and never dilute the average (two seed projects got one or the other wrong).
With ``grad_accum`` > 1 the trainer averages the micro-batches' means, so a token of a short
micro-batch weighs a little more than one of a long micro-batch (docs/sft.md).

**Padding.** A batch is right-padded to its longest conversation. With causal attention a
token only sees tokens before it, so real tokens never see the padding that follows them, and
every row's positions start at 0: no attention mask is needed, and the amount of padding
cannot change the loss (tests/test_sft.py checks both).
"""

from __future__ import annotations

import gzip
import json
import lzma
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from causette.data.chat_template import ROLES, check_messages, render_chat
from causette.errors import CausetteError
from causette.model.layers import IGNORE_INDEX
from causette.utils.text import printable_path, valid_unicode


@dataclass
class Issue:
    line: int | None  # None: about the whole file
    message: str

    def where(self, path) -> str:
        """``file:line`` (or the file alone) for a message."""
        return printable_path(path) + ("" if self.line is None else f":{self.line}")


@dataclass
class CheckReport:
    path: str
    conversations: list[list[dict]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # source line of each conversation
    errors: list[Issue] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)  # tokens of each conversation (with a tokenizer)
    trained: list[int] = field(default_factory=list)  # of which trained (assistant) tokens

    def stats(self) -> dict:
        """Counts and lengths of the valid conversations (tokens when a tokenizer was given)."""
        convs = self.conversations
        out = {
            "conversations": len(convs),
            "turns": sum(sum(m["role"] != "system" for m in c) for c in convs),
            "with_system": sum(c[0]["role"] == "system" for c in convs),
            "characters": sum(len(m["content"]) for c in convs for m in c),
        }
        sizes = self.lengths or [sum(len(m["content"]) for m in c) for c in convs]
        if self.lengths:
            out.update(tokens=sum(self.lengths), trained_tokens=sum(self.trained))
        if sizes:
            out.update(unit="tokens" if self.lengths else "characters", min=min(sizes),
                       median=float(np.median(sizes)), max=max(sizes))
        return out


def _open_bytes(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    if path.suffix == ".xz":
        return lzma.open(path, "rb")
    return open(path, "rb")


def read_jsonl(path: Path) -> Iterator[tuple[int, object | Issue]]:
    """``(line number, record)`` for every non-blank line of a JSONL file, or ``(line, Issue)`` when
    the line is not UTF-8 or not JSON (too deep, a number too long to read...): a bad line never
    stops the reading, and never raises. Lone surrogates (``"\\ud800"``) are repaired in the strings."""
    with _open_bytes(path) as f:
        for n, raw in enumerate(f, 1):
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
                raw = raw[3:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield n, Issue(n, f"not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1})")
                continue
            if not line.strip():
                continue
            try:
                yield n, _repaired(json.loads(line))
            except json.JSONDecodeError as e:
                yield n, Issue(n, f"invalid JSON ({e.msg} at column {e.colno})")
            except RecursionError:
                yield n, Issue(n, "invalid JSON (nested too deeply)")
            except ValueError:  # an integer beyond Python's 4,300 digits
                yield n, Issue(n, "invalid JSON (a number too long to read)")


def _repaired(value: object) -> object:
    """``value`` with :func:`valid_unicode` applied to every string in it (keys included)."""
    if isinstance(value, str):
        return valid_unicode(value)
    if isinstance(value, list):
        return [_repaired(v) for v in value]
    if isinstance(value, dict):
        return {valid_unicode(k): _repaired(v) for k, v in value.items()}
    return value


JSON_KINDS = {bool: "true or false", int: "a number", float: "a number", list: "a list", dict: "an object"}


def _shown(value: object) -> str:
    """A short view of a wrong JSON value for a message: ``'robot'``, ``a number``, ``null``."""
    if value is None:
        return "null"
    if not isinstance(value, str):
        return JSON_KINDS.get(type(value), type(value).__name__)
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


class Conversation(list):
    """The messages of one conversation (a list), and the tools it offers (``tools``: OpenAI
    tool objects, or None): what :func:`render_chat` needs to render it."""

    tools: list[dict] | None = None


def to_messages(record: object) -> list[dict]:
    """The conversation of one JSON record (either format); ValueError says what is wrong.

    Tool use (the OpenAI form): an assistant message may carry ``tool_calls`` (its ``content``
    may then be empty), a ``tool`` message carries a call's result, and the record's ``tools``
    are the tools offered (kept on the returned :class:`Conversation`)."""
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not messages:
            raise ValueError("'messages' must be a non-empty list")
        out = Conversation(_message(n, m) for n, m in enumerate(messages, 1))
        tools = record.get("tools")
        if tools is not None and (not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools)):
            raise ValueError("'tools' must be a list of tool objects")
        out.tools = tools or None
        return out
    if "instruction" in record or "output" in record:
        for key in ("instruction", "output"):
            if key not in record:
                raise ValueError(f"missing '{key}'")
            if not isinstance(record[key], str):
                raise ValueError(f"'{key}' must be a string, got {_shown(record[key])}")
            if not record[key].strip():
                raise ValueError(f"empty '{key}'")
        extra = record.get("input")
        extra = "" if extra is None else extra
        if not isinstance(extra, str):
            raise ValueError(f"'input' must be a string, got {_shown(extra)}")
        # The input (the text the instruction is about) comes after the instruction, in the
        # user's turn; the answer alone is the assistant's.
        prompt = record["instruction"].strip() + ("\n\n" + extra.strip() if extra.strip() else "")
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": record["output"].strip()}]
    raise ValueError("neither a 'messages' list nor an Alpaca 'instruction'/'output' record")

def _message(n: int, m: object) -> dict:
    """Message ``n`` of a record, checked and reduced to what the chat template reads."""
    if not isinstance(m, dict):
        raise ValueError(f"message {n}: expected an object with 'role' and 'content'")
    for key in ("role", "content"):
        if key not in m:
            raise ValueError(f"message {n}: missing '{key}'")
    if not isinstance(m["role"], str):
        raise ValueError(f"message {n}: 'role' must be system, user, assistant or tool, got {_shown(m['role'])}")
    if m["role"] not in (*ROLES, "tool"):
        raise ValueError(f"message {n}: unknown role {_shown(m['role'])} (system, user, assistant or tool)")
    if not isinstance(m["content"], str):
        raise ValueError(f"message {n} ({m['role']}): 'content' must be a string, got {_shown(m['content'])}")
    calls = m.get("tool_calls") if m["role"] == "assistant" else None
    if not m["content"].strip() and not calls:
        raise ValueError(f"message {n} ({m['role']}): empty 'content'")
    out = {"role": m["role"], "content": m["content"]}
    if calls:
        out["tool_calls"] = calls
    if m["role"] == "tool":
        out.update({k: m[k] for k in ("tool_call_id", "name") if k in m})
    return out



def conversations_of(record: object, rid: str) -> list[tuple[str, list[dict]]]:
    """``(id, messages)`` of each conversation in one record: ``messages``, Alpaca, or a
    self-instruct seed task ``{"instruction", "instances": [{"input", "output"}, ...]}`` (the
    Vigogne seed tasks of ../shared/data), one conversation per instance. ValueError says what is wrong."""
    if isinstance(record, dict) and isinstance(record.get("instances"), list):
        instances = record["instances"]
        out = []
        for k, instance in enumerate(instances):
            if not isinstance(instance, dict):
                raise ValueError(f"instance {k + 1} is not an object")
            alpaca = {"instruction": record.get("instruction"), "input": instance.get("input", ""),
                      "output": instance.get("output")}
            try:
                out.append((f"{rid}-{k}" if len(instances) > 1 else rid, to_messages(alpaca)))
            except ValueError as e:
                raise ValueError(f"instance {k + 1}: {e}") from None
        return out
    return [(rid, to_messages(record))]


def _check_conversation(report: CheckReport, n: int, messages: list[dict], tokenizer, block_size) -> None:
    """Check one conversation of line ``n``: kept in ``report`` if valid, else an error of that line."""
    try:
        check_messages(messages)
    except (ValueError, CausetteError) as e:
        report.errors.append(Issue(n, str(e)))
        return
    if messages[-1]["role"] != "assistant":
        report.errors.append(Issue(n, f"the last message is {messages[-1]['role']!r}: "
                                      "a conversation must end with the assistant's answer"))
        return
    if tokenizer is not None:
        ids, mask = render_chat(tokenizer, messages, tools=getattr(messages, "tools", None))
        # The model reads ids[:-1] and predicts ids[1:]: block_size + 1 ids fit.
        if block_size is not None and len(ids) > block_size + 1:
            report.errors.append(Issue(n, f"{len(ids)} tokens, longer than the context "
                                          f"(block_size {block_size} + 1)"))
            return
        report.lengths.append(len(ids))
        report.trained.append(sum(mask))
    report.conversations.append(messages)
    report.lines.append(n)


def check_file(path: str | Path, tokenizer=None, block_size: int | None = None) -> CheckReport:
    """Read ``path`` and list every problem with its line number (never stops at the first).

    With a ``tokenizer``, conversations are rendered to count their tokens; with a
    ``block_size`` too, one longer than the context is an error (it would be cut in training).
    """
    path = Path(path)
    if not path.is_file():
        raise CausetteError(f"{printable_path(path)}: no such file")
    report = CheckReport(str(path))
    try:
        for n, record in read_jsonl(path):
            if isinstance(record, Issue):
                report.errors.append(record)
                continue
            try:
                found = [messages for _, messages in conversations_of(record, str(n))]
            except (ValueError, CausetteError) as e:
                report.errors.append(Issue(n, str(e)))
                continue
            for messages in found:  # one, or one per instance of a self-instruct seed task
                _check_conversation(report, n, messages, tokenizer, block_size)
    except (OSError, EOFError, lzma.LZMAError) as e:
        raise CausetteError(f"{printable_path(path)}: unreadable ({e})") from None
    if not report.conversations and not report.errors:
        report.errors.append(Issue(None, "no conversation: the file is empty (or holds only blank lines)"))
    return report


def load_conversations(paths: list[str | Path], tokenizer=None, block_size: int | None = None) -> list[list[dict]]:
    """All valid conversations of ``paths``; any invalid line is an error naming file and line."""
    conversations = []
    for p in paths:
        report = check_file(p, tokenizer, block_size)
        if report.errors:
            first = report.errors[0]
            more = f" (and {len(report.errors) - 1} more: run `causette sft check {p}`)" if len(report.errors) > 1 else ""
            raise CausetteError(f"{first.where(p)}: {first.message}{more}")
        conversations += report.conversations
    if not conversations:
        raise CausetteError(f"{', '.join(map(str, paths))}: no conversation to train on")
    return conversations


# ----------------------------------------------------------------------------- tensors


def example(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:
    """Inputs and shifted labels of one conversation (labels ``-100`` where nothing is trained)."""
    ids, mask = render_chat(tokenizer, messages, tools=getattr(messages, "tools", None))
    inputs = ids[:-1]
    labels = [t if m else IGNORE_INDEX for t, m in zip(ids[1:], mask[1:])]
    return inputs, labels


def collate(examples: list[tuple[list[int], list[int]]], pad_id: int, length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad inputs with ``pad_id`` and labels with ``-100`` to ``length`` (default: longest)."""
    length = length or max(len(x) for x, _ in examples)
    x = torch.full((len(examples), length), pad_id, dtype=torch.long)
    y = torch.full((len(examples), length), IGNORE_INDEX, dtype=torch.long)
    for i, (inp, lab) in enumerate(examples):
        x[i, : len(inp)] = torch.tensor(inp[:length])
        y[i, : len(lab)] = torch.tensor(lab[:length])
    return x, y


def eval_batches(tokenizer, conversations: list[list[dict]], block_size: int, batch_size: int) -> list:
    """Held-out conversations as padded ``(inputs, targets)`` batches, each cut to the context."""
    examples = [tuple(t[:block_size] for t in example(tokenizer, c)) for c in conversations]
    return [collate(examples[i : i + batch_size], tokenizer.pad_id) for i in range(0, len(examples), batch_size)]


GROUP = 256  # conversations per window sorted by length (SFTBatches._epoch_order)


class SFTBatches:
    """Conversations in a seeded order per epoch; batch of step ``s`` is a pure function of ``s``.

    Conversations longer than the context are cut to ``block_size`` tokens (their end is lost);
    one left with no trained token at all (its answer was entirely cut) is dropped: it could
    only add padding. ``truncated`` and ``dropped`` count them.
    """

    def __init__(self, tokenizer, conversations: list[list[dict]], block_size: int, seed: int = 0):
        full = [example(tokenizer, c) for c in conversations]
        self.truncated = sum(len(x) > block_size for x, _ in full)
        cut = [(x[:block_size], y[:block_size]) for x, y in full]
        self.examples = [(x, y) for x, y in cut if any(t != IGNORE_INDEX for t in y)]
        self.dropped = len(cut) - len(self.examples)
        if not self.examples:
            raise CausetteError(f"no conversation has an answer within the context of {block_size} tokens")
        self.pad_id = tokenizer.pad_id
        self.seed = seed
        self._epoch, self._order = -1, np.zeros(0, dtype=np.int64)

    @property
    def trained_tokens(self) -> int:
        return sum(sum(t != IGNORE_INDEX for t in y) for _, y in self.examples)

    @property
    def mean_length(self) -> float:
        return sum(len(x) for x, _ in self.examples) / len(self.examples)

    def __len__(self) -> int:
        return len(self.examples)

    def _index(self, g: int) -> int:
        epoch, k = divmod(g, len(self.examples))
        if epoch != self._epoch:
            self._order = self._epoch_order(epoch)
            self._epoch = epoch
        return int(self._order[k])

    def _epoch_order(self, epoch: int) -> np.ndarray:
        """A seeded permutation, sorted by length inside windows of ``GROUP`` conversations.

        A batch is padded to its longest conversation, and the padding costs as much compute as
        real tokens: on random batches of the tool-use data it is a third of the work. Batches
        drawn from a window sorted by length hold conversations of about the same length; the
        windows keep the order random at a larger scale (as ``group_by_length`` in HF's Trainer).
        """
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.examples))
        lengths = np.array([len(self.examples[i][0]) for i in order])
        for start in range(0, len(order), GROUP):
            window = slice(start, start + GROUP)
            order[window] = order[window][np.argsort(lengths[window], kind="stable")]
        return order

    def batch(self, step: int, batch_size: int, micro: int = 0, accum: int = 1, rank: int = 0, world: int = 1):
        first = ((step * accum + micro) * world + rank) * batch_size
        return collate([self.examples[self._index(first + j)] for j in range(batch_size)], self.pad_id)


def split_conversations(conversations: list, val_fraction: float, seed: int) -> tuple[list, list]:
    """Deterministic held-out split: a seeded permutation, the first share goes to val."""
    n = len(conversations)
    n_val = min(max(int(round(val_fraction * n)), 1 if val_fraction > 0 and n >= 2 else 0), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    val_idx = set(order[:n_val].tolist())
    return [c for i, c in enumerate(conversations) if i not in val_idx], [conversations[i] for i in sorted(val_idx)]


def iter_jsonl(path: Path) -> Iterator[tuple[int, object]]:
    """``(line number, record)`` of a JSONL file; a line that is not JSON is an error naming it."""
    for n, record in read_jsonl(path):
        if isinstance(record, Issue):
            raise CausetteError(f"{record.where(path)}: {record.message}")
        yield n, record
