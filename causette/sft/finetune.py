"""``causette sft``: instruction-tune a pretrained checkpoint with the same training loop.

    base checkpoint (runs/<name>/checkpoints/…) + conversations (JSONL)
        ──▶ runs/<name>/sft/checkpoints/step_…/   (stage "sft": a chat model)
            runs/<name>/sft/eval.json             (held-out loss, BLEU and chrF, before / after)

Full fine-tuning trains every weight. With ``sft.lora.r > 0`` the base stays frozen and only
low-rank adapters train (causette/model/lora.py); checkpoints then hold the adapter only
(causette/checkpoint/adapters.py), and ``causette sft merge`` bakes it into a full, ordinary
checkpoint. Generation and chat load either kind. The held-out metrics are in metrics.py.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Callable

import torch

from causette.checkpoint import steps as ckpt
from causette.checkpoint.adapters import ADAPTER_JSON, adapter_base, adapter_loader, adapter_saver
from causette.checkpoint.weights import load_model
from causette.config import Config, to_dict
from causette.errors import CausetteError
from causette.model.lora import apply_lora, merge_lora
from causette.sft.data import SFTBatches, eval_batches, load_conversations, split_conversations
from causette.sft.metrics import eval_table, evaluate_sft, sft_loss
from causette.sft.tool_data import KINDS, TOOL_DATA_FILE, write_tool_data
from causette.tokenizer.io import load_tokenizer
from causette.train.pretrain import decide_compile
from causette.train.trainer import CheckpointFiles, Hooks, Runtime, Throughput, Trainer, TrainResult
from causette.utils.device import pick_device, resolve_dtype
from causette.utils.io import write_json
from causette.utils.lock import claim_run
from causette.utils.paths import DEMO_SFT, RunLayout

# ----------------------------------------------------------------------------- the command


def finetune(
    cfg: Config,
    base: str | None = None,
    data: list[str] | None = None,
    resume: bool = False,
    device_name: str | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> tuple[TrainResult, dict]:
    """Fine-tune ``base`` (default: ``sft.base``, else this run's latest checkpoint) on ``data``
    (default: ``sft.data``, else the demo set); returns the training result and the eval report."""
    with claim_run(cfg.run.path):  # the run folder is locked meanwhile (causette/utils/lock.py)
        return _finetune(cfg, base, data, resume, device_name, progress, echo)


def _finetune(cfg: Config, base, data, resume: bool, device_name, progress: bool, echo) -> tuple[TrainResult, dict]:
    sc = cfg.sft
    tc = sc.train
    out = RunLayout(cfg.run.path).sft.root
    base_dir, tok_file = _base_checkpoint(base or sc.base or cfg.run.path, echo)
    tokenizer = load_tokenizer(tok_file)
    paths = [*(data or sc.data or [str(DEMO_SFT)]), *tool_data_paths(sc, out, echo)]
    conversations = load_conversations(paths)
    train_convs, val_convs = split_conversations(conversations, sc.val_fraction, tc.seed)
    existing = _earlier_checkpoints(out, base_dir, resume)

    device = pick_device(device_name or tc.device)
    dtype = resolve_dtype(tc.precision, device)
    use_compile = decide_compile(tc.compile, device)
    # Compiled, the model is traced again as batch lengths change (torch.compile's automatic
    # dynamic shapes): not with pretraining's CPU kernels, compiled for one shape each (they
    # would hit torch's recompile limit within seconds, bench/LOG.md).
    model = load_model(base_dir, expected_vocab=tokenizer.vocab_size).train()
    block = model.cfg.block_size
    batches = SFTBatches(tokenizer, train_convs, block, seed=tc.seed)
    val_batches = eval_batches(tokenizer, val_convs, block, tc.batch_size)
    echo(_data_line(batches, len(val_convs), block, base_dir))
    model = model.to(device)
    before = evaluate_sft(model, tokenizer, val_batches, val_convs, sc, device) if val_convs else {}

    torch.manual_seed(tc.seed)  # LoRA's random A and dropout masks: the same run gives the same adapter
    save_weights = load_weights = None
    if sc.lora.enabled:
        save_weights, load_weights = _add_lora(model, sc.lora, base_dir, echo)
    files = CheckpointFiles({"stage": "sft", "tokenizer_hash": tokenizer.hash, "base": str(base_dir),
                             "config": to_dict(cfg)}, tok_file, save_weights, load_weights)
    trainer = _sft_trainer(model, tc, out, batches, val_batches, Runtime(device, dtype, use_compile), files,
                           progress, echo)
    if resume and existing:
        echo(f"resuming from {trainer.resume(out)} (step {trainer.step})")
    t0 = time.time()
    result = trainer.fit()
    after = {}
    if val_convs:
        tuned = merge_lora(copy.deepcopy(trainer.raw_model)) if sc.lora.enabled else trainer.raw_model
        after = evaluate_sft(tuned, tokenizer, val_batches, val_convs, sc, device)
    report = {"before": before, "after": after, "steps": result.steps, "seconds": time.time() - t0,
              "base": str(base_dir), "checkpoint": str(result.checkpoint), "lora": to_dict(sc.lora),
              "data": [str(p) for p in paths], "train_conversations": len(batches), "val_conversations": len(val_convs)}
    _save_report(out, report, echo)
    echo(f"sft: {result.steps} steps in {time.time() - t0:.0f}s → {result.checkpoint}")
    return result, report


# ----------------------------------------------------------------------------- its parts


def tool_data_paths(sc, out: Path, echo: Callable[[str], None]) -> list[str]:
    """``sft.tool_data`` conversations generated into ``out`` (the same bytes for the same count and
    seed), as a list of one file; none when the setting is 0."""
    if not sc.tool_data:
        return []
    path = out / TOOL_DATA_FILE
    counts = write_tool_data(path, sc.tool_data, sc.train.seed)
    kinds = ", ".join(f"{k} {counts[k]}" for k in KINDS)
    echo(f"tool data: {sc.tool_data} generated conversations ({kinds}) → {path}")
    return [str(path)]


def _base_checkpoint(where: str, echo: Callable[[str], None]) -> tuple[Path, Path]:
    """The checkpoint to fine-tune (``where``: a run, checkpoints or step folder) and its tokenizer
    file; a LoRA checkpoint cannot be a base."""
    base_dir = ckpt.find_checkpoint(where, warn=lambda s: echo(f"warning: {s}"))
    if (base_dir / ADAPTER_JSON).is_file():
        raise CausetteError(f"{base_dir}: a LoRA checkpoint cannot be a base; merge it first (`causette sft merge`)")
    tok_file = base_dir / ckpt.TOKENIZER_FILE
    if not tok_file.is_file():
        raise CausetteError(f"{base_dir}: no {ckpt.TOKENIZER_FILE} in the base checkpoint")
    return base_dir, tok_file


def _earlier_checkpoints(out: Path, base_dir: Path, resume: bool) -> list[Path]:
    """The SFT checkpoints already in ``out``: refused without ``resume``, and an adapter resumes
    only on the base it was trained on."""
    existing = ckpt.list_checkpoints(out / ckpt.CHECKPOINTS)
    if existing and not resume:
        raise CausetteError(f"{out / ckpt.CHECKPOINTS}: SFT already has checkpoints; "
                            "continue with --resume or use another --name")
    if resume and existing and (existing[-1] / ADAPTER_JSON).is_file():
        _, saved_base = adapter_base(existing[-1])
        if saved_base.resolve() != base_dir.resolve():
            raise CausetteError(f"{existing[-1]}: this adapter was trained on {saved_base}, not on {base_dir}: "
                                f"resume with --base {saved_base}")
    return existing


def _data_line(batches: SFTBatches, n_val: int, block: int, base_dir: Path) -> str:
    """What will be trained: conversations, trained tokens, held out, cut or dropped ones, the base."""
    cut = f", {batches.truncated} cut to the context of {block}" if batches.truncated else ""
    cut += f", {batches.dropped} dropped (no answer left within the context)" if batches.dropped else ""
    return (f"sft: {len(batches)} conversations to train ({batches.trained_tokens:,} trained tokens), "
            f"{n_val} held out{cut}; base {base_dir}")


def _add_lora(model: torch.nn.Module, lora, base_dir: Path,
              echo: Callable[[str], None]) -> tuple[Callable, Callable]:
    """Freeze ``model`` and wrap its layers with LoRA adapters (``lora``: the ``sft.lora``
    settings); returns how a checkpoint saves and loads the adapter only."""
    wrapped = apply_lora(model, lora)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_all = sum(p.numel() for p in model.parameters())
    echo(f"lora: r={lora.r}, alpha={lora.alpha:g} on {len(wrapped)} layers: "
         f"{n_train:,} trainable parameters ({100 * n_train / n_all:.2f}% of {n_all:,})")
    return adapter_saver(lora, base_dir), adapter_loader


def _sft_trainer(model: torch.nn.Module, tc, out: Path, batches: SFTBatches, val_batches, runtime: Runtime,
                 files: CheckpointFiles, progress: bool, echo: Callable[[str], None]) -> Trainer:
    """The shared training loop on the conversations (``tc``: the ``sft.train`` settings), its
    evaluation the held-out SFT loss."""
    device = runtime.device

    def eval_fn(m: torch.nn.Module) -> dict:
        return sft_loss(m, val_batches, device) if val_batches else {}

    return Trainer(
        model, tc, out, lambda s, mi, r, w: batches.batch(s, tc.batch_size, mi, tc.grad_accum, r, w),
        runtime, hooks=Hooks(eval_fn=eval_fn),
        files=files,
        speed=Throughput(tokens_per_step=int(tc.batch_size * tc.grad_accum * batches.mean_length)),
        progress=progress, echo=echo,
    )


def _save_report(out: Path, report: dict, echo: Callable[[str], None]) -> None:
    """``sft/eval.json``, and its before/after table on the terminal."""
    write_json(RunLayout(out).eval_json, report)
    for line in eval_table(report):
        echo(line)
