"""The yardstick of bench/speedrun.py: nanoGPT's model and training loop, re-implemented minimally.

Written from nanoGPT's public description (Karpathy's ``model.py`` and ``train.py``), not copied:

* model: GPT-2 blocks, pre-norm ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``; learned absolute
  positions; LayerNorm with bias; multi-head causal self-attention through one fused q/k/v linear
  layer and PyTorch's scaled-dot-product attention; a GELU MLP 4× wide; biases on every linear
  layer except the output; the output layer tied to the token embedding; weights drawn from
  N(0, 0.02), biases zero, and the two projections that write into the residual stream
  (``c_proj``) drawn with std 0.02 / sqrt(2 · n_layer); dropout 0;
* loop: nanoGPT's ``get_batch`` (``batch_size`` windows of ``block_size + 1`` tokens starting at
  uniformly random offsets of the train token file), AdamW with betas (0.9, 0.95) and weight decay
  0.1 on the parameters of 2 or more dimensions only (matrices and embeddings; not biases nor
  LayerNorm gains), fused only on CUDA as nanoGPT does, the global gradient norm clipped at 1.0,
  a linear warmup then a cosine decay to lr / 10, bf16 autocast, ``torch.compile``.

**One change, the budget.** nanoGPT schedules by a number of iterations fixed in advance; a
speedrun gives a wall-clock budget. So, as our trainer does with ``train.max_minutes``, the
schedule follows the clock: warmup by steps (nanoGPT's ``(it + 1) / (warmup + 1)``), then half a
cosine over the share of the budget left after warmup, and the loop stops before a step that
would end past the budget (predicted as our trainer predicts it: the median of the last steps'
durations, or the last one if shorter). The clock starts right before the first step, where our
trainer's budget starts (``Trainer.fit``): model construction and the ``torch.compile`` wrapper
come before it, the compilation itself (done during the first steps) inside it, in both. Our
trainer's budget also pays for its final checkpoint (a second or so); the yardstick saves none.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable

# isort: off
import causette  # noqa: F401  (first: OpenMP's thread settings before torch starts)
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
# isort: on


@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int = 256
    n_layer: int = 6
    n_embd: int = 384
    n_head: int = 0  # 0: one head per 64 channels
    bias: bool = True

    def __post_init__(self):
        if self.n_head == 0:
            self.n_head = max(1, self.n_embd // 64)
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")


def parameter_counts(cfg: GPTConfig) -> dict[str, int]:
    """GPT-2's parameter count from its shape: per block ``12·d² + 13·d`` (two LayerNorms 4d, q/k/v
    3d² + 3d, output d² + d, MLP 8d² + 5d), a final LayerNorm 2d, token and position embeddings
    ``(V + T)·d``, the output layer tied (no parameter of its own). ``non_embedding`` leaves the
    two embeddings out (our counting's convention, causette/model/counting.py)."""
    d = cfg.n_embd
    block = 12 * d * d + (13 * d if cfg.bias else 2 * d)  # without biases: the two LayerNorms' gains only
    non_embedding = cfg.n_layer * block + (2 * d if cfg.bias else d)
    embedding = (cfg.vocab_size + cfg.block_size) * d
    return {"total": non_embedding + embedding, "non_embedding": non_embedding}


class SelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in self.c_attn(x).split(C, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = SelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.h = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # the residual writers: their sum grows with depth
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """``(logits (B, T, V), loss)``; the loss is None without ``targets``. (nanoGPT returns only
        the last position's logits without targets; scoring text needs them all.)"""
        T = idx.size(1)
        if T > self.config.block_size:
            raise ValueError(f"a sequence of {T} tokens is longer than the context ({self.config.block_size})")
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)


class ForScoring(nn.Module):
    """The thin adapter our evaluation needs (causette/eval/metrics.py, sentence_scores.py): a
    model called on token ids that returns ``(logits, _)`` and says its context in ``.cfg.block_size``."""

    def __init__(self, model: GPT):
        super().__init__()
        self.model = model
        self.cfg = model.config

    def forward(self, idx: torch.Tensor):
        return self.model(idx)[0], None


def make_optimizer(model: nn.Module, lr: float, weight_decay: float = 0.1, betas=(0.9, 0.95),
                   device_type: str = "cpu") -> torch.optim.AdamW:
    """AdamW, weight decay on the parameters of 2 or more dimensions only (the tied matrix once)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=device_type == "cuda" or None)


def get_batch(data: np.ndarray, block_size: int, batch_size: int, generator: torch.Generator):
    """nanoGPT's batch: ``batch_size`` random windows of the token file, inputs and targets shifted by one."""
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator).tolist()
    x = torch.stack([torch.from_numpy(np.asarray(data[i : i + block_size], dtype=np.int64)) for i in ix])
    y = torch.stack([torch.from_numpy(np.asarray(data[i + 1 : i + 1 + block_size], dtype=np.int64)) for i in ix])
    return x, y


