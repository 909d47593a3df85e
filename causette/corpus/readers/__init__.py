"""Readers of the corpus stage, one module per job (see :mod:`causette.corpus.sources`).

- :mod:`.inputs`: folders, compression and archives → :class:`~.inputs.Item` objects;
- :mod:`.encoding`: UTF-8 / CP1252 / Latin-1 detection, binary files;
- :mod:`.text`, :mod:`.gutenberg`, :mod:`.tei`, :mod:`.tabular` (JSONL, Parquet), :mod:`.hf`:
  one reader per format, each turning an item into :class:`~causette.corpus.document.Document` s.
"""
