"""The scaling picture: depths × time budgets, loss against compute, on this CPU.

    python bench/scaling.py --data runs/speedrun/base/vocab8192          # 4 depths × 3 budgets
    python bench/scaling.py --data DIR --depths 2 3 4 6 --minutes 2 5 12 --out scaling.json

``--data`` is a prepared folder holding ``data/`` (train.bin, val.bin, meta.json) and
``tokenizer/`` — bench/speedrun.py prepares one from ../shared/data (held-out novels excluded).
Each cell is a real ``causette train`` run of the demo config at ``model.depth`` (the dial's
rules: causette/model/depth.py) with ``train.max_minutes`` (the schedule follows the clock),
evaluated at the end on the validation split (bits per byte and the grammar suite). Runs go one
after another; a cell already in ``--out`` is kept (the script can be stopped and restarted).

The table: depth, parameters, minutes, tokens seen, tokens per parameter, training FLOPs,
val bits/byte, grammar accuracy; then, for each budget, the best depth and its tokens per
parameter — the figure `model.depth: auto` aims at (causette/train/sizing.py). The JSON is what
`causette explain scaling` reads (causette/explain/scaling_data.json holds the shipped one).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import causette  # noqa: E402,F401  (first: OpenMP's thread settings before torch starts)
import torch  # noqa: E402

from causette.config import load_config  # noqa: E402
from causette.model.counting import count_params, flops_per_token  # noqa: E402
from causette.train.pretrain import train  # noqa: E402
from causette.utils.io import write_json  # noqa: E402


def run_cell(data: Path, runs: Path, depth: int, minutes: float, extra: list[str]) -> dict:
    """One training run of the demo config at ``depth`` for ``minutes``; its figures."""
    name = f"d{depth}-{minutes:g}min"
    root = runs / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for part in ("data", "tokenizer"):
        os.symlink((data / part).resolve(), root / part)
    meta = json.loads((data / "data" / "meta.json").read_text())
    cfg = load_config("demo", [f"run.dir={runs}", f"run.name={name}", f"model.depth={depth}",
                               f"model.vocab_size={meta['vocab_size']}", f"train.max_minutes={minutes}",
                               "train.max_steps=1000000", "train.eval_every=0", "train.eval_tokens=262144",
                               "train.sample_tokens=0", "train.tensorboard=false", "train.ckpt_every=1000000",
                               "train.keep_last=1", "train.log_every=50", *extra])
    t = time.time()
    result = train(cfg, progress=False, echo=lambda s: None)
    params = count_params(cfg.model).total
    return {"depth": depth, "minutes": minutes, "params": params,
            "non_embedding": count_params(cfg.model).non_embedding, "steps": result.steps,
            "tokens": result.tokens, "tokens_per_param": result.tokens / params,
            "flops": flops_per_token(cfg.model) * result.tokens, "seconds": time.time() - t,
            "budget_used_s": result.budget_used, "val_bpb": result.val.get("bits_per_byte"),
            "grammar": result.val.get("grammaire"), "load_avg": os.getloadavg()[0], "extra": extra}


def table(cells: list[dict]) -> str:
    lines = ["| depth | params | minutes | tokens | tokens/param | FLOPs | val bits/byte | grammar |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in sorted(cells, key=lambda c: (c["minutes"], c["depth"])):
        g = f"{100 * c['grammar']:.1f} %" if c.get("grammar") is not None else "–"
        lines.append(f"| {c['depth']} | {c['params'] / 1e6:.1f} M | {c['minutes']:g} | {c['tokens'] / 1e6:.1f} M | "
                     f"{c['tokens_per_param']:.1f} | {c['flops']:.2e} | {c['val_bpb']:.3f} | {g} |")
    lines.append("")
    for minutes in sorted({c["minutes"] for c in cells}):
        row = [c for c in cells if c["minutes"] == minutes]
        best = min(row, key=lambda c: c["val_bpb"])
        lines.append(f"{minutes:g} min: best depth {best['depth']} ({best['val_bpb']:.3f} bits/byte, "
                     f"{best['tokens_per_param']:.1f} tokens per parameter)")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="prepared folder with data/ and tokenizer/")
    ap.add_argument("--depths", type=int, nargs="+", default=[2, 3, 4, 6])
    ap.add_argument("--minutes", type=float, nargs="+", default=[2, 5, 12])
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "scaling")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "scaling" / "scaling.json")
    ap.add_argument("--set", nargs="*", default=[], help="extra overrides for every cell")
    args = ap.parse_args()
    if not (args.data / "data" / "meta.json").is_file():
        sys.exit(f"{args.data}: no prepared data (data/meta.json): prepare it with bench/speedrun.py")
    cells = json.loads(args.out.read_text())["cells"] if args.out.is_file() else []
    print(f"threads {torch.get_num_threads()}, torch {torch.__version__}, load {os.getloadavg()[0]:.2f}", flush=True)
    for minutes in args.minutes:
        for depth in args.depths:
            if any(c["depth"] == depth and c["minutes"] == minutes and c["extra"] == args.set for c in cells):
                continue
            cell = run_cell(args.data, args.runs, depth, minutes, args.set)
            cells.append(cell)
            write_json(args.out, {"machine": {"threads": torch.get_num_threads(), "torch": torch.__version__},
                                  "cells": cells})
            print(f"depth {depth} {minutes:g} min: {cell['tokens'] / 1e6:.1f}M tokens, "
                  f"{cell['tokens_per_param']:.1f} tokens/param, val {cell['val_bpb']:.3f} bits/byte, "
                  f"load {cell['load_avg']:.2f}", flush=True)
    print(table([c for c in cells if c["extra"] == args.set]))


if __name__ == "__main__":
    main()
