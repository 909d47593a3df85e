"""``causette sft``: instruction-tune a pretrained checkpoint with the same training loop.

    base checkpoint (runs/<name>/checkpoints/…) + conversations (JSONL)
        ──▶ runs/<name>/sft/checkpoints/step_…/   (stage "sft": a chat model)
            runs/<name>/sft/eval.json             (held-out loss, BLEU and chrF, before / after)

Full fine-tuning trains every weight. With ``sft.lora.r > 0`` the base stays frozen and only
low-rank adapters train (causette/model/lora.py); checkpoints then hold ``adapter.safetensors``
(small) plus ``adapter.json`` naming the base checkpoint, and ``causette sft merge`` bakes the
adapter into a full, ordinary checkpoint. Generation and chat load either kind.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file

from causette.config import Config, to_dict
from causette.data.chat_template import render_chat
from causette.data.sft import SFTBatches, collate, example, load_conversations, split_conversations
from causette.errors import CausetteError
from causette.model.config import LoRAConfig
from causette.model.lora import adapter_state, apply_lora, load_adapter_state, merge_lora
from causette.model.persist import CONFIG_FILE, FORMAT, FORMAT_VERSION, MODEL_FILE, load_model, save_model
from causette.model.transformer import Transformer, lm_loss
from causette.tokenizer.io import load_tokenizer
from causette.train import checkpoint as ckpt
from causette.train.trainer import Trainer, TrainResult
from causette.utils.device import pick_device, resolve_dtype
from causette.utils.io import atomic_dir, write_json

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_SFT = REPO_ROOT / "data" / "sft_demo.jsonl.gz"
ADAPTER_JSON = "adapter.json"


# ----------------------------------------------------------------------------- LoRA files


def adapter_saver(lora: LoRAConfig, base_dir: Path):
    """``save_weights`` hook of the Trainer for LoRA: config.json + the adapter only.

    ``adapter.json`` names the base checkpoint twice: absolute, and relative to the adapter's
    directory, so that a run folder moved as a whole still finds its base.
    """

    def save(model: torch.nn.Module, directory: Path) -> None:
        write_json(directory / CONFIG_FILE, {"format": FORMAT, "version": FORMAT_VERSION, "dtype": "float32",
                                             "model": dataclasses.asdict(model.cfg)})
        save_file(adapter_state(model), str(directory / ckpt.ADAPTER_FILE))
        # ``directory`` is a temporary sibling of the final step directory: same relative path.
        base = base_dir.resolve()
        write_json(directory / ADAPTER_JSON, {"lora": to_dict(lora), "base": str(base),
                                              "base_relative": os.path.relpath(base, directory.resolve())})

    return save


def adapter_loader(model: torch.nn.Module, directory: Path) -> None:
    path = directory / ckpt.ADAPTER_FILE
    try:
        state = load_file(str(path))
    except Exception as e:  # missing or corrupt file
        raise CausetteError(f"{path}: unreadable adapter ({type(e).__name__})") from None
    load_adapter_state(model, state, where=str(path))


def adapter_base(directory: Path) -> tuple[LoRAConfig, Path]:
    """The LoRA settings and the base checkpoint named by ``directory/adapter.json``."""
    info_path = directory / ADAPTER_JSON
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        lora = LoRAConfig(**info["lora"])
        candidates = [Path(info["base"])] + ([directory / info["base_relative"]] if info.get("base_relative") else [])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CausetteError(f"{info_path}: unreadable adapter description ({e})") from None
    for base in candidates:
        if (base / MODEL_FILE).is_file():
            return lora, base
    raise CausetteError(f"{info_path}: its base checkpoint {candidates[0]} is gone; "
                        "keep it, or bake adapters into a full checkpoint with `causette sft merge`")


def load_adapted(directory: str | Path, device="cpu", dtype=torch.float32, expected_vocab=None) -> Transformer:
    """A LoRA checkpoint's model: its base, the adapter applied, then merged (a plain model)."""
    directory = Path(directory)
    lora, base = adapter_base(directory)
    model = load_model(base, expected_vocab=expected_vocab)
    apply_lora(model, lora)
    adapter_loader(model, directory)
    return merge_lora(model).to(device=device, dtype=dtype).eval()


