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
from causette.utils.ranges import Range, number_in
from causette.utils.text import valid_unicode

MAX_SAMPLES = 256  # --num-samples: one batch, one cache row each
MAX_BATCH = 256  # --max-batch: rows of the server's cache, allocated at start


# ============================================================================== option types
# Each numeric option is checked when the command line is read: a bad value gets argparse's
# "error: argument --seed: must be ..." line (exit 2) before any model is loaded, never a
# traceback later (a seed torch cannot take, a port the system refuses, a batch that fills the
# memory).


def _integer(lo: int, hi: int | None = None):
    """An argparse type: an integer in ``[lo, hi]`` (``[lo, ∞)`` when ``hi`` is None)."""
    return number_in(Range(lo, hi))


def _setting(name: str, cast: type):
    """An argparse type for the sampling setting ``name``: the range :class:`SamplingParams` gives it."""
    return number_in(SamplingParams.RANGES[name], cast)



def register(sub) -> None:
    g = sub.add_parser(
        "generate",
        help="continue a text with a trained model",
        description="Continue the text of --prompt (or of stdin) with a checkpoint; prints prompt + continuation.",
    )
    _add_model_args(g)
    g.add_argument("--prompt", help="text to continue (default: read stdin)")
    g.add_argument("--num-samples", type=_integer(1, MAX_SAMPLES), default=1,
                   help=f"how many continuations, generated as one batch (at most {MAX_SAMPLES})")
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
    tools = c.add_mutually_exclusive_group()
    tools.add_argument("--tools", dest="tools", action="store_true", default=None,
                       help="offer the built-in tools (calculer, date_heure, notes, convertir, chercher); "
                            "the default for a model trained with them (sft.tool_data)")
    tools.add_argument("--no-tools", dest="tools", action="store_false", help="chat without tools")
    c.add_argument("--yes", action="store_true", help="run a tool that writes (a note) without asking first")
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
    s.add_argument("--port", type=_integer(0, 65535), default=8000, help="default 8000 (0: any free port)")
    s.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also answer requests addressed to NAME, e.g. this machine's name on the network "
                   "(repeatable; default: only 127.0.0.1, localhost, [::1] and --host; see docs/serveur.md)")
    s.add_argument("--mode", choices=["auto", "chat", "continue"], default="auto",
                   help="auto: chat for an SFT checkpoint, continuation of the last message for a base one")
    s.add_argument("--model-name", default="causette", help="the model id the API shows (default causette)")
    lim = s.add_argument_group("limits")
    lim.add_argument("--max-body-bytes", type=_integer(1), default=1_000_000,
                     help="largest request body (default 1 MB)")
    lim.add_argument("--max-messages", type=_integer(1), default=64,
                     help="most messages per conversation (default 64)")
    lim.add_argument("--max-tokens-limit", type=_integer(1), default=None,
                     help="most new tokens a request may ask for (default: the model's context)")
    lim.add_argument("--max-queue", type=_integer(1), default=16,
                     help="requests waiting their turn; beyond, the server answers 503 (default 16)")
    lim.add_argument("--max-batch", type=_integer(1, MAX_BATCH), default=8,
                     help=f"requests decoded together, continuous batching (default 8; 1: one at a time; "
                     f"at most {MAX_BATCH})")
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
    s.add_argument("--max-new-tokens", type=_setting("max_new_tokens", int), default=d.max_new_tokens,
                   help=f"default {d.max_new_tokens}")
    s.add_argument("--temperature", type=_setting("temperature", float), default=d.temperature,
                   help=f"0 = greedy, else 0.001 to 100 (default {d.temperature})")
    s.add_argument("--top-k", type=_setting("top_k", int), default=d.top_k, help=f"0 = off (default {d.top_k})")
    s.add_argument("--top-p", type=_setting("top_p", float), default=d.top_p,
                   help=f"in (0, 1], 1 = off (default {d.top_p})")
    s.add_argument("--min-p", type=_setting("min_p", float), default=d.min_p,
                   help=f"in [0, 1], 0 = off (default {d.min_p})")
    s.add_argument("--repetition-penalty", type=_setting("repetition_penalty", float), default=d.repetition_penalty,
                   help="0.01 to 100, 1 = off (default 1)")
    s.add_argument("--seed", type=_setting("seed", int), default=None,
                   help="same seed, same text: an integer in [0, 2**63) (default: random)")


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


