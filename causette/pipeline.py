"""``causette run``: every stage, from raw text to a model you can chat with, in one command.

    corpus → tokenizer → prepare → train → sft → eval → report

Each stage's *key* is a hash of what determines its output: its config section(s), its input
files (size and modification time), and the key of the stage before it. ``runs/<name>/stages.json``
remembers the key of every completed stage; a stage whose key is unchanged and whose outputs
exist is skipped. Change ``train.lr`` and only train, sft, eval and report run again; change the
corpus and everything does.

Interrupted anywhere (Ctrl-C, a crash, a power cut), ``causette run`` again picks up where it
stopped: finished stages are skipped, and training resumes from its last checkpoint (same key).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Callable

from causette.config import Config, to_dict
from causette.errors import CausetteError
from causette.utils.io import write_json

STAGES = ("corpus", "tokenizer", "prepare", "train", "sft", "eval", "report")


def register(sub) -> None:
    from causette.cli import add_config_args

    p = sub.add_parser("run", help="the whole pipeline: corpus → tokenizer → data → train → sft → eval → report",
                       description="Run every stage, skipping those already up to date; resumable after an interruption.")
    p.add_argument("run_config", nargs="?", metavar="CONFIG", help="config file or shipped name (default: demo)")
    p.add_argument("--device", help="auto, cpu, cuda, mps, xpu")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_config_args(p)
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    from causette.cli import config_from_args

    if args.run_config:
        if args.config:
            raise CausetteError("give the config either as CONFIG or with --config, not both")
        args.config = args.run_config
    run_pipeline(config_from_args(args), progress=not args.no_progress, device=args.device)
    return 0


def _files_fingerprint(paths: list[str]) -> list:
    out = []
    for p in map(Path, paths):
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        out += [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.exists()]
    return out


def stage_keys(cfg: Config) -> dict[str, str]:
    """The key of every stage (each one chains the previous one's)."""
    from causette.corpus.build import DEMO_CORPUS
    from causette.train.finetune import DEMO_SFT

    sources = [s.path for s in cfg.corpus.sources] or [str(DEMO_CORPUS)]
    parts = {
        "corpus": [to_dict(cfg.corpus), _files_fingerprint(sources)],
        "tokenizer": [to_dict(cfg.tokenizer)],
        "prepare": [],
        "train": [to_dict(cfg.model), {k: v for k, v in to_dict(cfg.train).items() if k not in ("device",)}],
        "sft": [to_dict(cfg.sft), _files_fingerprint(cfg.sft.data or [str(DEMO_SFT)])],
        "eval": [],
        "report": [],
    }
    keys, previous = {}, ""
    for stage in STAGES:
        blob = json.dumps([previous, parts[stage]], sort_keys=True, default=str)
        keys[stage] = previous = hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
    return keys


def _outputs(run: Path) -> dict[str, list[Path]]:
    return {
        "corpus": [run / "corpus" / "manifest.json"],
        "tokenizer": [run / "tokenizer" / "tokenizer.json"],
        "prepare": [run / "data" / "meta.json"],
        "train": [run / "checkpoints"],
        "sft": [run / "sft" / "eval.json"],
        "eval": [run / "eval.json"],
        "report": [run / "report.md"],
    }


def _clear(run: Path, stage: str) -> None:
    """Remove a stage's outputs before it reruns with another key."""
    targets = {"train": [run / "checkpoints", run / "metrics.jsonl", run / "tb"], "sft": [run / "sft"]}.get(stage, [])
    for t in targets:
        if t.is_dir():
            shutil.rmtree(t)
        elif t.exists():
            t.unlink()


def run_pipeline(cfg: Config, progress: bool = True, echo: Callable[[str], None] = print, device: str | None = None) -> dict:
    run = cfg.run.path
    run.mkdir(parents=True, exist_ok=True)
    record_file = run / "stages.json"
    try:
        done: dict = json.loads(record_file.read_text(encoding="utf-8")) if record_file.is_file() else {}
    except ValueError:
        done = {}
    keys = stage_keys(cfg)
    outputs = _outputs(run)
    timings: dict[str, float] = {}
    t_start = time.time()
    for stage in STAGES:
        up_to_date = done.get(stage, {}).get("key") == keys[stage] and all(p.exists() for p in outputs[stage])
        if up_to_date and stage != "report":
            echo(f"== {stage}: up to date, skipped")
            continue
        from causette.train.checkpoint import list_checkpoints

        partial_train = (stage == "train" and done.get("train_started") == keys["train"]
                         and bool(list_checkpoints(run / "checkpoints")))
        if not partial_train and stage in ("train", "sft"):
            _clear(run, stage)
        echo(f"== {stage}")
        t = time.time()
        if stage == "train":
            done["train_started"] = keys["train"]
            write_json(record_file, done)
        _run_stage(stage, cfg, run, progress, echo, device, resume=partial_train)
        timings[stage] = time.time() - t
        done[stage] = {"key": keys[stage], "seconds": round(timings[stage], 1), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        # anything after a rerun stage must run again
        for later in STAGES[STAGES.index(stage) + 1 :]:
            if done.get(later, {}).get("key") != keys[later]:
                done.pop(later, None)
        write_json(record_file, done)
    total = time.time() - t_start
    sft_ckpt = run / "sft"
    echo(f"run: {run} complete in {total / 60:.1f} min ({', '.join(f'{k} {v:.0f}s' for k, v in timings.items()) or 'nothing to do'})")
    echo(f"report: {run / 'report.md'}")
    echo(f"talk to your model:  causette chat --checkpoint {sft_ckpt}")
    return {"seconds": total, "timings": timings}


def _run_stage(stage: str, cfg: Config, run: Path, progress: bool, echo, device, resume: bool) -> None:
    if stage == "corpus":
        from causette.corpus.build import build_corpus

        result = build_corpus(cfg.corpus, run / "corpus", progress=progress)
        for line in result.summary_lines[-3:]:
            echo(line)
    elif stage == "tokenizer":
        from causette.corpus.store import iter_texts
        from causette.tokenizer.train import train_tokenizer

        tok = train_tokenizer(cfg.tokenizer, iter_texts(run / "corpus", "train"), out_dir=run / "tokenizer", progress=progress)
        echo(f"tokenizer: {tok.vocab_size:,} tokens → {run / 'tokenizer'}")
    elif stage == "prepare":
        from causette.data.prepare import prepare

        prepare(run / "corpus", run / "tokenizer", run / "data", progress=progress, echo=echo)
    elif stage == "train":
        from causette.train.pretrain import train

        result = train(cfg, resume=resume, device_name=device, progress=progress, echo=echo)
        if result.stopped == "interrupted":
            raise KeyboardInterrupt
    elif stage == "sft":
        from causette.train.finetune import finetune

        result, _ = finetune(cfg, device_name=device, progress=progress, echo=echo)
        if result.stopped == "interrupted":
            raise KeyboardInterrupt
    elif stage == "eval":
        from causette.eval.evaluate import run_eval

        base = run_eval(run, device=device or "auto")
        chat = run_eval(run / "sft", device=device or "auto") if (run / "sft" / "checkpoints").is_dir() else {}
        write_json(run / "eval.json", {"base": base, "chat": chat})
        t = base.get("text")
        if t:
            echo(f"eval: base model {t['bits_per_byte']:.3f} bits/byte on the val split")
    elif stage == "report":
        from causette.eval.report import write_report

        write_report(run)
    else:  # pragma: no cover - STAGES and this function are edited together
        raise CausetteError(f"unknown stage {stage}")
