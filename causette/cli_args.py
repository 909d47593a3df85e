"""The options every stage's command shares (``--config``, ``--set``, ``--name``), and the config they select.

Each stage's ``cli.py`` imports this module, never :mod:`causette.cli` (which imports them all):
the command-line front has no import cycle.
"""

from __future__ import annotations

import argparse


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
    """Load the config named by ``--config`` (default: the shipped demo) with ``--set`` overrides."""
    from causette.config import load_config

    overrides = list(getattr(args, "overrides", []) or [])
    if getattr(args, "name", None):
        overrides.append(f"run.name={args.name}")
    return load_config(getattr(args, "config", None) or "demo", overrides)
