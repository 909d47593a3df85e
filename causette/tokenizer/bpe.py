"""Byte-level BPE: the trainer, the reference encoder, and :class:`BPETokenizer`.

**Training** starts from the 256 bytes and repeatedly *merges* the most frequent pair of adjacent
tokens into a new token, until the vocabulary is full. Three choices make it right and fast:

* text is first cut into chunks by the pre-tokenisation pattern (:mod:`.pattern`), and pairs are
  counted only *inside* a chunk: a token never spans two words;
* each *distinct* chunk is stored once with its frequency. 20 MB of French hold about 4 million
  chunks but only ~80,000 distinct ones, and all the work below is on those;
* after a merge we do not recount anything: only the chunks that contain the merged pair are
  rewritten (an index ``pair → chunks`` finds them), and only the counts of the pairs around each
  merged spot change. A heap gives the next most frequent pair; entries made stale by a count
  change are skipped when popped ("lazy deletion") instead of being searched for and removed.

Ties between equally frequent pairs go to the smallest pair of ids, so the same input always
yields the same merges. Merge ``k`` creates token ``256 + k``: the id of a token is its *rank*.

**Encoding** one chunk applies the merges again. We follow exactly the rule of tiktoken, our fast
encoder, so that both give the same ids: if the whole chunk is a token, that token; otherwise,
starting from single bytes, repeatedly join the adjacent pair whose joined bytes form the token
of lowest rank (the leftmost one on a tie), until no adjacent pair forms a token.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from typing import Mapping, Sequence

from causette.tokenizer.base import Tokenizer
from causette.tokenizer.special import AllowedSpecial, resolve_allowed
from causette.utils.text import valid_unicode

Pair = tuple[int, int]


# ============================================================================== training


def train_bpe(
    chunk_counts: Mapping[bytes, int], num_merges: int, min_frequency: int = 2, progress: bool = False
) -> list[Pair]:
    """Learn up to ``num_merges`` merges from ``{chunk bytes: how many times it occurs}``.

    Stops early when no pair occurs ``min_frequency`` times any more. Returns the merges in rank
    order: ``merges[k] = (left id, right id)`` creates token ``256 + k``.
    """
    # The corpus, compressed: every distinct chunk once, as a list of token ids, with its count.
    words: list[list[int]] = []
    freqs: list[int] = []
    for chunk, freq in chunk_counts.items():
        if len(chunk) > 1:  # a single byte holds no pair
            words.append(list(chunk))
            freqs.append(freq)

    # How often each adjacent pair occurs (weighted by chunk frequency), and in which chunks.
    pair_counts: dict[Pair, int] = defaultdict(int)
    where: dict[Pair, set[int]] = defaultdict(set)
    for w, (word, freq) in enumerate(zip(words, freqs)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += freq
            where[pair].add(w)

    # Max-heap of (-count, pair); ties resolved by the smallest pair, for determinism.
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    token_bytes = [bytes([b]) for b in range(256)]
    token_id = {b: i for i, b in enumerate(token_bytes)}
    merges: list[Pair] = []
    bar = _progress_bar(num_merges) if progress else None

    while len(merges) < num_merges and heap:
        neg_count, pair = heapq.heappop(heap)
        count = pair_counts.get(pair, 0)
        if count != -neg_count:
            continue  # stale entry: the count changed since it was pushed
        if count < min_frequency:
            break
        a, b = pair
        new_bytes = token_bytes[a] + token_bytes[b]
        new = token_id.get(new_bytes)
        if new is None:  # the usual case: a brand-new token
            new = len(token_bytes)
            token_bytes.append(new_bytes)
            token_id[new_bytes] = new
            merges.append(pair)
            if bar is not None:
                bar.update(1)
        # (else: another pair already built these bytes, e.g. "ab"+"c" and "a"+"bc"; we reuse
        # that token, as the encoder would, and the vocabulary does not grow.)

        changed: set[Pair] = set()
        for w in where.pop(pair):
            _merge_in_word(words[w], freqs[w], w, a, b, new, pair_counts, where, changed)
        del pair_counts[pair]  # every occurrence is merged now
        changed.discard(pair)
        for p in changed:  # one fresh heap entry per pair whose count moved
            c = pair_counts[p]
            if c > 0:
                heapq.heappush(heap, (-c, p))
            else:
                del pair_counts[p]
    if bar is not None:
        bar.close()
    return merges


def _merge_in_word(word, freq, w, a, b, new, pair_counts, where, changed) -> None:
    """Replace every ``a b`` in ``word`` by ``new`` (left to right), updating the pair counts.

    Around a merged spot ``x a b y``, the pairs ``(x, a)`` and ``(b, y)`` disappear and
    ``(x, new)`` and ``(new, y)`` appear; nothing else in the word changes. Working in place
    left to right also handles ``a b a b`` → ``new new`` and ``a a a`` → ``new a`` correctly.
    """
    i = 0
    while True:
        try:
            i = word.index(a, i)
        except ValueError:
            return  # no (more) occurrence: also the case of a stale entry of `where`
        if i + 1 < len(word) and word[i + 1] == b:
            if i > 0:
                x = word[i - 1]
                pair_counts[(x, a)] -= freq
                pair_counts[(x, new)] += freq
                where[(x, new)].add(w)
                changed.add((x, a))
                changed.add((x, new))
            if i + 2 < len(word):
                y = word[i + 2]
                pair_counts[(b, y)] -= freq
                pair_counts[(new, y)] += freq
                where[(new, y)].add(w)
                changed.add((b, y))
                changed.add((new, y))
            word[i : i + 2] = [new]
        i += 1


def _progress_bar(total: int):
    from tqdm import tqdm

    return tqdm(total=total, desc="merges", unit="merge", leave=False, mininterval=0.5, disable=None)


# ============================================================================== the tokenizer


class BPETokenizer(Tokenizer):
    """Byte-level BPE with a pre-tokenisation pattern and special tokens.

    ``encode`` uses the fast tiktoken encoder (:mod:`.fast`) unless ``use_fast=False``;
    ``encode_reference`` is the plain-Python encoder, always available, which gives the same ids.
    """

    kind = "bpe"

    def __init__(
        self,
        merges: Sequence[Pair],
        pattern: str,
        special_tokens: Mapping[str, int],
        use_fast: bool = True,
        metadata: dict | None = None,
    ):
        super().__init__(dict(special_tokens))
        self.merges: list[Pair] = [(int(a), int(b)) for a, b in merges]
        self.pattern = pattern
        self.metadata = dict(metadata or {})
        self.use_fast = use_fast
        # vocab[id] = bytes of the token; ranks is the inverse map (bytes → id = rank).
        self.vocab: list[bytes] = [bytes([b]) for b in range(256)]
        for k, (a, b) in enumerate(self.merges):
            if not (0 <= a < len(self.vocab) and 0 <= b < len(self.vocab)):
                raise ValueError(f"merge {k} refers to token ids not created yet: {a}, {b}")
            self.vocab.append(self.vocab[a] + self.vocab[b])
        self.ranks: dict[bytes, int] = {tok: i for i, tok in enumerate(self.vocab)}
        if len(self.ranks) != len(self.vocab):
            raise ValueError("two merges build the same bytes: the merge list is corrupt")
        expected = range(len(self.vocab), len(self.vocab) + len(self.special_tokens))
        if sorted(self.special_tokens.values()) != list(expected):
            raise ValueError(
                f"special token ids must be {expected.start}..{expected.stop - 1}, after the merges"
            )
        self._chunk_cache: dict[bytes, list[int]] = {}
        self._fast_encoding = None

    @property
    def vocab_size(self) -> int:
        return len(self.vocab) + len(self.special_tokens)

    def token_bytes(self, token_id: int) -> bytes:
        if 0 <= token_id < len(self.vocab):
            return self.vocab[token_id]
        if token_id in self.special_names:
            return self.special_names[token_id].encode("utf-8")
        self._check_id(token_id)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ reference encoder
    def encode_chunk(self, chunk: bytes) -> list[int]:
        """BPE on one chunk, with tiktoken's rule (see the module docstring)."""
        whole = self.ranks.get(chunk)
        if whole is not None:
            return [whole]
        parts = [chunk[i : i + 1] for i in range(len(chunk))]
        while len(parts) > 1:
            best_rank, best_i = None, -1
            for i in range(len(parts) - 1):
                rank = self.ranks.get(parts[i] + parts[i + 1])
                if rank is not None and (best_rank is None or rank < best_rank):
                    best_rank, best_i = rank, i
            if best_rank is None:
                break
            parts[best_i : best_i + 2] = [parts[best_i] + parts[best_i + 1]]
        return [self.ranks[p] for p in parts]

    def _encode_ordinary(self, text: str) -> list[int]:
        from causette.tokenizer.pattern import compile_pattern

        cache = self._chunk_cache
        if len(cache) > 200_000:
            cache.clear()
        ids: list[int] = []
        for chunk in compile_pattern(self.pattern).findall(valid_unicode(text)):
            b = chunk.encode("utf-8")
            cached = cache.get(b)
            if cached is None:
                cached = cache[b] = self.encode_chunk(b)
            ids.extend(cached)
        return ids

    def encode_reference(self, text: str, allowed_special: AllowedSpecial = "none") -> list[int]:
        """The plain-Python encoder: slow, short, and the definition the fast path must match."""
        return Tokenizer.encode(self, text, allowed_special)

    # ------------------------------------------------------------------ fast encoder
    @property
    def fast(self):
        """The tiktoken ``Encoding`` built from our ranks, pattern and specials (made on first use)."""
        if self._fast_encoding is None:
            from causette.tokenizer.fast import build_encoding

            self._fast_encoding = build_encoding(self)
        return self._fast_encoding

    def encode(self, text: str, allowed_special: AllowedSpecial = "none") -> list[int]:
        if not self.use_fast:
            return self.encode_reference(text, allowed_special)
        from causette.tokenizer.fast import fast_encode

        return fast_encode(self.fast, text, resolve_allowed(allowed_special, self.special_tokens.keys()))

    def encode_batch(self, texts, allowed_special: AllowedSpecial = "none", workers: int | None = None):
        if not self.use_fast:
            return super().encode_batch(texts, allowed_special, workers)
        from causette.tokenizer.fast import fast_encode_batch

        allowed = resolve_allowed(allowed_special, self.special_tokens.keys())
        return fast_encode_batch(self.fast, list(texts), allowed, workers)

    def decode_bytes(self, ids) -> bytes:
        if not self.use_fast:
            return super().decode_bytes(ids)
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)  # numpy arrays, torch tensors
        try:
            return self.fast.decode_bytes(ids)
        except (KeyError, OverflowError, TypeError, ValueError):
            for i in ids:
                self._check_id(int(i))
            raise

    # ------------------------------------------------------------------ saving
    def to_dict(self) -> dict:
        return {
            "type": self.kind,
            "pattern": self.pattern,
            "merges": [list(m) for m in self.merges],
            "special_tokens": dict(sorted(self.special_tokens.items(), key=lambda kv: kv[1])),
        }

    def __getstate__(self) -> dict:  # for worker processes: the tiktoken object is rebuilt there
        state = dict(self.__dict__)
        state["_fast_encoding"] = None
        state["_chunk_cache"] = {}
        return state
