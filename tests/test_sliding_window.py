"""Sliding-window attention (``model.sliding_window = N``): each token sees itself and the N-1
previous tokens. Checked against attention written by hand with a band mask, against full
attention when the window covers the whole context, through the KV cache (one token at a time
and chunked prefill), the static decode step, the config check and the exports (Hugging Face as
``MistralForCausalLM`` with equal logits; GGUF refused: llama.cpp's ``llama`` architecture has no
window)."""

from __future__ import annotations

import dataclasses
import json
import math
import os

import pytest
import torch

from causette.cli import main as cli_main
from causette.config import load_config
from causette.errors import CausetteError
from causette.inference.backends.aoti import MatvecLinear, TransposedLinear
from causette.model import Transformer
from causette.model.config import ModelConfig
from test_export import FRENCH, greedy, make_checkpoint, needs_transformers, tok, transformers  # noqa: F401

SIZE = dict(vocab_size=96, block_size=32, n_layer=2, n_head=4, n_embd=64, init_std=0.1)


def model_with(window, seed: int = 0, **over) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(ModelConfig(**{**SIZE, **over, "sliding_window": window})).eval()


def ids(T: int = 32, B: int = 2) -> torch.Tensor:
    return torch.randint(0, SIZE["vocab_size"], (B, T), generator=torch.Generator().manual_seed(1))


