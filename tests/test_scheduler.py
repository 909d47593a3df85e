"""One decoding path: the model's step with a position per row (``Transformer.step``), the KV
cache's lengths, and the scheduler that every generation goes through (prefix copies, queued
requests, the logits processor)."""

from __future__ import annotations

import pytest
import torch

from causette.errors import CausetteError
from causette.inference.engine import Engine
from causette.inference.sampling import SamplingParams
from causette.inference.scheduler import Request
from causette.model import ModelConfig, Transformer
from helpers import LetterTokenizer

GREEDY = SamplingParams(temperature=0, max_new_tokens=8)


def model(**kw) -> Transformer:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=64, block_size=48, n_layer=2, n_embd=32, n_head=4, n_kv_head=2, mlp_hidden=64,
                      init_std=0.1, **kw)
    return Transformer(cfg).eval()


@pytest.mark.parametrize("kw", [{}, {"sliding_window": 5}, {"pos": "learned", "norm": "layernorm", "mlp": "gelu"},
                                {"n_experts": 4}])
@torch.no_grad()
def test_step_puts_each_row_at_its_own_position(kw):
    """Rows of lengths 3, 9 and 6 step together: each row's logits are the full forward's of
    its own sequence, and the cache's lengths follow (MoE too: the eager step covers it)."""
    m = model(**kw)
    seqs = [torch.randint(1, 64, (20,), generator=torch.Generator().manual_seed(i)).tolist() for i in range(3)]
    lengths = [3, 9, 6]
    cache = m.new_cache(3)
    for i, n in enumerate(lengths):
        m.logits(torch.tensor([seqs[i][:n]]), cache=cache.rows(i, i + 1))
    assert cache.lengths == lengths
    with pytest.raises(CausetteError, match="different lengths"):
        cache.pos
    for t in range(8):
        tokens = torch.tensor([seqs[i][n + t] for i, n in enumerate(lengths)])
        got = m.step(tokens, None, cache)  # positions: each row's length
        for i, n in enumerate(lengths):
            want = m.logits(torch.tensor([seqs[i][: n + t + 1]]))[0, -1]
            assert (got[i] - want).abs().max() < 1e-4
    assert cache.lengths == [n + 8 for n in lengths]


def test_copy_prefix_moves_a_rows_start_and_its_length():
    m = model()
    cache = m.new_cache(2)
    with torch.no_grad():
        m.logits(torch.tensor([[1, 2, 3, 4, 5]]), cache=cache.rows(0, 1))
    cache.copy_prefix(0, 1, 4)
    assert cache.lengths == [5, 4]
    assert torch.equal(cache.k[1][1, :, :4], cache.k[1][0, :, :4]) and cache.k[1][1, :, 4].abs().sum() == 0
    with pytest.raises(CausetteError, match="ring buffer"):
        model(sliding_window=4).new_cache(2).copy_prefix(0, 1, 2)


def test_a_repeated_prompt_is_read_once_and_each_sample_is_its_own():
    """--num-samples: the rows after the first copy its prompt from the first row instead of
    reading it; every row still gets the tokens it gets alone."""
    engine = Engine(model(), LetterTokenizer(64), decode="exact")
    prompt = [0, 5, 9, 12, 7, 3, 2]
    params = SamplingParams(temperature=1.0, top_k=0, max_new_tokens=10, seed=5)
    scheduler = engine.scheduler(3)
    requests = [Request(prompt, params, seed=5 + i) for i in range(3)]
    for r in requests:
        scheduler.submit(r)
    while scheduler.busy:
        scheduler.step()
    assert scheduler.prompt_tokens == 21 and scheduler.reused_tokens == 2 * 6
    for i, r in enumerate(requests):
        assert r.result.token_ids == engine.generate([prompt], params.with_(seed=5 + i))[0].token_ids
    assert len({tuple(r.result.token_ids) for r in requests}) == 3


def test_more_prompts_than_rows_wait_for_a_free_row():
    engine = Engine(model(), LetterTokenizer(64), decode="exact")
    prompts = [[0, k, k + 1] for k in range(1, 6)] + [[0, 9, 9, 9, 9, 9, 9, 9, 9]]
    alone = [engine.generate([p], GREEDY)[0].token_ids for p in prompts]
    scheduler = engine.scheduler(2)
    requests = [Request(p, GREEDY.with_(max_new_tokens=3 + k)) for k, p in enumerate(prompts)]
    for r in requests:
        scheduler.submit(r)
    steps = 0
    while scheduler.busy:
        scheduler.step()
        steps += 1
        assert sum(b is not None for b in scheduler._busy) <= 2
    assert [r.result.token_ids for r in requests] == [a[: 3 + k] for k, a in enumerate(alone)]
    assert steps < sum(3 + k for k in range(len(prompts)))  # two rows at a time, not one by one


def test_a_logits_processor_sees_each_rows_tokens_and_changes_its_choice():
    """The hook constrained decoding plugs into: here, a processor that forbids the token the
    model prefers at each step, for generate and for stream alike."""
    engine = Engine(model(), LetterTokenizer(64), decode="exact")
    prompt = [0, 5, 9, 12]
    free = engine.generate([prompt], GREEDY)[0].token_ids
    seen = []

    def forbid_greedy(tokens, logits):
        seen.append(list(tokens))
        out = logits.clone()
        out[0, int(logits.argmax())] = float("-inf")
        return out

    [g] = engine.generate([prompt], GREEDY, processor=forbid_greedy)
    assert g.token_ids[0] != free[0] and len(g.token_ids) == 8
    assert seen[:3] == [[], g.token_ids[:1], g.token_ids[:2]]  # the tokens generated so far
    stream = engine.stream(prompt, GREEDY, processor=forbid_greedy)
    list(stream)
    assert stream.result.token_ids == g.token_ids


def test_cancelled_and_bad_requests_end_cleanly():
    engine = Engine(model(), LetterTokenizer(64), decode="exact")
    scheduler = engine.scheduler(2)
    stop = {"now": False}
    r = Request([0, 1, 2], SamplingParams(temperature=0, max_new_tokens=40), cancelled=lambda: stop["now"])
    scheduler.submit(r)
    scheduler.step()
    stop["now"] = True
    updates = scheduler.step()
    assert [u.kind for u in updates][-1] == "done" and r.result.finish_reason == "interrupted"
    assert not scheduler.busy
    with pytest.raises(CausetteError, match="leaves no room"):
        scheduler.submit(Request([0] * 48, GREEDY))


def test_a_conversations_next_turn_through_stream_reads_only_what_is_new():
    """``Engine.stream`` keeps its row between calls (``causette chat``): the next turn resends
    the conversation, and only the new message is read; the reply is the one a fresh engine gives."""
    engine = Engine(model(), LetterTokenizer(64), decode="exact")
    first = [0, 5, 9, 12, 7]
    stream = engine.stream(first, GREEDY)
    list(stream)
    second = first + stream.result.token_ids + [21, 22]
    again = engine.stream(second, GREEDY)
    list(again)
    assert engine._solo.reused_tokens == len(first) + len(stream.result.token_ids) - 1
    fresh = Engine(engine.model, engine.tokenizer, decode="exact").generate([second], GREEDY)[0]
    assert again.result.token_ids == fresh.token_ids
