"""Which recipe learns most in a fixed wall-clock budget? GPT-2 vs Llama family, AdamW vs Muon.

    python bench/quality.py                    # 4 variants × 4 min of training on ../shared/data
    python bench/quality.py --minutes 15 --parallel 2   # the issue's budget: 2 variants at a time,
                                                        # one core each (~35 min on 2 cores)

Every variant has the same widths (the demo size: 4 layers × 256, context 256, vocabulary
8,192), the same data (all of ../shared/data, tokenised once), the same seed. The budget is
the trainer's wall-clock limit (``train.max_minutes``): its warmup + cosine schedule follows the
clock and ends on time at min_lr, whatever the speed does (schedule.TimeBudget). We report
validation bits per byte (comparable whatever the family) and the minutes each variant used next
to those it was allowed (a variant that used under 95 % is flagged), and write the table to
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from causette.config import load_config  # noqa: E402
from causette.utils.io import atomic_write  # noqa: E402

GPT2 = ["model.pos=learned", "model.norm=layernorm", "model.mlp=gelu", "model.bias=true", "model.n_kv_head=null"]
LLAMA = ["model.pos=rope", "model.norm=rmsnorm", "model.mlp=swiglu", "model.bias=false", "model.n_kv_head=2"]
VARIANTS = {
    "gpt2 + adamw": GPT2 + ["train.optimizer=adamw"],
    "gpt2 + muon": GPT2 + ["train.optimizer=muon"],
    "llama + adamw": LLAMA + ["train.optimizer=adamw"],
    "llama + muon": LLAMA + ["train.optimizer=muon"],
}
COMMON = [
    "model.n_layer=4", "model.n_head=4", "model.n_embd=256", "model.block_size=256", "model.vocab_size=8192",
    "tokenizer.vocab_size=8192", "tokenizer.max_train_chars=20000000",
    "train.batch_size=16", "train.lr=2e-3", "train.min_lr=2e-4", "train.sample_tokens=0",
    "train.eval_tokens=131072", "train.tensorboard=false", "train.log_every=25", "train.keep_last=1",
]


def prepare_base(runs: Path) -> Path:
    """corpus (all of ../shared/data) → tokenizer → token data, once, in runs/quality-base."""
    from causette.corpus.build import build_corpus
    from causette.corpus.store import iter_texts
    from causette.data.prepare import prepare
    from causette.tokenizer.train import train_tokenizer

    cfg = load_config(ROOT / "configs" / "corpus-shared.yaml", [f"run.dir={runs}", "run.name=quality-base", *COMMON])
    base = cfg.run.path
    if not (base / "corpus" / "manifest.json").is_file():
        build_corpus(cfg.corpus, base / "corpus")
    if not (base / "tokenizer" / "tokenizer.json").is_file():
        train_tokenizer(cfg.tokenizer, iter_texts(base / "corpus", "train"), out_dir=base / "tokenizer", progress=True)
    if not (base / "data" / "meta.json").is_file():
        prepare(base / "corpus", base / "tokenizer", base / "data")
    return base


def run_variant(runs: Path, base: Path, name: str, overrides: list[str], seconds: float, progress: bool = True) -> dict:
    from causette.train.pretrain import train

    slug = name.replace(" + ", "-")
    run = runs / f"quality-{slug}"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    for part in ("data", "tokenizer"):
        (run / part).symlink_to((base / part).resolve())
    sets = [f"run.dir={runs}", f"run.name=quality-{slug}", *COMMON, *overrides]

    # The budget is the trainer's own time limit: the warmup + cosine schedule follows the clock
    # and ends on time (train.fit_schedule_to_time, docs/entrainement.md).
    t = time.time()
    result = train(load_config(ROOT / "configs" / "demo.yaml", sets + [
        "train.max_steps=1000000", f"train.max_minutes={seconds / 60}", "train.fit_schedule_to_time=true",
        f"train.warmup_steps={max(20, int(3 * seconds / 60))}", "train.eval_every=0", "train.ckpt_every=1000000",
    ]), progress=progress, echo=lambda s: None)
    return {"variant": name, "steps": result.steps, "tokens": result.tokens,
            "bpb": result.val.get("bits_per_byte", math.nan), "loss": result.val.get("loss", math.nan),
            "minutes": (time.time() - t) / 60, "used": result.budget_used / 60, "allowed": seconds / 60}


def budget_cell(used: float, allowed: float) -> str:
    """"14.9 / 15" minutes; flagged when under 95 % of the budget was used."""
    return f"{used:.1f} / {allowed:g}" + (" ⚠" if used < 0.95 * allowed else "")


def _set_threads(n: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(n)
    import torch

    torch.set_num_threads(n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=4.0, help="training budget per variant")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs")
    ap.add_argument("--only", nargs="*", choices=list(VARIANTS))
    ap.add_argument("--parallel", type=int, default=1,
                    help="variants trained at the same time, each on cores/parallel threads (same conditions for all)")
    args = ap.parse_args()
    base = prepare_base(args.runs)
    names = args.only or list(VARIANTS)
    if args.parallel > 1:
        threads = max(1, (os.cpu_count() or 1) // args.parallel)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.parallel, mp_context=ctx, initializer=_set_threads, initargs=(threads,)) as pool:
            jobs = [pool.submit(run_variant, args.runs, base, n, VARIANTS[n], args.minutes * 60, False) for n in names]
            rows = [job.result() for job in jobs]
    else:
        rows = [run_variant(args.runs, base, n, VARIANTS[n], args.minutes * 60) for n in names]
    lines = [
        f"Budget: {args.minutes:g} min of training per variant on all of ../shared/data "
        f"(4 layers × 256, context 256, vocab 8,192, batch 16; bf16 + compile where available; "
        f"{args.parallel} variant(s) at a time).",
        "",
        "| variant | steps | tokens | minutes used / allowed (final eval included) | val loss | val bits/byte |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['steps']:,} | {r['tokens']:,} | {budget_cell(r['used'], r['allowed'])} "
                     f"| {r['loss']:.3f} | {r['bpb']:.3f} |")
    if any(r["used"] < 0.95 * r["allowed"] for r in rows):
        lines += ["", "⚠: the variant used less than 95 % of its budget (stopped early): its figures are not comparable."]
    table = "\n".join(lines)
    print(table)
    out = ROOT / "bench" / "RESULTS.md"
    stamp = time.strftime("%Y-%m-%d %H:%M")
    text = out.read_text(encoding="utf-8") if out.is_file() else "# Benchmark results\n"
    command = f"python bench/quality.py --minutes {args.minutes:g}" + (f" --parallel {args.parallel}" if args.parallel > 1 else "")
    text += f"\n## Quality in a fixed budget ({stamp})\n\nCommand: `{command}`\n\n{table}\n"
    with atomic_write(out) as f:
        f.write(text)


if __name__ == "__main__":
    main()
