"""Causette: build, train and chat with your own small French language model, from scratch."""

__version__ = "0.1.0"
