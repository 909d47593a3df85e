"""An ``argparse`` parser whose mistakes are one line, like every other error of Causette.

``argparse`` answers a wrong option with its usage (several lines, the whole synopsis of the
command) and then the error. A learner reads the first lines and misses the last one; scripts
that collect ``error:`` lines miss it too. :class:`OneLineParser` prints only::

    error: causette generate: argument --seed: must be within [0, 9223372036854775807], got -1 (see causette generate --help)

and exits with argparse's code for a usage mistake, 2. ``--help`` still prints the usage.
"""

from __future__ import annotations

import argparse


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # noqa: D401 - argparse's hook
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")
