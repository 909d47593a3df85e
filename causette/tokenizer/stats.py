"""``causette tokenizer stats``: how well a tokenizer fits some French text.

* **bytes per token**: UTF-8 bytes of the text divided by the number of tokens. Higher means
  shorter sequences, so more text in the model's context and less compute per byte of text;
* **vocabulary usage**: how many of the byte and learned tokens occur at least once (tokens that
  never occur still cost a row of the embedding matrix);
* **longest tokens**, and **segmentations** of sample sentences, one colour per token.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

# Our own sample sentences: elisions, inversions, hyphens, numbers, French punctuation, a play.
SAMPLE_SENTENCES = [
    "L'homme qu'elle attendait n'est revenu qu'au printemps, lorsqu'il a cessé de pleuvoir.",
    "Peut-être viendra-t-il demain ; est-ce bien sûr ? Je n'en sais rien.",
    "« Aujourd'hui, dit-elle, nous partirons jusqu'à la mer. »",
    "Le 14 juillet 1789, la foule prit la Bastille : 954 vainqueurs furent recensés.",
    "LE COMTE. — Qu'on me laisse seul ! Où sont passés mes gens ?",
    "Œuvre, cœur, sœur : ces mots gardent leur e dans l'o, comme naïf et Noël leur tréma.",
]

# Background colours (256-colour ANSI codes), pale enough for black text.
_COLOURS = [153, 186, 217, 151, 223, 189]


def compute_stats(tok, texts: Iterable[str], top: int = 12) -> dict:
    """Bytes per token, vocabulary usage and longest tokens of ``tok`` on ``texts``."""
    texts = [t for t in texts if t]
    encoded = tok.encode_batch(texts)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    n_chars = sum(len(t) for t in texts)
    n_tokens = sum(len(ids) for ids in encoded)
    usage: Counter[int] = Counter()
    for ids in encoded:
        usage.update(ids)
    ordinary = tok.vocab_size - len(tok.special_tokens)  # bytes + learned tokens
    used = sum(1 for i in usage if i < ordinary)
    longest = sorted(range(ordinary), key=lambda i: (-len(tok.token_bytes(i)), i))[:top]
    return {
        "texts": len(texts),
        "characters": n_chars,
        "bytes": n_bytes,
        "tokens": n_tokens,
        "bytes_per_token": n_bytes / n_tokens if n_tokens else 0.0,
        "chars_per_token": n_chars / n_tokens if n_tokens else 0.0,
        "ordinary_tokens": ordinary,
        "used_tokens": used,
        "longest": [(i, show_token(tok, i)) for i in longest],
        "most_frequent": [(i, show_token(tok, i), n) for i, n in usage.most_common(top)],
    }


def show_token(tok, token_id: int) -> str:
    """A token as readable text; bytes of an unfinished character appear as ``\\xc3``."""
    return tok.token_bytes(token_id).decode("utf-8", errors="backslashreplace")


def segment(tok, text: str) -> list[str]:
    """The pieces ``tok`` cuts ``text`` into, one string per token."""
    return [show_token(tok, i) for i in tok.encode(text)]


def render_segments(pieces: list[str], colour: bool) -> str:
    """Tokens side by side: on coloured backgrounds in a terminal, else separated by ``|``."""
    visible = [p.replace("\n", "↵") for p in pieces]
    if not colour:
        return "|".join(visible)
    out = []
    for k, piece in enumerate(visible):
        out.append(f"\x1b[48;5;{_COLOURS[k % len(_COLOURS)]}m\x1b[30m{piece}\x1b[0m")
    return "".join(out)


def format_report(tok, stats: dict, source: str, colour: bool = False, sentences=SAMPLE_SENTENCES) -> str:
    """The text printed by ``causette tokenizer stats``."""
    s = stats
    kind = "merges" if tok.kind == "bpe" else "characters"
    learned = s["ordinary_tokens"] - 256
    lines = [
        f"tokenizer: {tok.kind}, {tok.vocab_size:,} tokens (256 bytes + {learned:,} {kind}"
        f" + {len(tok.special_tokens)} specials), hash {tok.hash}",
        f"text: {source}: {s['texts']:,} texts, {s['characters']:,} characters, {s['bytes']:,} bytes",
        f"bytes per token: {s['bytes_per_token']:.3f}   characters per token: {s['chars_per_token']:.3f}"
        f"   tokens: {s['tokens']:,}",
        f"vocabulary usage: {s['used_tokens']:,} of {s['ordinary_tokens']:,} byte and learned tokens occur"
        f" ({100 * s['used_tokens'] / max(1, s['ordinary_tokens']):.1f} %)",
        "longest tokens: " + ", ".join(repr(t) for _, t in s["longest"]),
        "most frequent: " + ", ".join(f"{t!r} ({n:,})" for _, t, n in s["most_frequent"]),
        "segmentations:",
    ]
    for sentence in sentences:
        pieces = segment(tok, sentence)
        lines.append(f"  [{len(pieces):3d} tokens] " + render_segments(pieces, colour))
    return "\n".join(lines)