def merge_checkpoint(src: str | Path, out: str | Path) -> Path:
    """``causette sft merge``: a LoRA checkpoint → a full checkpoint (adapter baked in)."""
    src = ckpt.find_checkpoint(src)
    if not (src / ADAPTER_JSON).is_file():
        raise CausetteError(f"{src}: not a LoRA checkpoint (no {ADAPTER_JSON}); nothing to merge")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CausetteError(f"{out}: already exists; give a new directory")
    model = load_adapted(src)
    state = ckpt.read_state(src)
    with atomic_dir(out) as tmp:
        save_model(model, tmp)
        if (src / ckpt.TOKENIZER_FILE).is_file():
            (tmp / ckpt.TOKENIZER_FILE).write_bytes((src / ckpt.TOKENIZER_FILE).read_bytes())
        write_json(tmp / ckpt.STATE_FILE, {**state, "merged_from": str(src.resolve())})
    return out


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def sft_loss(model: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], device) -> dict:
    """Mean loss over every trained (assistant) token of the held-out conversations."""
    was = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y in batches:
        logits, _ = model(x.to(device))
        n = int((y != -100).sum())
        total += float(lm_loss(logits, y.to(device))) * n
        count += n
    model.train(was)
    loss = total / max(count, 1)
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "tokens": float(count)}


