"""Corpus build throughput and peak memory, on the demo corpus and on all of ../shared/data.

    python bench/corpus.py                 # both rows (the shared row takes a few minutes)
    python bench/corpus.py --only demo
    python bench/corpus.py --only demo --workers 1   # corpus.workers (default: the config's, 0 = one per core)

Each build runs in a fresh child process so that its peak RSS (``ru_maxrss``) is its own.
Throughput is in MB of UTF-8 text read (before cleaning) per second, wall clock.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

CHILD = r"""
import json, resource, sys, time
from causette.config import load_config
from causette.corpus.build import build_corpus
cfg = load_config(sys.argv[1], sys.argv[3:])
t = time.time()
r = build_corpus(cfg.corpus, sys.argv[2], progress=False, echo=lambda s: None)
m = r.manifest
print(json.dumps({
    "seconds": time.time() - t,
    "input_bytes": r.input_bytes,
    "seen_chars": m["characters"]["seen"],
    "kept_bytes": m["bytes"]["kept"],
    "seen_docs": m["documents"]["seen"],
    "kept_docs": m["documents"]["kept"],
    "dropped": m["documents"]["dropped"],
    "problems": len(m["problems"]),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def run(config: str, overrides: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, config, str(Path(tmp) / "corpus"), *overrides],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["demo", "shared"])
    ap.add_argument("--workers", type=int, help="corpus.workers (default: the config's)")
    args = ap.parse_args()
    overrides = [] if args.workers is None else [f"corpus.workers={args.workers}"]
    rows = []
    if args.only in (None, "demo"):
        rows.append(("demo (data/)", "demo"))
    if args.only in (None, "shared"):
        if SHARED.is_dir():
            rows.append(("all ../shared/data", str(ROOT / "configs" / "corpus-shared.yaml")))
        else:
            print(f"skipping the shared row: {SHARED} not found")
    header = f"{'corpus':<20} {'input MB':>9} {'text MB':>8} {'docs seen':>9} {'kept':>6} {'seconds':>8} {'MB/s':>6} {'peak RSS MB':>11}"
    print(header)
    print("-" * len(header))
    t0 = time.time()
    for label, config in rows:
        r = run(config, overrides)
        text_mb = r["seen_chars"] / 1e6  # characters ≈ bytes for French (accents are 2 bytes)
        print(
            f"{label:<20} {r['input_bytes'] / 1e6:>9.1f} {text_mb:>8.1f} {r['seen_docs']:>9,} {r['kept_docs']:>6,} "
            f"{r['seconds']:>8.1f} {text_mb / r['seconds']:>6.2f} {r['peak_rss_mb']:>11.0f}"
        )
        print(f"{'':20} dropped: {r['dropped']}, problems: {r['problems']}")
    print(f"(input MB: files as stored, compressed; text MB: million characters read; total {time.time() - t0:.0f}s)")


if __name__ == "__main__":
    main()
