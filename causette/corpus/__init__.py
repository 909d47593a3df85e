"""Corpus stage: read French sources, clean, filter, deduplicate, split (see build.py)."""
