"""Tool use on held-out phrasings (causette/eval/tools.py): does a chat model call the right
tool, with the right arguments, state the result in its answer, and answer directly when no tool
is needed? The same measures as ``causette eval --suite outils`` and the run's report, as a table.

    .venv/bin/python bench/tools.py runs/assistant/sft            # 300 eval conversations, ~20 s
    .venv/bin/python bench/tools.py runs/assistant/sft --n 600 --unconstrained

The conversations come from ``causette sft tool-data --split eval`` (phrasing templates never
used in training, causette/sft/tool_data.py); what each measure counts is in the docstring of
causette/eval/tools.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import causette  # noqa: E402,F401  (first: it sets the CPU threads before torch loads)
import torch  # noqa: E402

from causette.checkpoint.load import load_checkpoint  # noqa: E402
from causette.eval.tools import evaluate_tools, tools_table  # noqa: E402
from causette.utils.lang import set_language  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--unconstrained", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    set_language("en")
    loaded = load_checkpoint(args.checkpoint, device="cpu", precision="fp32")
    result = evaluate_tools(loaded.model, loaded.tokenizer, args.n, args.seed, constrained=not args.unconstrained)
    params = sum(p.numel() for p in loaded.model.parameters())
    print(f"# bench/tools.py — {loaded.path} ({params / 1e6:.1f}M parameters), {args.n} eval conversations "
          f"(seed {args.seed}), {'unconstrained' if args.unconstrained else 'constrained'} calls, "
          f"{result['seconds']:.0f} s")
    if result["too_long"]:
        print(f"(skipped, longer than the context: {result['too_long']})")
    print("\n".join(tools_table(result)))


if __name__ == "__main__":
    main()
