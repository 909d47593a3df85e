"""``causette eval``: measure a checkpoint on any text, corpus, or instruction set.

    causette eval --checkpoint runs/demo                    # the run's val split (bits per byte)
    causette eval --checkpoint runs/demo --data livre.txt   # any text file(s) or a corpus folder
    causette eval --checkpoint runs/demo/sft --sft data/sft_demo.jsonl.gz   # + BLEU / chrF
    causette eval --checkpoint runs/demo --suite grammaire  # grammar by minimal pairs (grammar.py)
    causette eval --checkpoint runs/assistant/sft --suite outils   # tool use (tools.py)

Text files and folders given with ``--data`` are read as the corpus stage reads its sources
(so a Project Gutenberg header is dropped, a TEI play rendered) and cleaned with the *run's own*
corpus settings (``NBSP`` → space, ``’`` → ``'``, NFC…, as recorded in its corpus manifest):
the model is scored on text written the way it was trained on, and the val documents give the
trainer's own val bits per byte. ``--raw`` scores the files' bytes as given.

Texts are tokenised with the checkpoint's own tokenizer, each document starting with
``<|bos|>`` as in training, and cut into windows of the model's context; the numbers are the
same as the trainer's (causette/eval/metrics.py), so they compare with its curves. Bits per
byte always divide by the UTF-8 bytes actually scored (after cleaning, unless ``--raw``).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from causette.checkpoint.files import state_path
from causette.checkpoint.load import load_checkpoint
from causette.checkpoint.steps import read_state
from causette.config import from_dict
from causette.corpus.config import NormalizeConfig, SourceConfig
from causette.corpus.document import Report
from causette.corpus.normalize import normalize
from causette.corpus.sources import read_source
from causette.corpus.store import iter_texts, read_manifest
from causette.errors import CausetteError
from causette.eval.metrics import evaluate_windows, token_byte_lengths
from causette.eval.minimal_pairs import fixed_subset, read_pair_files
from causette.eval.tools import evaluate_tools, format_tools
from causette.inference.engine import sample_texts
from causette.sft.data import eval_batches, load_conversations
from causette.sft.metrics import answer_scores, greedy_answers, sft_loss
from causette.tokenizer.special import supports_tools
from causette.utils.paths import RunLayout

DEFAULT_SETTINGS = "the default corpus settings"  # where run_normalize_config found nothing better
DEFAULT_PROMPTS = ["Il était une fois", "La marquise sortit", "ALCESTE.\n", "Le soleil se levait sur"]


def _read_texts(paths: list[str | Path], normalize_cfg=None) -> tuple[list[str], dict]:
    """The texts of ``paths``, and how they were read: ``{"text": "normalised"|"raw"|"corpus val split", ...}``.

    A corpus folder gives its val split (already clean). A file or folder is read by the corpus
    readers and cleaned with ``normalize_cfg`` (a :class:`NormalizeConfig`); with None, each
    file's bytes are decoded as UTF-8 and scored as they are (``--raw``).
    """
    texts: list[str] = []
    kinds: set[str] = set()
    input_bytes = 0
    for p in map(Path, paths):
        if p.is_dir() and (p / "manifest.json").is_file():
            texts += list(iter_texts(p, "val"))
            kinds.add("corpus val split")
        elif not p.exists():
            raise CausetteError(f"{p}: no such file or corpus folder")
        elif normalize_cfg is None:
            if not p.is_file():
                raise CausetteError(f"{p}: --raw reads files, not folders")
            opener = gzip.open if p.suffix == ".gz" else open
            try:
                with opener(p, "rt", encoding="utf-8") as f:
                    texts.append(f.read())
            except (OSError, UnicodeDecodeError, EOFError) as e:
                raise CausetteError(f"{p}: cannot read as UTF-8 text ({e})") from None
            input_bytes += len(texts[-1].encode("utf-8"))
            kinds.add("raw")
        else:
            for doc in read_source(SourceConfig(path=str(p)), Report(strict=True)):
                input_bytes += len(doc.text.encode("utf-8"))
                texts.append(normalize(doc.text, normalize_cfg, doc.kind))
            kinds.add("normalised")
    if not any(t.strip() for t in texts):
        raise CausetteError(f"{', '.join(map(str, paths))}: no text to evaluate")
    info = {"text": " + ".join(sorted(kinds))}
    if input_bytes:
        info["input_bytes"] = input_bytes
    return texts, info


def run_normalize_config(ckpt: Path, run: Path | None):
    """The corpus cleaning settings the model was trained with, and where they were found.

    The run's corpus manifest first (what the data was built with), else the config saved in
    the checkpoint's ``state.json``, else the defaults.
    """
    if run is not None and RunLayout(run).corpus_manifest.is_file():
        layout = RunLayout(run)
        settings = read_manifest(layout.corpus).get("config", {}).get("normalize")
        if isinstance(settings, dict):
            return from_dict(NormalizeConfig, settings, where=str(layout.corpus_manifest)), str(layout.corpus)
    try:
        settings = read_state(ckpt).get("config", {}).get("corpus", {}).get("normalize")
    except (CausetteError, AttributeError):
        settings = None
    if isinstance(settings, dict):
        return from_dict(NormalizeConfig, settings, where=str(state_path(ckpt))), str(state_path(ckpt))
    return NormalizeConfig(), DEFAULT_SETTINGS


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
    return sample_texts(model, tokenizer, prompts, max_new_tokens=max_new_tokens, seed=seed)


def chat_samples(model, tokenizer, questions: list[str], max_new_tokens: int = 60) -> list[tuple[str, str]]:
    """Greedy answers of a chat model to single questions (for reports)."""
    answers = greedy_answers(model, tokenizer, [[{"role": "user", "content": q}] for q in questions], max_new_tokens)
    return list(zip(questions, answers))


def run_eval(checkpoint: str | Path, data: list[str] | None = None, sft: list[str] | None = None,
             max_tokens: int = 131072, prompts: list[str] | None = None, device: str = "auto",
             raw: bool = False, pairs: list[str] | None = None, suites: list[str] | None = None,
             grammar_limit: int | None = None, with_val: bool = False, tools: bool | None = None) -> dict:
    """Everything ``causette eval`` prints, as a dict (also used by ``causette run``).

    ``raw``: score the ``data`` files as given instead of cleaning them like the run's corpus.
    ``pairs`` (BLiMP-style files) and ``suites`` (``"grammaire"``): minimal pairs (grammar.py);
    given alone, they are all that is measured (no val split, no samples) unless ``with_val``.
    ``grammar_limit``: score a fixed subset of about that many pairs (the same share of each
    phenomenon) instead of all of them. ``tools``: measure tool use (tools.py; the ``outils``
    suite); None: for a chat model trained with tools.
    """
    if suites and "outils" in suites:
        suites = [s for s in suites if s != "outils"]
        tools = True
    grammar_sources = grammar_pairs = None
    if pairs or suites:  # read and checked before the model is loaded: a bad line fails at once
        from causette.eval.grammar import pair_sources  # deferred: eval/grammar.py imports this module

        grammar_sources = pair_sources(pairs, suites)
        grammar_pairs = read_pair_files(grammar_sources)
        if grammar_limit:
            grammar_pairs = fixed_subset(grammar_pairs, grammar_limit)
    loaded = load_checkpoint(checkpoint, device=device, precision="fp32")
    model, tok = loaded.model, loaded.tokenizer
    out: dict = {"checkpoint": str(loaded.path), "stage": loaded.stage}
    run = _run_dir_of(loaded.path)
    if tools or (tools is None and loaded.trained_with_tools):
        if not (loaded.is_chat_model and supports_tools(tok)):
            raise CausetteError(f"{loaded.path}: tool use needs a chat model whose tokenizer has the tool tokens "
                                "(causette run assistant makes one)")
        out["tools"] = evaluate_tools(model, tok)
    if grammar_sources:
        from causette.eval.grammar import evaluate_grammar  # deferred: a cycle (see above)

        norm, norm_from = run_normalize_config(loaded.path, run)
        out["grammar"] = evaluate_grammar(model, tok, grammar_sources, norm, norm_from, run, pairs=grammar_pairs)
    if (grammar_sources or tools) and not data and not sft and not with_val:
        return out
    if data:
        sources = data
    else:  # the val split of the run that produced this checkpoint
        sources = [RunLayout(run).corpus] if run is not None and _has_val(RunLayout(run).corpus) else []
    if sources:
        norm, norm_from = (None, "") if raw else run_normalize_config(loaded.path, run)
        texts, info = _read_texts(sources, norm)
        if norm is not None and "normalised" in info["text"]:
            info["normalize_from"] = norm_from
        out["text"] = {"sources": [str(s) for s in sources], **info, **evaluate_text(model, tok, texts, max_tokens)}
    if sft:
        convs = load_conversations(sft)
        batches = eval_batches(tok, convs, model.cfg.block_size, 8)
        out["sft"] = {**sft_loss(model, batches, next(model.parameters()).device),
                      **answer_scores(model, tok, convs[:64], max_new_tokens=48)}
    if loaded.is_chat_model:
        out["chat"] = chat_samples(model, tok, ["Qui a écrit « Le Misanthrope » ?", "Bonjour ! Qui es-tu ?"])
    else:
        out["samples"] = samples(model, tok, prompts or DEFAULT_PROMPTS)
    return out


def _has_val(corpus: Path) -> bool:
    if not (corpus / "manifest.json").is_file():
        return False
    return bool(read_manifest(corpus).get("split", {}).get("val"))


def _run_dir_of(ckpt: Path) -> Path | None:
    """``runs/<name>`` for ``runs/<name>/checkpoints/step_…`` or ``runs/<name>/sft/checkpoints/step_…``."""
    layout = RunLayout.find(ckpt)
    return layout.root if layout is not None else None


def format_eval(result: dict) -> list[str]:
    lines = [f"checkpoint {result['checkpoint']} (stage {result['stage']})"]
    if "text" in result:
        t = result["text"]
        scored = int(round(t["tokens"] * t["bytes_per_token"]))
        what = {"raw": "the raw bytes of the files (--raw)",
                "normalised": f"the text cleaned like the run's corpus ({t.get('normalize_from', '')})",
                "corpus val split": "the corpus val split"}.get(t.get("text", ""), t.get("text", "the text"))
        lines.append(f"text: loss {t['loss']:.4f} nats/token, perplexity {t['perplexity']:.1f}, "
                     f"{t['bits_per_byte']:.4f} bits/byte over {int(t['tokens']):,} tokens "
                     f"({t['bytes_per_token']:.2f} bytes/token)")
        lines.append(f"  bytes scored: {scored:,} UTF-8 bytes of {what}"
                     + (f" ({t['input_bytes']:,} bytes read; --max-tokens caps what is scored)" if t.get("input_bytes") else ""))
    if "sft" in result:
        s = result["sft"]
        lines.append(f"sft: loss {s['loss']:.4f}, perplexity {s['perplexity']:.1f}, "
                     f"BLEU {s.get('bleu', float('nan')):.1f}, chrF {s.get('chrf', float('nan')):.1f} "
                     f"on {s.get('answers', 0)} answers")
    if "grammar" in result:
        from causette.eval.grammar import format_grammar  # deferred: a cycle (see above)

        lines += format_grammar(result["grammar"])
    if "tools" in result:
        lines += format_tools(result["tools"])
    for q, a in result.get("chat", []):
        lines.append(f"Q: {q}\nA: {a}")
    for s in result.get("samples", []):
        lines.append("» " + s.replace("\n", "\n  "))
    return lines
