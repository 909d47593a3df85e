"""``causette train``: wire a run's token data, tokenizer and model config into the Trainer.

    runs/<name>/data/{train.bin, val.bin, meta.json}   (causette prepare)
    runs/<name>/tokenizer/tokenizer.json               (causette tokenizer train)
        ──▶ runs/<name>/checkpoints/, metrics.jsonl, tb/

Everything is checked before the first step, with errors that name the file: the token data
must come from this tokenizer (same hash), a checkpoint to resume must have the data's
vocabulary and the config's block size, the data must hold more than two windows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from causette.checkpoint import steps as ckpt
from causette.checkpoint.files import config_path, state_path
from causette.checkpoint.weights import read_config
from causette.config import Config, to_dict
from causette.data.loader import TokenWindows, eval_windows
from causette.data.prepare import read_meta
from causette.errors import CausetteError
from causette.eval.metrics import evaluate_windows, token_byte_lengths, unigram_bits_per_byte
from causette.eval.sentence_scores import GrammarProbe
from causette.inference.engine import sample_texts
from causette.model.counting import count_params, flops_per_token
from causette.model.transformer import Transformer
from causette.tokenizer.io import load_tokenizer
from causette.train import distributed
from causette.train.sizing import size_model
from causette.train.trainer import CheckpointFiles, Hooks, Runtime, Throughput, Trainer, TrainResult
from causette.utils.device import compile_supported, cpu_compile_supported, pick_device, resolve_dtype
from causette.utils.flops import Peak, stable_peak
from causette.utils.lock import claim_run
from causette.utils.paths import RunLayout


def decide_compile(setting: bool | None, device: torch.device) -> bool:
    """``None`` (auto): compile on CUDA, and on CPU when a C++ compiler is there for Inductor.

    On this project's 2-core CPU, compiled bf16 training runs ~1.6–2× faster than eager bf16
    (bench/LOG.md), which repays the ~40–60 s of compilation within the first minute.
    """
    if setting is not None:
        return setting and compile_supported()
    if not compile_supported():
        return False
    if device.type == "cuda":
        return True
    return device.type == "cpu" and cpu_compile_supported()


def train(
    cfg: Config,
    resume: bool = False,
    device_name: str | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> TrainResult:
    """Pretrain the run of ``cfg`` (``runs/<name>``): check its inputs, build the trainer, fit, summarise.
    The run folder is locked meanwhile (by the main process only: the others write nothing)."""
    run = RunLayout(cfg.run.path)
    with claim_run(run.root if dist_rank() == 0 else None):
        return _train(cfg, run, resume, device_name, progress, echo)


def _train(cfg: Config, run: RunLayout, resume: bool, device_name, progress: bool, echo) -> TrainResult:
    if cfg.model.depth == "auto":
        cfg = choose_depth(cfg, run, resume, device_name, echo)
    meta, tok, model_cfg = check_inputs(cfg, run, resume, echo)
    setup = build_trainer(cfg, run, meta, tok, model_cfg, device_name, progress, echo)
    if resume:
        found = setup.trainer.resume(run.root)
        if setup.info.is_main:
            echo(f"resuming from {found} (step {setup.trainer.step})")
    if setup.info.is_main:
        for line in setup.intro:
            echo(line)
    t0 = time.time()
    try:
        result = setup.trainer.fit()
    finally:
        distributed.teardown(setup.info)
    if setup.info.is_main:
        echo(summary_line(result, time.time() - t0, setup.trainer.state_extra["unigram_bits_per_byte"]))
    return result


def choose_depth(cfg: Config, run: RunLayout, resume: bool, device_name, echo) -> Config:
    """``model.depth: auto`` → a depth, from the budget and this machine's speed (train/sizing.py)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise CausetteError("model.depth: auto measures this machine with one process; under torchrun give "
                            "a depth (--depth N, or model.depth in the config)")
    meta = read_meta(run.data)
    owned = getattr(cfg, "dial_owned", None)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, vocab_size=meta["vocab_size"]))
    cfg.dial_owned = owned
    device = pick_device(device_name or cfg.train.device)
    return size_model(cfg, run.root, resume, cfg.train.max_minutes * 60, device,
                      resolve_dtype(cfg.train.precision, device), decide_compile(cfg.train.compile, device), echo)


