"""``causette train``: the command-line face of :mod:`causette.train.pretrain`."""

from __future__ import annotations

import argparse

from causette.cli_args import add_config_args, add_depth_arg, config_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="pretrain the model on runs/<name>/data → runs/<name>/checkpoints",
        description="Pretrain a model from scratch (or --resume) on the run's token data. "
        "Under torchrun, trains data-parallel on all processes.",
    )
    p.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint, exactly")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1, mps, xpu (overrides train.device)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_args(p)
    add_depth_arg(p)
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from causette.train.pretrain import train

    cfg = config_from_args(args)
    result = train(cfg, resume=args.resume, device_name=args.device, progress=not args.no_progress)
    return 130 if result.stopped == "interrupted" else 0
