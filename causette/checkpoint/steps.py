"""Checkpoints: one directory per step, written atomically, the last K kept, the best protected.

    runs/<name>/checkpoints/
        step_0000200/
            config.json         the model config (causette.checkpoint.weights)
            model.safetensors   the weights (never pickled)
            tokenizer.json      a copy of the tokenizer: a checkpoint is self-contained
            optimizer.pt        optimizer state (loaded with weights_only=True: tensors only)
            state.json          step, tokens seen, RNG states, val metrics, configs, tokenizer hash
        latest                  text file: the name of the newest complete checkpoint
        best                    text file: the name of the checkpoint with the best val loss

A checkpoint is built in a temporary directory and renamed when complete, and ``latest`` is
rewritten only after that: a crash at any moment leaves the previous checkpoint usable. If the
newest one is corrupt anyway (a disk error, a hand edit), :func:`find_checkpoint` falls back to
the previous one with a warning.
"""

from __future__ import annotations

import base64
import json
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from causette.checkpoint.files import (
    ADAPTER_FILE,
    BEST,
    CHECKPOINTS,
    CONFIG_FILE,
    LATEST,
    MODEL_FILE,
    OPTIMIZER_FILE,
    STATE_FILE,
    STEP_PREFIX,
    TOKENIZER_FILE,
    step_name,
)
from causette.checkpoint.weights import recorded_sha256, save_model
from causette.errors import CausetteError
from causette.utils.io import atomic_dir, atomic_write, sha256_file, tree_size, write_json

_REQUIRED = (CONFIG_FILE, STATE_FILE)


def save_checkpoint(
    root: str | Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    state: dict,
    tokenizer_file: str | Path | None = None,
    keep_last: int = 3,
    is_best: bool = False,
    save_weights=None,
) -> Path:
    """Write ``root/step_XXXXXXX/`` atomically, point ``latest`` at it, prune old ones.

    ``save_weights(model, dir)`` replaces :func:`save_model` (LoRA writes its adapter only).
    """
    root = Path(root)
    final = root / step_name(step)
    previous = list_checkpoints(root)
    need = tree_size(previous[-1]) if previous else None  # the next one is as large as the last
    with atomic_dir(final, "checkpoint", need_bytes=need) as tmp:
        (save_weights or save_model)(model, tmp)
        if optimizer is not None:
            with open(tmp / OPTIMIZER_FILE, "wb") as f:  # a file object: a full disk surfaces as OSError
                torch.save(optimizer.state_dict(), f)
        if tokenizer_file is not None:
            shutil.copyfile(tokenizer_file, tmp / TOKENIZER_FILE)
        write_json(tmp / STATE_FILE, {**state, "step": step, "rng": _rng_state()})
    _write_pointer(root / LATEST, final.name)
    if is_best:
        _write_pointer(root / BEST, final.name)
    prune(root, keep_last)
    return final


def _write_pointer(path: Path, name: str) -> None:
    with atomic_write(path) as f:
        f.write(name + "\n")


def _read_pointer(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoint directories under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(STEP_PREFIX) and (p / STATE_FILE).is_file())


def prune(root: Path, keep_last: int) -> None:
    """Delete all but the ``keep_last`` newest checkpoints, never the best one."""
    if keep_last <= 0:
        return
    best = _read_pointer(root / BEST)
    for old in list_checkpoints(root)[:-keep_last]:
        if old.name != best:
            shutil.rmtree(old, ignore_errors=True)


