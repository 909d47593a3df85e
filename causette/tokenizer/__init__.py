"""Tokenizers: byte-level BPE trained on French (and a character-level one for teaching).

    from causette.tokenizer import load_tokenizer
    tok = load_tokenizer("runs/demo/tokenizer")
    ids = tok.encode("Qu'est-ce que c'est ?")          # user text: specials stay plain text
    tok.decode(ids)                                    # → "Qu'est-ce que c'est ?"

Modules: ``bpe`` (trainer, reference encoder), ``fast`` (tiktoken), ``pattern``, ``special``,
``io`` (files, Hugging Face export), ``char``, ``decoder`` (streaming), ``train``, ``stats``, ``cli``.
"""

from causette.tokenizer.base import Tokenizer
from causette.tokenizer.bpe import BPETokenizer, train_bpe
from causette.tokenizer.char import CharTokenizer
from causette.tokenizer.io import load_tokenizer, save_tokenizer
from causette.tokenizer.train import train_tokenizer

__all__ = [
    "Tokenizer",
    "BPETokenizer",
    "CharTokenizer",
    "load_tokenizer",
    "save_tokenizer",
    "train_bpe",
    "train_tokenizer",
]
