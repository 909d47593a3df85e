"""Settings of the model (``model:`` section of a config file).

One decoder-only Transformer whose switches select a family:

    switch        GPT-2 family       Llama family
    pos           learned            rope
    norm          layernorm          rmsnorm
    mlp           gelu               swiglu
    bias          true               false
    n_kv_head     = n_head           may be smaller (grouped-query attention)

``configs/model/gpt2.yaml`` and ``configs/model/llama.yaml`` set them; any switch can then be
changed on its own (``--set model.norm=rmsnorm``) to see what it does. ``n_experts > 0``
replaces every dense MLP by a Mixture-of-Experts layer (``configs/model/moe.yaml``).

Three switches take ingredients *out*, for the progression from a bigram to a Transformer
(``configs/progression/``, docs/progression.md): ``n_layer: 0`` (embedding → output layer: a
bigram model), ``mixer: window`` (each block mixes a fixed window of previous tokens by
concatenation and one linear layer instead of attention: window.py) and ``mlp: none`` (blocks
without an MLP).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from causette.utils.ranges import Range, check_fields


@dataclass
class ModelConfig:
    """One decoder-only Transformer; the switches select the GPT-2 or the Llama family."""

    # --- sizes
    # The dial (causette/model/depth.py): when set, the shape (n_layer, n_embd, n_head, n_kv_head)
    # and the optimiser settings (train.lr, ...) follow from it, unless given explicitly. "auto":
    # chosen when training starts, from the time budget and the measured speed (train/sizing.py).
    depth: int | Literal["auto"] | None = None
    vocab_size: int = 8192
    block_size: int = 256  # longest context the model sees (position tables are this long)
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int | None = None  # key/value heads (GQA); None = n_head (plain multi-head)
    n_embd: int = 256

    # --- family switches
    pos: Literal["learned", "sinusoidal", "rope"] = "rope"
    rope_theta: float = 10000.0  # RoPE base: wavelengths go from 2π to ~2π·theta
    norm: Literal["layernorm", "rmsnorm"] = "rmsnorm"
    norm_eps: float = 1e-5
    # How a block mixes information across positions: attention, or (progression step 2) the
    # concatenation of the last ``mixer_window`` tokens' vectors through one linear layer.
    mixer: Literal["attention", "window"] = "attention"
    mixer_window: int = 8
    mlp: Literal["gelu", "swiglu", "relu2", "none"] = "swiglu"  # none: blocks without an MLP
    # MLP hidden size; None = 4·n_embd (gelu, relu2) or, for swiglu, ⅔·4·n_embd rounded up to a
    # multiple of mlp_multiple_of (the Llama rule: three matrices cost what two 4·d ones would).
    mlp_hidden: int | None = None
    mlp_multiple_of: int = 64
    bias: bool = False  # biases in the linear layers and LayerNorms
    tie_embeddings: bool = True  # the output layer reuses the token embedding matrix
    qk_norm: bool = False  # RMSNorm on each head's queries and keys before attention
    # Sliding-window attention (Mistral): each token sees itself and the N-1 previous tokens only;
    # None = full causal attention (every previous token).
    sliding_window: int | None = None
    logit_softcap: float | None = None  # logits → cap·tanh(logits/cap); None = off
    dropout: float = 0.0

    # --- Mixture-of-Experts (n_experts = 0: dense MLP)
    n_experts: int = 0
    experts_per_token: int = 2  # top-k experts chosen by the router for each token
    moe_shared_expert: bool = False  # one more expert that every token always uses
    moe_aux_coef: float = 0.01  # weight of the load-balancing loss in the training loss
    moe_z_coef: float = 0.001  # weight of the router z-loss (keeps router logits small)

    # --- initialisation (see causette/model/transformer.py)
    init_std: float = 0.02

    # ------------------------------------------------------------------ derived sizes
    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def kv_heads(self) -> int:
        return self.n_head if self.n_kv_head is None else self.n_kv_head

    @property
    def uses_attention(self) -> bool:
        """Whether any block attends (and so keeps keys and values in a KV cache)."""
        return self.n_layer > 0 and self.mixer == "attention"

    @property
    def hidden_size(self) -> int:
        """Hidden width of one MLP (or of one expert)."""
        if self.mlp_hidden is not None:
            return self.mlp_hidden
        if self.mlp == "swiglu":
            h = int(2 * 4 * self.n_embd / 3)
            m = self.mlp_multiple_of
            return m * ((h + m - 1) // m)
        return 4 * self.n_embd

    # ------------------------------------------------------------------ checks
    RANGES: ClassVar[dict[str, Range]] = {
        "depth": Range(1, 256, note="null = the shape as written (n_layer, n_embd...)"),
        "vocab_size": Range(1, 2**32, note="token ids are stored as 32-bit integers"),
        # A prompt holds at least <|bos|>, and generation (the samples of every evaluation,
        # `causette generate`) needs room for one more token after it.
        "block_size": Range(min=2, note="generation needs a prompt token and room for the next one"),
        "n_layer": Range(min=0, note="0 = a bigram model, no blocks"),
        "n_head": Range(min=1),
        "n_kv_head": Range(min=1, note="null = n_head"),
        "n_embd": Range(min=1),
        "rope_theta": Range(min=0, min_open=True),
        "norm_eps": Range(min=0, min_open=True),
        "mixer_window": Range(min=1),
        "mlp_hidden": Range(min=1, note="null = from n_embd"),
        "mlp_multiple_of": Range(min=1),
        "sliding_window": Range(min=1, note="null = full attention"),
        "logit_softcap": Range(min=0, min_open=True, note="null = off"),
        "dropout": Range(0, 1, max_open=True),
        "n_experts": Range(min=0, note="0 = dense MLP"),
        "experts_per_token": Range(min=1),
        "moe_aux_coef": Range(min=0),
        "moe_z_coef": Range(min=0),
        "init_std": Range(min=0, min_open=True),
    }

    def validate(self) -> None:
        """Raise ValueError naming the field when a setting cannot work."""
        check_fields(self)
        if self.mlp == "none" and self.n_experts:
            raise ValueError("mlp=none leaves no MLP for the experts of n_experts; set one (swiglu, gelu, relu2)")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        # region doc:kv-divides
        kv = self.kv_heads
        if kv < 1 or self.n_head % kv:
            raise ValueError(f"n_kv_head ({kv}) must divide n_head ({self.n_head})")
        # endregion doc:kv-divides
        if self.pos == "rope" and self.head_dim % 2:
            raise ValueError(f"n_embd / n_head (the head size, {self.head_dim}) must be even for pos=rope")
        if self.pos == "sinusoidal" and self.n_embd % 2:
            raise ValueError(f"n_embd must be even for pos=sinusoidal, got {self.n_embd}")
        if self.n_experts and self.experts_per_token > self.n_experts:
            raise ValueError(
                f"experts_per_token ({self.experts_per_token}) must be between 1 and "
                f"n_experts ({self.n_experts})"
            )


# Linear layers of our Transformer that LoRA can adapt, by short name (attention.py, layers.py).
LORA_TARGETS = ("qkv", "proj", "up", "down")


@dataclass
class LoRAConfig:
    """``sft.lora``: ``r: 0`` means full fine-tuning (every weight trains)."""

    r: int = 0
    alpha: float = 16.0
    dropout: float = 0.0
    targets: list[str] = field(default_factory=lambda: ["qkv", "proj", "up", "down"])

    RANGES: ClassVar[dict[str, Range]] = {
        "r": Range(min=0, note="0 = full fine-tuning"),
        "alpha": Range(min=0, min_open=True),
        "dropout": Range(0, 1, max_open=True),
    }

    def validate(self) -> None:
        check_fields(self)
        unknown = [t for t in self.targets if t not in LORA_TARGETS]
        if unknown:
            raise ValueError(f"targets: unknown layer(s) {', '.join(map(repr, unknown))} (known: {', '.join(LORA_TARGETS)})")
        if self.r and not self.targets:
            raise ValueError("targets must name at least one layer")

    @property
    def enabled(self) -> bool:
        return self.r > 0
