"""The model: token embedding, ``n_layer`` pre-norm blocks, final norm, output layer.

    idx (B, T) ──wte──▶ x (+ learned/sinusoidal positions) ──dropout──▶
        for each block:  x = x + attn(norm1(x))      (RoPE is applied inside attention)
                         x = x + mlp(norm2(x))       (dense MLP or Mixture-of-Experts)
    ──norm_f──▶ lm_head ──▶ logits (B, T, vocab_size)   [optionally soft-capped]

The parts are in layers.py (norms, positions, MLP, loss), attention.py and kvcache.py; this file builds
the initial weights and assembles the blocks. The progression's switches (config.py) take parts
out: ``n_layer: 0`` leaves embedding → norm_f → lm_head (a bigram model), ``mixer: window``
puts a fixed window of previous tokens (window.py) where attention was, ``mlp: none`` drops the
MLP half of each block. Three ways to call the model:

* ``model.logits(idx, cache=None, last_only=False)``: the scores ``(B, T, V)`` (generation);
* ``model.loss(idx, targets)``: what training minimises (below);
* ``model(idx, targets=None, cache=None)`` returns ``(logits, loss)``, both of the above (the
  form ``torch.compile`` and DistributedDataParallel wrap);
* ``model.step(tokens, positions, cache)``: one new token per row, each row of the cache at its
  own position, the logits ``(B, V)``: generation's decoding step, for every backend (the
  compiled ones compile this very method; causette/inference/backends/).

* ``loss`` is None without ``targets``; with them, the mean cross-entropy over the target
  positions that are not ``-100`` (``IGNORE_INDEX``: SFT masks the prompt this way), **plus**, for
  a MoE model, ``moe_aux_coef · aux + moe_z_coef · z`` (each averaged over the MoE layers). That
  sum is what training minimises.
* After every forward, ``model.last_stats`` holds detached tensors for logging: ``lm_loss`` (the
  cross-entropy alone: use it for perplexity and bits per byte), and with MoE ``moe_aux``,
  ``moe_z`` and ``expert_load`` ``(n_moe_layers, n_experts)``, the fraction of assignments
  each expert received.
* ``cache``: a :class:`KVCache` (``model.new_cache(B)``); positions start at ``cache.pos`` and the
  cache advances by ``T``. See kvcache.py.
"""

from __future__ import annotations

import copy
import itertools
import math

import torch
import torch.nn as nn

from causette.errors import CausetteError
from causette.model import chunked_loss
from causette.model.config import ModelConfig
from causette.model.attention import CausalSelfAttention, RowPositions
from causette.model.kvcache import KVCache
from causette.model.layers import (
    MLP,
    LearnedPositions,
    Rotary,
    SinusoidalPositions,
    lm_loss,
    make_norm,
)
from causette.model.moe import MoE
from causette.model.window import WindowMixer


# ==============================================================================
# The initial weights: GPT-2 style
#
# The rules (``std = cfg.init_std``, 0.02 by default, as in GPT-2):
#
# * every matrix (linear layers, the token and position embeddings, MoE routers) is drawn from
#   a normal distribution ``N(0, std²)``;
# * except the two matrices of each block that **write into the residual stream**, the attention
#   output ``attn.proj`` and each MLP's ``down`` (experts' included): ``N(0, (std/√(2·n_layer))²)``.
#   The residual stream is the sum of ``2·n_layer`` such contributions; shrinking each by
#   ``√(2·n_layer)`` keeps the variance of that sum independent of depth at the start (with
#   ``mlp: none`` there are ``n_layer`` of them; the window mixer's ``mix.proj`` counts as one);
# * biases start at 0, norm scales (LayerNorm, RMSNorm, QK-norm) at 1.
#
# With tied embeddings the output layer *is* the token embedding, initialised once.
# The generator is PyTorch's global one: ``torch.manual_seed`` before building the model makes
# the initial weights reproducible.
# ==============================================================================


RESIDUAL_PROJECTIONS = ("attn.proj.weight", "mix.proj.weight", "down.weight")


