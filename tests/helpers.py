"""Tiny, real pipelines for tests: a corpus, a tokenizer and token data in seconds.

Later stages (training, SFT, generation, export) are tested on these instead of mocks: the
same code paths as a real run, at a size that trains in a second on 2 cores.
"""

from __future__ import annotations

import gzip
from types import SimpleNamespace
from pathlib import Path

import torch

from causette.checkpoint.steps import save_checkpoint
from causette.config import Config, load_config
from causette.corpus.build import build_corpus
from causette.corpus.config import SourceConfig
from causette.corpus.store import iter_texts
from causette.data.prepare import prepare
from causette.model import Transformer
from causette.model.kvcache import KVCache
from causette.tokenizer.config import TokenizerConfig
from causette.tokenizer.train import train_tokenizer

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo_fr_pd.txt.gz"
SHARED_DATA = REPO.parent / "shared" / "data"

# A tiny Llama-family model: trains ~100 steps a second on 2 cores in fp32.
TINY_MODEL = [
    "model.n_layer=2",
    "model.n_head=2",
    "model.n_kv_head=1",
    "model.n_embd=32",
    "model.block_size=32",
    "model.mlp_hidden=64",
]
TINY_TRAIN = [
    "train.device=cpu",
    "train.precision=fp32",
    "train.compile=false",
    "train.batch_size=4",
    "train.max_steps=20",
    "train.warmup_steps=2",
    "train.eval_every=10",
    "train.eval_tokens=512",
    "train.log_every=1",
    "train.ckpt_every=5",
    "train.sample_tokens=0",
    "train.tensorboard=false",
    "train.lr=3e-3",
    "train.min_lr=3e-4",
    "train.peak_flops=1e12",
]


def demo_excerpt(n_docs: int = 6, chars: int = 12_000) -> list[str]:
    """The first ``chars`` characters of the first ``n_docs`` documents of the demo corpus."""
    text = gzip.open(DEMO, "rt", encoding="utf-8").read()
    return [d[:chars] for d in text.split("\n\n\n")[:n_docs]]


def tiny_config(run_dir: Path, name: str = "tiny", extra: list[str] | None = None) -> Config:
    return load_config(
        "demo",
        [f"run.dir={run_dir}", f"run.name={name}", "tokenizer.vocab_size=400", "corpus.min_chars=100"]
        + TINY_MODEL
        + TINY_TRAIN
        + (extra or []),
    )


def make_tiny_run(run_dir: Path, name: str = "tiny", n_docs: int = 6, chars: int = 12_000) -> Config:
    """corpus → tokenizer (400 tokens) → token data for ``runs/<name>`` under ``run_dir``."""
    cfg = tiny_config(run_dir, name)
    src = run_dir / f"{name}-src"
    src.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(demo_excerpt(n_docs, chars)):
        (src / f"doc{i}.txt").write_text(text, encoding="utf-8")
    cfg.corpus.sources = [SourceConfig(path=str(src))]
    cfg.corpus.val_fraction = 0.2
    root = cfg.run.path
    build_corpus(cfg.corpus, root / "corpus", progress=False, echo=lambda s: None)
    train_tokenizer(cfg.tokenizer, iter_texts(root / "corpus", "train"), out_dir=root / "tokenizer")
    prepare(root / "corpus", root / "tokenizer", root / "data", workers=1, progress=False, echo=lambda s: None)
    return cfg


def copy_run(base_run: Path, tmp_path: Path, name: str) -> Path:
    """A copy of a prepared run (corpus, tokenizer, data) without its training outputs."""
    import shutil

    dst = tmp_path / name
    shutil.copytree(base_run, dst, ignore=shutil.ignore_patterns("checkpoints", "metrics.jsonl", "tb"))
    return dst


