"""``causette eval``: measure a checkpoint on any text, corpus, or instruction set.

    causette eval --checkpoint runs/demo                    # the run's val split (bits per byte)
    causette eval --checkpoint runs/demo --data livre.txt   # any text file(s) or a corpus folder
    causette eval --checkpoint runs/demo/sft --sft data/sft_demo.jsonl.gz   # + BLEU / chrF

Texts are tokenised with the checkpoint's own tokenizer, each document starting with
``<|bos|>`` as in training, and cut into windows of the model's context; the numbers are the
same as the trainer's (causette/eval/metrics.py), so they compare with its curves.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from causette.errors import CausetteError
from causette.eval.metrics import evaluate_windows, token_byte_lengths

DEFAULT_PROMPTS = ["Il était une fois", "La marquise sortit", "ALCESTE.\n", "Le soleil se levait sur"]


def _read_texts(paths: list[str | Path]) -> list[str]:
    texts = []
    for p in map(Path, paths):
        if p.is_dir() and (p / "manifest.json").is_file():
            from causette.corpus.store import iter_texts

            texts += list(iter_texts(p, "val"))
        elif p.is_file():
            opener = gzip.open if p.suffix == ".gz" else open
            try:
                with opener(p, "rt", encoding="utf-8") as f:
                    texts.append(f.read())
            except (OSError, UnicodeDecodeError) as e:
                raise CausetteError(f"{p}: cannot read as UTF-8 text ({e})") from None
        else:
            raise CausetteError(f"{p}: no such file or corpus folder")
    if not any(t.strip() for t in texts):
        raise CausetteError(f"{', '.join(map(str, paths))}: no text to evaluate")
    return texts


def text_windows(tokenizer, texts: list[str], block_size: int, max_tokens: int) -> torch.Tensor:
    """``<|bos|>``-separated tokens of ``texts`` cut into ``(n, block_size + 1)`` windows."""
    ids: list[int] = []
    for t in texts:
        ids += [tokenizer.bos_id, *tokenizer.encode(t)]
        if len(ids) >= max_tokens + block_size + 1:
            break
    n = min(len(ids) // (block_size + 1), max(max_tokens // block_size, 1))
    if n == 0:
        raise CausetteError(f"only {len(ids)} tokens: fewer than one window of {block_size + 1}")
    return torch.from_numpy(np.asarray(ids[: n * (block_size + 1)], dtype=np.int64).reshape(n, block_size + 1))


def evaluate_text(model, tokenizer, texts: list[str], max_tokens: int = 131072, batch_size: int = 8) -> dict:
    device = next(model.parameters()).device
    windows = text_windows(tokenizer, texts, model.cfg.block_size, max_tokens)
    return evaluate_windows(model, windows, token_byte_lengths(tokenizer), batch_size=batch_size, device=device)


def samples(model, tokenizer, prompts: list[str], max_new_tokens: int = 60, seed: int = 0) -> list[str]:
    from causette.inference.engine import sample_texts

    return sample_texts(model, tokenizer, prompts, max_new_tokens=max_new_tokens, seed=seed)


def chat_samples(model, tokenizer, questions: list[str], max_new_tokens: int = 60) -> list[tuple[str, str]]:
    """Greedy answers of a chat model to single questions (for reports)."""
    from causette.data.chat_template import render_chat
    from causette.inference.engine import Engine
    from causette.inference.sampling import SamplingParams

    engine = Engine(model, tokenizer)
    block = model.cfg.block_size
    max_new_tokens = min(max_new_tokens, block // 2)
    params = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens, stop_token_ids=engine.special_ids)
    # a question longer than the context keeps its end (with the <|assistant|> that asks for a reply)
    prompts = [render_chat(tokenizer, [{"role": "user", "content": q}], add_generation_prompt=True)[0][-(block - max_new_tokens):]
               for q in questions]
    return [(q, g.text.strip()) for q, g in zip(questions, engine.generate(prompts, params))]


def run_eval(checkpoint: str | Path, data: list[str] | None = None, sft: list[str] | None = None,
             max_tokens: int = 131072, prompts: list[str] | None = None, device: str = "auto") -> dict:
    """Everything ``causette eval`` prints, as a dict (also used by ``causette run``)."""
    from causette.inference.loading import load_checkpoint

    loaded = load_checkpoint(checkpoint, device=device, precision="fp32")
    model, tok = loaded.model, loaded.tokenizer
    out: dict = {"checkpoint": str(loaded.path), "stage": loaded.stage}
    if data:
        sources = data
    else:  # the val split of the run that produced this checkpoint
        run = _run_dir_of(loaded.path)
        sources = [run / "corpus"] if run is not None and (run / "corpus" / "manifest.json").is_file() else []
    if sources:
        out["text"] = {"sources": [str(s) for s in sources], **evaluate_text(model, tok, _read_texts(sources), max_tokens)}
    if sft:
        from causette.data.sft import load_conversations
        from causette.train.finetune import answer_scores, sft_loss
        from causette.data.sft import collate, example

        convs = load_conversations(sft)
        block = model.cfg.block_size
        ex = [tuple(t[:block] for t in example(tok, c)) for c in convs]
        batches = [collate(ex[i : i + 8], tok.pad_id) for i in range(0, len(ex), 8)]
        out["sft"] = {**sft_loss(model, batches, next(model.parameters()).device),
                      **answer_scores(model, tok, convs[:64], max_new_tokens=48)}
    if loaded.is_chat_model:
        out["chat"] = chat_samples(model, tok, ["Qui a écrit « Le Misanthrope » ?", "Bonjour ! Qui es-tu ?"])
    else:
        out["samples"] = samples(model, tok, prompts or DEFAULT_PROMPTS)
    return out


def _run_dir_of(ckpt: Path) -> Path | None:
    """``runs/<name>`` for ``runs/<name>/checkpoints/step_…`` or ``runs/<name>/sft/checkpoints/step_…``."""
    for parent in ckpt.resolve().parents:
        if (parent / "corpus").is_dir() or (parent / "data" / "meta.json").is_file():
            return parent
    return None


def format_eval(result: dict) -> list[str]:
    lines = [f"checkpoint {result['checkpoint']} (stage {result['stage']})"]
    if "text" in result:
        t = result["text"]
        lines.append(f"text: loss {t['loss']:.4f} nats/token, perplexity {t['perplexity']:.1f}, "
                     f"{t['bits_per_byte']:.4f} bits/byte over {int(t['tokens']):,} tokens "
                     f"({t['bytes_per_token']:.2f} bytes/token)")
    if "sft" in result:
        s = result["sft"]
        lines.append(f"sft: loss {s['loss']:.4f}, perplexity {s['perplexity']:.1f}, "
                     f"BLEU {s.get('bleu', float('nan')):.1f}, chrF {s.get('chrf', float('nan')):.1f} "
                     f"on {s.get('answers', 0)} answers")
    for q, a in result.get("chat", []):
        lines.append(f"Q: {q}\nA: {a}")
    for s in result.get("samples", []):
        lines.append("» " + s.replace("\n", "\n  "))
    return lines
