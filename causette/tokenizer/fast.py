"""The fast encoder: our vocabulary run by tiktoken's Rust BPE.

tiktoken needs three things, which a :class:`~causette.tokenizer.bpe.BPETokenizer` has:

* ``mergeable_ranks``: ``{token bytes: rank}``. tiktoken merges, inside a chunk, the adjacent
  pair whose joined bytes have the lowest rank. Our ids *are* ranks (bytes 0..255 first, then
  merge ``k`` as ``256 + k``), so ``ranks = {bytes: id}`` and tiktoken's ids are ours;
* ``pat_str``: our pre-tokenisation pattern (compiled by Rust's fancy-regex);
* ``special_tokens``: ``{name: id}``.

tiktoken's Rust code releases Python's global lock, so a batch encoded on a thread pool really
runs on every core. Whether it gives the same ids as our reference encoder is not assumed: the
test suite checks it on the demo corpus and on random Unicode (tests/test_tokenizer_equivalence.py).
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import tiktoken

from causette.errors import CausetteError


def build_encoding(tok) -> tiktoken.Encoding:
    """A ``tiktoken.Encoding`` with the ranks, pattern and specials of ``tok``."""
    ranks = {token: rank for rank, token in enumerate(tok.vocab)}
    try:
        return tiktoken.Encoding(
            name=f"causette-{tok.hash}",
            pat_str=tok.pattern,
            mergeable_ranks=ranks,
            special_tokens=dict(tok.special_tokens),
            explicit_n_vocab=tok.vocab_size,
        )
    except ValueError as e:  # the pattern does not compile in Rust
        raise CausetteError(f"tiktoken cannot use this tokenizer's pattern: {e}") from None


def fast_encode(enc: tiktoken.Encoding, text: str, allowed: frozenset[str]) -> list[int]:
    """Encode with only ``allowed`` specials recognised; others are encoded as plain text."""
    if not allowed:
        return enc.encode_ordinary(text)
    return enc.encode(text, allowed_special=allowed, disallowed_special=())


def fast_encode_batch(
    enc: tiktoken.Encoding, texts: list[str], allowed: frozenset[str], workers: int | None = None
) -> list[list[int]]:
    """Encode ``texts`` on ``workers`` threads (default: one per core).

    The batch is cut into a few contiguous slices of about equal size per thread, and each thread
    encodes its slices in a loop: tiktoken releases Python's lock while it works, so the threads
    really run side by side, and a few large tasks cost less Python overhead than one per text
    (tiktoken's own ``encode_batch`` makes one task per text: slow on many short texts).
    """
    if not allowed:
        encode = enc.encode_ordinary
    else:
        encode = functools.partial(enc.encode, allowed_special=allowed, disallowed_special=())
    threads = min(workers or os.cpu_count() or 1, len(texts))
    if threads <= 1:
        return [encode(t) for t in texts]
    with ThreadPoolExecutor(threads) as pool:
        parts = pool.map(lambda part: [encode(t) for t in part], _slices(texts, 4 * threads))
        return [ids for part in parts for ids in part]


def _slices(texts: list[str], n: int) -> list[list[str]]:
    """Cut ``texts`` into about ``n`` contiguous slices of about equal total length."""
    target = max(1, sum(len(t) for t in texts) // n)
    slices, current, size = [], [], 0
    for text in texts:
        current.append(text)
        size += len(text)
        if size >= target:
            slices.append(current)
            current, size = [], 0
    if current:
        slices.append(current)
    return slices