def answer_scores(model, tokenizer, conversations: list[list[dict]], max_new_tokens: int, batch: int = 16) -> dict:
    """BLEU and chrF (sacrebleu) of greedy answers to the last user turn, against the references."""
    import sacrebleu

    from causette.inference.engine import Engine
    from causette.inference.sampling import SamplingParams

    was = model.training
    model.eval()
    engine = Engine(model, tokenizer)
    block = model.cfg.block_size
    max_new = max(1, min(max_new_tokens, block // 2))
    params = SamplingParams(temperature=0.0, max_new_tokens=max_new, stop_token_ids=engine.special_ids)
    prompts, refs = [], []
    for conv in conversations:
        last = max(i for i, m in enumerate(conv) if m["role"] == "assistant")
        prompt, _ = render_chat(tokenizer, conv[:last], add_generation_prompt=True)
        prompts.append(prompt[-(block - max_new):])  # a long prompt keeps its end (and the question)
        refs.append(conv[last]["content"].strip())
    hyps = []
    for i in range(0, len(prompts), batch):
        hyps += [g.text.strip() for g in engine.generate(prompts[i : i + batch], params)]
    model.train(was)
    if not hyps:
        return {}
    return {
        "bleu": sacrebleu.corpus_bleu(hyps, [refs]).score,
        "chrf": sacrebleu.corpus_chrf(hyps, [refs]).score,
        "exact": sum(h == r for h, r in zip(hyps, refs)) / len(hyps),
        "answers": len(hyps),
        "examples": [{"reference": r, "answer": h} for r, h in list(zip(refs, hyps))[:5]],
    }


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
    sc = cfg.sft
    tc = sc.train
    out = cfg.run.path / "sft"
    base_dir = ckpt.find_checkpoint(base or sc.base or cfg.run.path, warn=lambda s: echo(f"warning: {s}"))
    if (base_dir / ADAPTER_JSON).is_file():
        raise CausetteError(f"{base_dir}: a LoRA checkpoint cannot be a base; merge it first (`causette sft merge`)")
    tok_file = base_dir / ckpt.TOKENIZER_FILE
    if not tok_file.is_file():
        raise CausetteError(f"{base_dir}: no {ckpt.TOKENIZER_FILE} in the base checkpoint")
    tokenizer = load_tokenizer(tok_file)
    paths = data or sc.data or [str(DEMO_SFT)]
    conversations = load_conversations(paths)
    train_convs, val_convs = split_conversations(conversations, sc.val_fraction, tc.seed)

    existing = ckpt.list_checkpoints(out / ckpt.CHECKPOINTS)
    if existing and not resume:
        raise CausetteError(f"{out / ckpt.CHECKPOINTS}: SFT already has checkpoints; "
                            "continue with --resume or use another --name")
    if resume and existing and (existing[-1] / ADAPTER_JSON).is_file():
        _, saved_base = adapter_base(existing[-1])
        if saved_base.resolve() != base_dir.resolve():
            raise CausetteError(f"{existing[-1]}: this adapter was trained on {saved_base}, not on {base_dir}: "
                                f"resume with --base {saved_base}")

    device = pick_device(device_name or tc.device)
    dtype = resolve_dtype(tc.precision, device)
    model = load_model(base_dir, expected_vocab=tokenizer.vocab_size).train()
    block = model.cfg.block_size
    batches = SFTBatches(tokenizer, train_convs, block, seed=tc.seed)
    val_examples = [tuple(t[:block] for t in example(tokenizer, c)) for c in val_convs]
    val_batches = [collate(val_examples[i : i + tc.batch_size], tokenizer.pad_id)
                   for i in range(0, len(val_examples), tc.batch_size)]
    cut = f", {batches.truncated} cut to the context of {block}" if batches.truncated else ""
    cut += f", {batches.dropped} dropped (no answer left within the context)" if batches.dropped else ""
    echo(f"sft: {len(batches)} conversations to train ({batches.trained_tokens:,} trained tokens), "
         f"{len(val_convs)} held out{cut}; base {base_dir}")
    model = model.to(device)
    before = _evaluate(model, tokenizer, val_batches, val_convs, sc, device) if val_convs else {}

    torch.manual_seed(tc.seed)  # LoRA's random A and dropout masks: the same run gives the same adapter
    save_weights = load_weights = None
    if sc.lora.enabled:
        wrapped = apply_lora(model, sc.lora)
        n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
        n_all = sum(p.numel() for p in model.parameters())
        echo(f"lora: r={sc.lora.r}, alpha={sc.lora.alpha:g} on {len(wrapped)} layers: "
             f"{n_train:,} trainable parameters ({100 * n_train / n_all:.2f}% of {n_all:,})")
        save_weights, load_weights = adapter_saver(sc.lora, base_dir), adapter_loader

    def eval_fn(m: torch.nn.Module) -> dict:
        return sft_loss(m, val_batches, device) if val_batches else {}

    trainer = Trainer(
        model, tc, out, lambda s, mi, r, w: batches.batch(s, tc.batch_size, mi, tc.grad_accum, r, w),
        device=device, dtype=dtype, eval_fn=eval_fn,
        state_extra={"stage": "sft", "tokenizer_hash": tokenizer.hash, "base": str(base_dir), "config": to_dict(cfg)},
        tokenizer_file=tok_file, tokens_per_step=int(tc.batch_size * tc.grad_accum * batches.mean_length),
        progress=progress, echo=echo, save_weights=save_weights, load_weights=load_weights,
    )
    if resume and existing:
        echo(f"resuming from {trainer.resume(out)} (step {trainer.step})")
    t0 = time.time()
    result = trainer.fit()
    after = {}
    if val_convs:
        tuned = merge_lora(copy.deepcopy(trainer.raw_model)) if sc.lora.enabled else trainer.raw_model
        after = _evaluate(tuned, tokenizer, val_batches, val_convs, sc, device)
    report = {"before": before, "after": after, "steps": result.steps, "seconds": time.time() - t0,
              "base": str(base_dir), "checkpoint": str(result.checkpoint), "lora": to_dict(sc.lora),
              "data": [str(p) for p in paths], "train_conversations": len(batches), "val_conversations": len(val_convs)}
    write_json(out / "eval.json", report)
    for line in eval_table(report):
        echo(line)
    echo(f"sft: {result.steps} steps in {time.time() - t0:.0f}s → {result.checkpoint}")
    return result, report


def _evaluate(model, tokenizer, val_batches, val_convs, sc, device) -> dict:
    """Held-out loss, then BLEU/chrF of greedy answers (fp32: the same numbers on any machine)."""
    metrics = sft_loss(model, val_batches, device)
    if sc.eval_answers:
        metrics.update(answer_scores(model, tokenizer, val_convs[: sc.eval_answers], sc.eval_max_new_tokens))
    return metrics


def eval_table(report: dict) -> list[str]:
    """The before/after table printed at the end of SFT and written into reports."""
    b, a = report.get("before") or {}, report.get("after") or {}
    if not (a or b):
        return []  # nothing held out (sft.val_fraction=0)
    rows = [("held-out SFT loss", "loss", "{:.3f}"), ("perplexity", "perplexity", "{:.1f}"),
            ("BLEU", "bleu", "{:.1f}"), ("chrF", "chrf", "{:.1f}"), ("exact answers", "exact", "{:.0%}")]
    lines = [f"{'':20} {'before SFT':>11} {'after SFT':>11}"]
    for label, key, fmt in rows:
        if key in b or key in a:
            before = fmt.format(b[key]) if key in b else "-"
            after = fmt.format(a[key]) if key in a else "-"
            lines.append(f"{label:20} {before:>11} {after:>11}")
    return lines
