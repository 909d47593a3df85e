"""Saving and loading a model: ``model.safetensors`` (the weights) + ``config.json`` (what they mean).

``safetensors`` stores raw tensors plus a JSON header of names, shapes and dtypes: loading it
can never run code, unlike a pickled ``.pt`` file. ``config.json`` holds the
:class:`ModelConfig` under ``"model"``, the tensors' ``"dtype"`` and a format version.

Loading checks everything before building the model, and says which file is wrong:

* ``config.json``: valid JSON, our format, known keys with sane values (the usual config checks),
  and, when the caller passes ``expected_vocab`` (the tokenizer's size), the same vocabulary;
* ``model.safetensors``: a readable file, exactly the expected tensor names, the expected shapes,
  floating-point tensors of the dtype ``config.json`` announces. The shapes are compared with a
  model built on PyTorch's ``meta`` device (shapes, no memory), so a ``config.json`` that claims
  a huge model costs nothing when its file does not hold one;
* the file's SHA-256, recorded in ``config.json`` (``weights_sha256``) when it was saved: a file
  damaged since (flipped bytes, a bad copy) is refused instead of generating garbage;
* every value finite: a NaN or infinite weight (a training that diverged, a damaged file) is
  refused with the tensor's name.

A tied output layer is stored once (as ``wte.weight``) and re-tied on load. Both files are
written to a temporary name and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from causette.checkpoint.files import CONFIG_FILE, MODEL_FILE
from causette.config import from_dict
from causette.errors import CausetteError
from causette.model.config import ModelConfig
from causette.model.transformer import Transformer
from causette.utils.io import read_json, sha256_file, write_json

FORMAT = "causette-model"
FORMAT_VERSION = 1
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# ----------------------------------------------------------------------------- saving


def save_model(model: Transformer, directory: str | os.PathLike) -> Path:
    """Write ``directory/model.safetensors``, then ``directory/config.json`` with the weights'
    SHA-256; return the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dtype = str(model.wte.weight.dtype).removeprefix("torch.")
    digest = save_weights(model, directory / MODEL_FILE)
    write_json(
        directory / CONFIG_FILE,
        {"format": FORMAT, "version": FORMAT_VERSION, "dtype": dtype, "model": dataclasses.asdict(model.cfg),
         "weights_sha256": digest},
    )
    return directory


def save_weights(model: Transformer, path: str | os.PathLike) -> str:
    """Atomically write the model's tensors to the safetensors file ``path``; return its SHA-256."""
    path = Path(path)
    state = {name: t.detach().to("cpu").contiguous() for name, t in _expected_state(model).items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(state, tmp, metadata={"format": "pt", "causette": str(FORMAT_VERSION)})
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        digest = sha256_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest


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
    weights = directory / MODEL_FILE
    with torch.device("meta"):  # names and shapes only: nothing allocated before the file agrees
        skeleton = Transformer(cfg)
    check_weights(skeleton, weights, expected_dtype=saved_dtype, sha256=recorded_sha256(directory))
    model = Transformer(cfg)
    load_weights(model, weights, expected_dtype=saved_dtype, checked=True)
    return model.to(device=device, dtype=dtype).eval()


def recorded_sha256(directory: str | os.PathLike) -> str | None:
    """The weights' SHA-256 that ``directory/config.json`` recorded at save time (None: older files)."""
    try:
        value = read_json(Path(directory) / CONFIG_FILE).get("weights_sha256")
    except (CausetteError, AttributeError):
        return None
    return value if isinstance(value, str) else None


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
    model: Transformer, path: str | os.PathLike, expected_dtype: torch.dtype | None = None,
    sha256: str | None = None, checked: bool = False,
) -> None:
    """Check the safetensors file ``path`` against ``model`` (names, shapes, dtype, ``sha256`` when
    given; ``checked``: :func:`check_weights` already did), load it, and refuse non-finite values."""
    path = Path(path)
    if not checked:
        check_weights(model, path, expected_dtype, sha256)
    state = load_file(str(path))
    with torch.no_grad():
        for name, param in _expected_state(model).items():
            tensor = state[name]
            # a NaN or an infinity makes the sum non-finite: one cheap pass (30x faster than
            # isfinite().all()), then the exact count only for a tensor that fails it
            if not math.isfinite(float(tensor.sum(dtype=torch.float32))) and not bool(torch.isfinite(tensor).all()):
                bad = int((~torch.isfinite(tensor)).sum())
                raise CausetteError(
                    f"{path}: tensor '{name}' holds {bad:,} NaN or infinite values: these weights are damaged "
                    f"(a training that diverged, or a corrupted file); use an earlier checkpoint"
                )
            param.copy_(tensor)  # copy_ casts to the model's dtype; a tied matrix is loaded once


def check_weights(
    model: Transformer, path: str | os.PathLike, expected_dtype: torch.dtype | None = None, sha256: str | None = None
) -> None:
    """Check the safetensors file ``path`` against ``model`` (which may live on the ``meta``
    device): readable, the expected names, shapes and dtype, and the recorded ``sha256``."""
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
    if sha256 is not None and sha256_file(path) != sha256:
        raise CausetteError(
            f"{path}: damaged file: its SHA-256 differs from the one recorded in {CONFIG_FILE} when it was "
            f"saved (changed bytes, a bad copy); use an earlier checkpoint or copy it again"
        )


def _expected_state(model: Transformer) -> dict[str, torch.Tensor]:
    """The tensors a file must hold: the state dict without the tied copy of ``wte.weight``."""
    state = model.state_dict(keep_vars=True)
    if model.cfg.tie_embeddings:
        state.pop("lm_head.weight")
    return state


def _few(names: list[str], n: int = 4) -> str:
    shown = ", ".join(f"'{x}'" for x in names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")