@torch.no_grad()
def init_weights(model: nn.Module, std: float, n_layer: int, writers_per_block: int = 2) -> None:
    """(Re)initialise every parameter of ``model`` in place by the rules above
    (``writers_per_block``: layers of a block that add to the residual stream)."""
    resid_std = std / math.sqrt(max(1, writers_per_block * n_layer))
    for name, p in model.named_parameters():  # a tied weight appears once
        if p.dim() >= 2:
            nn.init.normal_(p, mean=0.0, std=resid_std if name.endswith(RESIDUAL_PROJECTIONS) else std)
        elif name.endswith("bias"):
            nn.init.zeros_(p)
        else:  # the scale of a norm
            nn.init.ones_(p)


class Block(nn.Module):
    """One pre-norm Transformer block: attention then MLP, each added to the residual stream.

    ``mixer: window`` puts a :class:`WindowMixer` (``self.mix``) where attention (``self.attn``)
    was; ``mlp: none`` leaves ``norm2`` and ``mlp`` out (both None)."""

    def __init__(self, cfg: ModelConfig, layer_idx: int, cpu_kernels: bool = False):
        super().__init__()
        self.norm1 = make_norm(cfg)
        if cfg.mixer == "window":
            self.attn, self.mix = None, WindowMixer(cfg)
        else:
            self.attn, self.mix = CausalSelfAttention(cfg, layer_idx, cpu_kernels), None
        self.norm2, self.mlp = None, None
        if cfg.mlp != "none":
            self.norm2 = make_norm(cfg)
            self.mlp = MoE(cfg) if cfg.n_experts else MLP(cfg)

    def forward(self, x, rope=None, cache=None) -> tuple[torch.Tensor, dict | None]:
        x = x + (self.attn or self.mix)(self.norm1(x), rope, cache)
        return self._mlp_half(x)

    def step(self, x, rope, k_cache, v_cache, at) -> torch.Tensor:
        """The one-token step (:meth:`Transformer.step`): attention's step case, then the MLP."""
        x = x + self.attn.step(self.norm1(x), rope, k_cache, v_cache, at)
        return self._mlp_half(x)[0]

    def _mlp_half(self, x) -> tuple[torch.Tensor, dict | None]:
        if self.mlp is None:
            return x, None
        if isinstance(self.mlp, MoE):
            h, stats = self.mlp(self.norm2(x))
            return x + h, stats
        return x + self.mlp(self.norm2(x)), None


