"""Minimal pairs: how fast ``causette eval --pairs`` scores, and how fast it finds a suite's sentences in a corpus.

    .venv/bin/python bench/minimal_pairs.py                  # ~2 minutes on 2 cores
    .venv/bin/python bench/minimal_pairs.py --pairs FILE     # time another pairs file
    .venv/bin/python bench/minimal_pairs.py --source demo    # pairs from the demo corpus (no ../shared)

Part 1, scoring (target: ≥ 3,000 pairs in ≤ 30 s on 2 cores for the demo model): a random model
of the demo's shape (configs/model/demo.yaml: 4 layers × 256, context 256, vocabulary 4096, fp32)
with a tokenizer trained on the shipped demo corpus. The pairs: the built-in suite when it exists;
else 3,000 pairs made from the UD French-GSD sentences of ``../shared`` (the treebanks' sentence
lengths) or, without ``../shared``, from demo-corpus sentences of 4–40 words: a sentence, and the
same with one word replaced by another of its words. Sentences are tokenised beforehand. Each
batch size (``batch_tokens``: padded tokens a forward pass) is timed best of ``--repeat``; "one at
a time" is the unbatched reference (a forward pass per sentence). The ~300-pair subset the
training loop scores is timed at the default batch size.

Part 2, overlap with a training corpus: the demo corpus (cleaned as ``causette corpus build``
cleans it) and, when ``../shared/data`` is there, its novels (ELTeC, ~50 MB): the suite's
sentences found by the hashed search of causette/eval/overlap.py against ``sentence in text``
for each sentence (timed on a sample of sentences and extrapolated).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import causette  # noqa: F401  (first: OpenMP's thread settings before torch starts)
import torch

from causette.config import load_config
from causette.corpus.normalize import normalize
from causette.eval.minimal_pairs import MinimalPair, fixed_subset, read_pairs
from causette.eval.overlap import sentences_in_texts
from causette.eval.sentence_scores import encode_pairs, score_encoded
from causette.model import Transformer
from causette.tokenizer.train import train_tokenizer
from causette.utils.paths import DEMO_CORPUS, GRAMMAR_SUITE, SHARED_DATA

BATCH_TOKENS = (512, 1024, 2048, 4096, 8192, 16384)


def demo_text() -> str:
    return gzip.decompress(DEMO_CORPUS.read_bytes()).decode("utf-8")


def swapped_pairs(sentences: list[str], n: int, group: str, seed: int = 0) -> list[MinimalPair]:
    """Up to ``n`` pairs: a sentence, and the same with one word replaced by another of its words
    (going through the sentences again, with other words, until there are ``n``)."""
    rng = random.Random(seed)
    pairs, seen = [], set()
    for _ in range(4):
        for s in sentences:
            words = s.split()
            if len(words) < 3:
                continue
            i, j = rng.sample(range(len(words)), 2)
            bad = " ".join(words[:i] + [words[j]] + words[i + 1 :])
            if bad != s and bad not in seen:
                seen.add(bad)
                pairs.append(MinimalPair(s, bad, group))
            if len(pairs) == n:
                return pairs
    return pairs


def demo_pairs(n: int) -> list[MinimalPair]:
    """Distinct demo-corpus sentences of 4–40 words, each in one pair."""
    text = re.sub(r"\s+", " ", demo_text())
    sentences = sorted({s for s in re.split(r"(?<=[.!?])\s+(?=[A-ZÀ-Ý«])", text) if 4 <= len(s.split()) <= 40})
    random.Random(0).shuffle(sentences)
    return swapped_pairs(sentences, n, "demo")


def ud_pairs(shared: Path, n: int) -> list[MinimalPair]:
    """The 1,892 UD French-GSD dev/test sentences (the treebanks' lengths), each in one or two pairs."""
    with gzip.open(shared / "pretrain" / "ud_french_gsd_devtest_sentences.jsonl.gz", "rt", encoding="utf-8") as f:
        return swapped_pairs([json.loads(line)["text"] for line in f], n, "ud")


def timed(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def part_scoring(pairs: list[MinimalPair], repeat: int) -> None:
    cfg = load_config("demo")
    tok_cfg = cfg.tokenizer
    tok_cfg.vocab_size = 4096
    start = time.perf_counter()
    tok = train_tokenizer(tok_cfg, [demo_text()])
    print(f"tokenizer: {tok.vocab_size} tokens trained on the demo corpus in {time.perf_counter() - start:.1f} s")
    model_cfg = load_config("model/demo").model
    model_cfg.vocab_size = tok.vocab_size
    torch.manual_seed(0)
    model = Transformer(model_cfg).eval()
    n_params = sum(p.numel() for p in model.parameters())
    encoded = encode_pairs(tok, pairs, model_cfg.block_size, cfg.corpus.normalize)
    kept = int(encoded.kept.sum())
    lengths = [len(s) for s in encoded.sentences]
    print(f"model: {n_params / 1e6:.1f}M parameters, context {model_cfg.block_size}; torch threads "
          f"{torch.get_num_threads()}; {len(pairs)} pairs ({kept} within the context), "
          f"{len(encoded.sentences)} distinct sentences, {sum(lengths) / len(lengths):.1f} tokens each on average")
    print()
    print("| batch_tokens | seconds | pairs/s | sentences/s | sentences a batch |")
    print("|---:|---:|---:|---:|---:|")
    from causette.eval.sentence_scores import sentence_batches

    for budget in BATCH_TOKENS:
        seconds, _ = timed(lambda b=budget: score_encoded(model, encoded, tok.bos_id, "cpu", batch_tokens=b), repeat)
        n_batches = len(sentence_batches(lengths, budget))
        print(f"| {budget} | {seconds:.2f} | {len(pairs) / seconds:,.0f} | {len(lengths) / seconds:,.0f} | "
              f"{len(lengths) / n_batches:.1f} |")
    sample = encoded.sentences[:: max(1, len(encoded.sentences) // 300)][:300]

    def one_at_a_time():
        with torch.no_grad():
            for ids in sample:
                model(torch.tensor([[tok.bos_id, *ids[:-1]]]))

    seconds, _ = timed(one_at_a_time, 1)
    rate = len(sample) / seconds
    total = len(lengths) / rate  # extrapolated to every sentence
    print(f"| one at a time ({len(sample)} sentences, extrapolated) | {total:.2f} | {len(pairs) / total:,.0f} | "
          f"{rate:,.0f} | 1 |")
    subset = fixed_subset(pairs, 300)
    sub_encoded = encode_pairs(tok, subset, model_cfg.block_size, cfg.corpus.normalize)
    seconds, _ = timed(lambda: score_encoded(model, sub_encoded, tok.bos_id, "cpu"), repeat)
    print(f"\nthe training loop's subset: {len(subset)} pairs in {seconds:.2f} s at the default batch size")


def part_overlap(pairs: list[MinimalPair], shared: Path) -> None:
    cfg = load_config("demo").corpus.normalize
    sentences = sorted({normalize(s, cfg) for p in pairs for s in (p.good, p.bad)})
    corpora = {"demo corpus": [normalize(t, cfg) for t in demo_text().split("\n\n\n")]}
    novels = shared / "pretrain" / "eltec_fra_novels.jsonl.gz"
    if novels.is_file():
        with gzip.open(novels, "rt", encoding="utf-8") as f:
            corpora["ELTeC novels (../shared)"] = [normalize(json.loads(line)["text"], cfg) for line in f]
    print()
    print("| corpus | characters | sentences | found | hashed search | `in`, one sentence at a time |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, texts in corpora.items():
        chars = sum(map(len, texts))
        seconds, found = timed(lambda t=texts: sentences_in_texts(sentences, t), 1)
        sample = sentences[:: max(1, len(sentences) // 50)][:50]
        start = time.perf_counter()
        naive = {s for s in sample if any(s in t for t in texts)}
        naive_seconds = (time.perf_counter() - start) * len(sentences) / len(sample)
        assert naive == found & set(sample)
        print(f"| {name} | {chars:,} | {len(sentences):,} | {len(found)} | {seconds:.2f} s | "
              f"{naive_seconds:.0f} s (extrapolated from {len(sample)}) |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=Path, help="a pairs file")
    ap.add_argument("--source", choices=["auto", "suite", "ud", "demo"], default="auto",
                    help="without --pairs: the built-in suite, pairs made from the UD GSD sentences of ../shared, "
                         "or from demo-corpus sentences (auto: the first that is there)")
    ap.add_argument("-n", type=int, default=3000, help="pairs to score (default 3000)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--shared", type=Path, default=SHARED_DATA, help="the shared data folder (default ../shared/data)")
    ap.add_argument("--part", choices=["all", "scoring", "overlap"], default="all")
    args = ap.parse_args()
    ud_file = args.shared / "pretrain" / "ud_french_gsd_devtest_sentences.jsonl.gz"
    source = args.source
    if source == "auto":
        source = "suite" if GRAMMAR_SUITE.is_file() else "ud" if ud_file.is_file() else "demo"
    if args.pairs or source == "suite":
        path = args.pairs or GRAMMAR_SUITE
        pairs = read_pairs(path)[: args.n]
        print(f"pairs: {len(pairs)} from {path}")
    elif source == "ud":
        pairs = ud_pairs(args.shared, args.n)
        print(f"pairs: {len(pairs)} made from the UD French-GSD dev/test sentences (one word replaced)")
    else:
        pairs = demo_pairs(args.n)
        print(f"pairs: {len(pairs)} made from demo-corpus sentences (one word replaced)")
    if args.part in ("all", "scoring"):
        part_scoring(pairs, args.repeat)
    if args.part in ("all", "overlap"):
        part_overlap(pairs, args.shared)


if __name__ == "__main__":
    main()