def band_attention(attn, x: torch.Tensor, window: int) -> torch.Tensor:
    """One attention layer by hand, no RoPE: scores, band mask ``i-window < j <= i``, softmax."""
    B, T, _ = x.shape
    H, KV, D = attn.n_head, attn.n_kv_head, attn.head_dim
    q, k, v = attn.qkv(x).split([H * D, KV * D, KV * D], dim=-1)
    q = q.view(B, T, H, D).transpose(1, 2)
    k = k.view(B, T, KV, D).transpose(1, 2).repeat_interleave(H // KV, dim=1)
    v = v.view(B, T, KV, D).transpose(1, 2).repeat_interleave(H // KV, dim=1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(D)
    for i in range(T):
        for j in range(T):
            if not (i - window < j <= i):
                scores[:, :, i, j] = float("-inf")
    y = torch.softmax(scores, dim=-1) @ v
    return attn.proj(y.transpose(1, 2).reshape(B, T, H * D))


@pytest.mark.parametrize("window,kv", [(1, 4), (4, 4), (5, 2), (31, 1)])
@torch.no_grad()
def test_attention_equals_a_band_mask_written_by_hand(window, kv):
    model = model_with(window, pos="learned", n_kv_head=kv)  # no RoPE inside attention
    attn = model.blocks[0].attn
    x = torch.randn(2, 32, SIZE["n_embd"], generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(attn(x), band_attention(attn, x, window), atol=1e-5, rtol=0)


@torch.no_grad()
def test_a_window_that_covers_the_context_gives_exactly_full_attention():
    full = model_with(None)
    for window in (32, 100):  # block_size, and more
        model = model_with(window)
        assert torch.equal(model.logits(ids()), full.logits(ids()))
    assert not torch.allclose(model_with(8).logits(ids()), full.logits(ids()), atol=1e-3)


@pytest.mark.parametrize("chunks", [[32], [7, 12, 13], [1] * 32, [20] + [1] * 12])
@torch.no_grad()
def test_kv_cache_prefill_chunks_and_decoding_equal_full_recompute(chunks):
    model = model_with(6, n_kv_head=2)
    idx = ids()
    want = model.logits(idx)
    cache, got, start = model.new_cache(2), [], 0
    for n in chunks:
        got.append(model.logits(idx[:, start : start + n], cache=cache))
        start += n
    torch.testing.assert_close(torch.cat(got, 1), want, atol=1e-5, rtol=0)


@torch.no_grad()
def test_greedy_generation_with_the_cache_equals_recompute_without(tok):  # noqa: F811
    from causette.inference.engine import Engine
    from causette.inference.sampling import SamplingParams

    torch.manual_seed(0)
    cfg = ModelConfig(**{**SIZE, "vocab_size": tok.vocab_size, "block_size": 64, "init_std": 0.3}, sliding_window=5)
    model = Transformer(cfg).eval()
    prompt = tok.encode(FRENCH[0])[:12]
    params = SamplingParams(temperature=0.0, max_new_tokens=30, stop_token_ids=(), seed=0)
    [g] = Engine(model, tok).generate([prompt], params)
    seq = list(prompt)
    for _ in range(30):  # no cache: the whole sequence again at every step
        seq.append(int(model.logits(torch.tensor([seq]))[0, -1].argmax()))
    assert g.token_ids == seq[len(prompt) :]


def arranged(model, options: dict):
    """The model's step (``step_kv``), or that of the twin a compiled step is made of."""
    if options.get("matvec"):
        return model.twin(linear=MatvecLinear, sum_attention=True).step_kv
    if options.get("transposed"):
        return model.twin(linear=TransposedLinear).step_kv
    return model.step_kv


@pytest.mark.parametrize("options", [{}, {"matvec": True}])
@torch.no_grad()
def test_static_decode_step_equals_eager_each_row_at_its_own_position(options):
    model = model_with(5, n_kv_head=2)
    step = arranged(model, options)
    rows = [ids(3, 1)[0].tolist(), ids(11, 1)[0].tolist(), ids(7, 1)[0].tolist()]
    cache = model.new_cache(len(rows))
    nxt, pos = [], []
    for i, p in enumerate(rows):
        logits = model.logits(torch.tensor([p]), cache=cache.rows(i, i + 1), last_only=True)[0, -1]
        nxt.append(int(logits.argmax()))
        pos.append(len(p))
    for _ in range(12):
        got = step(torch.tensor(nxt), torch.tensor(pos), cache.k, cache.v)
        for i, p in enumerate(rows):
            p.append(nxt[i])
            want = model.logits(torch.tensor([p]))[0, -1]
            assert (got[i] - want).abs().max() < 1e-4
        nxt = [int(t) for t in got.argmax(-1)]
        pos = [x + 1 for x in pos]


def test_config_refuses_a_window_below_one():
    for bad in (0, -3):
        with pytest.raises(ValueError, match=r"sliding_window must be >= 1 \(null = full attention\)"):
            ModelConfig(sliding_window=bad).validate()
    ModelConfig(sliding_window=1).validate()
    assert load_config("model/llama", ["model.sliding_window=64"]).model.sliding_window == 64
    assert load_config("model/llama", []).model.sliding_window is None


def test_training_backward_runs_with_a_window():
    model = model_with(4).train()
    idx = ids()
    loss = model.loss(idx[:, :-1], idx[:, 1:])
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


@needs_transformers
@torch.no_grad()
def test_model_equals_transformers_mistral():
    from causette.model import hf_reference as hf_ref

    model = model_with(5, n_kv_head=2)
    hf = transformers.MistralForCausalLM(transformers.MistralConfig(**hf_ref.mistral_config(model.cfg))).eval()
    hf.load_state_dict(hf_ref.llama_state_dict(model), strict=True)
    torch.testing.assert_close(model.logits(ids()), hf(ids()).logits, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="no sliding window"):
        hf_ref.llama_config(model.cfg)


@needs_transformers
def test_hf_export_is_mistral_with_equal_logits_and_generation(tmp_path, tok):  # noqa: F811
    os.environ["HF_HUB_OFFLINE"] = "1"
    model = make_checkpoint(tmp_path / "ckpt", tok, overrides=["model.n_kv_head=2", "model.sliding_window=6"])
    assert cli_main(["export", "hf", str(tmp_path / "ckpt"), str(tmp_path / "out")]) == 0
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    assert cfg["model_type"] == "mistral" and cfg["sliding_window"] == 6
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    assert type(hf).__name__ == "MistralForCausalLM"
    x = torch.tensor([tok.encode(FRENCH[0] + FRENCH[1])[:64]])
    with torch.no_grad():
        expected, got = hf(x).logits, model(x)[0]
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    prompt = tok.encode(FRENCH[0])[:12]
    with torch.no_grad():
        gen = hf.generate(torch.tensor([prompt]), max_new_tokens=20, do_sample=False)
    stops = sorted(tok.special_ids)
    theirs = gen[0, len(prompt) :].tolist()
    if theirs and theirs[-1] in stops:
        theirs = theirs[:-1]
    assert theirs == greedy(model, tok, prompt, 20, stops)


def test_gguf_export_refuses_a_window_in_one_line(tmp_path, tok):  # noqa: F811
    from causette.export.gguf import export_gguf

    make_checkpoint(tmp_path / "ckpt", tok, overrides=["model.sliding_window=6"])
    with pytest.raises(CausetteError, match=r"sliding_window=6 \(Llama has no sliding-window attention\)"):
        export_gguf(tmp_path / "ckpt", tmp_path / "m.gguf")
    assert not (tmp_path / "m.gguf").exists()


def test_gpt2_family_with_a_window_is_refused_for_hf(tmp_path, tok):  # noqa: F811
    from causette.export.hf import hf_architecture

    cfg = load_config("model/gpt2", ["model.sliding_window=6"]).model
    with pytest.raises(CausetteError, match="sliding_window=6"):
        hf_architecture(cfg)
    assert hf_architecture(dataclasses.replace(cfg, sliding_window=None)) == "gpt2"


def test_default_path_builds_no_mask(monkeypatch):
    """``sliding_window: null``: the attention never calls the window code (same speed as before)."""
    from causette.model.attention import CausalSelfAttention

    called = []
    monkeypatch.setattr(CausalSelfAttention, "_sliding_window", lambda *a: called.append(1))
    model_with(None).logits(ids())
    assert not called


def test_flops_count_at_most_the_window():
    from causette.model.counting import flops_per_token

    full, win = ModelConfig(**SIZE), ModelConfig(**SIZE, sliding_window=8)
    per_key = 12 * SIZE["n_layer"] * SIZE["n_embd"]  # training: 3 × 4·L·H·hd per key
    assert flops_per_token(full) - flops_per_token(win) == per_key * (32 - 8)
    assert flops_per_token(win, seq_len=4) == flops_per_token(full, seq_len=4)


# ============================================================================== the ring buffer
# A sliding-window model's KV cache keeps ``window`` positions per layer, not ``block_size``
# (position p in slot p mod window). Cached generation must still give the logits and the
# greedy ids of recomputing the whole sequence without a cache, for prompts and generations
# longer than the window, eagerly, through the static step (eager and compiled) and through the
# server's continuous-batching worker.

from types import SimpleNamespace  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from causette.inference.engine import Engine  # noqa: E402
from causette.inference.sampling import SamplingParams  # noqa: E402
from causette.model.attention import CausalSelfAttention  # noqa: E402
from causette.model.kvcache import KVCache  # noqa: E402

WINDOW = 5


def windowed(vocab: int, window: int = WINDOW, block: int = 64) -> Transformer:
    cfg = load_config(
        "model/llama",
        ["model.n_layer=2", "model.n_embd=64", "model.n_head=4", "model.n_kv_head=2", f"model.vocab_size={vocab}",
         f"model.block_size={block}", "model.init_std=0.3", f"model.sliding_window={window}"],
    ).model
    torch.manual_seed(0)
    return Transformer(cfg).eval()


def recompute(model, prompt: list[int], n: int) -> tuple[list[int], list[torch.Tensor]]:
    """Greedy ids and each step's logits, the whole sequence recomputed at every step (no cache)."""
    seq, logits = list(prompt), []
    for _ in range(n):
        out = model.logits(torch.tensor([seq]))[0, -1]
        logits.append(out)
        seq.append(int(out.argmax()))
    return seq[len(prompt) :], logits


def ragged_prompts(tok) -> list[list[int]]:  # noqa: F811
    """Three prompts, two longer than the window, of different lengths."""
    return [tok.encode(FRENCH[0])[:3], tok.encode(FRENCH[1])[:17], tok.encode(FRENCH[0])[:11]]


def test_cache_stores_the_window_not_block_size():
    model = model_with(6, n_kv_head=2)
    cache = model.new_cache(3)
    assert cache.window == 6 and cache.max_len == 32
    assert all(t.shape == (3, 2, 6, 16) for t in cache.k + cache.v)  # 6 slots, not 32
    assert cache.rows(1, 2).window == 6 and cache.rows(1, 2).k[0].shape == (1, 2, 6, 16)
    assert model.cache_length() == 6 and model.cache_length(4) == 4
    small = model.new_cache(3, max_len=4)  # the whole context fits in the window: no ring
    assert small.window is None and small.k[0].shape[2] == 4
    assert model_with(None).new_cache(1).window is None and model_with(None).new_cache(1).k[0].shape[2] == 32
    assert model_with(None).cache_length() == 32
    nbytes = sum(t.numel() * t.element_size() for t in cache.k + cache.v)
    assert nbytes == 2 * 2 * 3 * 2 * 6 * 16 * 4  # k and v, layers, batch, kv heads, slots, head_dim, fp32


@pytest.mark.parametrize("window,chunks", [(6, [3, 10, 1, 1, 17]), (4, [9, 9, 1, 13]), (3, [1] * 32), (1, [5, 27])])
@torch.no_grad()
def test_ring_cache_chunks_longer_than_the_window_equal_full_recompute(window, chunks):
    model = model_with(window, n_kv_head=2)
    idx = ids()
    want = model.logits(idx)
    cache, got, start = model.new_cache(2), [], 0
    assert cache.k[0].shape[2] == window
    for n in chunks:
        got.append(model.logits(idx[:, start : start + n], cache=cache))
        start += n
    torch.testing.assert_close(torch.cat(got, 1), want, atol=1e-5, rtol=0)


@torch.no_grad()
def test_eager_cached_greedy_logits_equal_recompute_up_to_block_size(tok):  # noqa: F811
    """A prompt of 17 tokens and 47 more (to the end of the 64-token context), window 5."""
    model = windowed(tok.vocab_size)
    prompt = ragged_prompts(tok)[1]
    n = 64 - len(prompt)
    want_ids, want_logits = recompute(model, prompt, n)
    cache = model.new_cache(1)
    assert cache.k[0].shape[2] == WINDOW
    x, got_ids = torch.tensor([prompt]), []
    for i in range(n):
        logits = model.logits(x, cache=cache, last_only=True)[0, -1]
        torch.testing.assert_close(logits, want_logits[i], atol=1e-4, rtol=0)  # logits up to ~10: rounding (full attention: the same)
        got_ids.append(int(logits.argmax()))
        x = torch.tensor([[got_ids[-1]]])
    assert got_ids == want_ids
    params = SamplingParams(temperature=0.0, max_new_tokens=100, stop_token_ids=(), seed=0)
    [g] = Engine(model, tok, decode="exact").generate([prompt], params)
    assert g.token_ids == want_ids and g.finish_reason == "context"


@torch.no_grad()
def test_eager_engine_batch_of_ragged_prompts_equals_recompute(tok):  # noqa: F811
    model = windowed(tok.vocab_size)
    params = SamplingParams(temperature=0.0, max_new_tokens=20, stop_token_ids=(), seed=0)
    got = Engine(model, tok, decode="exact").generate(ragged_prompts(tok), params)
    assert [g.token_ids for g in got] == [recompute(model, p, 20)[0] for p in ragged_prompts(tok)]


@pytest.mark.parametrize("options", [{}, {"matvec": True}, {"transposed": True}])
@torch.no_grad()
def test_static_step_on_the_ring_equals_recompute_rows_at_their_own_positions(tok, options):  # noqa: F811
    model = windowed(tok.vocab_size)
    step = arranged(model, options)
    rows = ragged_prompts(tok)
    cache = model.new_cache(len(rows))
    assert cache.k[0].shape[2] == WINDOW
    nxt, pos = [], []
    for i, p in enumerate(rows):
        logits = model.logits(torch.tensor([p]), cache=cache.rows(i, i + 1), last_only=True)[0, -1]
        nxt.append(int(logits.argmax()))
        pos.append(len(p))
    for _ in range(20):  # past the window for every row
        got = step(torch.tensor(nxt), torch.tensor(pos), cache.k, cache.v)
        for i, p in enumerate(rows):
            p.append(nxt[i])
            torch.testing.assert_close(got[i], model.logits(torch.tensor([p]))[0, -1], atol=1e-4, rtol=0)
        nxt = got.argmax(-1).tolist()
        pos = [q + 1 for q in pos]


def run_worker(engine, prompts, params, max_batch):
    """The server's worker, fed ``prompts`` at once: their generations, in order, and the worker."""
    import asyncio

    from causette.inference.server_worker import Job, Worker

    async def main():
        loop = asyncio.get_running_loop()
        worker = Worker(engine, max_queue=16, max_batch=max_batch)
        jobs = [Job(list(p), params, loop) for p in prompts]
        for job in jobs:
            worker.submit(job)
        results = []
        for job in jobs:
            while True:
                kind, value = await job.events.get()
                if kind == "error":
                    raise value
                if kind == "done":
                    results.append(value)
                    break
        worker.close()
        return results, worker

    return asyncio.run(main())


@torch.no_grad()
def test_server_worker_continuous_batching_on_the_ring_equals_recompute(tok):  # noqa: F811
    """Five requests on two rows (they join and leave), prompts and replies longer than the
    window; the last prompt is shorter than the window and lands on a row whose slots hold a
    finished request's keys (never seen: the mask knows which positions were written)."""
    model = windowed(tok.vocab_size)
    prompts = [*ragged_prompts(tok), tok.encode(FRENCH[2])[:8], tok.encode(FRENCH[1])[:2]]
    params = SamplingParams(temperature=0.0, max_new_tokens=24, stop_token_ids=(), seed=0)
    results, worker = run_worker(Engine(model, tok, decode="exact"), prompts, params, max_batch=2)
    assert worker.cache.k[0].shape == (2, 2, WINDOW, 16)
    assert [g.token_ids for g in results] == [recompute(model, p, 24)[0] for p in prompts]


@pytest.mark.slow
@torch.no_grad()
def test_compiled_step_on_the_ring_equals_recompute(tok, tmp_path, monkeypatch):  # noqa: F811
    """The real compilation (AOTInductor, twice ~10-30 s): its cache is the window long (part of
    the package's key); batch 1 and a batch of ragged prompts, then the server's worker."""
    from causette.inference.backends import aoti as compiled

    monkeypatch.setenv("CAUSETTE_CACHE_DIR", str(tmp_path))
    model = windowed(tok.vocab_size)
    fast = Engine(model, tok, decode="fast", native=False)  # the AOTInductor step (the native one: test_native.py)
    params = SamplingParams(temperature=0.0, max_new_tokens=30, stop_token_ids=(), seed=0)
    prompts = ragged_prompts(tok)
    want = [recompute(model, p, 30) for p in prompts]
    assert fast.generate([prompts[1]], params)[0].token_ids == want[1][0]
    step = fast.backend(1)
    assert step.max_len == WINDOW and step.path == compiled.cached_path(model, 1, WINDOW)
    assert compiled.cache_key(model, 1, WINDOW) != compiled.cache_key(model, 1, 64)
    # the compiled step's logits, fed by an eager prefill into the ring
    cache = model.new_cache(1)
    logits = model.logits(torch.tensor([prompts[1]]), cache=cache, last_only=True)[0, -1]
    for i, token in enumerate(want[1][0][:-1], start=1):
        logits = step(torch.tensor([token]), torch.tensor([cache.pos]), cache.k, cache.v)[0]
        cache.advance(1)
        torch.testing.assert_close(logits, want[1][1][i], atol=1e-4, rtol=0)
    assert [g.token_ids for g in fast.generate(prompts, params)] == [w[0] for w in want]  # batch 3, forced steps
    results, worker = run_worker(fast, prompts, params, max_batch=3)  # the same compiled step (batch 3)
    assert worker.scheduler.runner.backend is fast.backend(3)
    assert [g.token_ids for g in results] == [w[0] for w in want]


@torch.no_grad()
def test_full_attention_never_uses_the_ring(monkeypatch):
    """``sliding_window: null``: the cache is ``block_size`` long and the ring's code never runs."""
    called = []
    monkeypatch.setattr(KVCache, "update_window", lambda *a: called.append(1))
    model = model_with(None)
    cache = model.new_cache(2)
    assert cache.window is None and cache.k[0].shape[2] == 32
    model.logits(ids(20), cache=cache)
    model.logits(ids(1), cache=cache)
    model.logits(ids(5), cache=cache)
    assert not called and cache.pos == 26


@settings(max_examples=200, deadline=None)
@given(
    window=st.integers(1, 9),
    chunks=st.lists(st.integers(1, 12), min_size=1, max_size=8),
)
def test_ring_slots_and_masks_hold_exactly_the_window(window, chunks):
    """Values are the positions themselves: after each update the ring's slot j holds the
    latest position that is j mod N; the keys returned with their positions carry those very
    positions; the mask admits exactly ``p-N < key <= p`` for each query ``p``; the static
    step's formula for the position a slot holds agrees."""
    cache = KVCache(1, 1, 1, 200, 1, window=window)
    attn = SimpleNamespace(window=window)
    pos = 0
    for T in chunks:
        new = torch.arange(pos, pos + T, dtype=torch.float32).view(1, 1, T, 1)
        keys, values, key_pos = cache.update_window(0, new, new)
        mask, causal = CausalSelfAttention._ring_mask(attn, key_pos, pos, T)
        held = keys[0, 0, :, 0].long()
        if key_pos is not None:
            assert torch.equal(held, key_pos)
        for i, q in enumerate(range(pos, pos + T)):
            if mask is not None:
                seen = set(held[mask[i]].tolist())
            elif causal:
                seen = set(held[: i + 1].tolist())
            else:  # one token: every returned key
                seen = set(held.tolist())
            assert seen == set(range(max(0, q - window + 1), q + 1))
        cache.advance(T)
        pos += T
        last = pos - 1  # the static step's view, right after writing position ``last``
        slots = torch.arange(window)
        want = last - (last - slots) % window
        ring = cache.k[0][0, 0, :, 0].long()
        filled = want >= 0
        assert torch.equal(ring[filled], want[filled])
