"""Pre-tokenisation patterns: how text is cut into chunks before BPE sees it.

BPE never merges across a chunk boundary, so the pattern decides which units the vocabulary
can hold: with a good pattern a token is a word, a word piece, a punctuation run or a run of
spaces, never "end of one word + start of the next". Every chunk the pattern finds is encoded
on its own, and the concatenation of all chunks must give back the text (every pattern below
matches every character; :func:`covers` checks it).

The same pattern runs on three regex engines: Python's ``regex`` (our trainer and reference
encoder), tiktoken's Rust ``fancy-regex`` (our fast encoder) and Oniguruma (Hugging Face
``tokenizers``, the exported file). We therefore use only what all three share: Unicode
classes ``\\p{L}`` ``\\p{M}`` ``\\p{N}``, ``\\s``, scoped ``(?i:...)``, and one negative lookahead.

The French pattern, branch by branch (tried in order at each position; 1 and 2 share their
optional first character, see the code):

1. an elided word with its apostrophe, optionally after one space or sign:
   ``l' d' j' qu' n' s' c' m' t' jusqu' lorsqu' puisqu' quoiqu' quelqu' presqu'`` (straight or
   typographic apostrophe). "de l'homme qu'il" → ``de`` `` l'`` ``homme`` `` qu'`` ``il``:
   the article stays one unit and the noun is the same chunk after ``l'``, ``d'``, ``qu'``...
2. a word: letters and combining marks (``e`` + U+0301 stays inside the word), optionally after
   one character that is neither a letter, a digit nor a line break: a space (`` maison``),
   a hyphen (inversions and compounds: ``est`` ``-ce``, ``peut`` ``-être``, ``a`` ``-t`` ``-il``),
   an opening quote or bracket.
3. numbers in groups of at most two digits (``1789`` → ``17`` ``89``): the vocabulary holds the
   100 two-digit groups instead of thousands of arbitrary numbers.
4. punctuation runs, optionally after one space, NBSP or narrow NBSP (French typography puts a
   space before ``; : ! ? »``), swallowing the line breaks that follow (`` ?\\n``).
5. whitespace: a run ending in line breaks, then spaces that leave the last one to the next word
   (GPT-4's ``\\s+(?!\\S)`` trick), then any remaining whitespace.

Why this pattern: bytes per token on held-out French (12 ELTeC novels, 6.0 MB, never trained on;
UD French-GSD sentences; the Code civil), our trainer on 20 MB of other ELTeC novels, 8,192 tokens.
``bench/tokenizer.py`` prints the current figures, ``bench/LOG.md`` keeps the history:

    pattern                                  novels   modern (UD)   law (Code civil)
    gpt2  (GPT-2, 2019)                       3.582      3.253         3.308
    gpt4  (GPT-4 cl100k style)                3.842      3.295         3.375   <- default
    french (below)                            3.916      3.305         3.391
    french + elision glued to the next word   4.032      3.350         3.448   (" l'homme": two words)
    french + hyphenated words kept whole      3.929      3.302         3.389
    french + digits in groups of 3            3.916      3.311         3.391

**Why the default is nevertheless ``gpt4``.** llama.cpp does not read a regex from a model
file: it picks one of its built-in pre-tokenisers by name, and GPT-4's is one of them
(``llama-bpe``), ours is not; Ollama's own engine uses GPT-4's regex unless the file gives
another. With ``gpt4``, a model exported to GGUF gets exactly our ids in llama.cpp (every line
of the demo corpus and random text, tests/test_llamacpp.py); with ``french``, llama.cpp
cuts about half of the demo lines differently (every elision) and the model answers differently
there. That is worth more than 2 % of compression. ``french`` remains one setting away
(``tokenizer.pattern: french``) for work that stays inside Causette and Hugging Face.

The French pattern beats GPT-4's by 1.9 % on novels and 0.3-0.5 % on modern and legal prose
(GPT-4's pattern cuts "l'homme" as "l" + "'homme"). Gluing the elision to the next word scores higher,
but only by learning two-word tokens (" qu'il", " d'un", " l'on"), the very cross-word merging a
pre-tokeniser exists to prevent; keeping hyphenated forms whole gains 0.3 % on novels, loses
elsewhere, and has the same flaw. Groups of 2 or 3 digits tie on this prose (numbers are rare);
the French pattern keeps 2, between the two common choices: single digits (LLaMA, Mistral), said
to help arithmetic, and up to 3 (GPT-4, hence our default).

Known limit: Python's ``regex`` already follows Unicode 17 (2025) while tiktoken and Oniguruma
follow Unicode 16, so on the ~5,000 characters new in 17.0 the engines may disagree on what a
letter is, and the reference encoder may cut such text differently from the fast one.
"""

