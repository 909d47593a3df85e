"""One huge document through the corpus build: the train/val cut before and after issue 24.

    python bench/corpus_split.py                   # 4, 8, 16 and 50 MB; the old cut up to 8 MB
    python bench/corpus_split.py --mb 4 8 --old-max-mb 16

Each size is one single-line file (no line break: the worst case for the cut, which then looks
for sentence ends and spaces) of words drawn at random from the demo corpus (seeded), so that
almost every 5-word shingle is new, as in a real book. For each one, in a fresh child process:

- ``new``: ``causette corpus build FILE --out DIR`` as shipped, seconds and peak RSS;
- ``old``: the same build with the quadratic cut of before issue 24 (``old_tail_cut``, kept as
  the oracle in tests/test_hostile_corpus.py) put back in place of ``tail_cut``; only up to
  ``--old-max-mb`` (the old cut of 16 MB took minutes, 50 MB more than 10 minutes);

and the two builds must write the same split. Workers: the config's (one per core).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, "tests")
from causette.config import load_config
from causette.corpus import split
from causette.corpus.build import build_corpus
from causette.corpus.config import SourceConfig
if sys.argv[3] == "old":
    from test_hostile_corpus import old_tail_cut
    split.tail_cut = old_tail_cut
cfg = load_config(None)
cfg.corpus.sources = [SourceConfig(path=sys.argv[1])]
t = time.time()
r = build_corpus(cfg.corpus, sys.argv[2], progress=False, echo=lambda s: None)
print(json.dumps({"seconds": time.time() - t, "split": r.manifest["split"],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def one_line_document(path: Path, mb: float, seed: int = 0) -> None:
    """``mb`` MiB of random demo words in sentences, on one line."""
    with gzip.open(ROOT / "causette" / "demo" / "demo_fr_pd.txt.gz", "rt", encoding="utf-8") as f:
        words = f.read().split()
    rng = random.Random(seed)
    target, size, parts = int(mb * 2**20), 0, []
    while size < target:
        sentence = " ".join(rng.choices(words, k=rng.randint(8, 25))) + ". "
        parts.append(sentence)
        size += len(sentence.encode("utf-8"))
    path.write_text("".join(parts), encoding="utf-8")


def build(path: Path, out: Path, which: str, timeout: float) -> dict | None:
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, str(path), str(out), which], cwd=ROOT,
                              capture_output=True, text=True, check=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, nargs="+", default=[4, 8, 16, 50], help="document sizes in MiB")
    ap.add_argument("--old-max-mb", type=float, default=8, help="build with the old cut up to this size")
    ap.add_argument("--timeout", type=float, default=600, help="give up on one build after this many seconds")
    args = ap.parse_args()
    print(f"{'MB':>5} {'old s':>8} {'new s':>8} {'old/new':>8} {'parent peak MB':>15}  same split")
    with tempfile.TemporaryDirectory() as tmp:
        for mb in args.mb:
            doc = Path(tmp) / f"one{mb:g}.txt"
            one_line_document(doc, mb)
            new = build(doc, Path(tmp) / "new", "new", args.timeout)
            old = build(doc, Path(tmp) / "old", "old", args.timeout) if mb <= args.old_max_mb else None
            old_s = f"{old['seconds']:8.1f}" if old else f"{'-':>8}"
            ratio = f"{old['seconds'] / new['seconds']:7.1f}x" if old and new else f"{'-':>8}"
            new_s = f"{new['seconds']:8.1f}" if new else f"{'>' + format(args.timeout, 'g'):>8}"
            same = "-" if not (old and new) else ("yes" if old["split"] == new["split"] else "NO")
            peak = f"{new['peak_rss_mb']:15.0f}" if new else f"{'-':>15}"
            print(f"{mb:5g} {old_s} {new_s} {ratio} {peak}  {same}", flush=True)
            doc.unlink()


if __name__ == "__main__":
    main()
