"""``causette <stage> ...``: the command-line front.

Each stage registers its own sub-commands from ``causette/<stage>/cli.py`` (a function
``register(subparsers)``), so the code of a command lives next to the code it drives.
User mistakes (:class:`~causette.errors.CausetteError`) become one ``error: ...`` line on
stderr and exit code 1; Ctrl-C exits with 130 without a traceback. So do the errors of the
machine rather than of Causette: a full disk (what was being written, where, how much room is
left, and that the same command resumes), a folder that cannot be written, a file that cannot be
read (:func:`system_error`). ``CAUSETTE_DEBUG=1`` shows their traceback instead. The commands whose output a
learner reads (``LEARNER_FACING``) take ``--lang fr|en`` (causette/utils/lang.py).
"""

from __future__ import annotations

import argparse
import os
import sys

from causette import __version__
from causette.errors import CausetteError
from causette.utils.cli_parser import OneLineParser
from causette.utils.lang import add_lang_argument, set_language

LEARNER_FACING = ("chat", "eval", "report", "run")  # they print or write French by default


def build_parser() -> argparse.ArgumentParser:
    from causette import pipeline
    from causette.corpus import cli as corpus_cli
    from causette.data import cli as data_cli
    from causette.eval import cli as eval_cli
    from causette.export import cli as export_cli
    from causette.inference import cli as inference_cli
    from causette.sft import cli as sft_cli
    from causette.tokenizer import cli as tokenizer_cli
    from causette.train import cli as train_cli

    parser = OneLineParser(
        prog="causette",
        description="Build, train and chat with your own small French language model.",
    )
    parser.add_argument("--version", action="version", version=f"causette {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<stage>")
    for module in (corpus_cli, tokenizer_cli, data_cli, train_cli, sft_cli, inference_cli, eval_cli,
                   export_cli, pipeline):
        module.register(sub)
    for name in LEARNER_FACING:
        add_lang_argument(sub.choices[name])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        set_language(getattr(args, "lang", None))
        return int(args.func(args) or 0)
    except CausetteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # at any moment, even while the commands are still being imported
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `causette ... | head`
        return 0
    except Exception as e:
        message = system_error(e, args)
        if message is None or os.environ.get("CAUSETTE_DEBUG"):
            raise  # a bug of Causette's: its traceback is what we need to fix it
        print(f"error: {message}", file=sys.stderr)
        return 1


def system_error(e: BaseException, args: argparse.Namespace | None = None) -> str | None:
    """One line for an error of the machine (a full disk, a permission, a missing or unreadable
    file), or None for anything else (a bug: let its traceback through)."""
    from causette.utils.io import disk_full, is_disk_full
    from causette.utils.text import printable_path

    if is_disk_full(e):  # the writers Causette knows say what they write; here, the command's output
        where = getattr(e, "filename", None) or getattr(args, "out", None) or getattr(args, "run", None) or os.getcwd()
        command = " ".join(str(getattr(args, k)) for k in ("command",) if getattr(args, k, None))
        return str(disk_full(printable_path(where), f"the output of causette {command}".strip()))
    if isinstance(e, MemoryError) or "can't allocate memory" in str(e) or "out of memory" in str(e).lower():
        return ("out of memory: this machine cannot hold what was asked (a model, a batch or a context too large "
                "for it); choose smaller settings, e.g. model.n_embd, model.n_layer, train.batch_size, model.block_size")
    if isinstance(e, OSError) and e.errno is not None:
        name = getattr(e, "filename", None)
        reason = e.strerror or str(e)
        return f"{printable_path(name)}: {reason}" if name else f"{reason} (errno {e.errno})"
    return None


if __name__ == "__main__":
    sys.exit(main())
