"""Duplicate removal: exact (hash of the normalised text) and near (MinHash + LSH).

Exact duplicates are the same text up to case and whitespace: we keep a 16-byte digest of
each kept document and drop any later document with the same digest.

Near duplicates are texts that share most of their word n-grams ("shingles") — two editions
of the same play, a book with a different preface. The Jaccard similarity of two shingle sets
``|A ∩ B| / |A ∪ B|`` measures that, and MinHash estimates it cheaply: apply ``P`` random hash
functions to every shingle and keep, for each function, the minimum. For two documents the
probability that their minima agree for one function *is* their Jaccard similarity, so the
share of agreeing positions among the ``P`` is an unbiased estimate of it.

Comparing every pair would cost O(n²). LSH (locality-sensitive hashing) cuts the signature
into ``b`` bands of ``r`` rows and only compares documents that agree on a whole band: a pair
with similarity ``s`` becomes a candidate with probability ``1 - (1 - s^r)^b``, an S-curve that
we place at the threshold (see :func:`lsh_bands`). Candidates are then confirmed with the
full signature. Memory grows with the number of kept documents only (``P`` × 4 bytes each).
"""

from __future__ import annotations

import hashlib
import zlib

import numpy as np
import regex

_WORD = regex.compile(r"\w+")


def exact_key(text: str) -> bytes:
    """Digest of a text up to case and whitespace: equal keys mean duplicate documents."""
    canon = " ".join(text.casefold().split())
    return hashlib.blake2b(canon.encode("utf-8"), digest_size=16).digest()


class ExactDedup:
    """Remembers the key of every kept document; returns the id of an earlier copy."""

    def __init__(self) -> None:
        self._seen: dict[bytes, str] = {}

    def check(self, text: str) -> tuple[bytes, str | None]:
        key = exact_key(text)
        return key, self.first(key)

    def first(self, key: bytes) -> str | None:
        """Id of the kept document with this key (from :func:`exact_key`), if any."""
        return self._seen.get(key)

    def add(self, key: bytes, doc_id: str) -> None:
        self._seen.setdefault(key, doc_id)


def shingle_hashes(text: str, n: int) -> np.ndarray:
    """64-bit hashes of the word ``n``-grams of ``text`` (lower-cased), as a uint64 array.

    Words are hashed once (CRC-32, deterministic across runs, unlike Python's ``hash``); an
    n-gram hash is a polynomial combination of its word hashes, computed for all n-grams at
    once with numpy. A text shorter than ``n`` words is a single shingle.
    """
    words = _WORD.findall(text.casefold())
    if not words:
        return np.zeros(0, dtype=np.uint64)
    table = {w: zlib.crc32(w.encode("utf-8")) for w in set(words)}  # each distinct word hashed once
    wh = np.fromiter(map(table.__getitem__, words), dtype=np.uint64, count=len(words))
    n = min(n, len(wh))
    with np.errstate(over="ignore"):
        h = np.zeros(len(wh) - n + 1, dtype=np.uint64)
        for i in range(n):  # loop over n-gram positions (n ≈ 5), vectorised over the text
            h = h * np.uint64(0x100000001B3) + wh[i : len(wh) - n + 1 + i] + np.uint64(i + 1)
    return np.unique(_mix64(h))  # scramble so that nearby n-grams get unrelated hashes


def _mix64(h: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a bijection of 64-bit integers that scrambles every bit."""
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint64(30))
        h = h * np.uint64(0xBF58476D1CE4E5B9)
        h = h ^ (h >> np.uint64(27))
        h = h * np.uint64(0x94D049BB133111EB)
        return h ^ (h >> np.uint64(31))


class MinHasher:
    """``P`` hash functions ``h_i(x) = mix64(x XOR s_i)`` and the signature they give.

    Each ``h_i`` is a bijection of 64-bit integers (XOR with a random seed, then the splitmix64
    finaliser), so each one orders the shingles in its own pseudo-random way: exactly what
    MinHash needs, with no modular arithmetic.
    """

    def __init__(self, num_perm: int = 128, seed: int = 1, chunk: int = 4096):
        rng = np.random.default_rng(seed)
        self.seeds = rng.integers(0, np.iinfo(np.uint64).max, size=num_perm, dtype=np.uint64, endpoint=True)
        self.num_perm = num_perm
        self.chunk = chunk  # shingles hashed at a time: bounds memory to chunk × P × 8 bytes

    def signature(self, hashes: np.ndarray) -> np.ndarray:
        """The MinHash signature (``P`` uint32 values) of a set of 64-bit shingle hashes."""
        sig = np.full(self.num_perm, np.iinfo(np.uint64).max, dtype=np.uint64)
        for start in range(0, len(hashes), self.chunk):
            v = _mix64(hashes[start : start + self.chunk, None] ^ self.seeds[None, :])
            np.minimum(sig, v.min(axis=0), out=sig)
        # the top 32 bits are enough to compare signatures and halve the index memory
        return (sig >> np.uint64(32)).astype(np.uint32)


def lsh_bands(num_perm: int, threshold: float) -> tuple[int, int]:
    """Choose ``(bands, rows)`` with ``bands·rows ≤ num_perm`` whose S-curve best fits ``threshold``.

    We minimise the area of false positives (pairs below the threshold that become candidates)
    plus false negatives (pairs above it that never do), integrated numerically.
    """
    s = np.linspace(0.0, 1.0, 1001)
    best, best_cost = (1, num_perm), float("inf")
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        p = 1.0 - (1.0 - s**rows) ** bands
        fp = np.trapezoid(np.where(s < threshold, p, 0.0), s)
        fn = np.trapezoid(np.where(s >= threshold, 1.0 - p, 0.0), s)
        if fp + fn < best_cost:
            best, best_cost = (bands, rows), fp + fn
    return best


class NearDedup:
    """LSH index of the MinHash signatures of kept documents."""

    def __init__(self, threshold: float = 0.8, num_perm: int = 128, shingle_words: int = 5, seed: int = 1):
        self.threshold = threshold
        self.shingle_words = shingle_words
        self.hasher = MinHasher(num_perm, seed)
        self.bands, self.rows = lsh_bands(num_perm, threshold)
        self._tables: list[dict[bytes, list[int]]] = [{} for _ in range(self.bands)]
        self._sigs: list[np.ndarray] = []
        self._ids: list[str] = []

    def signature(self, text: str) -> np.ndarray:
        """MinHash signature of ``text``: needs no index (a worker process can compute it)."""
        return self.hasher.signature(shingle_hashes(text, self.shingle_words))

    def _band_keys(self, sig: np.ndarray) -> list[bytes]:
        r = self.rows
        return [sig[i * r : (i + 1) * r].tobytes() for i in range(self.bands)]

    def check(self, sig: np.ndarray) -> tuple[str | None, float]:
        """Id and estimated similarity of the most similar kept document above the threshold."""
        best_id, best_sim = None, 0.0
        seen: set[int] = set()
        for table, key in zip(self._tables, self._band_keys(sig)):
            for idx in table.get(key, ()):
                if idx in seen:
                    continue
                seen.add(idx)
                sim = float(np.mean(self._sigs[idx] == sig))
                if sim >= self.threshold and sim > best_sim:
                    best_id, best_sim = self._ids[idx], sim
        return best_id, best_sim

    def add(self, sig: np.ndarray, doc_id: str) -> None:
        idx = len(self._sigs)
        self._sigs.append(sig)
        self._ids.append(doc_id)
        for table, key in zip(self._tables, self._band_keys(sig)):
            table.setdefault(key, []).append(idx)
