"""Reference solution of exercise 1 (docs/exercices.md): a plain BPE trainer that matches Causette's."""

from collections import Counter

import regex

from causette.tokenizer.pattern import GPT4_PATTERN

TIE_BREAK = min  # among the most frequent pairs, the smallest (a, b)


def train(text: str, num_merges: int) -> list[tuple[int, int]]:
    chunks = Counter(regex.findall(GPT4_PATTERN, text))
    words = {tuple(c.encode("utf-8")): n for c, n in chunks.items()}
    merges = []
    while len(merges) < num_merges:
        counts = Counter()
        for word, n in words.items():
            for pair in zip(word, word[1:]):
                counts[pair] += n
        if not counts:
            break
        best = max(counts.values())
        if best < 2:
            break
        pair = TIE_BREAK(p for p, c in counts.items() if c == best)
        new = 256 + len(merges)
        merges.append(pair)
        words = {_merge(w, pair, new): n for w, n in words.items()}
    return merges


def _merge(word, pair, new):
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(new)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)