class ClockSchedule:
    """nanoGPT's learning rate with time in place of iterations: warmup over ``warmup`` steps, then
    half a cosine from ``lr`` to ``min_lr`` over the budget left after warmup. ``stop`` says whether
    one more step (as long as the median of the last ten, or the last if shorter) would end past the budget."""

    def __init__(self, seconds: float, lr: float, min_lr: float, warmup: int):
        self.seconds, self.lr, self.min_lr, self.warmup = seconds, lr, min_lr, warmup
        self.warm_end: float | None = None  # elapsed seconds when warmup ended
        self.recent: list[float] = []

    def lr_at(self, step: int, elapsed: float) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / (self.warmup + 1)
        if self.warm_end is None:
            self.warm_end = elapsed
        progress = min(max((elapsed - self.warm_end) / max(self.seconds - self.warm_end, 1e-9), 0.0), 1.0)
        return self.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (self.lr - self.min_lr)

    def record(self, seconds: float) -> None:
        self.recent = (self.recent + [seconds])[-10:]

    def stop(self, elapsed: float) -> bool:
        # as our trainer (schedule.TimeBudget): the last step's own duration when shorter than the
        # median, so that the first steps, which pay for compilation, do not end a run early
        step = min(statistics.median_low(self.recent), self.recent[-1]) if self.recent else 0.0
        return elapsed + step > self.seconds


@dataclass
class Trained:
    model: GPT  # the raw module (not the compiled wrapper)
    steps: int
    tokens: int
    seconds: float  # of the budget, compilation included
    last_loss: float


def train(cfg: GPTConfig, data: np.ndarray, seconds: float, *, lr: float = 1e-3, batch_size: int = 16,
          warmup: int = 100, compile: bool = True, bf16: bool = True, seed: int = 1337,
          max_steps: int | None = None, log: Callable[[str], None] | None = None, log_every: int = 50) -> Trained:
    """Train a fresh :class:`GPT` on the token array ``data`` for ``seconds`` of wall clock (or
    ``max_steps``, whichever comes first), on the CPU."""
    torch.manual_seed(seed)
    model = GPT(cfg)
    optimizer = make_optimizer(model, lr)
    step_model = torch.compile(model) if compile else model
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    generator = torch.Generator().manual_seed(seed)
    schedule = ClockSchedule(seconds, lr, lr / 10, warmup)
    model.train()
    step, loss_value = 0, math.nan
    start = time.monotonic()
    while (max_steps is None or step < max_steps) and not schedule.stop(time.monotonic() - start):
        t0 = time.monotonic()
        for group in optimizer.param_groups:
            group["lr"] = schedule.lr_at(step, t0 - start)
        x, y = get_batch(data, cfg.block_size, batch_size, generator)
        with autocast:
            _, loss = step_model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = float(loss.detach())
        step += 1
        schedule.record(time.monotonic() - t0)
        if log is not None and step % log_every == 0:
            elapsed = time.monotonic() - start
            log(f"nanogpt step {step}: loss {loss_value:.3f}, lr {optimizer.param_groups[0]['lr']:.2e}, "
                f"{step * batch_size * cfg.block_size / elapsed:,.0f} tokens/s, {elapsed:.0f}/{seconds:.0f} s")
    used = time.monotonic() - start
    return Trained(model, step, step * batch_size * cfg.block_size, used, loss_value)

