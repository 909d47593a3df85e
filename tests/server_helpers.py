"""Shared by the server tests: a tiny checkpoint to serve, and an engine that replies slowly."""

from __future__ import annotations

import time
from pathlib import Path

from helpers import make_chat_checkpoints


def make_checkpoints(root: Path) -> dict[str, Path]:
    """The tiny checkpoints of the chat tests, with special tokens muted so replies stream."""
    return make_chat_checkpoints(root, tie_embeddings=False, mute_special=True)


class SlowEngine:
    """An engine whose tokens come slowly (a real model's pace), to leave mid-reply."""

    def __init__(self, engine):
        self.engine = engine

    def stream(self, prompt, params):
        inner = self.engine.stream(prompt, params)

        class Slow:
            def __iter__(self):
                for delta in inner:
                    time.sleep(0.05)
                    yield delta

            def stop(self, reason="interrupted"):
                inner.stop(reason)

            @property
            def result(self):
                return inner.result

        return Slow()
