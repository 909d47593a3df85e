"""``causette generate`` (continue a text) and ``causette chat`` (talk in the terminal).

    causette generate --checkpoint runs/demo --prompt "Il était une fois" --num-samples 3
    echo "Le roi" | causette generate --checkpoint runs/demo --temperature 0 --max-new-tokens 50
    causette chat --checkpoint runs/demo-sft --system "Tu réponds en une phrase."
    causette serve --checkpoint runs/demo/sft --port 8000      # OpenAI-style API + web chat
"""

from __future__ import annotations

import argparse
import sys

from causette.errors import CausetteError
from causette.inference.config import CHAT_DEFAULTS, GENERATE_DEFAULTS, SamplingParams


def register(sub) -> None:
    g = sub.add_parser(
        "generate",
        help="continue a text with a trained model",
        description="Continue the text of --prompt (or of stdin) with a checkpoint; prints prompt + continuation.",
    )
    _add_model_args(g)
    g.add_argument("--prompt", help="text to continue (default: read stdin)")
    g.add_argument("--num-samples", type=int, default=1, help="how many continuations, generated as one batch")
    g.add_argument("--stop", action="append", default=[], metavar="TEXT", help="stop before this text (repeatable)")
    g.add_argument("--no-bos", action="store_true", help="do not start the prompt with <|bos|>")
    _add_sampling_args(g, GENERATE_DEFAULTS)
    g.set_defaults(func=run_generate)

    c = sub.add_parser(
        "chat",
        help="talk with a model in the terminal",
        description="Multi-turn chat with a fine-tuned (SFT) checkpoint; a base checkpoint continues text instead.",
    )
    _add_model_args(c)
    c.add_argument("--system", help="system prompt (change it during the chat with /system)")
    c.add_argument(
        "--mode",
        choices=["auto", "chat", "continue"],
        default="auto",
        help="auto: chat for an SFT checkpoint, continuation for a base one (default)",
    )
    _add_sampling_args(c, CHAT_DEFAULTS)
    c.set_defaults(func=run_chat)

    s = sub.add_parser(
        "serve",
        help="serve a model over HTTP: OpenAI-compatible API and a web chat page",
        description="An HTTP server for one checkpoint: /v1/chat/completions, /v1/completions, /v1/models "
        "(OpenAI-compatible, streaming or not) and a chat page at /. See docs/serveur.md.",
    )
    _add_model_args(s)
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every interface)")
    s.add_argument("--port", type=int, default=8000, help="default 8000")
    s.add_argument("--mode", choices=["auto", "chat", "continue"], default="auto",
                   help="auto: chat for an SFT checkpoint, continuation of the last message for a base one")
    s.add_argument("--model-name", default="causette", help="the model id the API shows (default causette)")
    lim = s.add_argument_group("limits")
    lim.add_argument("--max-body-bytes", type=int, default=1_000_000, help="largest request body (default 1 MB)")
    lim.add_argument("--max-messages", type=int, default=64, help="most messages per conversation (default 64)")
    lim.add_argument("--max-tokens-limit", type=int, default=None,
                     help="most new tokens a request may ask for (default: the model's context)")
    lim.add_argument("--max-queue", type=int, default=16,
                     help="requests waiting their turn; beyond, the server answers 503 (default 16)")
    lim.add_argument("--max-batch", type=int, default=8,
                     help="requests decoded together, continuous batching (default 8; 1: one at a time)")
    lim.add_argument("--no-prefix-reuse", action="store_true",
                     help="read every prompt in full, even when a free cache row already holds its start")
    _add_sampling_args(s, CHAT_DEFAULTS)
    s.set_defaults(func=run_serve)


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="a run directory, its checkpoints/ or one step_XXXXXXX/")
    p.add_argument("--tokenizer", help="tokenizer.json to use instead of the checkpoint's copy")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps (default: auto)")
    p.add_argument(
        "--precision", default="auto", choices=["auto", "fp32", "bf16"], help="weights dtype (auto: bf16 on GPU)"
    )
    p.add_argument(
        "--quantize",
        default="none",
        choices=["none", "int8"],
        help="int8: weight-only int8 linear layers, faster on CPU, logits slightly changed (default none)",
    )
    p.add_argument(
        "--exact",
        action="store_true",
        help="decode with the eager reference step instead of the compiled one (slower; see docs/generation.md)",
    )
    p.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)  # the compiled step is the default now


def _add_sampling_args(p: argparse.ArgumentParser, d: SamplingParams) -> None:
    s = p.add_argument_group("sampling (see docs/generation.md)")
    s.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens, help=f"default {d.max_new_tokens}")
    s.add_argument("--temperature", type=float, default=d.temperature, help=f"0 = greedy (default {d.temperature})")
    s.add_argument("--top-k", type=int, default=d.top_k, help=f"0 = off (default {d.top_k})")
    s.add_argument("--top-p", type=float, default=d.top_p, help=f"1 = off (default {d.top_p})")
    s.add_argument("--min-p", type=float, default=d.min_p, help=f"0 = off (default {d.min_p})")
    s.add_argument("--repetition-penalty", type=float, default=d.repetition_penalty, help="1 = off (default 1)")
    s.add_argument("--seed", type=int, default=None, help="same seed, same text (default: random)")


