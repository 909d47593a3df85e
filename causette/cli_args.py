"""The options every stage's command shares (``--config``, ``--set``, ``--name``) and the config they
select. (A numeric option's argparse type, with its range, is :func:`causette.utils.ranges.number_in`.)

Each stage's ``cli.py`` imports this module, never :mod:`causette.cli` (which imports them all):
the command-line front has no import cycle.
"""

from __future__ import annotations

import argparse
import shlex


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


def add_depth_arg(p: argparse.ArgumentParser) -> None:
    """``--depth N`` (or ``auto``), for the stages that build a model: ``--set model.depth=N``."""
    from causette.utils.ranges import Range, number_in

    as_number = number_in(Range(1, 256))

    def depth(text: str):
        if text.strip() == "auto":
            return "auto"
        try:
            return as_number(text)
        except argparse.ArgumentTypeError as e:
            raise argparse.ArgumentTypeError(str(e).replace("expected an integer", "expected an integer or auto"))

    depth.__name__ = "depth"
    p.add_argument("--depth", type=depth, metavar="N|auto",
                   help="the model's size in one number: layers N, width 64·N, learning rate... "
                   "(model.depth; settings given explicitly still win); auto: chosen from train.max_minutes")


def config_from_args(args: argparse.Namespace):
    """Load the config named by ``--config`` (default: the shipped demo) with ``--set`` overrides.

    ``--name`` is taken as is (``--name 007`` is the run "007"), checked like ``run.name``: an
    empty name, ``..`` or a path is an error that names ``--name``.
    """
    from causette.config import load_config
    from causette.config_files import Setting

    overrides: list = list(getattr(args, "overrides", []) or [])
    name = getattr(args, "name", None)
    if name is not None:
        overrides.append(Setting("run.name", name, f"--name {shlex.quote(name)}"))
    depth = getattr(args, "depth", None)
    if depth is not None:
        overrides.append(Setting("model.depth", depth, f"--depth {depth}"))
    return load_config(getattr(args, "config", None) or "demo", overrides)