def make_chat_checkpoints(root: Path, tie_embeddings: bool = True, mute_special: bool = False,
                          block_size: int = 64) -> dict[str, Path]:
    """A tiny tokenizer and random Llama model, saved as an SFT run and as a base (pretrain) run.

    ``mute_special``: zero the output weights of the special tokens (needs untied embeddings), so
    that replies rarely end at once and there is text to stream.
    """
    text = gzip.decompress(DEMO.read_bytes()).decode("utf-8")[:8000] if DEMO.is_file() else "le chat dort " * 500
    tok = train_tokenizer(TokenizerConfig(vocab_size=400, workers=1), [text], out_dir=root / "tokenizer")
    cfg = load_config(
        "model/llama",
        ["model.n_layer=2", "model.n_embd=64", "model.n_head=4", "model.n_kv_head=2",
         f"model.vocab_size={tok.vocab_size}", f"model.block_size={block_size}", "model.init_std=0.3",
         f"model.tie_embeddings={str(tie_embeddings).lower()}"],
    ).model
    torch.manual_seed(0)
    model = Transformer(cfg)
    if mute_special:
        with torch.no_grad():
            model.lm_head.weight[sorted(tok.special_ids)] = 0.0
    out = {}
    for stage in ("sft", "pretrain"):
        save_checkpoint(root / stage / "checkpoints", 10, model, None, state={"stage": stage},
                        tokenizer_file=root / "tokenizer" / "tokenizer.json")
        out[stage] = root / stage
    return out


class LetterTokenizer:
    """The least an :class:`~causette.inference.engine.Engine` needs of a tokenizer: ids shown as
    letters, ``<bos>`` = 0 (for engine and server tests on random tiny models)."""

    bos_id = 0

    def __init__(self, vocab_size: int = 64):
        self.vocab_size = vocab_size

    def incremental_decoder(self):
        class Decoder:
            def push(self, token):
                return chr(65 + token % 26)

        return Decoder()


class ToolUser(torch.nn.Module):
    """A stand-in chat model: asked a question, it calls ``calculer``; shown a tool result, it
    answers with it. It follows the engine's contract (``logits`` for a prompt, ``step``)."""

    def __init__(self, tok, call: str | list[str], answer: str, before: str = ""):
        """``call``: the text inside ``<tool_call>`` (or several, one call each), after ``before``."""
        super().__init__()
        self.tok = tok
        self.cfg = SimpleNamespace(block_size=512, vocab_size=tok.vocab_size, sliding_window=None)
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        sp = tok.special_tokens
        self.response_id = sp["<tool_response>"]
        self.call = tok.encode(before, allowed_special="none")
        for k, body in enumerate([call] if isinstance(call, str) else call):
            self.call += ([*tok.encode("\n", allowed_special="none")] if k or before else [])
            self.call += [sp["<tool_call>"], *tok.encode(body, allowed_special="none"), sp["</tool_call>"]]
        self.call.append(sp["<|im_end|>"])
        self.answer = [*tok.encode(answer, allowed_special="none"), sp["<|im_end|>"]]
        self.context: list[int] = []
        self.prompt_len = 0

    def new_cache(self, batch_size, max_len=None, dtype=None, device=None):
        return KVCache(1, batch_size, 1, max_len or self.cfg.block_size, 1)

    def _next(self) -> torch.Tensor:
        reply = self.answer if self.response_id in self.context else self.call
        k = len(self.context) - self.prompt_len
        logits = torch.zeros(1, self.cfg.vocab_size)
        logits[0, reply[min(k, len(reply) - 1)]] = 10.0
        return logits

    def logits(self, idx, cache=None, last_only=False):
        start = cache.pos if cache is not None else 0
        self.context = self.context[:start] + idx[0].tolist()
        self.prompt_len = len(self.context)
        if cache is not None:
            cache.advance(idx.shape[1])
        return self._next()[:, None]

    def step(self, tokens, positions, cache):
        self.context = self.context[: int(positions[0])] + [int(tokens[0])]
        cache.set_lengths((positions + 1).tolist())
        return self._next()
