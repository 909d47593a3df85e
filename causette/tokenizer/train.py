"""Training a tokenizer from texts: read, count chunks (on every core), learn, save.

This is the Python entry point behind ``causette tokenizer train``::

    from causette.tokenizer import train_tokenizer
    tok = train_tokenizer(cfg.tokenizer, texts, out_dir="runs/demo/tokenizer")

Counting is the only part that reads the whole corpus, and Python's regex engine is slow
(about 10 MB/s), so texts are cut into blocks of about 1 MB and counted in parallel processes;
the merge loop then only sees the ~100,000 distinct chunks (see :mod:`.bpe`).
"""

from __future__ import annotations

import gzip
import multiprocessing
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

from causette.errors import CausetteError
from causette.tokenizer.base import Tokenizer
from causette.tokenizer.config import TokenizerConfig
from causette.tokenizer.io import save_tokenizer
from causette.tokenizer.pattern import check_pattern, compile_pattern, resolve_pattern
from causette.tokenizer.special import special_token_list, split_specials
from causette.utils.artefact import mark
from causette.utils.text import valid_unicode
from causette.utils.workers import die_with_parent, sigint_held

BLOCK_CHARS = 1 << 20  # texts are counted in blocks of about a million characters


def train_tokenizer(
    cfg: TokenizerConfig,
    texts: Iterable[str],
    out_dir: str | os.PathLike | None = None,
    progress: bool = False,
    source: str = "the corpus",
) -> Tokenizer:
    """Train the tokenizer ``cfg`` describes on ``texts``; save it in ``out_dir`` if given."""
    from causette import __version__

    try:
        cfg.validate()
    except ValueError as e:
        raise CausetteError(f"tokenizer.{e}") from None
    start = time.perf_counter()
    specials = special_token_list(cfg.special_tokens, cfg.special_slots)
    texts = _limit_chars(texts, cfg.max_train_chars)
    if cfg.type == "char":
        from causette.tokenizer.char import CharTokenizer

        counter = _CountingIterator(texts)
        tok: Tokenizer = CharTokenizer.train(counter, cfg.vocab_size, specials, cfg.min_frequency)
        if counter.chars == 0:
            raise CausetteError(f"no text to train the tokenizer on: {source} is empty")
        tok.metadata.update(characters=counter.chars)
    else:
        from causette.tokenizer.bpe import BPETokenizer, train_bpe

        pattern = resolve_pattern(cfg.pattern)
        check_pattern(pattern)
        counts, chars = count_chunks(texts, pattern, specials, cfg.workers, progress)
        if chars == 0:
            raise CausetteError(f"no text to train the tokenizer on: {source} is empty")
        merges = train_bpe(counts, cfg.num_merges, cfg.min_frequency, progress)
        first_special = 256 + len(merges)
        tok = BPETokenizer(merges, pattern, {s: first_special + k for k, s in enumerate(specials)})
        tok.metadata.update(
            characters=chars,
            chunks=sum(counts.values()),
            distinct_chunks=len(counts),
            merges_requested=cfg.num_merges,
        )
        if len(merges) < cfg.num_merges:
            print(
                f"warning: only {len(merges)} of {cfg.num_merges} merges found a pair seen at least"
                f" {cfg.min_frequency} times; the vocabulary has {tok.vocab_size} tokens,"
                f" not {cfg.vocab_size} ({source} is too small to fill it; the model will use"
                f" {tok.vocab_size}: lower tokenizer.vocab_size to silence this)",
                file=sys.stderr,
            )
    tok.metadata.update(
        trained_on=source,
        min_frequency=cfg.min_frequency,
        seconds=round(time.perf_counter() - start, 2),
        causette_version=__version__,
    )
    if out_dir is not None:
        save_tokenizer(tok, out_dir)
        mark(out_dir, "tokenizer")  # a folder Causette wrote (causette/utils/artefact.py)
    return tok


# ============================================================================== counting chunks


def count_chunks(
    texts: Iterable[str], pattern: str, specials: list[str], workers: int = 0, progress: bool = False
) -> tuple[dict[bytes, int], int]:
    """``{chunk as UTF-8 bytes: occurrences}`` over all ``texts``, and the number of characters.

    Special tokens are cut out first (a literal ``<|bos|>`` in the corpus is never counted).
    With several workers, each process counts the blocks it takes from a queue into its own
    table and sends it back once at the end: a few large messages instead of one per block.
    """
    workers = workers or os.cpu_count() or 1
    blocks = _blocks(texts)
    first = next(blocks, None)
    if first is None:
        return {}, 0
    second = next(blocks, None)
    bar = _char_bar() if progress else None
    if second is None or workers == 1:  # small input: workers would cost more than they save
        total, chars = Counter(), 0
        for block in _chain(first, second, blocks):
            counts, n = _count_block(block, pattern, specials)
            total.update(counts)
            chars += n
            if bar is not None:
                bar.update(n)
    else:
        total, chars = _count_in_workers(_chain(first, second, blocks), pattern, specials, workers, bar)
    if bar is not None:
        bar.close()
    return {chunk.encode("utf-8"): n for chunk, n in total.items()}, chars


