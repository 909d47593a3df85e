"""``causette run``: every stage, from raw text to a model you can chat with, in one command.

    corpus → tokenizer → prepare → train → sft → eval → report

Each stage's *key* is a hash of what determines its output: its config section(s), its input
files (size and modification time), and the key of the stage before it. ``runs/<name>/stages.json``
remembers the key of every completed stage; a stage whose key is unchanged and whose outputs
exist is skipped. Change ``train.lr`` and only train, sft, eval and report run again; change the
corpus and everything does.

Interrupted anywhere (Ctrl-C, a crash, a power cut), ``causette run`` again picks up where it
stopped: finished stages are skipped, and training resumes from its last checkpoint (same key).

A stage whose key equals that of a finished stage in *another* run folder beside this one
(``runs/*/stages.json``) is not recomputed: its outputs are linked (or copied) from there. The
five steps of the progression (configs/progression/) share the demo's corpus, tokenizer and
data this way. ``--until STAGE`` stops after that stage; ``run.skip: [sft]`` leaves the chat
model out (the progression's steps are base models only).

``causette run my_texts/ livre.txt.gz --name perso`` runs the same pipeline, with the demo
settings, on your own sources (files, folders, archives) instead of the demo corpus, fitted to
the size of the text (see :func:`fit_vocab` and :func:`fit_batch`).
"""

from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path
from typing import Callable

from causette.cli_args import add_config_args, add_depth_arg, config_from_args
from causette.config import Config
from causette.errors import CausetteError
from causette.run_state import RunRecord, borrow, chain_key, output_digest, stage_parts
from causette.stages import STAGES, run_stage
from causette.utils.artefact import ensure_run_folder
from causette.utils.lock import run_lock
from causette.utils.paths import RunLayout


def register(sub) -> None:
    p = sub.add_parser("run", help="the whole pipeline: corpus → tokenizer → data → train → sft → eval → report",
                       description="Run every stage, skipping those already up to date; resumable after an interruption. "
                       "`causette run CONFIG` runs a config file or shipped config (default: demo); "
                       "`causette run SOURCE... [--name NAME]` runs the demo settings on your own texts "
                       "(files, folders, .gz/.zip/.tar archives), fitted to their size.")
    p.add_argument("run_args", nargs="*", metavar="CONFIG|SOURCE",
                   help="one config file or shipped name, or your own text files/folders/archives")
    p.add_argument("--device", help="auto, cpu, cuda, mps, xpu")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--until", choices=STAGES, default=STAGES[-1], metavar="STAGE",
                   help=f"stop after this stage ({', '.join(STAGES)}; default: {STAGES[-1]})")
    add_config_args(p)
    add_depth_arg(p)
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    from causette.corpus.config import SourceConfig

    config, sources = split_run_args(args.run_args)
    if config:
        if args.config:
            raise CausetteError("give the config either as CONFIG or with --config, not both")
        args.config = config
    if not sources:
        run_pipeline(config_from_args(args), progress=not args.no_progress, device=args.device, until=args.until)
        return 0
    if args.name is None:  # (an empty --name is refused with the config's other checks)
        args.name = default_run_name(sources[0])
    # your own texts: the demo settings, the epochs capped (unless you set them yourself)
    user_keys = {o.partition("=")[0].strip() for o in args.overrides}
    if "train.max_epochs" not in user_keys:
        args.overrides = [f"train.max_epochs={OWN_TEXT_MAX_EPOCHS}", *args.overrides]
    # ... and the model sized to the budget and the text (model.depth: auto), unless a config or a
    # size was given
    if args.config is None and args.depth is None and not user_keys & OWN_SIZE_KEYS:
        args.overrides = ["model.depth=auto", *args.overrides]
    cfg = config_from_args(args)
    cfg.corpus.sources = [SourceConfig(path=s, named=True) for s in sources]  # yours: kept if not French
    fit = {"vocab": "tokenizer.vocab_size" not in user_keys, "batch": "train.batch_size" not in user_keys}
    run_pipeline(cfg, progress=not args.no_progress, device=args.device, fit=fit, until=args.until)
    return 0


# `causette run SOURCES`: the settings that say "this size of model" (then no model.depth: auto).
OWN_SIZE_KEYS = {"model.depth", "model.n_layer", "model.n_embd", "model.n_head", "model.n_kv_head"}
# ... at most this many passes over the train tokens (train.max_epochs).
OWN_TEXT_MAX_EPOCHS = 2
# ... and at most one vocabulary entry per this many characters of train text (tokenizer.vocab_size).
CHARS_PER_VOCAB_ENTRY = 32
# ... and a batch halved (down to MIN_FIT_BATCH) until those epochs make at least this many
# steps: on little text, more and smaller updates learn more from the same tokens (bench/LOG.md).
MIN_FIT_STEPS, MIN_FIT_BATCH = 400, 4