def check_inputs(cfg: Config, run: RunLayout, resume: bool, echo: Callable[[str], None]):
    """The token data, the tokenizer and the model config, checked against each other (and
    against the checkpoint to resume); errors name the file. Returns ``(meta, tokenizer, model_cfg)``."""
    meta = read_meta(run.data)
    if not run.tokenizer_file.is_file():
        raise CausetteError(f"{run.tokenizer_file}: tokenizer not found (run `causette tokenizer train`)")
    tok = load_tokenizer(run.tokenizer_file)
    if tok.hash != meta["tokenizer_hash"]:
        raise CausetteError(
            f"{run.data_meta}: token data was made with another tokenizer than "
            f"{run.tokenizer_file} (hash {meta['tokenizer_hash']} vs {tok.hash}): run `causette prepare` again"
        )
    model_cfg = cfg.model
    if model_cfg.vocab_size != meta["vocab_size"]:
        if not resume and dist_rank() == 0:
            echo(f"note: model.vocab_size set to the tokenizer's {meta['vocab_size']} (config said {model_cfg.vocab_size})")
        model_cfg = dataclasses.replace(model_cfg, vocab_size=meta["vocab_size"])

    if resume:
        found = ckpt.find_checkpoint(run.root, warn=lambda s: echo(f"warning: {s}"))
        saved_cfg, _ = read_config(config_path(found))
        if saved_cfg.vocab_size != meta["vocab_size"]:
            raise CausetteError(
                f"{config_path(found)}: checkpoint vocab_size {saved_cfg.vocab_size} differs from the data's "
                f"{meta['vocab_size']} ({run.data_meta})"
            )
        state = ckpt.read_state(found)
        if state.get("tokenizer_hash") not in (None, tok.hash):
            raise CausetteError(f"{state_path(found)}: checkpoint was trained with another tokenizer (hash differs)")
        if dataclasses.asdict(saved_cfg) != dataclasses.asdict(model_cfg):
            diff = [k for k, v in dataclasses.asdict(saved_cfg).items() if dataclasses.asdict(model_cfg)[k] != v]
            raise CausetteError(f"{config_path(found)}: the model config differs from this run's ({', '.join(diff)})")
    elif ckpt.list_checkpoints(run.checkpoints):
        raise CausetteError(
            f"{run.checkpoints}: this run already has checkpoints; continue it with --resume, "
            f"or start another with --name"
        )
    return meta, tok, model_cfg


@dataclass
class Setup:
    trainer: Trainer
    info: distributed.DistInfo
    intro: list[str]  # what the run is about to do (model, hardware, steps, budget, baseline)


