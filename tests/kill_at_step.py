"""Run the `causette` command line, killing the process with SIGKILL right after training step N.

    python tests/kill_at_step.py N train --no-progress --set ...

A crash at the worst moment, for the resume tests: the callback is installed on every Trainer
the command builds (Trainer's ``after_step`` hooks), so production code carries no test switch.
"""

from __future__ import annotations

import os
import signal
import sys

from causette.cli import main
from causette.train import trainer as trainer_module


def install(step: int) -> None:
    original = trainer_module.Trainer.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.after_step.append(lambda t: t.step == step and os.kill(os.getpid(), signal.SIGKILL))

    trainer_module.Trainer.__init__ = __init__


if __name__ == "__main__":
    install(int(sys.argv[1]))
    sys.exit(main(sys.argv[2:]))
