"""The model's one-token step (``Transformer.step_kv``), as the compiler's arrangements of it
(backends/aoti.py) and compiled and cached: the same logits and greedy tokens as the eager
reference, rows at their own positions, and a second start that finds the compiled step on
disk instead of compiling it again."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from causette.inference.backends.aoti import MatvecLinear, TransposedLinear
from causette.inference.engine import Engine
from causette.inference.sampling import SamplingParams
from test_engine import french_text, tiny_model  # noqa: F401  (fixtures' helpers)

from causette.tokenizer import train_tokenizer
from causette.tokenizer.config import TokenizerConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(TokenizerConfig(vocab_size=400, workers=1), [french_text()])


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok.vocab_size)


def prompts(tok) -> list[list[int]]:
    texts = ["Il était une fois", "Le chat dort près de la fenêtre, et", "Bonjour"]
    return [[tok.bos_id, *tok.encode(t)] for t in texts]


ARRANGEMENTS = {  # the model itself, and the twins the compiled steps are made of
    "model": lambda m: m,
    "matvec": lambda m: m.twin(linear=MatvecLinear, sum_attention=True),
    "transposed": lambda m: m.twin(linear=TransposedLinear),
}


@pytest.mark.parametrize("options", list(ARRANGEMENTS))
@torch.inference_mode()
def test_step_gives_the_eager_logits_each_row_at_its_own_position(model, tok, options):
    """Three prompts of different lengths, prefilled one by one into their rows, then decoded
    together: each row's logits are those of the model run on that prompt alone."""
    step = ARRANGEMENTS[options](model).step_kv
    rows = prompts(tok)
    cache = model.new_cache(len(rows), max_len=model.cfg.block_size)
    nxt, pos = [], []
    for i, p in enumerate(rows):
        logits = model.logits(torch.tensor([p]), cache=cache.rows(i, i + 1), last_only=True)[0, -1]
        nxt.append(int(logits.argmax()))
        pos.append(len(p))
    for _ in range(8):
        got = step(torch.tensor(nxt), torch.tensor(pos), cache.k, cache.v)
        for i, p in enumerate(rows):
            p.append(nxt[i])
            want = model.logits(torch.tensor([p]))[0, -1]
            assert (got[i] - want).abs().max() < 1e-4
        nxt = got.argmax(-1).tolist()
        pos = [q + 1 for q in pos]


def test_compiled_step_gives_the_eager_greedy_tokens_and_is_cached(model, tok, tmp_path, monkeypatch):
    """The real compilation (AOTInductor, ~10 s for this model): the greedy tokens of the fast
    engine are the exact engine's, for one prompt and for a batch with forced steps; the
    package lands in the cache directory, and a new engine loads it without compiling."""
    monkeypatch.setenv("CAUSETTE_CACHE_DIR", str(tmp_path))
    notes = []
    # native=False: the AOTInductor step (the native one, tests/test_native.py, would apply here)
    fast = Engine(model, tok, decode="fast", notify=notes.append, native=False)
    exact = Engine(model, tok, decode="exact")
    params = SamplingParams(temperature=0, max_new_tokens=20)
    for p in prompts(tok):
        assert fast.generate([p], params)[0].token_ids == exact.generate([p], params)[0].token_ids
    assert fast.backend(1).compile_seconds > 0 and len(notes) == 1 and "compiling" in notes[0]
    batch = prompts(tok)  # different lengths: forced steps, batch 3
    assert [g.token_ids for g in fast.generate(batch, params)] == [g.token_ids for g in exact.generate(batch, params)]
    assert sorted(p.suffix for p in (tmp_path / "decode").iterdir()) == [".pt2", ".pt2"]  # batch 1 and 3
    assert len(notes) == 2

    again = Engine(model, tok, decode="auto", notify=notes.append, native=False)
    start = time.perf_counter()
    step = again.backend(1)
    assert step.name == "aoti" and step.compile_seconds == 0 and time.perf_counter() - start < 3
    assert len(notes) == 2  # no new compilation
    # another shape is another key; "auto" never compiles
    assert Engine(tiny_model(tok.vocab_size, block=32), tok, decode="auto", native=False).backend(1).name == "eager"
    assert Engine(model, tok, decode="exact").backend(1).name == "eager"


def test_second_chat_start_finds_the_compiled_step(tmp_path):
    """`causette chat` twice on the same checkpoint: the first start says it compiles, the
    second does not and starts faster."""
    from helpers import make_chat_checkpoints

    ckpt = make_chat_checkpoints(tmp_path / "runs")["sft"]
    env = {**os.environ, "CAUSETTE_CACHE_DIR": str(tmp_path / "cache")}
    runs = []
    for _ in range(2):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "causette", "chat", "--checkpoint", str(ckpt)],
                             input="Bonjour\n/quit\n", capture_output=True, text=True, env=env, cwd=ROOT,
                             timeout=300)
        runs.append((time.perf_counter() - start, out))
        assert out.returncode == 0, out.stderr
    (first, out1), (second, out2) = runs
    assert "compiling the decoding step" in out1.stderr
    assert "compiling" not in out2.stderr
    assert second < first