def split_run_args(values: list[str]) -> tuple[str | None, list[str]]:
    """``(config, sources)`` from ``causette run``'s positional arguments.

    One argument that is a shipped config name or a ``.yaml`` file is a config; anything else
    must be existing files or folders (your texts).
    """
    from causette.config_files import shipped_config, shipped_configs

    if not values:
        return None, []
    if len(values) == 1 and (str(values[0]).endswith((".yaml", ".yml")) or (shipped_config(values[0]) and not Path(values[0]).exists())):
        return values[0], []
    missing = [v for v in values if not Path(v).exists()]
    if missing:
        raise CausetteError(
            f"{missing[0]}: no such file or folder, nor a shipped config (shipped: {', '.join(shipped_configs())})"
        )
    configs = [v for v in values if str(v).endswith((".yaml", ".yml"))]
    if configs:
        raise CausetteError(f"{configs[0]}: give a config with --config when you also give sources")
    return None, list(values)


def default_run_name(source: str) -> str:
    """``runs/<name>`` for your own text: the first source's name without suffixes (``livre.txt.gz`` → ``livre``)."""
    name = Path(source).resolve().name
    while Path(name).suffix and len(Path(name).suffix) <= 8:
        name = Path(name).stem
    return name or "perso"


def fit_batch(cfg: Config, run: Path, echo: Callable[[str], None]) -> None:
    """Halve ``train.batch_size`` (down to :data:`MIN_FIT_BATCH`) while ``train.max_epochs`` over
    the train tokens would make fewer than :data:`MIN_FIT_STEPS` optimizer steps."""
    from causette.data.prepare import read_meta

    tc = cfg.train
    if not tc.max_epochs:
        return
    tokens = int(read_meta(RunLayout(run).data)["splits"]["train"]["tokens"])
    per_sequence = tc.grad_accum * cfg.model.block_size
    batch = tc.batch_size
    while batch > MIN_FIT_BATCH and tc.max_epochs * tokens / (batch * per_sequence) < MIN_FIT_STEPS:
        batch = max(batch // 2, MIN_FIT_BATCH)
    if batch != tc.batch_size:
        steps = math.ceil(tc.max_epochs * tokens / (batch * per_sequence))
        echo(f"fit: train.batch_size {batch} instead of {tc.batch_size}, so that {tc.max_epochs:g} epochs of "
             f"{tokens:,} train tokens make {steps:,} steps (more, smaller updates learn more from little text)")
        tc.batch_size = batch
        if getattr(cfg, "dial_owned", None):  # fitted now: model.depth: auto must not set it back
            cfg.dial_owned = cfg.dial_owned - {"train.batch_size"}


def fit_vocab(cfg: Config, run: Path, echo: Callable[[str], None]) -> None:
    """Size the vocabulary to the text: at most one entry per :data:`CHARS_PER_VOCAB_ENTRY`
    characters of train text (a multiple of 128, at least 512), so that a small text fills it."""
    from causette.corpus.store import read_manifest

    chars = int(read_manifest(RunLayout(run).corpus)["split"].get("characters", {}).get("train", 0))
    fits = max(512, chars // CHARS_PER_VOCAB_ENTRY // 128 * 128)
    if fits < cfg.tokenizer.vocab_size:
        echo(f"fit: tokenizer.vocab_size {fits:,} instead of {cfg.tokenizer.vocab_size:,} for {chars:,} characters of "
             f"train text (a vocabulary too large for the text has tokens seen too rarely to learn)")
        cfg.tokenizer.vocab_size = fits
        cfg.model.vocab_size = fits


def _clear(run: RunLayout, stage: str) -> None:
    """Remove a stage's outputs before it reruns with another key."""
    targets = {"train": [run.checkpoints, run.metrics, run.tensorboard], "sft": [run.sft.root]}.get(stage, [])
    for t in targets:
        if t.is_dir():
            shutil.rmtree(t)
        elif t.exists():
            t.unlink()


def _link_tree(source: Path, target: Path) -> None:
    """``target`` becomes a copy of the folder ``source`` made of hard links (or copies), swapped in
    whole: the files are never modified in place (every writer renames a new file)."""
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp, copy_function=_link_or_copy)
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def run_pipeline(cfg: Config, progress: bool = True, echo: Callable[[str], None] = print, device: str | None = None,
                 fit: dict | None = None, until: str = STAGES[-1]) -> dict:
    """Run every stage of ``cfg``'s run up to ``until``. ``fit={"vocab": True}``: size the vocabulary to the
    text once the corpus is built (:func:`fit_vocab` and :func:`fit_batch`), as ``causette run SOURCES`` does.

    The run folder is checked (a new folder, or one Causette made for a run) and locked for the
    whole run: a second process on the same run stops at once (causette/utils/lock.py)."""
    if until not in STAGES:
        raise CausetteError(f"until: unknown stage {until!r} (stages: {', '.join(STAGES)})")
    layout = RunLayout(cfg.run.path)
    if STAGES.index(until) >= STAGES.index("train"):  # before minutes of corpus work, not after them
        from causette.utils.device import pick_device

        pick_device(device or cfg.train.device)
    if cfg.corpus.sources and not cfg.sft.data:
        echo("note: no conversations of yours (sft.data): the chat stage (sft) uses the demo conversations "
             "shipped in data/sft_demo.jsonl.gz")
    ensure_run_folder(layout.root)
    with run_lock(layout.root):
        return _run_stages(cfg, layout, progress, echo, device, fit or {}, until)


def _run_stages(cfg: Config, layout: RunLayout, progress: bool, echo, device, fit: dict, until: str) -> dict:
    from causette.checkpoint.steps import list_checkpoints

    run = layout.root
    record = RunRecord(layout)
    parts = stage_parts(cfg)
    timings: dict[str, float] = {}
    t_start = time.time()
    key, digest = "", None
    for stage in STAGES[: STAGES.index(until) + 1]:
        key = chain_key(key, parts[stage], digest)
        if stage in cfg.run.skip:
            echo(f"== {stage}: skipped (run.skip)")
            digest = output_digest(layout, stage)
            continue
        if stage != "report" and record.is_done(stage, key, output_digest(layout, stage)):
            echo(f"== {stage}: up to date, skipped")
            digest = output_digest(layout, stage)
            continue
        lender = None if fit.get("vocab") else borrow(layout, stage, key, _link_tree)
        if lender is not None:
            echo(f"== {stage}: same settings as {lender}, its outputs reused")
            digest = output_digest(layout, stage)
            record.finish(stage, key, digest, 0.0, reused_from=str(lender))
            continue
        # fitted to the text: a function of the corpus, so the same on every run of the same key
        if stage == "tokenizer" and fit.get("vocab"):
            fit_vocab(cfg, run, echo)
        if stage == "train" and fit.get("batch"):
            fit_batch(cfg, run, echo)
        # an interrupted training stage of the same key goes on from its last checkpoint
        trained = {"train": layout.checkpoints, "sft": layout.sft.checkpoints}.get(stage)
        resume = trained is not None and record.started(stage) == key and bool(list_checkpoints(trained))
        if trained is not None and not resume:
            _clear(layout, stage)
        record.forget([stage, *STAGES[STAGES.index(stage) + 1 :]])  # whatever follows is stale now
        echo(f"== {stage}" + (" (resuming)" if resume else ""))
        t = time.time()
        if trained is not None:
            record.start(stage, key)
        run_stage(stage, cfg, layout, progress, echo, device, resume=resume)
        timings[stage] = time.time() - t
        digest = output_digest(layout, stage)
        record.finish(stage, key, digest, timings[stage])
    total = time.time() - t_start
    sft_ckpt = layout.sft.root
    what = "complete" if until == STAGES[-1] else f"done up to {until}"
    echo(f"run: {run} {what} in {total / 60:.1f} min ({', '.join(f'{k} {v:.0f}s' for k, v in timings.items()) or 'nothing to do'})")
    if STAGES.index(until) >= STAGES.index("report"):
        echo(f"report: {layout.report}")
    if STAGES.index(until) >= STAGES.index("sft") and "sft" not in cfg.run.skip:
        echo(f"talk to your model:  causette chat --checkpoint {sft_ckpt}")
    elif STAGES.index(until) >= STAGES.index("train"):
        echo(f"let your model write:  causette generate --checkpoint {run} --prompt \"Il était une fois\"")
    if cfg.train.max_epochs:
        echo(f"(pretraining saw at most {cfg.train.max_epochs:g} epochs of the text: train.max_epochs; "
             f"more text, not more epochs, is what makes a model better)")
    return {"seconds": total, "timings": timings}
