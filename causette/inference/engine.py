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

**The path of a token.** The engine is a thin front: ``generate`` submits every prompt to a
scheduler (scheduler.py) and steps it until all are done; ``stream`` does the same for one
prompt and yields the text as it comes. The scheduler gives each prompt a row of the KV cache
(prompts of any lengths: each row sits at its own position, no padding, no forced tokens),
reads its prompt (prefill) and then feeds one token per busy row per step through the runner
(runner.py), which calls the model's own ``step`` through the backend chosen once per batch
size (``Engine.backend``). Prompt ``i`` draws with the seed ``params.seed + i``, with its own
generator: each row gets exactly the tokens it would get alone (the tests check it). The same
scheduler serves ``causette serve``'s requests (server_worker.py).

**Stopping.** A row stops when it generates one of ``stop_token_ids`` (not kept), when a stop
string appears in its text (the text ends just before it), after ``max_new_tokens``, or when
the context (``block_size``) is full. ``Generation.finish_reason`` says which:
``"stop_token"``, ``"stop_string"``, ``"length"``, ``"context"`` (or ``"interrupted"``).

**Speed on a CPU: the backends.** With ``decode="fast"`` the one-token steps go through the
native C++ step (backends/native.py, native_step.cpp, built once per machine and cached on
disk): one call per token instead of a few hundred PyTorch operations, ~6× the eager step at
batch 1 on the demo model and ~0.9× llama.cpp (bench/LOG.md). Models it does not cover (int8,
LoRA, bf16) use the model's step compiled ahead of time by AOTInductor (backends/aoti.py;
``native=False`` forces it); MoE models stay eager. The prefill is always the model's own
forward. The logits differ from the eager step by a few units in the last place of float32
(sums in another order): greedy decoding gives the same tokens in practice (the tests and
bench/generate.py check it), not by construction. ``decode="exact"`` is the eager reference;
``decode="auto"`` (the library default) uses a compiled step when it is already in the disk
cache, and the eager one otherwise, so a library call never waits for a compilation.
``causette chat``, ``generate`` and ``serve`` use ``"fast"`` (``--exact`` for the reference).
Weight-only int8 linear layers (quantize.py) are another option, which changes the logits by ~1 %.

**Text.** Tokens are turned into text by the tokenizer's incremental decoder, which holds back
the bytes of a character split across tokens until it is complete: a stream never shows "�"
in the middle of "é". Text that might be the start of a stop string is held back too, until
it is clear that it is not.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch

from causette.errors import CausetteError
from causette.inference.backends import Backend
from causette.inference.row import Generation
from causette.inference.runner import DECODE_MODES, Runner, choose_backend
from causette.inference.sampling import SamplingParams, fresh_seed
from causette.inference.scheduler import LogitsProcessor, Request, Scheduler, check_prompt

MAX_ROWS = 64  # rows decoded together by generate(); more prompts wait for a free row


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
        """``decode``: ``"fast"`` (a compiled step, compiled at the first use if it is not in
        the disk cache), ``"exact"`` (the eager reference), ``"auto"`` (a compiled step if it
        is already cached, else eager). ``notify``: called with a line for the user before a
        compilation starts. ``compile=True`` is the former name of ``decode="fast"``.
        ``native=False``: the compiled step is the AOTInductor one even where the native step
        applies (to compare them)."""
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
        self._backends: dict[int, Backend | None] = {}  # batch size -> its backend
        self._solo: Scheduler | None = None  # stream()'s one row, kept: a chat's next turn reuses it

    @property
    def special_ids(self) -> tuple[int, ...]:
        """The special ids a reply or a document ends at: every special token but the tool tags
        (``<tool_call>``… are text the reply carries: tokenizer ``control_ids``)."""
        ids = getattr(self.tokenizer, "control_ids", None)
        return tuple(sorted(self.tokenizer.special_ids if ids is None else ids))

    def backend(self, batch_size: int) -> Backend | None:
        """The backend that steps ``batch_size`` rows (runner.choose_backend), chosen once per
        batch size; None for a model that keeps no KV cache."""
        if batch_size not in self._backends:
            self._backends[batch_size] = choose_backend(
                self.model, batch_size, self.decode, self.native, self.notify
            )
        return self._backends[batch_size]

    def scheduler(self, rows: int, use_cache: bool = True, prefix_reuse: bool = True) -> Scheduler:
        """A scheduler over a fresh KV cache of ``rows`` rows (``use_cache=False``: recompute)."""
        backend = self.backend(rows) if use_cache else None
        return Scheduler(Runner(self.model, rows, backend), self.tokenizer, prefix_reuse=prefix_reuse)

    # ------------------------------------------------------------------ public API
    def generate(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams, use_cache: bool = True,
        processor: LogitsProcessor | None = None,
    ) -> list[Generation]:
        """Complete every prompt (a list of token ids); one :class:`Generation` each, in order.

        Prompt ``i`` draws with the seed ``params.seed + i``: a prompt repeated ``n`` times
        gives ``n`` different samples, and sample ``i`` is the same whatever else is in the
        batch. ``processor``: a logits processor for every prompt (scheduler.py).
        """
        params.validate()
        if not prompts:
            raise CausetteError("no prompt to complete")
        prompts = [check_prompt(p, self.block_size, self.vocab_size) for p in prompts]
        seed = params.seed if params.seed is not None else fresh_seed()
        requests = [Request(p, params, seed + i, processor) for i, p in enumerate(prompts)]
        scheduler = self.scheduler(min(len(prompts), MAX_ROWS), use_cache)
        for request in requests:
            scheduler.submit(request)
        while scheduler.busy:
            for update in scheduler.step():
                if update.kind == "error":
                    raise update.value
        return [r.result for r in requests]

    def stream(
        self, prompt: Sequence[int], params: SamplingParams, use_cache: bool = True,
        processor: LogitsProcessor | None = None,
    ) -> "TextStream":
        """Complete one prompt, as an iterator of text deltas; ``.result`` once it is exhausted."""
        params.validate()
        request = Request(check_prompt(prompt, self.block_size, self.vocab_size), params, processor=processor)
        if not use_cache:
            return TextStream(self.scheduler(1, use_cache=False), request)
        if self._solo is None or self._solo.busy:
            # One row kept between calls: its cache still holds the last prompt and reply, so a
            # conversation's next turn (the same start, then the new message) reads only what is new.
            self._solo = self.scheduler(1)
        return TextStream(self._solo, request)

    def encode_prompt(self, text: str, bos: bool = True) -> list[int]:
        """Ids of plain text to continue: ``<|bos|>`` (documents start with it in training) and
        the text encoded with special tokens disallowed."""
        ids = self.tokenizer.encode(text, allowed_special="none")
        return [self.tokenizer.bos_id, *ids] if bos else ids


class TextStream:
    """Iterate for the text of one generation, piece by piece; then read :attr:`result`."""

    def __init__(self, scheduler: Scheduler, request: Request):
        self._scheduler, self._request = scheduler, request
        scheduler.submit(request)

    def __iter__(self) -> Iterator[str]:
        while self._scheduler.busy:
            for update in self._scheduler.step():
                if update.kind == "error":
                    raise update.value
                if update.kind == "delta":
                    yield update.value

    def stop(self, reason: str = "interrupted") -> None:
        """End the generation now (e.g. after Ctrl-C)."""
        self._scheduler.stop_all(reason)

    @property
    def result(self) -> Generation:
        return self._request.result if self._request.result is not None else self._request.row.result


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
