"""Topic ``tokens`` (docs/tokenizer.md): chunks, tokens, bytes, and the BPE merges replayed."""

from __future__ import annotations

from causette.explain.common import Setup, label, table, topic, visible


def bpe_steps(tok, chunk: bytes) -> list[str]:
    """Replay the merges on one chunk: start from bytes, join the lowest-rank pair, repeat."""

    def show(parts):
        return " ".join(visible(p.decode("utf-8", errors="backslashreplace")) for p in parts)

    parts = [chunk[i : i + 1] for i in range(len(chunk))]
    lines = [f"  bytes      {show(parts)}"]
    while len(parts) > 1:
        ranks = [tok.ranks.get(parts[i] + parts[i + 1]) for i in range(len(parts) - 1)]
        candidates = [(r, i) for i, r in enumerate(ranks) if r is not None]
        if not candidates:
            break
        rank, i = min(candidates)  # lowest rank = learned first; leftmost on a tie
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
        lines.append(f"  rank {rank:>5} {show(parts)}")
    return lines


@topic("tokens", "how the tokenizer cuts a text: chunks, tokens, bytes, BPE merges replayed")
def explain_tokens(s: Setup, text: str, args=None) -> str:
    from causette.tokenizer.pattern import split_chunks

    tok = s.tok
    n_bytes = len(text.encode("utf-8"))
    out = [f"text: {len(text)} characters, {n_bytes} UTF-8 bytes"]
    chunks = split_chunks(text, tok.pattern) if tok.kind == "bpe" else []
    if chunks:
        out.append("pre-tokenisation chunks: " + " | ".join(visible(c) for c in chunks))
    ids = tok.encode(text)
    rows = [[k, i, label(tok, i), len(tok.token_bytes(i))] for k, i in enumerate(ids)]
    out += ["", table(["#", "id", "token", "bytes"], rows, left=(2,))]
    out.append(f"{len(ids)} tokens for {n_bytes} bytes: {n_bytes / max(len(ids), 1):.2f} bytes per token")
    out.append(f"decode(encode(text)) == text: {tok.decode(ids) == text}")
    if chunks:
        longest = max(chunks, key=lambda c: len(c.encode("utf-8")))
        out += ["", f"BPE on the longest chunk '{visible(longest)}' (merge rank = order of learning):"]
        out += bpe_steps(tok, longest.encode("utf-8"))
    return "\n".join(out)
