"""Typical mistake: the 'assistant\\n' header is trained too (every token of an assistant turn gets 1)."""


def mask(ids, tokenizer):
    start = tokenizer.special_id("<|im_start|>")
    end = tokenizer.special_id("<|im_end|>")
    out = [0] * len(ids)
    for i, t in enumerate(ids):
        if t != start:
            continue
        j = i + 1
        while j < len(ids) and ids[j] != end and ids[j] not in tokenizer.special_ids:
            j += 1
        turn = b"".join(tokenizer.token_bytes(x) for x in ids[i + 1:j])
        if turn.startswith(b"assistant\n") and j < len(ids):
            for m in range(i + 1, j + 1):
                out[m] = 1
    return out
