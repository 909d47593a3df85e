"""The generation engine: prompts in, text out, one token at a time, with the KV cache.

    engine = Engine(model, tokenizer)
    params = SamplingParams(temperature=0.8, top_k=50, max_new_tokens=100, seed=0,
                            stop_token_ids=engine.special_ids)
    [g] = engine.generate([prompt_ids], params)          # g.text, g.token_ids, g.finish_reason
    for delta in engine.stream(prompt_ids, params):      # the same, as text deltas
        print(delta, end="", flush=True)

**One step.** Generating token ``t + 1`` needs the logits of position ``t`` only. With the KV
cache (causette/model/kvcache.py) the prompt is read once (*prefill*), then each step feeds
just the newest token and the cache supplies every earlier key and value: a step costs one
token's worth of work instead of the whole sequence's. ``use_cache=False`` recomputes the whole
sequence at every step instead; it gives the same tokens and exists to measure the difference.

**Batches of prompts of different lengths.** Our model has no padding mask: every row of a
batch sits at the same position and the cache advances all rows together. So we do what the
original LLaMA sampler does: the batch prefills the length of the *shortest* prompt; from there
each step feeds one token per row, and a row whose prompt is not finished yet is fed its own
next prompt token (*forced*) instead of a sampled one. Every row therefore only ever sees real
tokens at their true positions, no padding ever enters attention, and each row gets exactly
the tokens it would get alone (the tests check it). The cost: the extra prompt tokens of the
longer rows are read one step at a time rather than in the prefill. So :meth:`Engine.generate`
sorts the prompts by length and cuts them into groups whose lengths differ by at most
``max(16, max_new_tokens // 2)`` tokens (beyond that, a second decoding loop costs less than
the forced steps); each group is one batch. Batches of equal prompts (``--num-samples``) are
the common case and prefill in one go.

**Stopping.** A row stops when it generates one of ``stop_token_ids`` (not kept), when a stop
string appears in its text (the text ends just before it), after ``max_new_tokens``, or when
the context (``block_size``) is full. ``Generation.finish_reason`` says which:
``"stop_token"``, ``"stop_string"``, ``"length"``, ``"context"`` (or ``"interrupted"``).

**Speed on a CPU: the native step.** With ``decode="fast"`` the one-token steps go through
native.py's C++ step (native_step.cpp, built once per machine and cached on disk): one call per
token instead of a few hundred PyTorch operations, ~6× the eager step at batch 1 on the demo
model and ~0.9× llama.cpp (bench/LOG.md). Models it does not cover (MoE, int8, LoRA, bf16)
use :class:`~causette.inference.decode_step.DecodeStep` compiled ahead of time by AOTInductor
(compiled.py; ``native=False`` forces it). The prefill stays eager. The logits differ from the eager step by
a few units in the last place of float32 (sums in another order): greedy decoding gives the
same tokens in practice (the tests and bench/generate.py check it), not by construction.
``decode="exact"`` is the eager reference; ``decode="auto"`` (the library default) uses the
compiled step when it is already in the disk cache, and the eager one otherwise, so a library
call never waits for a compilation. ``causette chat``, ``generate`` and ``serve`` use
``"fast"`` (``--exact`` for the reference). Weight-only int8 linear layers (quantize.py) are
another option, which changes the logits by ~1 %.

**Text.** Tokens are turned into text by the tokenizer's incremental decoder, which holds back
the bytes of a character split across tokens until it is complete: a stream never shows "�"
in the middle of "é". Text that might be the start of a stop string is held back too, until
it is clear that it is not.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch

from causette.errors import CausetteError
from causette.inference.config import SEED_LIMIT
from causette.inference.row import Generation, Row
from causette.inference.sampling import SamplingParams, fresh_seed, make_generators, pick_tokens

DECODE_MODES = ("auto", "fast", "exact")


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model inside a ``torch.compile`` or DDP/FSDP wrapper (generation needs its
    ``cfg`` and ``new_cache``, and varying shapes would make a compiled model recompile)."""
    while True:
        inner = getattr(model, "_orig_mod", None) or getattr(model, "module", None)
        if not isinstance(inner, torch.nn.Module):
            return model
        model = inner


