"""Which sentences of a test suite appear, character for character, in a training corpus.

A model that read a test sentence during training may "pass" it from memory: those pairs
measure memory, not grammar. ``causette eval`` counts them in the run's train split.

**How.** Checking each sentence with ``sentence in text`` costs one pass over the corpus per
sentence (thousands of passes). Instead, the first ``m`` characters of every sentence are hashed
(a polynomial hash modulo 2**64), and one pass over each document computes the hash of *every*
window of ``m`` characters at once with NumPy (prefix sums of ``c_j·B^j``, then a multiplication by
``B^-i`` puts each window on the same footing: Rabin–Karp for many patterns). Positions whose hash
is one of the sentences' are candidates, confirmed with ``text.startswith(sentence, position)``:
the answer is exact, a hash collision only costs one comparison. Sentences shorter than
``MIN_WINDOW`` characters are looked up with ``in``. Documents are read in chunks, so memory stays flat.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

MIN_WINDOW = 12  # shorter sentences are searched with `in`
MAX_WINDOW = 32  # hashing more characters than this does not make candidates rarer
CHUNK = 1 << 20  # characters hashed at once (≈ 40 MB of arrays)
BASE = np.uint64(0x9E3779B97F4A7C15)  # odd, so that it has an inverse modulo 2**64


def _powers(base: np.uint64, n: int) -> np.ndarray:
    """``base**0 … base**(n-1)`` modulo 2**64."""
    out = np.empty(n, dtype=np.uint64)
    out[0] = 1
    if n > 1:
        out[1:] = base
        with np.errstate(over="ignore"):
            np.cumprod(out[1:], out=out[1:])
    return out


_INVERSE = np.uint64(pow(int(BASE), -1, 1 << 64))


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)


class SentenceFinder:
    """Finds which of ``sentences`` occur in texts: :meth:`scan` each text, then :attr:`found`."""

    def __init__(self, sentences: Iterable[str], chunk: int = CHUNK):
        distinct = sorted({s for s in sentences if s})
        self.short = [s for s in distinct if len(s) < MIN_WINDOW]
        long = [s for s in distinct if len(s) >= MIN_WINDOW]
        self.found: set[str] = set()
        self.m = min([MAX_WINDOW] + [len(s) for s in long])
        self.chunk = max(chunk, 1)
        self.pow = _powers(BASE, self.chunk + self.m)
        self.inv = _powers(_INVERSE, self.chunk)
        self.by_hash: dict[int, list[str]] = {}
        for s in long:
            self.by_hash.setdefault(self._hash(s[: self.m]), []).append(s)
        self.keys = np.array(sorted(self.by_hash), dtype=np.uint64)

    def _hash(self, window: str) -> int:
        with np.errstate(over="ignore"):
            return int((_codes(window) * self.pow[: len(window)]).sum(dtype=np.uint64))

    def scan(self, text: str) -> None:
        for s in self.short:
            if s not in self.found and s in text:
                self.found.add(s)
        if not len(self.keys) or len(text) < self.m:
            return
        m, windows = self.m, len(text) - self.m + 1
        for start in range(0, windows, self.chunk):
            count = min(self.chunk, windows - start)
            codes = _codes(text[start : start + count + m - 1])
            with np.errstate(over="ignore"):
                prefix = np.zeros(len(codes) + 1, dtype=np.uint64)
                np.cumsum(codes * self.pow[: len(codes)], out=prefix[1:])
                hashes = (prefix[m : m + count] - prefix[:count]) * self.inv[:count]
            slot = np.minimum(np.searchsorted(self.keys, hashes), len(self.keys) - 1)
            for i in np.flatnonzero(self.keys[slot] == hashes):
                for s in self.by_hash[int(hashes[i])]:
                    if s not in self.found and text.startswith(s, start + int(i)):
                        self.found.add(s)


def sentences_in_texts(sentences: Iterable[str], texts: Iterable[str], chunk: int = CHUNK) -> set[str]:
    """The sentences (non-empty strings) that occur verbatim in at least one of ``texts``."""
    finder = SentenceFinder(sentences, chunk)
    for text in texts:
        finder.scan(text)
    return finder.found
