"""How well an SFT model answers: held-out loss on the assistant tokens, and greedy answers
scored with BLEU and chrF (sacrebleu) against the references.

The same functions serve ``causette sft`` (before / after table), ``causette eval --sft`` and the
report; :func:`greedy_answers` is also what ``causette eval`` uses for a chat model's samples.
"""

from __future__ import annotations

import math

import torch

from causette.data.chat_template import render_chat
from causette.inference.engine import Engine
from causette.inference.sampling import SamplingParams
from causette.model.layers import lm_loss
from causette.sft.data import Conversation


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


def greedy_answers(model, tokenizer, conversations: list[list[dict]], max_new_tokens: int, batch: int = 16) -> list[str]:
    """The model's greedy reply to each conversation (which ends with a user turn).

    A conversation longer than the context keeps its end (the question, and the
    ``<|im_start|>assistant\\n`` that asks for the reply); replies stop at any special token.
    """
    was = model.training
    model.eval()
    engine = Engine(model, tokenizer)
    block = model.cfg.block_size
    max_new = max(1, min(max_new_tokens, block // 2))
    params = SamplingParams(temperature=0.0, max_new_tokens=max_new, stop_token_ids=engine.special_ids)
    prompts = [render_chat(tokenizer, conv, add_generation_prompt=True, tools=getattr(conv, "tools", None))[0]
               [-(block - max_new):] for conv in conversations]
    answers = []
    for i in range(0, len(prompts), batch):
        answers += [g.text.strip() for g in engine.generate(prompts[i : i + batch], params)]
    model.train(was)
    return answers


def answer_scores(model, tokenizer, conversations: list[list[dict]], max_new_tokens: int, batch: int = 16) -> dict:
    """BLEU and chrF of greedy answers to the last user turn, against the references."""
    import sacrebleu

    questions, refs = [], []
    for conv in conversations:
        last = max(i for i, m in enumerate(conv) if m["role"] == "assistant")
        question = Conversation(conv[:last])
        question.tools = getattr(conv, "tools", None)
        questions.append(question)
        refs.append(conv[last]["content"].strip())
    hyps = greedy_answers(model, tokenizer, questions, max_new_tokens, batch)
    if not hyps:
        return {}
    return {
        "bleu": sacrebleu.corpus_bleu(hyps, [refs]).score,
        "chrf": sacrebleu.corpus_chrf(hyps, [refs]).score,
        "exact": sum(h == r for h, r in zip(hyps, refs)) / len(hyps),
        "answers": len(hyps),
        "examples": [{"reference": r, "answer": h} for r, h in list(zip(refs, hyps))[:5]],
    }


def evaluate_sft(model, tokenizer, val_batches, val_convs, sc, device) -> dict:
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