from __future__ import annotations

import functools

import regex

from causette.errors import CausetteError

# GPT-2's pattern (Radford et al., 2019): English contractions, words and numbers with an optional
# leading space, punctuation runs, whitespace. Kept for comparison.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# The GPT-4 (cl100k) style: case-insensitive English contractions, a word may take one leading
# non-letter, numbers in groups of at most three digits, punctuation swallows line breaks.
GPT4_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

_ELIDED = r"(?i:[cdjlmnst]|qu|jusqu|lorsqu|puisqu|quoiqu|quelqu|presqu)"
_APOSTROPHE = r"['\u2019]"  # ' and ’ (the corpus stage normalises ’ to ', raw text may not be)
_SPACE_BEFORE_PUNCT = r"[ \u00a0\u202f]"  # space, NBSP, narrow NBSP (the 3 engines read \uXXXX)

FRENCH_PATTERN = "|".join(
    [
        # 1. and 2. share their optional first character (a space, hyphen, quote...): matching it
        # once, then trying the elision before the plain word, makes Python's regex 1.6× faster
        # than two separate branches, for the same chunks.
        r"[^\r\n\p{L}\p{N}]?(?:" + _ELIDED + _APOSTROPHE + r"|[\p{L}\p{M}]+)",
        r"\p{N}{1,2}",  # 3. digits, two at most
        _SPACE_BEFORE_PUNCT + r"?[^\s\p{L}\p{N}]+[\r\n]*",  # 4. punctuation run
        r"\s*[\r\n]+",  # 5. whitespace ending in line breaks
        r"\s+(?!\S)",  #    spaces, leaving the last one to the next word
        r"\s+",  #    any other whitespace
    ]
)

PATTERNS: dict[str, str] = {"french": FRENCH_PATTERN, "gpt4": GPT4_PATTERN, "gpt2": GPT2_PATTERN}


def resolve_pattern(name_or_regex: str) -> str:
    """The regex for a pattern name (``french``, ``gpt4``, ``gpt2``), or the regex itself."""
    return PATTERNS.get(name_or_regex, name_or_regex)


def pattern_name(pattern: str) -> str:
    """The short name of a known pattern, or ``custom``."""
    for name, pat in PATTERNS.items():
        if pat == pattern:
            return name
    return "custom"


@functools.lru_cache(maxsize=32)
def compile_pattern(pattern: str) -> regex.Pattern:
    """Compile with Python's ``regex`` module; a clear error if the pattern is not valid."""
    try:
        return regex.compile(pattern)
    except regex.error as e:
        raise CausetteError(f"invalid pre-tokenisation pattern {pattern!r}: {e}") from None


def split_chunks(text: str, pattern: str) -> list[str]:
    """Cut ``text`` into the chunks BPE encodes one by one."""
    return compile_pattern(pattern).findall(text)


def covers(text: str, pattern: str) -> bool:
    """True when the chunks put back together give ``text`` (nothing falls between matches)."""
    return "".join(split_chunks(text, pattern)) == text


def check_pattern(pattern: str) -> None:
    """Fail early, with one line, if any of the three engines rejects the pattern."""
    compile_pattern(pattern)
    try:
        import tiktoken

        tiktoken.Encoding("check", pat_str=pattern, mergeable_ranks={b"a": 0}, special_tokens={})
    except ValueError as e:
        raise CausetteError(f"pre-tokenisation pattern rejected by tiktoken: {e}") from None
    try:
        import tokenizers

        tokenizers.Regex(pattern)
    except Exception as e:  # tokenizers raises its own Exception type
        raise CausetteError(f"pre-tokenisation pattern rejected by Hugging Face tokenizers: {e}") from None
    for sample in ("L'été, jusqu'à 1789 — peut-être ?\n\n  Fin.", "a\u00a0;\tb 12345"):
        if not covers(sample, pattern):
            raise CausetteError(f"pre-tokenisation pattern {pattern!r} drops characters of {sample!r}")
