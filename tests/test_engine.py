"""Generation engine: sampling filters on hand-made logits, greedy decoding against the full
forward pass, batching, seeds, stop tokens and strings, streaming, chat context management.

Two kinds of models: a tiny real Transformer (2 layers × 64, random weights with a large init so
that greedy outputs vary), and a scripted fake whose next token is fixed in advance, to test
stopping and decoding exactly.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from causette.config import load_config
from causette.errors import CausetteError
from causette.inference.chat import CHAT, CONTINUE, ChatSession
from causette.inference.engine import Engine, sample_texts, unwrap_model
from causette.inference.sampling import (
    SamplingParams,
    apply_repetition_penalty,
    apply_temperature,
    filter_logits,
    min_p_filter,
    pick_tokens,
    top_k_filter,
    top_p_filter,
)
from causette.model import Transformer
from causette.model.kvcache import KVCache
from causette.tokenizer import train_tokenizer
from causette.tokenizer.config import TokenizerConfig

ROOT = Path(__file__).resolve().parents[1]
INF = float("-inf")


# ============================================================================== fixtures


def french_text(chars: int = 8000) -> str:
    for p in (ROOT / "data" / "demo_fr_pd.txt.gz", ROOT.parent / "shared" / "data" / "demo" / "demo_fr_pd.txt.gz"):
        if p.is_file():
            return gzip.decompress(p.read_bytes()).decode("utf-8")[:chars]
    return ("Le petit chat dort près de la fenêtre. Il était une fois une reine très sage. " * 100)[:chars]


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(TokenizerConfig(vocab_size=400, workers=1), [french_text()])


def tiny_model(vocab: int, block: int = 64, seed: int = 0) -> Transformer:
    cfg = load_config(
        "model/llama",
        ["model.n_layer=2", "model.n_embd=64", "model.n_head=4", "model.n_kv_head=2",
         f"model.vocab_size={vocab}", f"model.block_size={block}", "model.init_std=0.3"],
    ).model
    torch.manual_seed(seed)
    return Transformer(cfg).eval()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok.vocab_size)


@pytest.fixture(scope="module")
def engine(model, tok):
    return Engine(model, tok)


class ScriptedModel(torch.nn.Module):
    """A stand-in model whose next token is ``script[k]`` after ``k`` generated tokens.

    It honours the engine's contract (``cfg``, ``new_cache``, ``logits(idx, cache, last_only)``
    for a prompt, ``step(tokens, positions, cache)`` for one token per row) and records every
    input it is given (a step's as ``(B, 1)``).
    """

    def __init__(self, script: list[int], prompt_len: int, vocab: int, block: int = 64):
        super().__init__()
        self.cfg = SimpleNamespace(block_size=block, vocab_size=vocab, sliding_window=None)
        self.script, self.prompt_len, self.vocab = script, prompt_len, vocab
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.inputs: list[torch.Tensor] = []

    def new_cache(self, batch_size, max_len=None, dtype=None, device=None):
        return KVCache(1, batch_size, 1, max_len or self.cfg.block_size, 1)  # only its lengths matter

    def _scripted(self, lengths: list[int]) -> torch.Tensor:
        logits = torch.zeros(len(lengths), self.vocab)
        for b, length in enumerate(lengths):
            logits[b, self.script[min(length - self.prompt_len, len(self.script) - 1)]] = 10.0
        return logits

    def logits(self, idx, cache=None, last_only=False):
        self.inputs.append(idx.clone())
        length = idx.shape[1] + (cache.pos if cache is not None else 0)
        if cache is not None:
            cache.advance(idx.shape[1])
        return self._scripted([length] * idx.shape[0])[:, None]

    def step(self, tokens, positions, cache):
        self.inputs.append(tokens[:, None].clone())
        cache.set_lengths((positions + 1).tolist())
        return self._scripted((positions + 1).tolist())


def byte_ids(tok, text: str) -> list[int]:
    """One token per UTF-8 byte (ids 0..255 are the bytes): "é" becomes two tokens."""
    return list(text.encode("utf-8"))


# ============================================================================== filters


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits():
    logits = torch.tensor([[2.0, -1.0, 0.5, -3.0]])
    seen = torch.tensor([[True, True, False, False]])
    out = apply_repetition_penalty(logits, seen, 2.0)
    assert out.tolist() == [[1.0, -2.0, 0.5, -3.0]]
    assert apply_repetition_penalty(logits, seen, 1.0) is logits


def test_temperature_scales_logits():
    logits = torch.tensor([[2.0, 1.0]])
    assert apply_temperature(logits, 0.5).tolist() == [[4.0, 2.0]]
    p = torch.softmax(apply_temperature(logits, 0.5), -1)
    assert p[0, 0] > torch.softmax(logits, -1)[0, 0]  # sharper


def test_top_k_keeps_the_k_best_and_ties():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.5], [5.0, 5.0, 5.0, 1.0]])
    out = top_k_filter(logits, 2)
    assert out[0].tolist() == [INF, 3.0, 2.0, INF]
    assert out[1].tolist() == [5.0, 5.0, 5.0, INF]  # a three-way tie at the 2nd place: all kept
    assert torch.equal(top_k_filter(logits, 0), logits)
    assert torch.equal(top_k_filter(logits, 4), logits)


def probs_to_logits(*rows):
    return torch.tensor(rows, dtype=torch.float64).log().float()


def test_top_p_keeps_smallest_set_reaching_p():
    logits = probs_to_logits([0.5, 0.1, 0.3, 0.1])
    kept = top_p_filter(logits, 0.7) > INF
    assert kept.tolist() == [[True, False, True, False]]  # 0.5 + 0.3 = 0.8 >= 0.7
    kept = top_p_filter(logits, 0.85) > INF  # 0.8 < 0.85: one of the 0.1s joins
    assert kept.sum().item() == 3 and kept[0, 0] and kept[0, 2]
    kept = top_p_filter(logits, 0.5) > INF  # the best alone reaches 0.5
    assert kept.tolist() == [[True, False, False, False]]
    kept = top_p_filter(logits, 1e-9) > INF  # the best token always stays
    assert kept.tolist() == [[True, False, False, False]]
    assert torch.equal(top_p_filter(logits, 1.0), logits)


def test_top_p_rows_are_independent_and_values_unchanged():
    logits = probs_to_logits([0.1, 0.2, 0.7], [0.4, 0.35, 0.25])
    out = top_p_filter(logits, 0.6)
    assert (out > INF).tolist() == [[False, False, True], [True, True, False]]
    assert out[1, 0] == logits[1, 0] and out[1, 1] == logits[1, 1]


def test_min_p_keeps_tokens_relative_to_the_best():
    logits = probs_to_logits([0.6, 0.3, 0.05, 0.05])
    assert (min_p_filter(logits, 0.1) > INF).tolist() == [[True, True, False, False]]  # threshold 0.06
    assert (min_p_filter(logits, 0.6) > INF).tolist() == [[True, False, False, False]]  # threshold 0.36
    assert (min_p_filter(logits, 0.05) > INF).tolist() == [[True, True, True, True]]  # 0.03
    assert torch.equal(min_p_filter(logits, 0.0), logits)


def test_filter_order_and_greedy():
    logits = torch.tensor([[3.0, 2.5, 0.0, -1.0]])
    seen = torch.tensor([[True, False, False, False]])
    greedy = SamplingParams(temperature=0, repetition_penalty=2.0)
    # the penalty applies even when greedy: 3.0 → 1.5, so token 1 wins
    assert pick_tokens(logits, greedy, [], seen).tolist() == [1]
    params = SamplingParams(temperature=0.5, top_k=2, top_p=1.0, min_p=0.0)
    out = filter_logits(logits, params)
    assert out.tolist() == [[6.0, 5.0, INF, INF]]  # temperature first, then top-k


def test_sampling_params_are_checked():
    for bad in (dict(temperature=-1), dict(top_k=-1), dict(top_p=0), dict(top_p=1.5), dict(min_p=2),
                dict(repetition_penalty=0), dict(max_new_tokens=0), dict(stop_strings=("",))):
        with pytest.raises(CausetteError):
            SamplingParams(**bad).validate()


def test_sampling_draws_follow_the_filtered_distribution():
    logits = probs_to_logits([0.5, 0.3, 0.15, 0.05]).repeat(4000, 1)
    params = SamplingParams(temperature=1.0, top_k=0, top_p=0.8)  # keeps tokens 0 and 1 only
    gens = [torch.Generator().manual_seed(i) for i in range(4000)]
    counts = torch.bincount(pick_tokens(logits, params, gens), minlength=4).float() / 4000
    assert counts[2] == 0 and counts[3] == 0
    assert abs(counts[0].item() - 0.5 / 0.8) < 0.04


# ============================================================================== greedy and the cache


def test_greedy_with_cache_equals_argmax_of_full_forward(engine, model, tok):
    prompt = engine.encode_prompt("Il était une fois")
    [g] = engine.generate([prompt], SamplingParams(temperature=0, max_new_tokens=30))
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(30):
            logits, _ = model(torch.tensor([seq]))
            seq.append(int(logits[0, -1].argmax()))
    assert g.token_ids == seq[len(prompt):]
    assert len(set(g.token_ids)) > 3  # not a degenerate repetition: the check means something
    assert g.finish_reason == "length"
    assert g.text == tok.decode(g.token_ids)


def test_without_cache_gives_the_same_tokens(engine):
    prompts = [engine.encode_prompt("Bonjour"), engine.encode_prompt("La mer est calme ce soir")]
    params = SamplingParams(temperature=0.9, top_k=40, max_new_tokens=20, seed=3)
    cached = [g.token_ids for g in engine.generate(prompts, params)]
    full = [g.token_ids for g in engine.generate(prompts, params, use_cache=False)]
    assert cached == full


def test_batch_of_different_lengths_equals_one_by_one(engine):
    texts = ["Non", "Il était une fois une reine", "Le chat", "Elle répondit : « Entre, papa. »"]
    prompts = [engine.encode_prompt(t) for t in texts]
    assert len({len(p) for p in prompts}) == 4
    for params in (SamplingParams(temperature=0, max_new_tokens=15),
                   SamplingParams(temperature=1.0, top_k=0, max_new_tokens=15, seed=7)):
        batch = engine.generate(prompts, params)
        for i, p in enumerate(prompts):
            seed = None if params.seed is None else params.seed + i  # row i draws with seed + i
            [alone] = engine.generate([p], params.with_(seed=seed))
            assert batch[i].token_ids == alone.token_ids, (i, params)
            assert batch[i].prompt_ids == p


def test_prompts_of_very_different_lengths_run_in_groups(engine, tok):
    short, long = engine.encode_prompt("Oui"), engine.encode_prompt("Il était une fois " * 5)
    assert len(long) - len(short) > 16  # more than the spread one batch accepts for 4 new tokens
    params = SamplingParams(temperature=1.0, top_k=0, max_new_tokens=4, seed=11)
    out = engine.generate([long, short, long], params)
    assert [g.prompt_ids for g in out] == [long, short, long]  # results in the caller's order
    for i, p in enumerate([long, short, long]):
        assert out[i].token_ids == engine.generate([p], params.with_(seed=11 + i))[0].token_ids


def test_same_seed_same_sample_and_seeds_differ(engine):
    prompt = engine.encode_prompt("Le roi")
    params = SamplingParams(temperature=1.0, top_k=0, max_new_tokens=25, seed=42)
    a = engine.generate([prompt], params)[0]
    b = engine.generate([prompt], params)[0]
    c = engine.generate([prompt], params.with_(seed=43))[0]
    assert a.token_ids == b.token_ids and a.text == b.text
    assert a.token_ids != c.token_ids
    # --num-samples: one prompt repeated, each row its own draws, row 0 equals the single run
    rows = engine.generate([prompt] * 3, params)
    assert rows[0].token_ids == a.token_ids
    assert len({tuple(r.token_ids) for r in rows}) == 3


def test_generation_does_not_touch_the_global_rng(engine):
    state = torch.get_rng_state()
    engine.generate([engine.encode_prompt("Oui")], SamplingParams(temperature=1.0, max_new_tokens=10))  # seed None
    assert torch.equal(torch.get_rng_state(), state)


def test_repetition_penalty_in_the_engine(tok):
    # constant logits favour token A a little over B; once A is seen, the penalty flips them
    A, B = 65, 66

    class Constant(ScriptedModel):
        def _scripted(self, lengths):
            logits = torch.zeros(len(lengths), self.vocab)
            logits[..., A], logits[..., B] = 2.0, 1.5
            return logits

    engine = Engine(Constant([], 1, tok.vocab_size), tok)
    params = SamplingParams(temperature=0, max_new_tokens=4)
    assert engine.generate([[tok.bos_id]], params)[0].token_ids == [A] * 4
    out = engine.generate([[tok.bos_id]], params.with_(repetition_penalty=2.0))[0].token_ids
    assert out == [A, B, A, A]  # A: 2 → 1 < 1.5; then B: 1.5 → 0.75 < 1
    assert engine.generate([[tok.bos_id, A]], params.with_(repetition_penalty=2.0))[0].token_ids[0] == B  # prompt counts


def test_prompt_checks(engine):
    with pytest.raises(CausetteError, match="no room"):
        engine.generate([[engine.tokenizer.bos_id] * 64], SamplingParams())
    with pytest.raises(CausetteError, match="at least one token"):
        engine.generate([[]], SamplingParams())
    with pytest.raises(CausetteError, match="vocabulary"):
        engine.generate([[10_000]], SamplingParams())


def test_context_end_stops_generation(tok):
    model = tiny_model(tok.vocab_size, block=16)
    engine = Engine(model, tok)
    [g] = engine.generate([[tok.bos_id] * 10], SamplingParams(temperature=0, max_new_tokens=50))
    assert len(g.token_ids) == 6 and g.finish_reason == "context"


# ============================================================================== stopping and streaming


def test_stop_token_is_not_part_of_the_reply(tok):
    script = [*byte_ids(tok, "Oui."), tok.end_id, *byte_ids(tok, "jamais vu")]
    engine = Engine(ScriptedModel(script, 1, tok.vocab_size), tok)
    [g] = engine.generate([[tok.bos_id]], SamplingParams(temperature=0, stop_token_ids=[tok.end_id]))
    assert g.text == "Oui." and g.finish_reason == "stop_token"
    assert g.token_ids == byte_ids(tok, "Oui.")


def test_stop_strings_end_the_text_before_them(tok):
    script = byte_ids(tok, "Bonjour.\nQuestion : et toi ?")
    engine = Engine(ScriptedModel(script, 1, tok.vocab_size), tok)
    params = SamplingParams(temperature=0, max_new_tokens=40, stop_strings=("Question :", "\n\n"))
    stream = engine.stream([tok.bos_id], params)
    pieces = list(stream)
    assert "".join(pieces) == "Bonjour.\n" == stream.result.text
    assert stream.result.finish_reason == "stop_string"
    # text that only looked like the start of a stop string is shown once it is clear it is not
    params = params.with_(stop_strings=("Bonjour!",), max_new_tokens=len(script))
    [g] = engine.generate([[tok.bos_id]], params)
    assert g.text == "Bonjour.\nQuestion : et toi ?" and g.finish_reason == "length"


def test_stop_string_spanning_tokens_in_a_batch(tok):
    script = tok.encode("Le roi FIN du")
    assert any(len(tok.token_bytes(t)) > 1 for t in script)  # some tokens hold several characters
    engine = Engine(ScriptedModel(script, 2, tok.vocab_size), tok)
    a, b = engine.generate([[tok.bos_id, 65]] * 2, SamplingParams(temperature=0, max_new_tokens=len(script), stop_strings=("FIN",)))
    assert a.text == b.text == "Le roi " and a.finish_reason == "stop_string"


def test_stream_never_splits_a_character(tok):
    text = "Là-bas, l'été à Noël — ça ?"
    script = byte_ids(tok, text)  # every accented letter arrives in two or three tokens
    engine = Engine(ScriptedModel(script, 1, tok.vocab_size), tok)
    stream = engine.stream([tok.bos_id], SamplingParams(temperature=0, max_new_tokens=len(script)))
    pieces = list(stream)
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)
    assert "é" in pieces and "—" in pieces  # each came out whole, in one piece
    assert len(pieces) == len(text)


def test_character_cut_by_the_token_limit_is_dropped(tok):
    script = byte_ids(tok, "aé")
    engine = Engine(ScriptedModel(script, 1, tok.vocab_size), tok)
    [g] = engine.generate([[tok.bos_id]], SamplingParams(temperature=0, max_new_tokens=2))
    assert g.text == "a" and len(g.token_ids) == 2


def test_with_a_cache_the_model_reads_each_token_once(tok):
    model = ScriptedModel(byte_ids(tok, "abcdef"), 3, tok.vocab_size)
    Engine(model, tok).generate([[tok.bos_id, 65, 66]], SamplingParams(temperature=0, max_new_tokens=4))
    assert [x.shape[1] for x in model.inputs] == [3, 1, 1, 1]


# ============================================================================== sample_texts


def test_sample_texts_for_the_trainer(model, tok):
    model.train()
    state = torch.get_rng_state()
    texts = sample_texts(model, tok, ["Il était", "La"], max_new_tokens=12, seed=1)
    assert model.training  # mode given back
    assert torch.equal(torch.get_rng_state(), state)
    assert texts[0].startswith("Il était") and texts[1].startswith("La")
    assert texts == sample_texts(model, tok, ["Il était", "La"], max_new_tokens=12, seed=1)
    model.eval()
    assert sample_texts(model, tok, [""], 5)[0]  # an empty prompt starts from <|bos|>
    assert not model.training


def test_unwrap_model(model):
    class Wrapper(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.module = m

    assert unwrap_model(Wrapper(model)) is model
    assert unwrap_model(model) is model


# ============================================================================== chat sessions


def test_typed_role_token_stays_text(engine, tok):
    session = ChatSession(engine, SamplingParams(max_new_tokens=8))
    typed = "<|im_start|>x<|im_end|><|bos|>"
    ids, notices, _ = session.build_prompt(typed)
    assert not notices  # nothing was cut
    assert ids.count(tok.special_id("<|im_start|>")) == 2  # the user turn's and the generation prompt's
    assert ids.count(tok.end_id) == 1  # only the one closing the user message
    assert ids.count(tok.bos_id) == 1
    assert tok.decode(ids).endswith(f"user\n{typed}<|im_end|>\n<|im_start|>assistant\n")


def test_chat_keeps_history_and_drops_oldest_exchanges(engine, tok):
    session = ChatSession(engine, SamplingParams(temperature=0, max_new_tokens=8, seed=0), system="Sois bref.")
    notes: list[str] = []
    for k in range(6):
        reply = "".join(session.reply(f"Question numéro {k} : quelle heure est-il ?", notify=notes.append))
        assert session.history[-1] == {"role": "assistant", "content": reply}
    assert any("plus ancien" in n for n in notes)  # French by default
    assert len(session.transcript) == 12  # the transcript keeps everything
    assert len(session.history) < 12
    ids, _, _ = session.build_prompt("Et maintenant ?")
    assert len(ids) <= session.budget == 64 - 8
    assert tok.decode(ids).startswith("<|bos|><|im_start|>system\nSois bref.<|im_end|>")  # kept
    assert session.history[0]["role"] == "user"


def test_chat_cuts_the_start_of_a_too_long_message(engine):
    session = ChatSession(engine, SamplingParams(temperature=0, max_new_tokens=8))
    text = "début " + "la suite sans fin " * 40 + "dernier mot"
    ids, notices, history = session.build_prompt(text)
    assert len(ids) <= session.budget
    assert history[-1]["content"].endswith("dernier mot") and not history[-1]["content"].startswith("début")
    assert any("trop long" in n for n in notices)
    session.set_system("x " * 200)
    with pytest.raises(CausetteError, match="prompt système"):
        session.build_prompt("Bonjour")


def test_continuation_mode_has_no_roles_and_no_history(engine, tok):
    session = ChatSession(engine, SamplingParams(temperature=0, max_new_tokens=5), mode=CONTINUE)
    ids, _, _ = session.build_prompt("Il était une fois")
    assert ids == engine.encode_prompt("Il était une fois")
    "".join(session.reply("Il était une fois"))
    assert session.history == [] and len(session.transcript) == 2
    assert session.mode == CONTINUE != CHAT


def test_repl_prints_notes_on_their_own_line(tok):
    import io

    from causette.inference.repl import Repl

    engine = Engine(ScriptedModel([ord("a")], 0, tok.vocab_size, block=48), tok)  # never stops by itself
    session = ChatSession(engine, SamplingParams(temperature=0, max_new_tokens=100))
    out = io.StringIO()
    inputs = iter(["Bonjour", "/params"])

    def fake_input(prompt: str) -> str:
        out.write(prompt)
        try:
            return next(inputs)
        except StopIteration:
            raise EOFError from None

    assert Repl(session, out=out, input_fn=fake_input).run() == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("vous> modèle> aaaa")  # (the typed text is not echoed here; French by default)
    assert lines[1] == "note\u00a0: la réponse a rempli le contexte du modèle (48 tokens) et a été coupée"
    assert lines[2].startswith("vous> temperature 0 (greedy)")
    assert session.last_result.finish_reason == "context"
