"""What every topic uses: the model and tokenizer it looks at, the text formatting, the registry.

The model is a checkpoint or the seeded random demo model, the tokenizer the one that goes with it
or a small BPE learned in memory (:func:`build`); :func:`table` and :func:`matrix` lay out what
the topics print; :func:`topic` registers a topic in :data:`TOPICS`, which the command line reads.
"""

from __future__ import annotations

import functools
import gzip
from dataclasses import dataclass

import torch

from causette.checkpoint.load import load_checkpoint
from causette.config import load_config
from causette.errors import CausetteError
from causette.model.transformer import Transformer
from causette.tokenizer.config import TokenizerConfig
from causette.tokenizer.io import load_tokenizer
from causette.tokenizer.stats import show_token
from causette.tokenizer.train import train_tokenizer
from causette.utils.lang import localize, num, tr  # noqa: F401  (the topics import them from here)
from causette.utils.paths import DEMO_CORPUS

DEMO_TEXT = DEMO_CORPUS
DEMO_CHARS = 400_000  # characters of the demo corpus the in-memory tokenizer learns from
DEMO_VOCAB = 2048

# ============================================================================== set-up


@dataclass
class Setup:
    model: torch.nn.Module
    tok: object
    about: str  # one line saying which model and tokenizer these are


def demo_text(chars: int = DEMO_CHARS) -> str:
    with gzip.open(DEMO_TEXT, "rt", encoding="utf-8") as f:
        return f.read(chars)


@functools.lru_cache(maxsize=2)
def demo_tokenizer(vocab_size: int = DEMO_VOCAB):
    """A small French BPE learned from the start of the demo corpus, in memory (~0.5 s)."""
    return train_tokenizer(TokenizerConfig(vocab_size=vocab_size, workers=1), [demo_text()])


def load_tokenizer_for(args):
    if getattr(args, "tokenizer", None):
        return load_tokenizer(args.tokenizer), tr(f"tokeniseur {args.tokenizer}", f"tokenizer {args.tokenizer}")
    return demo_tokenizer(), tr(
        f"BPE de {num(DEMO_VOCAB, ',')} tokens appris sur {num(DEMO_CHARS, ',')} caractères de {DEMO_TEXT.name}",
        f"BPE of {DEMO_VOCAB} tokens learned from {DEMO_CHARS:,} characters of {DEMO_TEXT.name}",
    )


def build(args, config: str = "model/demo") -> Setup:
    """The model and tokenizer a topic works on: a checkpoint, or a seeded random demo model."""
    if args.checkpoint:
        if args.set or args.config or args.tokenizer:
            raise CausetteError(tr("--set, --config et --tokenizer décrivent le modèle aléatoire : pas avec --checkpoint",
                                   "--set, --config and --tokenizer describe the random model: not with --checkpoint"))

        ck = load_checkpoint(args.checkpoint, device="cpu", precision="fp32")
        return Setup(ck.model.eval(), ck.tokenizer, tr(f"modèle : {ck.describe()}", f"model: {ck.describe()}"))
    tok, tok_about = load_tokenizer_for(args)
    cfg = load_config(args.config or config, list(args.set)).model
    cfg.vocab_size = tok.vocab_size
    torch.manual_seed(args.seed)
    model = Transformer(cfg).eval()
    n = sum(p.numel() for p in model.parameters())
    about = tr(
        f"modèle : {args.config or config}, poids aléatoires (graine {args.seed}, non entraîné), "
        f"{num(n / 1e6, '.1f')} M de paramètres, {cfg.n_layer} couches × {cfg.n_embd}, pos={cfg.pos}, "
        f"norm={cfg.norm}, mlp={cfg.mlp}\n{tok_about}",
        f"model: {args.config or config}, random weights (seed {args.seed}, untrained), {n / 1e6:.1f}M parameters, "
        f"{cfg.n_layer} layers × {cfg.n_embd}, pos={cfg.pos}, norm={cfg.norm}, mlp={cfg.mlp}\n{tok_about}",
    )
    return Setup(model, tok, about)


# ============================================================================== formatting


SHOWN = {" ": "␣", "\n": "↵", "\t": "→"}


def visible(s: str) -> str:
    """Spaces, line breaks and invisible characters made visible: ``" le\\n"`` → ``"␣le↵"``."""
    return "".join(SHOWN.get(c, c if c.isprintable() else f"\\u{ord(c):04x}") for c in s)


def label(tok, token_id: int) -> str:
    return visible(show_token(tok, token_id))


def encode(tok, text: str, bos: bool = True) -> list[int]:
    """Ids of ``text`` as training sees a document: ``<|bos|>`` first."""
    return ([tok.bos_id] if bos else []) + tok.encode(text)


def table(headers: list, rows: list[list], left: tuple[int, ...] = (0,)) -> str:
    """Columns padded to their widest cell; columns in ``left`` left-aligned, others right."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for r in cells:
        parts = [c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def matrix(m: torch.Tensor, row_labels: list[str], masked: torch.Tensor | None = None, fmt: str = "{:.2f}") -> str:
    """A small 2-D tensor as a table; cells where ``masked`` is True print as ``·``."""
    rows = []
    for i, lab in enumerate(row_labels):
        vals = ["·" if masked is not None and masked[i, j] else localize(fmt.format(float(m[i, j])))
                for j in range(m.shape[1])]
        rows.append([f"{i} {lab}"] + vals)
    return table([tr("requête \\ clé", "query \\ key")] + list(range(m.shape[1])), rows)


def capture(module: torch.nn.Module, model: torch.nn.Module, ids: list[int]) -> tuple[tuple, torch.Tensor]:
    """Run ``model`` on ``ids`` and return the positional inputs and the output of ``module``."""
    seen = {}
    handle = module.register_forward_hook(lambda m, args, out: seen.update(args=args, out=out))
    try:
        with torch.no_grad():
            model(torch.tensor([ids]))
    finally:
        handle.remove()
    return seen["args"], seen["out"]


# ============================================================================== topics

TOPICS: dict[str, tuple] = {}


def topic(name: str, help: tuple[str, str], text: bool = True, trained: tuple[str, str] | None = None):
    """Register a topic; ``help``: (French, English); ``text``: it looks at a sentence;
    ``trained``: (French, English), what a trained checkpoint would show instead of random weights."""

    def register(fn):
        TOPICS[name] = (fn, help, text)
        TRAINED[name] = trained
        return fn

    return register


TRAINED: dict[str, tuple[str, str] | None] = {}
