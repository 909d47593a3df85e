"""Draw pairs of a suite for a review by hand: ``per`` random pairs of each phenomenon (seeded),
written as Markdown with the changed words in bold, for a French speaker to mark the wrong ones.

    python -m causette.eval.pair_review --pairs causette/demo/grammaire.jsonl.gz --out bench/grammaire_review.md

The file is a starting point: the reviewer writes the verdicts into it (regenerating it would
lose them), as ``bench/grammaire_review.md`` shows.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

from causette.errors import CausetteError
from causette.utils.io import atomic_write

SEED = 25


def read_pairs(path: str | Path) -> list[dict]:
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        raise CausetteError(f"{path}: no such file") from None


def sample(pairs: list[dict], per: int = 50, seed: int = SEED) -> dict[str, list[dict]]:
    """``per`` pairs of each phenomenon, drawn with ``seed`` (phenomena in the builder's order,
    then by name)."""
    from causette.eval.pair_builder import PHENOMENA

    by: dict[str, list[dict]] = defaultdict(list)
    for p in pairs:
        by[p.get("phenomenon", "?")].append(p)
    order = {name: k for k, name in enumerate(PHENOMENA)}
    names = sorted(by, key=lambda name: (order.get(name, len(order)), name))
    return {name: random.Random(f"{seed}:{name}").sample(by[name], min(per, len(by[name]))) for name in names}


def changed(good: str, bad: str) -> tuple[str, str, str, str]:
    """(prefix, good part, bad part, suffix): the two sentences cut at word boundaries around
    what differs."""
    i = 0
    while i < min(len(good), len(bad)) and good[i] == bad[i]:
        i += 1
    j = 0
    while j < min(len(good), len(bad)) - i and good[-1 - j] == bad[-1 - j]:
        j += 1
    while i > 0 and good[i - 1].isalnum():
        i -= 1
    while j > 0 and good[len(good) - j].isalnum():
        j -= 1
    return good[:i], good[i:len(good) - j], bad[i:len(bad) - j], good[len(good) - j:]


def review_markdown(samples: dict[str, list[dict]], command: str) -> str:
    lines = ["# Hand review of the French grammar pairs", "",
             f"Drawn by `{command}`. Each line: the good sentence with the changed words in bold, then",
             "**→** what the bad sentence has instead, and the pair's source.", ""]
    for name, group in samples.items():
        lines += [f"## {name}", ""]
        for k, p in enumerate(group, 1):
            pre, g, b, post = changed(p["sentence_good"], p["sentence_bad"])
            lines.append(f"{k}. {pre}**{g}**{post} **→ {b}** `{p['source']}`")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m causette.eval.pair_review", description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--per", type=int, default=50)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    try:
        samples = sample(read_pairs(args.pairs), args.per, args.seed)
    except CausetteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    command = f"python -m causette.eval.pair_review --pairs {args.pairs} --per {args.per} --seed {args.seed}"
    with atomic_write(args.out) as f:
        f.write(review_markdown(samples, command))
    print(f"{sum(map(len, samples.values()))} pairs → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
