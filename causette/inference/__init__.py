"""Generation: sampling filters, the KV-cache engine, the terminal chat.

    from causette.inference import Engine, SamplingParams
    engine = Engine(model, tokenizer)
    [g] = engine.generate([engine.encode_prompt("Il était une fois")], SamplingParams(seed=0))

Modules: ``sampling`` (settings and filters), ``engine`` (batched generation, streaming,
``sample_texts`` for the trainer), ``chat`` (conversation and REPL), ``loading`` (checkpoints),
``cli`` (``causette generate`` and ``causette chat``), and for speed on a CPU ``quantize``
(int8 weights) and ``compiled`` (a ``torch.compile``d decoding step).
"""

from causette.inference.engine import Engine, Generation, TextStream, sample_texts
from causette.inference.sampling import SamplingParams

__all__ = ["Engine", "Generation", "TextStream", "SamplingParams", "sample_texts"]
