"""Ctrl-C and SIGTERM during training: finish the step, save, and return cleanly."""

from __future__ import annotations

import signal

from tqdm import tqdm


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked between steps (a second SIGINT aborts)."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._old: dict = {}

    def __enter__(self) -> StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not in the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame) -> None:
        if self.reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.reason = "interrupted"
        tqdm.write("stopping at the end of this step and saving a checkpoint (Ctrl-C again to abort)")

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
