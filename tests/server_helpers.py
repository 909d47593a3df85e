"""Shared by the server tests: a tiny checkpoint to serve."""

from __future__ import annotations

from pathlib import Path

from helpers import make_chat_checkpoints


def make_checkpoints(root: Path) -> dict[str, Path]:
    """The tiny checkpoints of the chat tests, with special tokens muted so replies stream."""
    return make_chat_checkpoints(root, tie_embeddings=False, mute_special=True)
