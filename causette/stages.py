"""The stages of a run, one function: ``corpus → tokenizer → prepare → train → sft → eval → report``.

:func:`run_stage` runs one of them into a run folder (:class:`~causette.utils.paths.RunLayout`).
``causette run`` (causette/pipeline.py) chains them, deciding which are up to date; the examples of
``python -m causette.explain curves --examples`` (causette/explain/curves.py) run them on their own
small runs. The stages' work is imported when a stage runs: ``causette --help`` reads this module
(through pipeline.py) without PyTorch.
"""

from __future__ import annotations

from typing import Callable

from causette.config import Config
from causette.errors import CausetteError
from causette.utils.io import write_json
from causette.utils.paths import RunLayout

STAGES = ("corpus", "tokenizer", "prepare", "train", "sft", "eval", "report")

# The eval stage scores this many pairs of the built-in grammar suite (the same share of each
# phenomenon, ~10 s for the demo model); `causette eval --suite grammaire` scores all of them.
EVAL_GRAMMAR_PAIRS = 3300


def run_stage(stage: str, cfg: Config, run: RunLayout, progress: bool, echo: Callable[[str], None],
              device: str | None, resume: bool) -> None:
    """Run one stage of ``cfg``'s run into the folder ``run``: what ``causette run`` does for each.
    Each stage imports only what it runs (the corpus stage needs no torch)."""
    if stage == "corpus":
        from causette.corpus.build import build_corpus

        result = build_corpus(cfg.corpus, run.corpus, progress=progress)
        for line in result.summary_lines[-3:]:
            echo(line)
    elif stage == "tokenizer":
        from causette.corpus.store import iter_texts
        from causette.tokenizer.train import train_tokenizer

        tok = train_tokenizer(cfg.tokenizer, iter_texts(run.corpus, "train"), out_dir=run.tokenizer, progress=progress)
        echo(f"tokenizer: {tok.vocab_size:,} tokens → {run.tokenizer}")
    elif stage == "prepare":
        from causette.data.prepare import prepare

        prepare(run.corpus, run.tokenizer, run.data, progress=progress, echo=echo)
    elif stage == "train":
        from causette.train.pretrain import train

        result = train(cfg, resume=resume, device_name=device, progress=progress, echo=echo)
        if result.stopped == "interrupted":
            raise KeyboardInterrupt
    elif stage == "sft":
        from causette.sft.finetune import finetune

        result, _ = finetune(cfg, resume=resume, device_name=device, progress=progress, echo=echo)
        if result.stopped == "interrupted":
            raise KeyboardInterrupt
    elif stage == "eval":
        from causette.eval.evaluate import run_eval
        from causette.eval.tools import format_tools

        grammar = {"suites": ["grammaire"], "grammar_limit": EVAL_GRAMMAR_PAIRS, "with_val": True}
        base = run_eval(run.root, device=device or "auto", **grammar)
        chat = run_eval(run.sft.root, device=device or "auto", **grammar) if run.sft.checkpoints.is_dir() else {}
        write_json(run.eval_json, {"base": base, "chat": chat})
        t, g = base.get("text"), (base.get("grammar") or {}).get("overall") or {}
        if t:
            echo(f"eval: base model {t['bits_per_byte']:.3f} bits/byte on the val split"
                 + (f", {g['accuracy']:.1%} of {g['total']:,} French minimal pairs" if g.get("total") else ""))
        if chat.get("tools"):
            echo("eval: " + format_tools(chat["tools"])[0])
    elif stage == "report":
        from causette.eval.report import write_report

        write_report(run.root)
    else:  # pragma: no cover - STAGES and this function are edited together
        raise CausetteError(f"unknown stage {stage}")
