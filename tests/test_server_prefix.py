"""The server worker reuses the keys and values a free cache row already holds (prefix reuse):
fewer prompt tokens read, the same replies."""

from __future__ import annotations

import asyncio

import torch

from causette.inference.engine import Engine
from causette.inference.sampling import SamplingParams
from causette.inference.scheduler import _common_prefix
from causette.inference.server_worker import Job, Worker
from causette.model import ModelConfig, Transformer
from helpers import LetterTokenizer


def _engine(**kw) -> Engine:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=64, block_size=48, n_layer=2, n_embd=32, n_head=4, n_kv_head=2, mlp_hidden=64,
                      init_std=0.05, **kw)
    return Engine(Transformer(cfg).eval(), LetterTokenizer(64), decode="exact")


def _serve(worker: Worker, prompts: list[list[int]], params: SamplingParams) -> list[list[int]]:
    """Submit the prompts one after the other (each waits for the previous reply), then stop the worker."""
    try:
        return [_serve_one(worker, p, params) for p in prompts]
    finally:
        worker.close()


GREEDY = SamplingParams(temperature=0, max_new_tokens=6)


def test_a_repeated_prompt_is_read_once():
    engine = _engine()
    prompt = [0, 5, 9, 12, 7, 3]
    expected = engine.generate([prompt], GREEDY)[0].token_ids
    worker = Worker(engine, max_queue=4, max_batch=2)
    assert _serve(worker, [prompt, prompt, prompt], GREEDY) == [expected] * 3
    # the second and third requests read only the last prompt token (its logits are needed)
    assert worker.prompt_tokens == 18 and worker.reused_tokens == 2 * 5


def test_the_next_turn_reads_only_what_is_new():
    engine = _engine()
    first = [0, 5, 9, 12]
    reply = engine.generate([first], GREEDY)[0].token_ids
    second = first + reply + [21, 22, 23]  # the conversation so far, then a new message
    expected = [reply, engine.generate([second], GREEDY)[0].token_ids]
    worker = Worker(engine, max_queue=4, max_batch=2)
    assert _serve(worker, [first, second], GREEDY) == expected
    # the row holds the prompt and every reply token it fed back (all but the last one)
    assert worker.reused_tokens == len(first) + len(reply) - 1
    plain = Worker(engine, max_queue=4, max_batch=2, prefix_reuse=False)
    assert _serve(plain, [first, second], GREEDY) == expected and plain.reused_tokens == 0


def test_a_request_goes_to_the_row_holding_its_start():
    engine = _engine()
    a, b = [0, 1, 2, 3, 4, 5], [0, 9, 8, 7, 6, 5]
    scheduler = engine.scheduler(3)  # the worker's scheduler, driven by hand: no thread needed
    scheduler._held, scheduler._used = [list(a), list(b), []], [2, 1, 0]
    assert scheduler.free_row(b + [4]) == 1 and scheduler.free_row(a) == 0
    # nothing shared but the first token: the row used least recently (the empty one here)
    assert scheduler.free_row([0, 3]) == 2 and scheduler.free_row([7, 7]) == 2
    scheduler._held[2], scheduler._used = [0, 4], [2, 1, 3]
    assert scheduler.free_row([5]) == 1


def test_rows_keep_their_conversations():
    """Two prompts in turn on two rows: each comes back to the row that holds it."""
    engine = _engine()
    a, b = [0, 5, 9, 12, 7, 3], [0, 4, 4, 8]
    worker = Worker(engine, max_queue=8, max_batch=2)
    _serve(worker, [a, b, a, b, a], GREEDY)
    assert worker.reused_tokens == 5 + 3 + 5


def test_sliding_window_models_do_not_reuse():
    """Their ring buffer has overwritten old positions: every prompt is read in full."""
    engine = _engine(sliding_window=4)
    prompt = [0, 5, 9, 12, 7, 3, 2, 8]
    expected = engine.generate([prompt], GREEDY)[0].token_ids
    worker = Worker(engine, max_queue=4, max_batch=2)
    assert _serve(worker, [prompt, prompt], GREEDY) == [expected] * 2 and worker.reused_tokens == 0


def test_common_prefix():
    assert _common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert _common_prefix([1, 2], [1, 2, 3]) == 2
    assert _common_prefix([], [1]) == 0 and _common_prefix([5], [6]) == 0


def test_sampled_replies_are_the_same_with_and_without_reuse():
    engine = _engine()
    prompts = [[0, 5, 9, 12, 7, 3], [0, 4, 4, 8], [0, 5, 9, 12, 7, 3], [0, 4, 4, 8, 1], [0, 5, 9, 12, 7, 3]]

    def replies(reuse):
        worker = Worker(engine, max_queue=8, max_batch=2, prefix_reuse=reuse)
        out = [_serve_one(worker, p, SamplingParams(temperature=0.8, max_new_tokens=12, seed=k))
               for k, p in enumerate(prompts)]
        worker.close()
        return out, worker.reused_tokens

    (with_reuse, reused), (without, none) = replies(True), replies(False)
    assert with_reuse == without and reused == 5 + 4 + 5 and none == 0


def _serve_one(worker: Worker, prompt: list[int], params: SamplingParams) -> list[int]:
    async def run():
        job = Job(prompt, params, asyncio.get_running_loop())
        worker.submit(job)
        while True:
            kind, value = await asyncio.wait_for(job.events.get(), timeout=30)
            if kind == "error":
                raise value
            if kind == "done":
                return value.token_ids

    return asyncio.run(run())


def test_idle_rows_do_not_overwrite_what_they_hold():
    """While one row decodes, the others' cached prompts stay intact (bos != token 0 here)."""
    engine = _engine()
    a, b = [3, 5, 9, 12, 7, 3], [3, 4, 4, 8]
    worker = Worker(engine, max_queue=8, max_batch=3)
    _serve(worker, [a], GREEDY)
    held = worker.cache.k[0][0, :, : len(a)].clone()
    worker = Worker(engine, max_queue=8, max_batch=3)
    _serve(worker, [a, b, b], GREEDY)  # b decodes on row 1 while row 0 idles, holding a
    assert torch.equal(worker.cache.k[0][0, :, : len(a)], held)
