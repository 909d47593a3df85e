"""Run the `causette` command line, killing the process with SIGKILL right after training step N.

    python tests/kill_at_step.py N train --no-progress --set ...
    python tests/kill_at_step.py sft:N run ...      (only in the SFT stage's training)

A crash at the worst moment, for the resume tests: the callback is installed on every Trainer
the command builds (Trainer's ``after_step`` hooks), so production code carries no test switch.
"""

from __future__ import annotations

import os
import signal
import sys

from causette.cli import main
from causette.train import trainer as trainer_module


def install(when: str) -> None:
    stage, _, step = when.rpartition(":")
    original = trainer_module.Trainer.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if not stage or self.state_extra.get("stage") == stage:
            self.after_step.append(lambda t: t.step == int(step) and os.kill(os.getpid(), signal.SIGKILL))

    trainer_module.Trainer.__init__ = __init__


if __name__ == "__main__":
    install(sys.argv[1])
    sys.exit(main(sys.argv[2:]))
