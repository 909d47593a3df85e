"""Reference solution of exercise 3: the SFT loss mask of a ChatML conversation."""

HEADER = b"assistant\n"


def mask(ids, tokenizer):
    start = tokenizer.special_id("<|im_start|>")
    end = tokenizer.special_id("<|im_end|>")
    out, in_turn, assistant, seen = [], False, False, b""
    for t in ids:
        if t == start:
            out.append(0)
            in_turn, seen = True, b""
        elif t == end:
            out.append(int(in_turn and assistant))
            in_turn, assistant = False, False
        elif not in_turn or t in tokenizer.special_ids:
            out.append(0)
        else:
            seen += tokenizer.token_bytes(t)
            assistant = seen.startswith(HEADER[: len(seen)]) and len(seen) >= len(HEADER) or (
                assistant and len(seen) > len(HEADER))
            out.append(int(assistant and len(seen) > len(HEADER)))
    return out
