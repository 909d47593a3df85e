"""Export a checkpoint to other tools' formats, and import a Hugging Face model.

* :mod:`.hf`: ``causette export hf`` → a folder that ``transformers`` loads (Llama or GPT-2).
* :mod:`.gguf`: ``causette export gguf`` → one ``.gguf`` file for llama.cpp (Llama architecture).
* :mod:`.importer`: ``causette import hf`` → a local Hugging Face Llama-family folder becomes a
  Causette checkpoint (model + tokenizer) that ``causette chat`` and ``causette sft`` accept.

See docs/export.md (in French).
"""
