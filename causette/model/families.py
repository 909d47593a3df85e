"""Which of our model's switches each outside architecture can run: one list for every check.

Our Transformer is one model with switches (config.py). Another program runs it only when its
own architecture has the same parts. Each :class:`Architecture` below lists the switches it pins
(``pos=rope`` for Llama) or forbids (``qk_norm`` for Llama); what it does not list, it accepts
with any value (the sizes, ``rope_theta``, ``norm_eps``, ``mlp_hidden``, ``dropout``..., and
``n_kv_head`` and ``tie_embeddings`` for Llama). :data:`FAMILIES` holds the three that Causette
exports to: Llama (transformers' ``LlamaForCausalLM``, llama.cpp's ``llama``), Mistral (Llama
plus a sliding window) and GPT-2; every format refuses the progression's models
(``n_layer: 0``, ``mixer: window``).

Everything that decides "can this format run this config" derives from these lists: the export
refusals (export/source.py's ``*_blockers``, used by export/hf.py, export/gguf.py and so
``export ollama``), the family ``export hf`` writes (the first one with no blocker), the checks
of model/hf_reference.py, and the switches that ``import hf`` sets (:meth:`Architecture.pinned`).
:data:`NATIVE_STEP` says the same for the C++ decoding step (inference/backends/native.py adds the checks
of the layers' types and dtypes, which no config shows). Which tensors each format then holds,
and under which names, is causette/model/tensors.py.

A refusal is one line per switch, ``setting=value (reason)``, e.g.
``qk_norm=true (Llama has no QK-norm)``: the setting as written in ``--set model.SETTING=...``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from causette.model.config import ModelConfig

FREE = object()  # a rule with no single value (e.g. n_layer > 0): nothing to pin


def shown(value: Any) -> str:
    """A setting's value as a config file writes it (``true``, ``rope``, ``30.0``)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


@dataclass(frozen=True)
class Rule:
    """One switch an architecture constrains: accepted when ``ok(cfg)``, else refused with the
    line ``"{setting}={value} ({reason})"``; ``pinned``: the one value it has (or ``FREE``)."""

    setting: str
    ok: Callable[[ModelConfig], bool]
    reason: str
    value: Callable[[ModelConfig], Any] | None = None  # what the line shows; default cfg.<setting>
    pinned: Any = FREE

    def line(self, cfg: ModelConfig) -> str:
        value = self.value(cfg) if self.value is not None else getattr(cfg, self.setting)
        return f"{self.setting}={shown(value)} ({self.reason})"


def uses(setting: str, value: Any, label: str) -> Rule:
    """The architecture has this one value of ``setting`` (``pos=rope``)."""
    return Rule(setting, lambda cfg: getattr(cfg, setting) == value, f"{label} uses {value}", pinned=value)


def lacks(setting: str, what: str, label: str, off: Any) -> Rule:
    """The architecture has no ``what``: ``setting`` must be off (``off``: False, None or 0)."""
    return Rule(setting, lambda cfg: getattr(cfg, setting) == off, f"{label} has no {what}", pinned=off)


# What no format has: the progression's models (docs/progression.md).
PROGRESSION = (
    Rule("n_layer", lambda cfg: cfg.n_layer > 0, "a bigram model: the formats expect at least one block"),
    Rule("mixer", lambda cfg: cfg.mixer == "attention", "the formats know attention only",
         pinned="attention"),
)


@dataclass(frozen=True)
class Architecture:
    """What another program's architecture can express of our switches."""

    name: str  # "llama": transformers' model_type (and llama.cpp's architecture for Llama)
    hf_class: str | None  # transformers' class (None: not a transformers architecture)
    rules: tuple[Rule, ...]

    def blockers(self, cfg: ModelConfig) -> list[str]:
        """One line per switch of ``cfg`` that this architecture cannot express; empty when it can."""
        return [rule.line(cfg) for rule in self.rules if not rule.ok(cfg)]

    def allows(self, cfg: ModelConfig) -> bool:
        return not self.blockers(cfg)

    def pinned(self) -> dict[str, Any]:
        """The switches this architecture fixes, with their value (``{"pos": "rope", ...}``):
        what a ModelConfig built from one of its models must set."""
        return {rule.setting: rule.pinned for rule in self.rules if rule.pinned is not FREE}

    def without(self, setting: str, name: str, hf_class: str) -> Architecture:
        """This architecture allowing any value of ``setting`` (Mistral: Llama plus a window)."""
        return Architecture(name, hf_class, tuple(r for r in self.rules if r.setting != setting))


def _llama(label: str = "Llama") -> tuple[Rule, ...]:
    return (
        *PROGRESSION,
        uses("pos", "rope", label),
        uses("norm", "rmsnorm", label),
        uses("mlp", "swiglu", label),
        lacks("bias", "biases", label, False),
        lacks("qk_norm", "QK-norm", label, False),
        lacks("logit_softcap", "logit soft-cap", label, None),
        lacks("n_experts", "Mixture-of-Experts", label, 0),
        lacks("sliding_window", "sliding-window attention", label, None),
    )


def _gpt2(label: str = "GPT-2") -> tuple[Rule, ...]:
    return (
        *PROGRESSION,
        uses("pos", "learned", label),
        uses("norm", "layernorm", label),
        uses("mlp", "gelu", label),
        Rule("bias", lambda cfg: cfg.bias, f"{label} has biases everywhere", pinned=True),
        Rule("tie_embeddings", lambda cfg: cfg.tie_embeddings, f"{label} ties them", pinned=True),
        Rule(
            "n_kv_head",
            lambda cfg: cfg.kv_heads == cfg.n_head,
            f"{label} has one key/value head per query head",
            value=lambda cfg: cfg.kv_heads,
            pinned=None,
        ),
        lacks("qk_norm", "QK-norm", label, False),
        lacks("logit_softcap", "logit soft-cap", label, None),
        lacks("n_experts", "Mixture-of-Experts", label, 0),
        lacks("sliding_window", "sliding-window attention", label, None),
    )


# region doc:families
LLAMA = Architecture("llama", "LlamaForCausalLM", _llama())
# Mistral is the Llama architecture plus a sliding window (same tensors, same names); its lines
# keep Llama's wording.
MISTRAL = LLAMA.without("sliding_window", "mistral", "MistralForCausalLM")
GPT2 = Architecture("gpt2", "GPT2LMHeadModel", _gpt2())
FAMILIES = (LLAMA, MISTRAL, GPT2)  # in the order ``export hf`` tries them
# endregion doc:families

# The C++ decoding step (inference/backends/native_step.cpp): the dense attention models of both families
# and everything between them; the MLP must be one it computes.
NATIVE_STEP = Architecture(
    "native",
    None,
    (
        Rule("n_layer", lambda cfg: cfg.n_layer > 0, "a bigram model keeps no KV cache"),
        Rule("mixer", lambda cfg: cfg.mixer == "attention", "the native step computes attention only"),
        Rule("mlp", lambda cfg: cfg.mlp in ("swiglu", "gelu", "relu2"),
             "the native step has swiglu, gelu and relu2"),
        lacks("n_experts", "Mixture-of-Experts", "the native step", 0),
    ),
)