def _read_stdin() -> str:
    """All of stdin as text; bytes that are not UTF-8 become U+FFFD, with a warning."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # an in-memory text stream: no bytes under it
        return valid_unicode(sys.stdin.read())
    text = buffer.read().decode("utf-8", errors="surrogateescape")  # a bad byte: one lone surrogate
    bad = sum(1 for c in text if "\udc80" <= c <= "\udcff")
    if bad:
        _note(f"warning: stdin is not UTF-8 text: {bad} byte{'s' if bad > 1 else ''} shown as \ufffd")
    return valid_unicode(text)


def _tolerant_stdin() -> None:
    """Typed bytes that are not UTF-8 arrive as lone surrogates (cleaned by the REPL) instead of
    making ``input()`` raise: one bad byte must not end the chat and lose the conversation."""
    reconfigure = getattr(sys.stdin, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="surrogateescape")


# ============================================================================== generate


def run_generate(args: argparse.Namespace) -> int:
    prompt = args.prompt
    if prompt is None:
        if sys.stdin.isatty():
            raise CausetteError("give a text to continue with --prompt, or pipe it on stdin")
        prompt = _read_stdin()
    prompt = valid_unicode(prompt)  # an argument that is not UTF-8 holds lone surrogates
    stops = tuple(valid_unicode(s) for s in args.stop)
    loaded = _load(args)
    engine = _engine(loaded, args)
    params = _params(args, stop_token_ids=engine.special_ids, stop_strings=stops)
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
    from causette.inference.chat import CHAT, CONTINUE, ChatSession
    from causette.inference.repl import Repl

    loaded = _load(args)
    mode = {"chat": CHAT, "continue": CONTINUE}.get(args.mode) or (CHAT if loaded.is_chat_model else CONTINUE)
    engine = _engine(loaded, args)
    engine.backend(1)  # compiled (or read from the cache) now, not in the middle of the first reply
    system = valid_unicode(args.system) if args.system else None
    use_tools = loaded.trained_with_tools if args.tools is None else args.tools
    session = ChatSession(engine, _params(args), system=system, mode=mode,
                          tools=_builtin_tools() if use_tools and mode == CHAT else None,
                          confirm=(lambda call: True) if args.yes else _ask_before)
    _enable_line_editing()
    _tolerant_stdin()
    print(f"causette chat: {loaded.describe()}")
    if mode == CONTINUE:
        why = "as asked" if args.mode == "continue" else f"a base model: its stage is {loaded.stage!r}, not 'sft'"
        print(f"note: continuation mode ({why}): each line you type is continued as plain text, without history")
    elif args.mode == "chat" and not loaded.is_chat_model:
        print(f"note: chat mode forced on a checkpoint of stage {loaded.stage!r}: it was not trained to chat")
    if session.tools:
        print("outils : " + ", ".join(t["function"]["name"] for t in session.tools)
              + (" (une note s'écrit sans demander : --yes)" if args.yes else " (une note demande votre accord)"))
    print("type /help for commands, Ctrl-D or /quit to leave")
    return Repl(session).run()


def _builtin_tools() -> list[dict]:
    from causette.tools import openai_tools

    return openai_tools()


def _ask_before(call) -> bool:
    """A call that writes (a note): the user says yes or no on the terminal (no: the model is told)."""
    what = ", ".join(str(v) for v in call.arguments.values())
    try:
        answer = input(f"\n? {call.name}({what}) : d'accord ? [o/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("o", "oui", "y", "yes")


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

        from causette.inference.server import Limits, create_app, listen_socket
    except ImportError as e:
        raise CausetteError(f"causette serve needs fastapi and uvicorn ({e}): pip install fastapi uvicorn") \
            from None

    sock = listen_socket(args.host, args.port)  # a port taken or refused: said now, not after loading
    try:
        loaded = _load(args)
        limits = Limits(max_body_bytes=args.max_body_bytes, max_messages=args.max_messages,
                        max_tokens=args.max_tokens_limit, max_queue=args.max_queue, max_batch=args.max_batch,
                        prefix_reuse=not args.no_prefix_reuse)
        app = create_app(loaded, mode=args.mode, limits=limits, defaults=_params(args),
                         model_name=args.model_name, decode=_decode_mode(args), notify=_note,
                         host=args.host, allow_hosts=tuple(args.allow_host))
        port = sock.getsockname()[1]
        print(f"causette serve: {loaded.describe()}")
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"note: listening on {args.host}: anyone who can reach this address can use the model "
                  "(there is no authentication)")
        shown_host = "localhost" if args.host in ("0.0.0.0", "::", "") else args.host
        shown_host = f"[{shown_host}]" if ":" in shown_host else shown_host
        print(f"web chat: http://{shown_host}:{port}/  (Ctrl-C to stop)", flush=True)
        server = uvicorn.Server(uvicorn.Config(app, log_level="info"))
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # Ctrl-C is how one stops a server: a normal end, as uvicorn.run
            pass
    finally:
        sock.close()
    return 0
