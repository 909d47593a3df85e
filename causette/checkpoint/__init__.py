"""The on-disk checkpoint format, in one place: how a model is written, found and read back.

    files.py      the names of a checkpoint's files (spelled nowhere else), torch-free
    weights.py    config.json + model.safetensors: a model's settings and tensors (never pickled)
    steps.py      runs/<name>/checkpoints/step_XXXXXXX/: atomic step directories, latest/best
                  pointers, pruning, the corrupt-checkpoint fallback, state.json, RNG states
    adapters.py   LoRA checkpoints: adapter files, loading an adapted model, merging it
    load.py       load_checkpoint(): the one loader that generation, chat, the server, eval,
                  export and explain use (model, tokenizer, stage)

Training writes checkpoints (causette/train/trainer.py); everything else only reads them.
"""
