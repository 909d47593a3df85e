"""Loss, perplexity and bits per byte: the numbers a language model is judged by.

* **loss**: mean cross-entropy per predicted *token*, in nats (natural log).
* **perplexity**: ``exp(loss)``, "as uncertain as a choice among N tokens".
* **bits per byte**: the total information ``Σ -log2 p(token)`` divided by the number of UTF-8
  bytes those tokens spell. A loss per token depends on how much text a token holds (a
  16k-token BPE packs ~4 bytes a token, a character model ~1), so per-token losses of two
  tokenizers cannot be compared — a seed project mistook exactly that for a "plateau". Bits per
  byte can: it is what the model pays to compress the *text*, whatever the tokenizer.

Special tokens (``<|bos|>``…) spell no text: they count 0 bytes, but their loss is counted,
so bits per byte is slightly pessimistic, never flattering.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
import torch.nn.functional as F


def token_byte_lengths(tokenizer) -> torch.Tensor:
    """UTF-8 bytes spelled by each token id (0 for special tokens), as a float tensor."""
    lengths = np.zeros(tokenizer.vocab_size, dtype=np.float64)
    for i in range(tokenizer.vocab_size):
        if not tokenizer.is_special(i):
            lengths[i] = len(tokenizer.token_bytes(i))
    return torch.from_numpy(lengths)


def bits_per_byte(total_nats: float, total_bytes: float) -> float:
    return total_nats / (math.log(2) * total_bytes) if total_bytes else float("nan")


@torch.no_grad()
def evaluate_windows(
    model: torch.nn.Module,
    windows: torch.Tensor,
    byte_lengths: torch.Tensor,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    autocast: contextlib.AbstractContextManager | None = None,
) -> dict[str, float]:
    """Loss, perplexity and bits per byte of ``model`` on ``windows`` ``(n, T+1)`` token rows."""
    was_training = model.training
    model.eval()
    total_nats, total_tokens, total_bytes = 0.0, 0, 0.0
    for start in range(0, len(windows), batch_size):
        rows = windows[start : start + batch_size].to(device)
        x, y = rows[:, :-1], rows[:, 1:]
        with autocast or contextlib.nullcontext():
            logits, _ = model(x)
        nats = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum")
        total_nats += float(nats)
        total_tokens += y.numel()
        total_bytes += float(byte_lengths[y.cpu()].sum())
    model.train(was_training)
    loss = total_nats / max(total_tokens, 1)
    return {
        "loss": loss,
        "perplexity": math.exp(min(loss, 50.0)),
        "bits_per_byte": bits_per_byte(total_nats, total_bytes),
        "tokens": float(total_tokens),
        "bytes_per_token": total_bytes / max(total_tokens, 1),
    }


def unigram_bits_per_byte(train_tokens: np.ndarray, val_tokens: np.ndarray, byte_lengths: torch.Tensor) -> float:
    """Bits per byte of the best context-free model: each token with its train frequency.

    Add-one smoothing keeps unseen val tokens finite. A model that does not beat this has
    learned nothing beyond token frequencies.
    """
    vocab = len(byte_lengths)
    counts = np.ones(vocab, dtype=np.float64)
    for start in range(0, len(train_tokens), 1 << 24):  # chunks: memory stays flat on big data
        chunk = np.asarray(train_tokens[start : start + (1 << 24)], dtype=np.int64)
        counts += np.bincount(chunk, minlength=vocab)[:vocab]
    logp = np.log(counts / counts.sum())
    val = np.asarray(val_tokens, dtype=np.int64)
    nats = -logp[val].sum()
    return bits_per_byte(float(nats), float(byte_lengths.numpy()[val].sum()))
