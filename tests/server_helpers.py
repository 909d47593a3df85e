"""Shared by the server tests: a tiny checkpoint to serve, and an engine that replies slowly."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import torch

from causette.config import load_config
from causette.model import Transformer
from causette.tokenizer import train_tokenizer
from causette.tokenizer.config import TokenizerConfig
from causette.train.checkpoint import save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def make_checkpoints(root: Path) -> dict[str, Path]:
    """A tiny random model, saved as an SFT and as a base checkpoint. Its special tokens get
    zero output weights, so replies rarely end at once and there is text to stream."""
    path = ROOT / "data" / "demo_fr_pd.txt.gz"
    text = "le chat dort " * 500
    if path.is_file():
        text = gzip.decompress(path.read_bytes()).decode("utf-8")[:8000]
    tok = train_tokenizer(TokenizerConfig(vocab_size=400, workers=1), [text], out_dir=root / "tokenizer")
    cfg = load_config(
        "model/llama",
        ["model.n_layer=2", "model.n_embd=64", "model.n_head=4", "model.n_kv_head=2",
         f"model.vocab_size={tok.vocab_size}", "model.block_size=64", "model.init_std=0.3",
         "model.tie_embeddings=false"],
    ).model
    torch.manual_seed(0)
    model = Transformer(cfg)
    with torch.no_grad():
        model.lm_head.weight[sorted(tok.special_ids)] = 0.0
    out = {}
    for stage in ("sft", "pretrain"):
        save_checkpoint(root / stage / "checkpoints", 10, model, None, state={"stage": stage},
                        tokenizer_file=root / "tokenizer" / "tokenizer.json")
        out[stage] = root / stage
    return out


class SlowEngine:
    """An engine whose tokens come slowly (a real model's pace), to leave mid-reply."""

    def __init__(self, engine):
        self.engine = engine

    def stream(self, prompt, params):
        inner = self.engine.stream(prompt, params)

        class Slow:
            def __iter__(self):
                for delta in inner:
                    time.sleep(0.05)
                    yield delta

            def stop(self, reason="interrupted"):
                inner.stop(reason)

            @property
            def result(self):
                return inner.result

        return Slow()