def _params(args: argparse.Namespace, **extra) -> SamplingParams:
    return SamplingParams(
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        min_p=args.min_p,
        repetition_penalty=args.repetition_penalty,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        **extra,
    ).validate()


def _load(args):
    from causette.checkpoint.load import load_checkpoint

    return load_checkpoint(
        args.checkpoint,
        device=args.device,
        precision=args.precision,
        tokenizer_path=args.tokenizer,
        quantize=args.quantize,
    )


def _engine(loaded, args):
    from causette.inference.engine import Engine

    return Engine(loaded.model, loaded.tokenizer, decode=_decode_mode(args), notify=_note)


def _decode_mode(args) -> str:
    return "exact" if args.exact else "fast"


def _note(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ============================================================================== generate


def run_generate(args: argparse.Namespace) -> int:
    if args.num_samples < 1:
        raise CausetteError("--num-samples must be at least 1")
    prompt = args.prompt
    if prompt is None:
        if sys.stdin.isatty():
            raise CausetteError("give a text to continue with --prompt, or pipe it on stdin")
        prompt = sys.stdin.read()
    loaded = _load(args)
    engine = _engine(loaded, args)
    params = _params(args, stop_token_ids=engine.special_ids, stop_strings=tuple(args.stop))
    ids = engine.encode_prompt(prompt, bos=not args.no_bos)
    if not ids:
        raise CausetteError("the prompt is empty (and --no-bos leaves no token to start from)")
    room = engine.block_size - 1
    if len(ids) > room:
        print(
            f"note: the prompt is {len(ids)} tokens long; only its last {room} fit in the model's context",
            file=sys.stderr,
        )
        ids = ids[-room:]
    if len(ids) + params.max_new_tokens > engine.block_size:
        print(
            f"note: the context ({engine.block_size} tokens) leaves room for "
            f"{engine.block_size - len(ids)} new tokens, not {params.max_new_tokens}",
            file=sys.stderr,
        )

    out = sys.stdout
    if args.num_samples == 1:
        out.write(prompt)
        out.flush()
        stream = engine.stream(ids, params)
        for delta in stream:
            out.write(delta)
            out.flush()
        out.write("\n")
        return 0
    results = engine.generate([ids] * args.num_samples, params)
    for k, g in enumerate(results, start=1):
        out.write(f"--- sample {k} ---\n{prompt}{g.text}\n")
    out.flush()
    return 0


# ============================================================================== chat


def run_chat(args: argparse.Namespace) -> int:
    from causette.inference.chat import CHAT, CONTINUE, ChatSession, Repl

    loaded = _load(args)
    mode = {"chat": CHAT, "continue": CONTINUE}.get(args.mode) or (CHAT if loaded.is_chat_model else CONTINUE)
    engine = _engine(loaded, args)
    engine.fast_step(1)  # compiled (or read from the cache) now, not in the middle of the first reply
    session = ChatSession(engine, _params(args), system=args.system, mode=mode)
    _enable_line_editing()
    print(f"causette chat: {loaded.describe()}")
    if mode == CONTINUE:
        why = "as asked" if args.mode == "continue" else f"a base model: its stage is {loaded.stage!r}, not 'sft'"
        print(f"note: continuation mode ({why}): each line you type is continued as plain text, without history")
    elif args.mode == "chat" and not loaded.is_chat_model:
        print(f"note: chat mode forced on a checkpoint of stage {loaded.stage!r}: it was not trained to chat")
    print("type /help for commands, Ctrl-D or /quit to leave")
    return Repl(session).run()


def _enable_line_editing() -> None:
    """Arrow keys and history in ``input()`` when a terminal is there (readline is optional)."""
    if sys.stdin.isatty():
        try:
            import readline  # noqa: F401
        except ImportError:  # Windows
            pass


# ============================================================================== serve


def run_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from causette.inference.server import Limits, create_app
    except ImportError as e:
        raise CausetteError(f"causette serve needs fastapi and uvicorn ({e}): pip install fastapi uvicorn") \
            from None

    for name in ("max_body_bytes", "max_messages", "max_queue", "max_batch", "port"):
        if getattr(args, name) < (0 if name == "port" else 1):
            raise CausetteError(f"--{name.replace('_', '-')} must be positive")
    if args.max_tokens_limit is not None and args.max_tokens_limit < 1:
        raise CausetteError("--max-tokens-limit must be at least 1")
    loaded = _load(args)
    limits = Limits(max_body_bytes=args.max_body_bytes, max_messages=args.max_messages,
                    max_tokens=args.max_tokens_limit, max_queue=args.max_queue, max_batch=args.max_batch,
                    prefix_reuse=not args.no_prefix_reuse)
    app = create_app(loaded, mode=args.mode, limits=limits, defaults=_params(args),
                     model_name=args.model_name, decode=_decode_mode(args), notify=_note)
    print(f"causette serve: {loaded.describe()}")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: listening on {args.host}: anyone who can reach this address can use the model "
              "(there is no authentication)")
    print(f"web chat: http://{'localhost' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}/  "
          "(Ctrl-C to stop)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