def build_trainer(cfg: Config, run: RunLayout, meta: dict, tok, model_cfg, device_name, progress, echo) -> Setup:
    """The model, its data, its evaluation and samples, wired into a :class:`Trainer`."""
    tc = cfg.train
    device = pick_device(device_name or tc.device)
    info = distributed.setup(device.type)
    device = distributed.device_for(info, device)
    dtype = resolve_dtype(tc.precision, device)
    use_compile = decide_compile(tc.compile, device)

    torch.manual_seed(tc.seed)  # same initial weights on every rank
    # Our compiled CPU kernels for bf16 training (attention backward, chunked LM-head loss)
    # follow the compile switch: train.compile=false means "no torch.compile at all".
    model = Transformer(model_cfg, cpu_kernels=use_compile)
    windows = TokenWindows(run.data / "train.bin", meta["dtype"], model_cfg.block_size, seed=tc.seed)
    val_rows = _val_rows(run.data, meta, model_cfg.block_size, tc.eval_tokens)
    byte_lengths = token_byte_lengths(tok)

    def batch_fn(step: int, micro: int, rank: int, world: int):
        return windows.batch(step, tc.batch_size, micro, tc.grad_accum, rank, world)

    def autocast():
        if dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=dtype)

    grammar = GrammarProbe(tok, model_cfg.block_size, tc.grammar_pairs, cfg.corpus.normalize) if tc.grammar_pairs else None

    def eval_fn(m: torch.nn.Module) -> dict:
        metrics = evaluate_windows(m, val_rows, byte_lengths, batch_size=tc.batch_size, device=device,
                                   autocast=autocast())
        if grammar is not None:  # a few seconds: ~330 minimal pairs (val/grammaire)
            metrics.update(grammar(m, device, autocast()))
        return metrics

    sample_fn = None
    if tc.sample_tokens > 0 and tc.prompts:
        def sample_fn(m: torch.nn.Module) -> list[str]:
            with autocast():
                return sample_texts(m, tok, tc.prompts, max_new_tokens=tc.sample_tokens, seed=tc.seed)

    peak, fpt = run_peak(tc.peak_flops, device, dtype, info.is_main, echo), flops_per_token(model_cfg)
    tokens_per_step = tc.batch_size * tc.grad_accum * info.world * model_cfg.block_size
    tc, epoch_note = cap_epochs(tc, int(meta["splits"]["train"]["tokens"]), tokens_per_step)
    state_extra = {"stage": "pretrain", "tokenizer_hash": tok.hash, "config": to_dict(cfg),
                   "data": {"tokens": meta["splits"], "dtype": meta["dtype"]}, "peak": peak.record(), "flops_per_token": fpt}
    runtime = Runtime(device, dtype, use_compile, info)
    trainer = Trainer(
        model, tc, run.root, batch_fn, runtime,
        hooks=Hooks(eval_fn=eval_fn if val_rows is not None else None, sample_fn=sample_fn),
        files=CheckpointFiles(state_extra, run.tokenizer_file),
        speed=Throughput(tokens_per_step, fpt, peak.flops, peak_source=peak.source),
        progress=progress, echo=echo,
    )

    intro: list[str] = []
    uni = math.nan
    if info.is_main:
        intro = intro_lines(tc, model_cfg, runtime, tokens_per_step, peak, int(meta["splits"]["train"]["tokens"]),
                            epoch_note)
        if val_rows is not None:
            uni = unigram_bits_per_byte(windows.tokens, np.asarray(val_rows).reshape(-1), byte_lengths)
            intro.append(f"baseline: a unigram model (token frequencies only) scores {uni:.3f} bits/byte on val")
        else:
            intro.append("no validation (train.eval_tokens=0): no val loss will be measured")
    trainer.state_extra["unigram_bits_per_byte"] = uni
    return Setup(trainer, info, intro)


def run_peak(peak_flops: float, device: torch.device, dtype: torch.dtype, is_main: bool, echo) -> Peak:
    """The peak MFU is measured against, fixed for the run: ``train.peak_flops`` when given, else
    :func:`stable_peak` (a GPU's datasheet, this machine's cached quiet measurement, or a fresh one).
    Only the main process logs MFU: the others measure nothing (0: no MFU)."""
    if peak_flops:
        return Peak(peak_flops, "train.peak_flops", "config")
    if not is_main:
        return Peak(0.0, "not measured on this rank", "none")
    return stable_peak(device, dtype, warn=lambda s: echo(f"warning: {s}"))


def intro_lines(tc, model_cfg, runtime: Runtime, tokens_per_step: int, peak: Peak, n_train: int,
                epoch_note: str | None) -> list[str]:
    """The lines that open ``causette train``: the model, the machine and the steps, the epochs,
    the time budget (``tc``: the train settings, capped to the epochs; ``n_train``: train tokens)."""
    device, dtype, use_compile, info = runtime.device, runtime.dtype, runtime.compile, runtime.dist
    intro: list[str] = []
    counts = count_params(model_cfg)
    epochs = tc.max_steps * tokens_per_step / max(n_train, 1)
    steps = f"{tc.max_steps} steps × {tokens_per_step:,} tokens ({epochs:.1f} epochs of {n_train:,} train tokens)"
    if tc.max_minutes > 0 and epochs > 1000:  # a step cap that only says "no cap": the clock decides
        steps = f"steps × {tokens_per_step:,} tokens until the time budget ({n_train:,} train tokens)"
    intro.append(
        f"model: {counts.total / 1e6:.2f}M parameters ({counts.non_embedding / 1e6:.2f}M non-embedding), "
        f"{model_cfg.n_layer} layers × {model_cfg.n_embd}, context {model_cfg.block_size}, vocab {model_cfg.vocab_size}"
    )
    intro.append(
        f"run: {device.type} {str(dtype).removeprefix('torch.')}{' + compile' if use_compile else ''}"
        f"{f', {info.world} processes' if info.enabled else ''}{threads_note(device)}, {steps}, "
        f"peak {peak.flops / 1e9:,.0f} GFLOP/s ({peak.source})"
    )
    if epoch_note:
        intro.append(epoch_note)
    if tc.max_minutes > 0:
        intro.append(
            f"time budget: {tc.max_minutes:g} min"
            + (" (resumes included): the LR schedule follows the clock, to end on time at min_lr"
               if tc.fit_schedule_to_time else ", then training stops (train.fit_schedule_to_time=false)")
        )
    return intro


