"""The native decoding step (causette/inference/backends/native.py, native_step.cpp): the logits of the
eager model within 1e-5 on demo-shaped models of both families, the same greedy tokens as the
exact engine, every row at its own position, 1 and 2 threads, the models it does not cover left
to the other steps, and a library built once per machine, found again on disk."""

from __future__ import annotations

import pytest
import torch

from causette.config import load_config
from causette.inference.backends import native
from causette.inference.engine import Engine
from causette.inference.sampling import SamplingParams
from causette.model import Transformer
from test_engine import french_text, tiny_model  # noqa: F401

from causette.tokenizer import train_tokenizer
from causette.tokenizer.config import TokenizerConfig

pytestmark = pytest.mark.skipif(native.compiler() is None, reason="needs a C++ compiler")

DEMO_SHAPE = ["model.n_layer=4", "model.n_embd=256", "model.n_head=4", "model.block_size=96",
              "model.vocab_size=512", "model.init_std=0.05"]  # logits up to ~4


def make(family: str, *extra: str, seed: int = 0) -> Transformer:
    """A random model of the demo's shape (4 layers × 256 wide, 4 heads) of that family."""
    kv = ["model.n_kv_head=2"] if family == "llama" else []
    cfg = load_config(f"model/{family}", [*DEMO_SHAPE, *kv, *extra]).model
    torch.manual_seed(seed)
    return Transformer(cfg).eval()


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(TokenizerConfig(vocab_size=400, workers=1), [french_text()])


VARIANTS = {
    "llama": ("llama",),
    "gpt2": ("gpt2",),
    "qk-norm, soft-cap, relu2": ("llama", "model.qk_norm=true", "model.logit_softcap=15", "model.mlp=relu2"),
    "sliding window": ("llama", "model.sliding_window=5"),
    "sinusoidal, rmsnorm, biases": ("gpt2", "model.pos=sinusoidal", "model.norm=rmsnorm", "model.n_kv_head=2"),
}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("variant", list(VARIANTS))
@torch.inference_mode()
def test_logits_of_the_eager_model_each_row_at_its_own_position(variant, threads):
    model = make(*VARIANTS[variant])
    step = native.load(model)
    assert isinstance(step, native.NativeStep)
    rows = [[1, 5, 9], [7, 3, 2, 8, 11, 4, 6, 10, 13], [42]]  # three lengths
    cache = model.new_cache(len(rows), max_len=model.cfg.block_size)
    nxt, pos = [], []
    for i, p in enumerate(rows):  # each prompt prefilled into its own row, by the model itself
        logits = model.logits(torch.tensor([p]), cache=cache.rows(i, i + 1), last_only=True)[0, -1]
        nxt.append(int(logits.argmax()))
        pos.append(len(p))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for _ in range(12):
            got = step(torch.tensor(nxt), torch.tensor(pos), cache.k, cache.v)
            for i, p in enumerate(rows):
                p.append(nxt[i])
                want = model.logits(torch.tensor([p]))[0, -1]
                assert (got[i] - want).abs().max() < 1e-5, variant
            nxt = got.argmax(-1).tolist()
            pos = [q + 1 for q in pos]
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("slots", [5, 7])
@torch.inference_mode()
def test_sliding_window_in_a_ring_buffer(slots):
    """A sliding window of 5 with a cache of ``slots`` >= 5 positions used as a ring (position p
    in slot p mod slots): 30 tokens decoded one by one from an empty cache give the model's
    logits; a ring smaller than the window, or no window, is refused past its end."""
    model = make("llama", "model.sliding_window=5")
    step = native.load(model)
    cache = model.new_cache(1, max_len=slots)
    ids = torch.randint(0, model.cfg.vocab_size, (30,), generator=torch.Generator().manual_seed(1)).tolist()
    for p in range(30):
        got = step(torch.tensor([ids[p]]), torch.tensor([p]), cache.k, cache.v)[0]
        want = model.logits(torch.tensor([ids[: p + 1]]))[0, -1]
        assert (got - want).abs().max() < 1e-5
    small = model.new_cache(1, max_len=4)
    with pytest.raises(ValueError):
        step(torch.tensor([1]), torch.tensor([4]), small.k, small.v)
    plain = make("llama")
    with pytest.raises(ValueError):
        native.load(plain)(torch.tensor([1]), torch.tensor([slots]), *[model.new_cache(1, max_len=slots).k] * 2)