class Engine:
    """Generation for one model and its tokenizer."""

    def __init__(
        self, model: torch.nn.Module, tokenizer, decode: str = "auto", notify=None, compile: bool = False,
        native: bool = True,
    ):
        """``decode``: ``"fast"`` (the compiled step, compiled at the first use if it is not in
        the disk cache), ``"exact"`` (the eager reference), ``"auto"`` (the compiled step if it
        is already cached, else eager). ``notify``: called with a line for the user before a
        compilation starts. ``compile=True`` is the former name of ``decode="fast"``.
        ``native=False``: the compiled step is the AOTInductor one even where the native step
        (native.py) applies (to compare them)."""
        if decode not in DECODE_MODES:
            raise CausetteError(f"decode must be one of {', '.join(DECODE_MODES)}, got {decode!r}")
        self.model = unwrap_model(model)
        self.tokenizer = tokenizer
        self.block_size: int = self.model.cfg.block_size
        self.vocab_size: int = self.model.cfg.vocab_size
        self.device = next(self.model.parameters()).device
        self.decode = "fast" if compile else decode
        self.notify = notify
        self.native = native
        self._steps: dict[int, object] = {}  # batch size -> compiled step (None: not available)

    @property
    def special_ids(self) -> tuple[int, ...]:
        """Every special token id: the usual stop set (a reply or a document ends at any of them)."""
        return tuple(sorted(self.tokenizer.special_ids))

    # ------------------------------------------------------------------ public API
    def generate(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams, use_cache: bool = True
    ) -> list[Generation]:
        """Complete every prompt (a list of token ids); one :class:`Generation` each, in order.

        Prompts of similar lengths run as one batch (see the module docstring). Prompt ``i``
        draws with the seed ``params.seed + i``: a prompt repeated ``n`` times gives ``n``
        different samples, and sample ``i`` is the same whatever else is in the batch.
        """
        params.validate()
        seed = params.seed if params.seed is not None else fresh_seed()
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        spread = max(16, params.max_new_tokens // 2)
        groups: list[list[int]] = []
        for i in order:
            if groups and len(prompts[i]) - len(prompts[groups[-1][0]]) <= spread:
                groups[-1].append(i)
            else:
                groups.append([i])
        results: list[Generation | None] = [None] * len(prompts)
        for group in groups:
            run = GenerationRun(self, [prompts[i] for i in group], params, use_cache, seeds=[seed + i for i in group])
            for _ in run:
                pass
            for i, result in zip(group, run.results):
                results[i] = result
        return results

    def stream(self, prompt: Sequence[int], params: SamplingParams, use_cache: bool = True) -> "TextStream":
        """Complete one prompt, as an iterator of text deltas; ``.result`` once it is exhausted."""
        return TextStream(GenerationRun(self, [prompt], params, use_cache))

    def encode_prompt(self, text: str, bos: bool = True) -> list[int]:
        """Ids of plain text to continue: ``<|bos|>`` (documents start with it in training) and
        the text encoded with special tokens disallowed."""
        ids = self.tokenizer.encode(text, allowed_special="none")
        return [self.tokenizer.bos_id, *ids] if bos else ids

    # ------------------------------------------------------------------ one forward step
    def new_cache(self, batch_size: int, max_len: int):
        """An empty KV cache of the model's."""
        return self.model.new_cache(batch_size, max_len=max_len)

    @torch.inference_mode()
    def _next_logits(self, tokens: torch.Tensor, cache, fed: int, start: int) -> torch.Tensor:
        """Logits ``(B, V)`` for the position after ``tokens[:, :fed]``.

        With a cache the model is given only what it has not seen, ``tokens[:, start:fed]``
        (the prefill, then one token); without, the whole ``tokens[:, :fed]`` every time.
        With ``compile``, the one-token steps go through the compiled model.
        """
        idx = tokens[:, start:fed] if cache is not None else tokens[:, :fed]
        logits = self.model.logits(idx.to(self.device, non_blocking=True), cache=cache, last_only=True)
        return logits[:, -1].float()

    def fast_step(self, batch_size: int):
        """The compiled one-token step for ``batch_size`` rows (compiled.py), or None when this
        engine decodes eagerly: ``decode="exact"``, a model it does not cover (MoE, not on the
        CPU), or ``"auto"`` with nothing in the disk cache."""
        if batch_size not in self._steps:
            self._steps[batch_size] = self._load_step(batch_size)
        return self._steps[batch_size]

    def _load_step(self, batch_size: int):
        from causette.inference import compiled, native
        from causette.inference.decode_step import supports

        if self.decode == "exact" or self.device.type != "cpu" or not supports(self.model):
            return None
        if self.native:  # the C++ step (native.py), for the models it covers; else AOTInductor's
            step = native.load(self.model, notify=self.notify, compile=self.decode == "fast")
            if step is not None:
                return step
        length = self.model.cache_length(self.block_size)  # block_size, or a sliding window's ring
        if self.decode == "auto" and not compiled.is_cached(self.model, batch_size, length):
            return None
        return compiled.load_or_compile(self.model, batch_size, length, notify=self.notify)


class GenerationRun:
    """One batched generation; iterate to advance it one step at a time.

    Each step yields a list with one text delta per row (``""`` when that row showed nothing
    new). When the iteration ends, :attr:`results` holds one :class:`Generation` per prompt.
    """

    def __init__(
        self,
        engine: Engine,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams,
        use_cache: bool = True,
        seeds: Sequence[int] | None = None,
    ):
        """``seeds``: one per row (default ``params.seed + i``, or fresh when ``params.seed`` is None)."""
        params.validate()
        prompts = [[int(t) for t in p] for p in prompts]
        if not prompts:
            raise CausetteError("no prompt to complete")
        for p in prompts:
            if not p:
                raise CausetteError("a prompt must hold at least one token (start it with <|bos|>)")
            if len(p) >= engine.block_size:
                raise CausetteError(
                    f"a prompt of {len(p)} tokens leaves no room in the model's context of "
                    f"{engine.block_size} tokens: shorten it"
                )
            if min(p) < 0 or max(p) >= engine.vocab_size:
                raise CausetteError(f"a prompt holds a token id outside the model's vocabulary of {engine.vocab_size}")
        self.engine = engine
        self.params = params
        # A model without attention (the progression's bigram and window steps) keeps no cache.
        self.use_cache = use_cache and getattr(engine.model, "supports_cache", True)
        if seeds is None:
            base = params.seed if params.seed is not None else fresh_seed()
            seeds = [base + i for i in range(len(prompts))]
        self.seeds = [int(s) % SEED_LIMIT for s in seeds]  # seed + i past the largest seed wraps to 0
        self.rows = [Row(p, engine.tokenizer, params, s) for p, s in zip(prompts, self.seeds)]
        self._started = False

    @property
    def results(self) -> list[Generation]:
        return [row.result for row in self.rows]

    def stop(self, reason: str = "interrupted") -> None:
        """End every unfinished row now (e.g. after Ctrl-C)."""
        for row in self.rows:
            row.finish(reason)

    def __iter__(self) -> Iterator[list[str]]:
        if self._started:
            raise RuntimeError("a GenerationRun can be iterated only once")
        self._started = True
        engine, params, rows = self.engine, self.params, self.rows
        B = len(rows)
        lengths = [len(r.prompt) for r in rows]
        # Every row advances in lockstep; the sequence never grows past the context.
        total = min(engine.block_size, max(lengths) + params.max_new_tokens)
        tokens = torch.zeros(B, total, dtype=torch.long)
        for i, row in enumerate(rows):
            tokens[i, : len(row.prompt)] = torch.tensor(row.prompt)
        prompt_len = torch.tensor(lengths)
        generators = make_generators(self.seeds)
        seen = None
        if params.repetition_penalty != 1.0:  # which tokens each row has seen: prompt, then reply
            seen = torch.zeros(B, engine.vocab_size, dtype=torch.bool, device=engine.device)
            for i, row in enumerate(rows):
                seen[i, row.prompt] = True
        # The compiled step has static shapes: its cache is always block_size long (a sliding
        # window's ring buffer: the window).
        step = engine.fast_step(B) if self.use_cache else None
        cache = engine.new_cache(B, max_len=engine.block_size if step else total) if self.use_cache else None
        positions = torch.zeros(B, dtype=torch.long)

        # The native step (native.py) needs no autograd mode: a few microseconds per token saved.
        plain = step is not None and getattr(step, "grad_free", False)
        longest = max(lengths)
        fed, start = min(lengths), 0  # the model has read tokens[:, :fed]; the cache holds :start
        while fed < total and not all(r.done for r in rows):
            if step is not None and fed - start == 1:  # one new token per row: the compiled step
                if plain:
                    logits = step(tokens[:, start].contiguous(), positions.fill_(start), cache.k, cache.v)
                else:
                    with torch.inference_mode():
                        logits = step(tokens[:, start].contiguous(), positions.fill_(start), cache.k, cache.v)
                cache.advance(1)
            else:
                logits = engine._next_logits(tokens, cache, fed, start)
            start = fed
            if fed >= longest:  # no row is reading its prompt any more (the usual case)
                draw = [not r.done for r in rows]
                nxt = pick_tokens(logits, params, generators, seen, draw)
            else:
                forced = fed < prompt_len  # rows still reading their prompt
                draw = [not (f or r.done) for f, r in zip(forced.tolist(), rows)]
                picked = pick_tokens(logits, params, generators, seen, draw)
                nxt = torch.where(forced, tokens[:, fed], picked)
            tokens[:, fed] = nxt
            fed += 1
            if seen is not None:
                seen[torch.arange(B, device=seen.device), nxt.to(seen.device)] = True
            deltas = []
            for i, token in enumerate(nxt.tolist()):
                deltas.append(rows[i].push(token) if draw[i] else "")
            yield deltas
        # Out of room: rows still going end here, with what they held back.
        final = [row.finish("length" if len(row.tokens) >= params.max_new_tokens else "context") for row in rows]
        if any(final):
            yield final


class TextStream:
    """Iterate for the text of one generation, piece by piece; then read :attr:`result`."""

    def __init__(self, run: GenerationRun):
        self._run = run

    def __iter__(self) -> Iterator[str]:
        for deltas in self._run:
            if deltas[0]:
                yield deltas[0]

    def stop(self, reason: str = "interrupted") -> None:
        self._run.stop(reason)

    @property
    def result(self) -> Generation:
        return self._run.results[0]


def sample_texts(
    model: torch.nn.Module,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    temperature: float = 0.8,
    top_k: int = 50,
    seed: int = 0,
) -> list[str]:
    """Each prompt followed by a sampled continuation (for the training logs).

    Works on any device and from the middle of training: the model is put in eval mode for the
    generation and given back in the mode it was in; draws use their own generator, so the
    global RNG (and thus the training run) is unaffected. Generation stops at a special token
    (a base model ends a document with ``<|bos|>``) or at the end of the context.
    """
    inner = unwrap_model(model)
    was_training = inner.training
    inner.eval()
    try:
        engine = Engine(inner, tokenizer)
        room = engine.block_size - 1
        ids = [engine.encode_prompt(p)[-room:] for p in prompts]  # keep the end of a very long prompt
        params = SamplingParams(
            temperature=temperature,
            top_k=top_k,
            max_new_tokens=max_new_tokens,
            stop_token_ids=engine.special_ids,
            seed=seed,
        )
        return [p + g.text for p, g in zip(prompts, engine.generate(ids, params))]
    finally:
        inner.train(was_training)
