"""The options every stage's command shares (``--config``, ``--set``, ``--name``), the config they
select, and :func:`number_in`, the argparse type of a numeric option with a range.

Each stage's ``cli.py`` imports this module, never :mod:`causette.cli` (which imports them all):
the command-line front has no import cycle.
"""

from __future__ import annotations

import argparse
import shlex

from causette.utils.ranges import Range


def add_config_args(p: argparse.ArgumentParser) -> None:
    """The options every stage shares: which config, which overrides, which run."""
    p.add_argument("-c", "--config", help="YAML config file or shipped config name (default: demo)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set corpus.min_chars=200 (repeatable)",
    )
    p.add_argument("--name", help="run name: artefacts go to runs/<name>/ (overrides run.name)")


def config_from_args(args: argparse.Namespace):
    """Load the config named by ``--config`` (default: the shipped demo) with ``--set`` overrides.

    ``--name`` is taken as is (``--name 007`` is the run "007"), checked like ``run.name``: an
    empty name, ``..`` or a path is an error that names ``--name``.
    """
    from causette.config import Setting, load_config

    overrides: list = list(getattr(args, "overrides", []) or [])
    name = getattr(args, "name", None)
    if name is not None:
        overrides.append(Setting("run.name", name, f"--name {shlex.quote(name)}"))
    return load_config(getattr(args, "config", None) or "demo", overrides)


def number_in(rng: Range, kind: type = int):
    """An argparse ``type``: the option's text read as ``kind`` (int or float) and checked against
    ``rng``, so that ``--top -5`` stops at parsing: ``argument --top: must be >= 1, got -5``."""

    def parse(text: str):
        shown = text if len(text) <= 30 else text[:29] + "…"
        try:
            value = kind(text)
        except ValueError:
            if text.strip().lstrip("+-").isdigit():  # beyond Python's 4,300 digits
                raise argparse.ArgumentTypeError(f"an integer of {len(text.strip().lstrip('+-'))} digits is "
                                                 "too large") from None
            expected = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {expected}, got {shown!r}") from None
        problem = rng.problem(value)
        if problem:
            raise argparse.ArgumentTypeError(f"{problem}, got {shown}")
        return value

    parse.__name__ = kind.__name__
    return parse
