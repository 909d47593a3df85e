"""See the concepts of docs/ at work on a real model: python -m causette.explain TOPIC [TEXT].

(The first line is also ``--help``'s description: ``explain.cli.DESCRIPTION``.)

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
topic or family of topics (``tokens``, ``embeddings``, ``attention`` with ``heads``, ``cache``
with ``mask``,
``positions``, ``mlp``, ``model``, ``moe``, ``training`` with ``schedule`` and ``muon``,
``sampling``, ``lora``, ``evaluation`` with ``loss`` and ``bleu``, ``progression``, ``scaling``), and ``cli``.
"""

# Importing a topic's module registers it in TOPICS; --help lists the topics in this order.
from causette.explain import (  # noqa: F401  # isort: skip (this order is --help's order)
    tokens,
    embeddings,
    attention,
    cache,
    positions,
    mlp,
    model,
    moe,
    training,
    curves,
    sampling,
    lora,
    evaluation,
    progression,
    scaling,
)
from causette.explain.attention import attention_by_hand
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
    "TOPICS",
    "Setup",
    "attention_by_hand",
    "bpe_steps",
    "build",
    "capture",
    "demo_text",
    "demo_tokenizer",
    "encode",
    "label",
    "matrix",
    "table",
    "topic",
    "visible",
]
