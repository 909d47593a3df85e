"""See the concepts of docs/ at work on a real model: python -m causette.explain TOPIC [TEXT].

    python -m causette.explain tokens "Qu'est-ce que c'est ?"       # BPE, byte by byte
    python -m causette.explain attention "Le chat dort."             # scores, causal mask, softmax
    python -m causette.explain attention "Le chat dort." --checkpoint runs/demo   # a trained model
    python -m causette.explain --help                                # every topic

Without ``--checkpoint`` the model is the demo architecture (configs/model/demo.yaml) with random
weights (``--seed``), and the tokenizer a 2,048-token BPE trained in half a second on the first
400,000 characters of the shipped corpus: everything is deterministic, offline, and takes a few
seconds on a CPU. Each topic is one short function that computes what the page explains with the
package's own code, and returns the text it prints (the tests read it).

Modules: ``common`` (the model and tokenizer, formatting, the ``topic`` registry), one module per
topic or family of topics (``tokens``, ``embeddings``, ``attention`` with ``heads``,
``positions``, ``mlp``, ``model``, ``moe``, ``training`` with ``schedule`` and ``muon``,
``sampling``, ``lora``, ``evaluation`` with ``loss`` and ``bleu``), and ``cli``.
"""

# Importing a topic's module registers it in TOPICS; --help lists the topics in this order.
from causette.explain import (  # noqa: F401
    tokens,
    embeddings,
    attention,
    positions,
    mlp,
    model,
    moe,
    training,
    sampling,
    lora,
    evaluation,
)
from causette.explain.attention import attention_by_hand
from causette.explain.cli import NEEDS_NO_MODEL, build_parser, main, run
from causette.explain.common import (
    TOPICS,
    Setup,
    build,
    capture,
    demo_text,
    demo_tokenizer,
    encode,
    label,
    matrix,
    table,
    topic,
    visible,
)
from causette.explain.tokens import bpe_steps

__all__ = [
    "NEEDS_NO_MODEL",
    "TOPICS",
    "Setup",
    "attention_by_hand",
    "bpe_steps",
    "build",
    "build_parser",
    "capture",
    "demo_text",
    "demo_tokenizer",
    "encode",
    "label",
    "main",
    "matrix",
    "run",
    "table",
    "topic",
    "visible",
]
