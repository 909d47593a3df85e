"""Benchmark of the Causette tokenizer against Hugging Face ``tokenizers`` and raw tiktoken.

    .venv/bin/python bench/tokenizer.py            # ~20 MB of ELTeC novels, a few minutes
    .venv/bin/python bench/tokenizer.py --mb 5     # quicker, same tables

Text: the ELTeC-fra novels of ../shared/data (the last 12 novels held out, never trained on),
plus two modern held-out sets (UD French-GSD sentences, the Code civil). The machine is shared
and its speed drifts, so every speed is compared with a reference measured in the same run,
interleaved, best of ``--repeat`` tries: read the ratios, not the absolute figures.

Tables printed:
1. training time, ours vs HF BpeTrainer (same text, vocabulary, pattern, specials), 8k and 16k;
2. encoding speed, our fast path vs raw tiktoken (the same ranks) vs HF, one text at a time and
   in batches on every core; and our plain-Python reference encoder for scale;
3. bytes per token on held-out French, ours vs HF BPE at equal vocabulary;
4. bytes per token of candidate pre-tokenisation patterns (our trainer, 8k).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tokenizers  # noqa: E402
from tokenizers import Regex, models, pre_tokenizers, trainers  # noqa: E402

from causette.tokenizer import BPETokenizer, train_tokenizer  # noqa: E402
from causette.tokenizer.config import TokenizerConfig  # noqa: E402
from causette.tokenizer.io import to_hf_dict  # noqa: E402
from causette.tokenizer.pattern import FRENCH_PATTERN, GPT2_PATTERN, GPT4_PATTERN  # noqa: E402
from causette.tokenizer.special import special_token_list  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "pretrain"
HELD_OUT_NOVELS = 12


# Variants of the French pattern, to show what each design choice is worth.
def variant(old: str, new: str) -> str:
    assert old in FRENCH_PATTERN, old
    return FRENCH_PATTERN.replace(old, new, 1)


GLUED_ELISION = variant(r"['\u2019]|", r"['\u2019][\p{L}\p{M}]*|")  # " l'homme" as one chunk
HYPHEN_WORDS = variant(r"|[\p{L}\p{M}]+)", r"|[\p{L}\p{M}]+(?:-[\p{L}\p{M}]+)*)")  # "peut-être" as one chunk
DIGITS_3 = variant(r"\p{N}{1,2}", r"\p{N}{1,3}")
CANDIDATES = {
    "gpt2": GPT2_PATTERN,
    "gpt4 (cl100k style)": GPT4_PATTERN,
    "french (ours, default)": FRENCH_PATTERN,
    "french, elision glued to next word": GLUED_ELISION,
    "french, hyphenated words whole": HYPHEN_WORDS,
    "french, digits in groups of 3": DIGITS_3,
}


def jsonl_texts(name: str) -> list[str]:
    path = DATA / name
    if not path.is_file():
        sys.exit(f"error: {path} not found (this benchmark needs ../shared/data)")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def load(mb: float) -> tuple[list[str], dict[str, list[str]]]:
    novels = jsonl_texts("eltec_fra_novels.jsonl.gz")
    train, size = [], 0
    for text in novels[:-HELD_OUT_NOVELS]:
        if size >= mb * 1e6:
            break
        train.append(text)
        size += len(text.encode("utf-8"))
    held = {
        "novels": novels[-HELD_OUT_NOVELS:],
        "modern (UD)": jsonl_texts("ud_french_gsd_devtest_sentences.jsonl.gz"),
        "law (Code civil)": jsonl_texts("code_civil_fr_2015.jsonl.gz"),
    }
    return train, held


def n_bytes(texts: list[str]) -> int:
    return sum(len(t.encode("utf-8")) for t in texts)


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def hf_trainer(texts: list[str], vocab: int, pattern: str | None) -> tokenizers.Tokenizer:
    """HF BpeTrainer with our pattern (Split + ByteLevel), or HF's default GPT-2 byte level."""
    tok = tokenizers.Tokenizer(models.BPE())
    if pattern is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(pattern), "isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        min_frequency=2,
        special_tokens=special_token_list(TokenizerConfig().special_tokens, 32),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def ours(texts: list[str], vocab: int, pattern: str = "french") -> BPETokenizer:
    return train_tokenizer(TokenizerConfig(vocab_size=vocab, pattern=pattern), texts)


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" if k else "---" for k in range(len(header))) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    sys.stdout.flush()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=20.0, help="MB of training text (default 20)")
    ap.add_argument("--repeat", type=int, default=2, help="best of N for each timing (default 2)")
    args = ap.parse_args()
    train, held = load(args.mb)
    novels = held["novels"]
    print(
        f"training text: {len(train)} novels, {n_bytes(train) / 1e6:.1f} MB; held out: "
        + ", ".join(f"{k} {n_bytes(v) / 1e6:.2f} MB" for k, v in held.items())
        + f"; {os.cpu_count()} cores; tokenizers {tokenizers.__version__}"
    )

    # 1. training time (interleaved: ours, HF, ours, HF...)
    rows, trained = [], {}
    for vocab in (8192, 16384):
        t_ours, t_hf = float("inf"), float("inf")
        for _ in range(args.repeat):
            t, tok = best_time(lambda v=vocab: ours(train, v), 1)
            t_ours = min(t_ours, t)
            t, hf = best_time(lambda v=vocab: hf_trainer(train, v, FRENCH_PATTERN), 1)
            t_hf = min(t_hf, t)
        trained[vocab] = (tok, hf)
        rows.append([f"{vocab:,}", f"{t_ours:.2f} s", f"{t_hf:.2f} s", f"{t_ours / t_hf:.2f}×"])
    table(
        "Training time (same text, vocabulary, pattern)",
        ["vocab", "ours", "HF BpeTrainer", "ours / HF (target ≤ 3)"],
        rows,
    )

    # 2. encoding speed on the held-out novels, with the 16k tokenizer
    tok, _ = trained[16384]
    enc = tok.fast
    hf_ours = tokenizers.Tokenizer.from_str(json.dumps(to_hf_dict(tok)))
    mb = n_bytes(novels) / 1e6
    cores = os.cpu_count() or 1
    timings = {
        "ours, fast path (tok.encode)": lambda: [tok.encode(t) for t in novels],
        "raw tiktoken (encode_ordinary)": lambda: [enc.encode_ordinary(t) for t in novels],
        "HF tokenizers (encode)": lambda: [hf_ours.encode(t).ids for t in novels],
        f"ours, batch ({cores} threads)": lambda: tok.encode_batch(novels),
        f"raw tiktoken, batch ({cores} threads)": lambda: enc.encode_ordinary_batch(
            novels, num_threads=cores
        ),
        "HF tokenizers, batch": lambda: [e.ids for e in hf_ours.encode_batch(novels)],
    }
    speed = {}
    for _ in range(args.repeat):  # interleaved
        for name, fn in timings.items():
            t, _ids = best_time(fn, 1)
            speed[name] = max(speed.get(name, 0.0), mb / t)
    sample = "\n".join(novels)[:1_000_000]
    reference = BPETokenizer(tok.merges, tok.pattern, tok.special_tokens, use_fast=False)
    t, _ids = best_time(lambda: reference.encode(sample), 1)
    rows = []
    for name, s in speed.items():
        base = "raw tiktoken, batch" if "batch" in name else "raw tiktoken (encode_ordinary)"
        ref = next(v for k, v in speed.items() if k.startswith(base))
        rows.append([name, f"{s:.1f}", f"{s / ref:.2f}×"])
    rows.append(
        ["ours, plain-Python reference (1 MB, cold cache)", f"{len(sample.encode()) / 1e6 / t:.2f}", "—"]
    )
    table(
        f"Encoding speed (16k vocabulary, held-out novels, {mb:.1f} MB)",
        ["encoder", "MB/s", "vs raw tiktoken (target ours ≥ 0.9)"],
        rows,
    )

    # 3. bytes per token, ours vs HF at equal vocabulary
    rows = []
    for vocab in (8192, 16384):
        tok, hf = trained[vocab]
        hf_gpt2 = hf_trainer(train, vocab, None)
        row = [f"{vocab:,}"]
        for texts in held.values():
            b = n_bytes(texts)
            ours_bpt = b / sum(len(x) for x in tok.encode_batch(texts))
            hf_bpt = b / sum(len(e.ids) for e in hf.encode_batch(texts))
            gpt2_bpt = b / sum(len(e.ids) for e in hf_gpt2.encode_batch(texts))
            row.append(f"{ours_bpt:.3f} / {hf_bpt:.3f} / {gpt2_bpt:.3f}")
        rows.append(row)
    table(
        "Bytes per token on held-out French: ours / HF BPE same pattern / HF BPE default byte-level (GPT-2)",
        ["vocab"] + list(held),
        rows,
    )

    # 4. candidate patterns
    rows = []
    for name, pattern in CANDIDATES.items():
        tok = ours(train, 8192, pattern)
        row = [name, f"{tok.metadata['distinct_chunks']:,}"]
        for texts in held.values():
            row.append(f"{n_bytes(texts) / sum(len(x) for x in tok.encode_batch(texts)):.3f}")
        rows.append(row)
    table(
        "Pre-tokenisation patterns: bytes per token on held-out French (our trainer, 8,192 tokens)",
        ["pattern", "distinct chunks"] + list(held),
        rows,
    )


if __name__ == "__main__":
    main()
