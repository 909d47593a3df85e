"""Topic ``tokens`` (docs/tokenizer.md): chunks, tokens, bytes, and the BPE merges replayed."""

from __future__ import annotations

from causette.explain.common import Setup, label, num, table, topic, tr, visible
from causette.tokenizer.pattern import split_chunks


def bpe_steps(tok, chunk: bytes) -> list[str]:
    """Replay the merges on one chunk: start from bytes, join the lowest-rank pair, repeat."""

    def show(parts):
        return " ".join(visible(p.decode("utf-8", errors="backslashreplace")) for p in parts)

    parts = [chunk[i : i + 1] for i in range(len(chunk))]
    lines = [tr(f"  octets     {show(parts)}", f"  bytes      {show(parts)}")]
    while len(parts) > 1:
        ranks = [tok.ranks.get(parts[i] + parts[i + 1]) for i in range(len(parts) - 1)]
        candidates = [(r, i) for i, r in enumerate(ranks) if r is not None]
        if not candidates:
            break
        rank, i = min(candidates)  # lowest rank = learned first; leftmost on a tie
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
        lines.append(tr(f"  rang {rank:>5} {show(parts)}", f"  rank {rank:>5} {show(parts)}"))
    return lines


@topic("tokens", ("comment le tokeniseur découpe un texte : morceaux, tokens, octets, fusions BPE rejouées",
                  "how the tokenizer cuts a text: chunks, tokens, bytes, BPE merges replayed"),
       trained=("des découpes semblables, en moins de tokens (le tokeniseur d'un run apprend plus de fusions, sur "
                "tout son corpus)",
                "similar cuts, into fewer tokens (a run's tokenizer learns more merges, on its whole corpus)"))
def explain_tokens(s: Setup, text: str, args=None) -> str:
    tok = s.tok
    n_bytes = len(text.encode("utf-8"))
    out = [tr(f"texte : {len(text)} caractères, {n_bytes} octets UTF-8", f"text: {len(text)} characters, {n_bytes} UTF-8 bytes")]
    chunks = split_chunks(text, tok.pattern) if tok.kind == "bpe" else []
    if chunks:
        out.append(tr("morceaux de la prétokenisation : ", "pre-tokenisation chunks: ") + " | ".join(visible(c) for c in chunks))
    ids = tok.encode(text)
    rows = [[k, i, label(tok, i), len(tok.token_bytes(i))] for k, i in enumerate(ids)]
    out += ["", table(["#", "id", "token", tr("octets", "bytes")], rows, left=(2,))]
    ratio = n_bytes / max(len(ids), 1)
    out.append(tr(f"{len(ids)} tokens pour {n_bytes} octets : {num(ratio, '.2f')} octets par token",
                  f"{len(ids)} tokens for {n_bytes} bytes: {ratio:.2f} bytes per token"))
    same = tok.decode(ids) == text
    out.append(tr(f"decode(encode(texte)) == texte : {'oui' if same else 'non'}", f"decode(encode(text)) == text: {same}"))
    if chunks:
        longest = max(chunks, key=lambda c: len(c.encode("utf-8")))
        out += ["", tr(f"BPE sur le plus long morceau « {visible(longest)} » (rang de fusion = ordre d'apprentissage) :",
                       f"BPE on the longest chunk '{visible(longest)}' (merge rank = order of learning):")]
        out += bpe_steps(tok, longest.encode("utf-8"))
    return "\n".join(out)