def summary_line(result: TrainResult, seconds: float, unigram: float) -> str:
    """The one line that ends ``causette train``: steps, tokens, time, budget, losses, checkpoint."""
    val = result.val or {}
    if not val:
        measured = "no validation"
    else:
        measured = (f"val loss {val.get('loss', math.nan):.3f}, val bits/byte {val.get('bits_per_byte', math.nan):.3f} "
                    f"(unigram {unigram:.3f})")
    return (f"train: {result.steps} steps ({result.stopped}), {result.tokens:,} tokens in {seconds:.0f}s"
            f"{budget_note(result)}, last loss {result.last_loss:.3f}, {measured} → {result.checkpoint}")


def cap_epochs(tc, train_tokens: int, tokens_per_step: int):
    """``tc`` with ``max_steps`` lowered to ``max_epochs`` passes over the data, and a line saying so.

    Warmup shrinks with it (at most a tenth of the steps), so a short run still spends most of
    its steps learning. Unchanged (and no line) when the cap does not bite.
    """
    if tc.max_epochs <= 0:
        return tc, ""
    steps = max(math.ceil(tc.max_epochs * train_tokens / tokens_per_step), 1)
    if steps >= tc.max_steps:
        return tc, ""
    warmup = min(tc.warmup_steps, max(steps // 10, 1))
    note = (f"steps: {steps:,} instead of {tc.max_steps:,} = {tc.max_epochs:g} epochs of {train_tokens:,} train tokens "
            f"(train.max_epochs: more passes over so little text would teach it by heart), warmup {warmup}")
    return dataclasses.replace(tc, max_steps=steps, warmup_steps=warmup), note


def _val_rows(data: Path, meta: dict, block_size: int, eval_tokens: int) -> torch.Tensor | None:
    """The fixed validation windows, None when ``train.eval_tokens`` is 0; clear errors otherwise."""
    if eval_tokens == 0:
        return None
    if int(meta["splits"]["val"]["tokens"]) == 0:
        raise CausetteError(
            f"{data / 'val.bin'}: the val split is empty (corpus built with corpus.val_fraction=0): rebuild the "
            f"corpus with corpus.val_fraction > 0, or train without validation with --set train.eval_tokens=0"
        )
    return eval_windows(data / "val.bin", meta["dtype"], block_size, eval_tokens)


def threads_note(device: torch.device) -> str:
    """On CPU, the threads of each process (causette/utils/threads.py chose them)."""
    if device.type != "cpu":
        return ""
    n = torch.get_num_threads()
    return f" × {n} thread{'s' if n > 1 else ''}"


def budget_note(result: TrainResult) -> str:
    """", 7.9 of 8 min budget used": how much of train.max_minutes the run used (resumes included)."""
    if not result.budget_seconds:
        return ""
    used = result.budget_used / result.budget_seconds
    flag = ""
    if used < 0.95:  # all steps done early is normal (max_steps, max_epochs); a stop is worth a flag
        flag = " (its steps done early)" if result.stopped == "done" else f" (under 95 %: {result.stopped})"
    return f", {result.budget_used / 60:.1f} of {result.budget_seconds / 60:g} min budget used{flag}"


def dist_rank() -> int:
    return int(os.environ.get("RANK", "0"))