def _count_in_workers(blocks, pattern, specials, workers, bar) -> tuple[Counter, int]:
    methods = multiprocessing.get_all_start_methods()
    method = "fork" if "fork" in methods else "spawn"
    ctx = multiprocessing.get_context(method)
    tasks = ctx.Queue(maxsize=2 * workers)  # bounded: reading never runs far ahead of counting
    results = ctx.Queue()
    # workers die with this process and leave Ctrl-C to it (causette/utils/workers.py)
    kernel = threading.current_thread() is threading.main_thread()
    procs = [
        ctx.Process(target=_worker, args=(tasks, results, pattern, specials, os.getpid(), kernel), daemon=True)
        for _ in range(workers)
    ]
    finished = False
    try:
        with sigint_held(method):
            for proc in procs:
                proc.start()
        for block in blocks:
            tasks.put(block)
            if bar is not None:
                bar.update(sum(len(t) for t in block))
        for _ in procs:
            tasks.put(None)  # "no more blocks"
        total, chars = Counter(), 0
        for _ in procs:
            counts, n = _get_result(results, procs)
            total.update(counts)
            chars += n
        finished = True
        return total, chars
    finally:
        if not finished:  # an error or Ctrl-C: stop the workers now, and never wait on the queue
            tasks.cancel_join_thread()
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
        for proc in procs:
            if proc.pid is None:
                continue  # never started
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()


def _worker(tasks, results, pattern: str, specials: list[str], parent_pid: int, kernel: bool) -> None:
    die_with_parent(parent_pid, kernel)
    total, chars = Counter(), 0
    try:
        while (block := tasks.get()) is not None:
            counts, n = _count_block(block, pattern, specials)
            total.update(counts)
            chars += n
        results.put((total, chars))
    except BaseException as e:  # report instead of leaving the parent waiting
        results.put(e)


def _get_result(results, procs) -> tuple[Counter, int]:
    import queue

    while True:
        try:
            result = results.get(timeout=1.0)
        except queue.Empty:
            if not any(p.is_alive() for p in procs):
                raise RuntimeError("a chunk-counting worker died") from None
            continue
        if isinstance(result, BaseException):
            raise result
        return result


def _count_block(block: list[str], pattern: str, specials: list[str]) -> tuple[Counter, int]:
    findall = compile_pattern(pattern).findall
    allowed = frozenset(specials)
    counts: Counter[str] = Counter()
    chars = 0
    for text in block:
        chars += len(text)
        for piece, is_special in split_specials(valid_unicode(text), allowed):
            if not is_special:
                counts.update(findall(piece))
    return counts, chars


def _chain(first, second, rest) -> Iterator:
    yield first
    if second is not None:
        yield second
        yield from rest


def _blocks(texts: Iterable[str]) -> Iterator[list[str]]:
    """Group texts into blocks of about BLOCK_CHARS characters; cut very long texts at line starts."""
    block: list[str] = []
    size = 0
    for text in texts:
        for piece in _cut_long(text):
            block.append(piece)
            size += len(piece)
            if size >= BLOCK_CHARS:
                yield block
                block, size = [], 0
    if block:
        yield block


def _cut_long(text: str) -> Iterator[str]:
    """Cut ``text`` into pieces of about BLOCK_CHARS, just before a line that starts with a
    visible character: the patterns never join a chunk across such a point, so the counts
    are the same as for the uncut text."""
    start = 0
    while len(text) - start > 2 * BLOCK_CHARS:
        cut = start + BLOCK_CHARS
        while True:
            cut = text.find("\n", cut)
            if cut < 0 or cut + 1 >= len(text) or not text[cut + 1].isspace():
                break
            cut += 1
        if cut < 0:
            break
        yield text[start : cut + 1]
        start = cut + 1
    yield text[start:]


def _limit_chars(texts: Iterable[str], max_chars: int) -> Iterator[str]:
    """Stop after ``max_chars`` characters (0: no limit)."""
    left = max_chars
    for text in texts:
        if max_chars:
            if left <= 0:
                return
            text = text[:left]
            left -= len(text)
        yield text


class _CountingIterator:
    """Pass texts through while counting their characters."""

    def __init__(self, texts: Iterable[str]):
        self.texts = texts
        self.chars = 0

    def __iter__(self):
        for text in self.texts:
            self.chars += len(text)
            yield text


def _char_bar():
    from tqdm import tqdm

    return tqdm(
        desc="counting chunks", unit="char", unit_scale=True, leave=False, mininterval=0.5, disable=None
    )


# ============================================================================== reading inputs


def read_text_files(paths: Iterable[str | os.PathLike]) -> Iterator[str]:
    """Texts of plain UTF-8 files (``.gz`` decompressed); a folder gives all its files, sorted."""
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            yield from read_text_files(files)
            continue
        if not path.is_file():
            raise CausetteError(f"{path}: no such file")
        try:
            data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        except (OSError, EOFError) as e:
            raise CausetteError(f"{path}: cannot read ({e})") from None
        try:
            yield data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise CausetteError(
                f"{path}: not UTF-8 text (invalid byte 0x{data[e.start]:02x} at offset {e.start})"
            ) from None