class Transformer(nn.Module):
    """A decoder-only language model configured by a :class:`ModelConfig`."""

    def __init__(self, cfg: ModelConfig, cpu_kernels: bool = False):
        """``cpu_kernels``: for bf16 training on a CPU with ``torch.compile``, use Causette's own
        attention backward (cpu_attention.py) and chunked LM-head loss (chunked_loss.py), chosen
        here once; off, the model is the plain reference computation everywhere."""
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.cpu_kernels = cpu_kernels
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        # Absolute positions are added to the embeddings; RoPE acts inside attention instead.
        self.positions = None
        if cfg.pos == "learned":
            self.positions = LearnedPositions(cfg)
        elif cfg.pos == "sinusoidal":
            self.positions = SinusoidalPositions(cfg)
        self.rotary = Rotary(cfg) if cfg.pos == "rope" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, i, cpu_kernels) for i in range(cfg.n_layer))
        self.norm_f = make_norm(cfg)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.wte.weight  # one matrix: reading and writing tokens
        init_weights(self, cfg.init_std, cfg.n_layer, writers_per_block=1 if cfg.mlp == "none" else 2)
        self.last_stats: dict[str, torch.Tensor] = {}

    @property
    def supports_cache(self) -> bool:
        """Whether generation can use a KV cache: only attention keeps keys and values. A bigram
        (``n_layer: 0``) or window-mixer model is recomputed over its context at each token."""
        return self.cfg.uses_attention

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, cache: KVCache | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``idx`` ``(B, T)`` token ids → ``(logits (B, T, V), loss)``: :meth:`logits`, and with
        ``targets`` :meth:`loss` too. (Training calls the model itself, so that ``torch.compile``
        and DistributedDataParallel see the call; with this model's ``cpu_kernels`` the loss is
        then computed without the logits, returned as None.)"""
        if targets is None:
            return self.logits(idx, cache), None
        x, moe_stats = self.trunk(idx)
        self.last_stats = {}
        if self._fused_loss_applies(x):
            loss = chunked_loss.lm_head_loss(x, self.lm_head.weight, targets)
            logits = None
        else:
            logits = self._head(x)
            loss = lm_loss(logits, targets)
        self.last_stats["lm_loss"] = loss.detach()
        return logits, self._add_moe_losses(loss, moe_stats)

    def logits(self, idx: torch.Tensor, cache: KVCache | None = None, last_only: bool = False) -> torch.Tensor:
        """A score per vocabulary entry for the token after each position: ``(B, T, V)``.

        ``cache``: continue from the keys and values it holds (generation). ``last_only``: the
        last position's scores only, ``(B, 1, V)``, all that generation needs.
        """
        x, moe_stats = self.trunk(idx, cache)
        self.last_stats = {}
        self._add_moe_losses(None, moe_stats)
        return self._head(x[:, -1:] if last_only else x)

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the next token over the targets that are not ``IGNORE_INDEX``
        (plus the MoE balancing terms): what training minimises."""
        return self.forward(idx, targets)[1]

    def trunk(self, idx: torch.Tensor, cache: KVCache | None = None) -> tuple[torch.Tensor, list[dict]]:
        """Embeddings, positions and every block, then the final norm: ``(B, T, n_embd)``, and
        the MoE layers' statistics."""
        B, T = idx.shape
        # region doc:cache-offset
        offset = 0
        if cache is not None:
            cache.check(B, T)
            offset = cache.pos
        if offset + T > self.cfg.block_size:
            raise CausetteError(
                f"sequence of {offset + T} tokens is longer than the model's block_size {self.cfg.block_size}"
            )

        # region doc:embedding-lookup
        x = self.wte(idx)
        if self.positions is not None:
            x = x + self.positions(T, offset)
        # endregion doc:embedding-lookup
        x = self.drop(x)
        rope = self.rotary(T, offset) if self.rotary is not None else None
        # endregion doc:cache-offset
        moe_stats = []
        # region doc:blocks-and-final-norm
        for block in self.blocks:
            x, stats = block(x, rope, cache)
            if stats is not None:
                moe_stats.append(stats)
        if cache is not None:
            cache.advance(T)
        return self.norm_f(x), moe_stats
        # endregion doc:blocks-and-final-norm

    # region doc:model-step
    def step(self, tokens: torch.Tensor, positions: torch.Tensor | None, cache: KVCache) -> torch.Tensor:
        """One new token per row: row ``b`` of ``cache`` reads ``tokens[b]`` at position
        ``positions[b]`` (default: the row's length), ``(B,)`` each; returns the logits of the
        next token ``(B, V)`` in float32. Rows may sit at different positions (continuous
        batching); afterwards row ``b`` holds ``positions[b] + 1`` positions."""
        if positions is None:
            positions = torch.tensor(cache.lengths, dtype=torch.long, device=tokens.device)
        if tokens.shape[0] != cache.batch_size or positions.shape[0] != cache.batch_size:
            raise CausetteError(f"KV cache was made for batch size {cache.batch_size}, got {tokens.shape[0]}")
        ends = (positions + 1).tolist()
        ks, vs = cache.k, cache.v
        span = max(ends)
        if span < ks[0].shape[2]:
            # Eagerly, only the slots up to the furthest row are read (the rest is hidden anyway):
            # the shapes then change with the positions, which costs nothing here and saves
            # reading empty slots (a third of a step at batch 8; bench/LOG.md). A ring buffer that
            # has not wrapped yet holds position p in slot p too. Compilers trace step_kv.
            ks, vs = [t[:, :, :span] for t in ks], [t[:, :, :span] for t in vs]
        logits = self.step_kv(tokens, positions, ks, vs)
        cache.set_lengths(ends)
        return logits

    def step_kv(self, tokens: torch.Tensor, positions: torch.Tensor, ks: list, vs: list) -> torch.Tensor:
        """:meth:`step` on the cache's tensors (one ``(B, n_kv_head, L, head_dim)`` key and value
        tensor per layer, written in place): tensors in, tensors out, the form a compiler traces.
        The same arithmetic as :meth:`logits` for one token, except that attention reads all
        ``L`` slots with a mask (``RowPositions``)."""
        x = self.wte(tokens)[:, None, :]  # (B, 1, C)
        if self.positions is not None:  # learned or sinusoidal: the table row of each row's position
            x = x + self.positions.at(positions)[:, None, :]
        rope = self.rotary.at(positions) if self.rotary is not None else None
        at = RowPositions(positions, ks[0].shape[2], self.cfg.sliding_window)
        for block, k_cache, v_cache in zip(self.blocks, ks, vs):
            x = block.step(x, rope, k_cache, v_cache, at)
        return self._head(self.norm_f(x))[:, 0].float()
    # endregion doc:model-step

    def twin(self, linear=None, sum_attention: bool = False) -> "Transformer":
        """A copy of this model that shares every weight tensor, arranged for a compiler: each
        plain ``nn.Linear`` replaced by ``linear(layer)`` when given (another way to compute the
        same product), and the step's attention in its sum form when ``sum_attention``
        (attention.py, ``attention_sums``). The arithmetic stays this model's."""
        shared = {id(t): t for t in itertools.chain(self.parameters(), self.buffers())}
        copy_ = copy.deepcopy(self, shared)
        for module in list(copy_.modules()):
            if sum_attention and isinstance(module, CausalSelfAttention):
                module.sum_form = True
            for name, child in list(module.named_children()):
                if linear is not None and type(child) is nn.Linear:
                    setattr(module, name, linear(child))
        return copy_

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.lm_head(x)
        if self.cfg.logit_softcap is not None:
            cap = self.cfg.logit_softcap
            logits = cap * torch.tanh(logits.float() / cap)
        return logits

    def _fused_loss_applies(self, x: torch.Tensor) -> bool:
        """The chunked LM-head loss (no logits in memory) replaces head + cross-entropy when this
        model was built with ``cpu_kernels`` and the run is bf16 training on a CPU."""
        return (
            self.cpu_kernels
            and self.cfg.logit_softcap is None
            and type(self.lm_head) is nn.Linear  # a plain head: the fused loss reads its weight directly
            and chunked_loss.usable(x, self.lm_head.weight)
        )

    def _add_moe_losses(self, loss, moe_stats):
        if moe_stats:
            aux = torch.stack([s["aux"] for s in moe_stats]).mean()
            z = torch.stack([s["z"] for s in moe_stats]).mean()
            self.last_stats.update(
                moe_aux=aux.detach(),
                moe_z=z.detach(),
                expert_load=torch.stack([s["load"] for s in moe_stats]),
            )
            if loss is not None:
                loss = loss + self.cfg.moe_aux_coef * aux + self.cfg.moe_z_coef * z
        return loss

    def new_cache(
        self, batch_size: int, max_len: int | None = None, dtype: torch.dtype | None = None, device=None
    ) -> KVCache:
        """An empty KV cache for this model (``max_len`` defaults to ``block_size``); with a
        ``sliding_window`` smaller than ``max_len``, a ring buffer of that many positions.

        ``dtype`` defaults to the model's; pass ``torch.bfloat16`` when decoding under bf16
        autocast (keys and values are then produced in bf16).
        """
        p = self.wte.weight
        cfg = self.cfg
        if not self.supports_cache:
            raise CausetteError(
                f"this model keeps no KV cache (n_layer={cfg.n_layer}, mixer={cfg.mixer}): "
                "generate without one (use_cache=False)"
            )
        max_len = cfg.block_size if max_len is None else min(max_len, cfg.block_size)
        return KVCache(
            cfg.n_layer, batch_size, cfg.kv_heads, max_len, cfg.head_dim, dtype or p.dtype, device or p.device,
            window=cfg.sliding_window,
        )

    def cache_length(self, max_len: int | None = None) -> int:
        """Positions per layer that :meth:`new_cache` stores for ``max_len``: ``max_len`` (default
        ``block_size``), or the sliding window when it is smaller (a ring buffer)."""
        max_len = self.cfg.block_size if max_len is None else min(max_len, self.cfg.block_size)
        w = self.cfg.sliding_window
        return max_len if w is None else min(w, max_len)
