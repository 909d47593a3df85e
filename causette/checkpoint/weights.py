"""Saving and loading a model: ``model.safetensors`` (the weights) + ``config.json`` (what they mean).

``safetensors`` stores raw tensors plus a JSON header of names, shapes and dtypes: loading it
can never run code, unlike a pickled ``.pt`` file. ``config.json`` holds the
:class:`ModelConfig` under ``"model"``, the tensors' ``"dtype"`` and a format version.

Loading checks everything before touching the model, and says which file is wrong:

* ``config.json``: valid JSON, our format, known keys with sane values (the usual config checks),
  and, when the caller passes ``expected_vocab`` (the tokenizer's size), the same vocabulary;
* ``model.safetensors``: a readable file, exactly the expected tensor names, the expected shapes,
  floating-point tensors of the dtype ``config.json`` announces.

A tied output layer is stored once (as ``wte.weight``) and re-tied on load. Both files are
written to a temporary name and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from causette.config import from_dict
from causette.errors import CausetteError
from causette.model.config import ModelConfig
from causette.model.transformer import Transformer
from causette.utils.io import read_json, write_json

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "causette-model"
FORMAT_VERSION = 1
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# ----------------------------------------------------------------------------- saving


def save_model(model: Transformer, directory: str | os.PathLike) -> Path:
    """Write ``directory/config.json`` and ``directory/model.safetensors``; return the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dtype = str(model.wte.weight.dtype).removeprefix("torch.")
    write_json(
        directory / CONFIG_FILE,
        {"format": FORMAT, "version": FORMAT_VERSION, "dtype": dtype, "model": dataclasses.asdict(model.cfg)},
    )
    save_weights(model, directory / MODEL_FILE)
    return directory


def save_weights(model: Transformer, path: str | os.PathLike) -> None:
    """Atomically write the model's tensors to the safetensors file ``path``."""
    path = Path(path)
    state = {name: t.detach().to("cpu").contiguous() for name, t in _expected_state(model).items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(state, tmp, metadata={"format": "pt", "causette": str(FORMAT_VERSION)})
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- loading


def load_model(
    directory: str | os.PathLike,
    expected_vocab: int | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Transformer:
    """Build the model described by ``directory/config.json`` and load ``directory/model.safetensors``.

    ``expected_vocab``: the tokenizer's vocabulary size; a different ``vocab_size`` is an error.
    The model is returned in ``dtype`` on ``device``, in eval mode.
    """
    directory = Path(directory)
    cfg, saved_dtype = read_config(directory / CONFIG_FILE)
    if expected_vocab is not None and cfg.vocab_size != expected_vocab:
        raise CausetteError(
            f"{directory / CONFIG_FILE}: the model's vocab_size is {cfg.vocab_size} but the tokenizer has "
            f"{expected_vocab} tokens: this model was trained with another tokenizer"
        )
    model = Transformer(cfg)
    load_weights(model, directory / MODEL_FILE, expected_dtype=saved_dtype)
    return model.to(device=device, dtype=dtype).eval()


def read_config(path: str | os.PathLike) -> tuple[ModelConfig, torch.dtype]:
    """The :class:`ModelConfig` and the weights' dtype recorded in a ``config.json``."""
    path = Path(path)
    data = read_json(path, f"no such file (a saved model directory holds {CONFIG_FILE} and {MODEL_FILE})")
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("model"), dict):
        raise CausetteError(
            f'{path}: not a Causette model config (expected "format": "{FORMAT}" and a "model" section)'
        )
    if data.get("version") != FORMAT_VERSION:
        raise CausetteError(
            f"{path}: format version {data.get('version')!r}, this Causette reads {FORMAT_VERSION}"
        )
    if data.get("dtype") not in _DTYPES:
        raise CausetteError(f"{path}: unknown dtype {data.get('dtype')!r} (known: {', '.join(_DTYPES)})")
    cfg = from_dict(ModelConfig, data["model"], where=str(path), prefix="model.")
    return cfg, _DTYPES[data["dtype"]]


def load_weights(
    model: Transformer, path: str | os.PathLike, expected_dtype: torch.dtype | None = None
) -> None:
    """Check the safetensors file ``path`` against ``model`` (names, shapes, dtype), then load it."""
    path = Path(path)
    if not path.is_file():
        raise CausetteError(f"{path}: no such file")
    expected = _expected_state(model)
    try:
        with safe_open(str(path), framework="pt") as f:
            names = set(f.keys())
            shapes = {name: tuple(f.get_slice(name).get_shape()) for name in names}
            dtypes = {name: f.get_slice(name).get_dtype() for name in names}
    except (SafetensorError, OSError, ValueError) as e:
        raise CausetteError(f"{path}: not a valid safetensors file ({e})") from None

    missing, unexpected = sorted(set(expected) - names), sorted(names - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected {_few(unexpected)}")
        raise CausetteError(f"{path}: tensors do not match the model config: {'; '.join(parts)}")
    for name, tensor in expected.items():
        if shapes[name] != tuple(tensor.shape):
            raise CausetteError(
                f"{path}: tensor '{name}' has shape {shapes[name]} "
                f"but the config expects {tuple(tensor.shape)}"
            )
    want = None if expected_dtype is None else str(expected_dtype).removeprefix("torch.")
    short = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}
    for name, dt in dtypes.items():
        if dt not in short.values() or (want is not None and dt != short[want]):
            raise CausetteError(
                f"{path}: tensor '{name}' is {dt}, expected {short.get(want, 'a float type')}"
            )

    state = load_file(str(path))
    with torch.no_grad():
        for name, param in expected.items():
            param.copy_(state[name])  # copy_ casts to the model's dtype; a tied matrix is loaded once


def _expected_state(model: Transformer) -> dict[str, torch.Tensor]:
    """The tensors a file must hold: the state dict without the tied copy of ``wte.weight``."""
    state = model.state_dict(keep_vars=True)
    if model.cfg.tie_embeddings:
        state.pop("lm_head.weight")
    return state


def _few(names: list[str], n: int = 4) -> str:
    shown = ", ".join(f"'{x}'" for x in names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")