def check_complete(ckpt: Path) -> str | None:
    """Why ``ckpt`` is unusable (a missing or unreadable file), or None when it looks complete."""
    for name in _REQUIRED:
        if not (ckpt / name).is_file():
            return f"missing {name}"
    weights = ckpt / MODEL_FILE if (ckpt / MODEL_FILE).is_file() else ckpt / ADAPTER_FILE
    if not weights.is_file():
        return f"missing {MODEL_FILE}"
    try:
        json.loads((ckpt / STATE_FILE).read_text(encoding="utf-8"))
        json.loads((ckpt / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return f"unreadable state or config ({e})"
    try:
        with safe_open(str(weights), framework="pt") as f:
            f.keys()
    except Exception as e:  # safetensors raises several types for a truncated file
        return f"unreadable {weights.name} ({e})"
    recorded = recorded_sha256(ckpt)
    if weights.name == MODEL_FILE and recorded is not None and sha256_file(weights) != recorded:
        return f"{weights.name} differs from the SHA-256 recorded when it was saved: damaged"
    return None


def find_checkpoint(path: str | Path, warn=lambda s: print(f"warning: {s}", file=sys.stderr)) -> Path:
    """Resolve ``path`` to one usable checkpoint directory.

    ``path`` may be a checkpoint directory itself, the ``latest`` or ``best`` file of a
    ``checkpoints/`` directory (the step it names), a ``checkpoints/`` directory, or a run
    directory (``runs/<name>``): then the newest complete checkpoint; a corrupt newest checkpoint is skipped with a warning in favour of the previous one.
    """
    path = Path(path)
    if not path.exists():
        raise CausetteError(f"{path}: no such checkpoint or run directory")
    if path.is_file() and path.name in (LATEST, BEST):  # checkpoints/best: the step it names
        target = _read_pointer(path)
        if not target or not (path.parent / target).is_dir():
            raise CausetteError(f"{path}: names no checkpoint of {path.parent} ({target or 'empty'})")
        return find_checkpoint(path.parent / target, warn)
    if (path / STATE_FILE).is_file() or (path / MODEL_FILE).is_file():
        problem = check_complete(path)
        if problem:
            raise CausetteError(f"{path}: corrupt checkpoint ({problem})")
        return path
    root = path / CHECKPOINTS if (path / CHECKPOINTS).is_dir() else path
    # Directories appear only when complete (atomic rename), so the newest one is the latest
    # even if a crash came between its rename and the update of the `latest` pointer.
    candidates = list_checkpoints(root)
    for ckpt in reversed(candidates):
        problem = check_complete(ckpt)
        if problem is None:
            return ckpt
        warn(f"{ckpt}: corrupt checkpoint ({problem}); falling back to the previous one")
    raise CausetteError(f"{path}: no usable checkpoint found")


def read_state(ckpt: str | Path) -> dict:
    """A checkpoint's ``state.json`` (a JSON object), or one line naming the file."""
    path = Path(ckpt) / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise CausetteError(f"{path}: unreadable checkpoint state ({e})") from None
    if not isinstance(state, dict):
        raise CausetteError(f"{path}: damaged checkpoint state (a JSON object was expected)")
    return state


@dataclass
class Progress:
    """Where a training stood when it saved a checkpoint: what a resumed run starts from."""

    step: int
    tokens_seen: int
    best_val: float  # inf when no validation yet
    budget_spent: float  # seconds of train.max_minutes already used
    step_seconds: list[float]  # the recent speed a time budget plans with


def read_progress(ckpt: str | Path, state: dict | None = None) -> Progress:
    """The training progress in ``ckpt/state.json`` with its RNG states restored; a damaged file
    (a value of the wrong type, a missing step) is one line naming it."""
    where = Path(ckpt) / STATE_FILE
    state = read_state(ckpt) if state is None else state
    try:
        restore_rng(state)
        best = state.get("best_val_loss")
        budget = state.get("time_budget") or {}
        return Progress(_count(state["step"], where, "step"), _count(state.get("tokens_seen", 0), where, "tokens_seen"),
                        math.inf if best is None else float(best), float(budget.get("spent_seconds", 0.0)),
                        [float(x) for x in budget.get("step_seconds", [])])
    except CausetteError:
        raise
    except KeyError as e:
        raise CausetteError(f"{where}: damaged checkpoint state: no {e.args[0]!r}; use an earlier checkpoint") from None
    except (TypeError, ValueError, AttributeError, RuntimeError) as e:
        raise CausetteError(f"{where}: damaged checkpoint state ({e}); use an earlier checkpoint") from None


def _count(value, where: Path, field: str) -> int:
    """A non-negative whole number read from a checkpoint's ``state.json``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CausetteError(f"{where}: damaged checkpoint state: {field} is {value!r}, not a whole number ≥ 0")
    return value


# ----------------------------------------------------------------------------- RNG


def _rng_state() -> dict:
    state = {"torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii")}
    if torch.cuda.is_available():
        state["cuda"] = [base64.b64encode(s.numpy().tobytes()).decode("ascii") for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng(state: dict) -> None:
    rng = state.get("rng") or {}
    if "torch" in rng:
        raw = base64.b64decode(rng["torch"])
        torch.set_rng_state(torch.frombuffer(bytearray(raw), dtype=torch.uint8))
    if "cuda" in rng and torch.cuda.is_available():
        states = [torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8) for s in rng["cuda"]]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
