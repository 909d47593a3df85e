"""Causette: build, train and chat with your own small French language model, from scratch."""

# Before anything imports torch: OpenMP threads that wait passively and a thread count per
# process that suits a shared machine (causette/utils/threads.py).
from causette.utils.threads import configure as _configure_threads

_configure_threads()

__version__ = "0.1.0"