@torch.inference_mode()
def test_prefill_gives_the_logits_and_cache_of_the_model():
    model = make("llama")
    step = native.load(model)
    idx = torch.randint(0, model.cfg.vocab_size, (2, 20), generator=torch.Generator().manual_seed(0))
    ours, theirs = model.new_cache(2, max_len=64), model.new_cache(2, max_len=64)
    for start, stop in ((0, 12), (12, 20)):  # a first chunk, then a second one on top of it
        want = model.logits(idx[:, start:stop], cache=theirs, last_only=True)[:, -1]
        got = step.prefill(idx[:, start:stop], start, ours.k, ours.v)
        assert (got - want).abs().max() < 1e-5
    for a, b in zip(ours.k + ours.v, theirs.k + theirs.v):
        assert (a[:, :, :20] - b[:, :, :20]).abs().max() < 1e-5


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_fast_engine_gives_the_greedy_tokens_of_the_exact_one(family, tok):
    model = make(family, f"model.vocab_size={tok.vocab_size}")
    fast, exact = Engine(model, tok, decode="fast"), Engine(model, tok, decode="exact")
    assert isinstance(fast.backend(1), native.NativeStep)
    params = SamplingParams(temperature=0, max_new_tokens=40)
    prompts = [[tok.bos_id, *tok.encode(t)] for t in ("Il était une fois", "Le chat dort près de la fenêtre, et")]
    for p in prompts:
        assert fast.generate([p], params)[0].token_ids == exact.generate([p], params)[0].token_ids
    # a batch of different lengths (forced steps) and sampling with seeds: the same draws too
    assert [g.token_ids for g in fast.generate(prompts, params)] == [g.token_ids for g in exact.generate(prompts, params)]
    sampled = SamplingParams(temperature=0.8, top_k=20, max_new_tokens=30, seed=3)
    assert fast.generate(prompts, sampled)[0].token_ids == exact.generate(prompts, sampled)[0].token_ids


def test_models_it_does_not_cover_are_refused():
    from causette.model.lora import apply_lora
    from causette.model.quantize import quantize_model
    from causette.model.config import LoRAConfig

    assert native.supports(make("llama"))
    moe = make("llama", "model.n_experts=4")
    int8 = quantize_model(make("llama"), "int8")
    lora = make("llama")
    apply_lora(lora, LoRAConfig(r=4))
    bf16 = make("llama").to(torch.bfloat16)
    for model in (moe, int8, lora, bf16):
        assert not native.supports(model)
        assert native.load(model) is None


def test_auto_engine_uses_the_library_only_when_built(tok, tmp_path, monkeypatch):
    """``decode="auto"`` never compiles: eager until the library is on disk, native after; a
    model it does not cover stays eager (no AOTInductor package in this empty cache either)."""
    from causette.model.quantize import quantize_model

    monkeypatch.setenv("CAUSETTE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(native, "_loaded", {})
    model = tiny_model(tok.vocab_size)
    assert Engine(model, tok, decode="auto").backend(1).name == "eager"
    assert isinstance(Engine(model, tok, decode="fast").backend(1), native.NativeStep)
    assert isinstance(Engine(model, tok, decode="auto").backend(4), native.NativeStep)
    assert Engine(model, tok, decode="exact").backend(1).name == "eager"
    assert Engine(model, tok, decode="auto", native=False).backend(1).name == "eager"  # AOTInductor's: not built
    assert Engine(quantize_model(tiny_model(tok.vocab_size), "int8"), tok, decode="auto").backend(1).name == "eager"


def test_turned_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("CAUSETTE_NATIVE", "0")
    assert native.load(make("llama")) is None


@torch.inference_mode()
def test_bad_input_raises_instead_of_reading_out_of_bounds():
    model = make("llama")
    step = native.load(model)
    cache = model.new_cache(1, max_len=8)
    with pytest.raises(ValueError):
        step(torch.tensor([model.cfg.vocab_size]), torch.tensor([0]), cache.k, cache.v)
    with pytest.raises(ValueError):
        step(torch.tensor([1]), torch.tensor([8]), cache.k, cache.v)  # position past the cache
    with pytest.raises(ValueError):
        step(torch.tensor([1, 2]), torch.tensor([0, 0]), cache.k, cache.v)  # 2 rows, 1 cache row


def test_library_is_built_once_and_keyed_by_source_compiler_and_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("CAUSETTE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(native, "_loaded", {})
    notes = []
    first = native.load(make("llama"), notify=notes.append)
    assert first is not None and first.compile_seconds > 0 and len(notes) == 1
    assert "compiling the decoding step" in notes[0]
    [lib] = (tmp_path / "decode").iterdir()
    assert lib.name.startswith("native-") and lib.suffix == ".so"
    monkeypatch.setattr(native, "_loaded", {})
    again = native.load(make("gpt2"), notify=notes.append)  # another model: the same library
    assert again is not None and again.compile_seconds == 0 and len(notes) == 1
    assert native.load(make("llama"), compile=False) is not None
    # the key follows the compiler, the CPU and the source
    cxx = native.compiler()
    key = native.cache_key(cxx)
    assert native.cache_key(cxx + " ") != key
    monkeypatch.setattr(native, "cpu_flags", lambda: "another cpu")
    assert native.cache_key(cxx) != key
    monkeypatch.undo()
    monkeypatch.setattr(native, "SOURCE", tmp_path / "other.cpp")
    (tmp_path / "other.cpp").write_bytes(b"// changed\n")
    assert native.cache_key(cxx) != key
