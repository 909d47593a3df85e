"""The learner's file (import it, call its function, every error one line) and the verdict's wording."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path
from typing import Callable

import torch

from causette.errors import CausetteError
from causette.utils.lang import tr


class Verdict(str):
    """The text :func:`check` prints, with ``ok``: the command's exit code is 0 when True."""

    ok: bool = True


# ============================================================================== the learner's file


def load_function(path: str, name: str) -> Callable:
    """The function ``name`` of the learner's file ``path`` (imported as a fresh module)."""
    file = Path(path)
    if not file.is_file():
        raise CausetteError(tr(f"{path} : pas de tel fichier", f"{path}: no such file"))
    module_name = f"_causette_exercise_{abs(hash(str(file.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise CausetteError(tr(f"{path} : ce n'est pas un fichier Python", f"{path}: not a Python file"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(file.resolve().parent))  # as `python FICHIER.py`: its neighbours import
    try:
        spec.loader.exec_module(module)
    except BaseException as e:  # the learner's code: any error, even SystemExit, is one line
        if isinstance(e, KeyboardInterrupt):
            raise
        raise CausetteError(tr(f"{path} : l'import a échoué ({_where(e, file)})",
                               f"{path}: importing it failed ({_where(e, file)})")) from None
    finally:
        sys.modules.pop(module_name, None)
        sys.path.remove(str(file.resolve().parent))
    fn = getattr(module, name, None)
    if not callable(fn):
        raise CausetteError(tr(f"{path} : pas de fonction {name}(...) dans ce fichier",
                               f"{path}: no function {name}(...) in this file"))
    return _guarded(fn, file)


def _where(e: BaseException, file: Path) -> str:
    """``ValueError: message, ligne 12``: the error and the last line of the learner's file it went through."""
    line = None
    for frame in traceback.extract_tb(e.__traceback__):
        if Path(frame.filename).resolve() == file.resolve():
            line = frame.lineno
    if isinstance(e, SyntaxError) and e.lineno:
        line = e.lineno
    text = f"{type(e).__name__}: {e}".strip().rstrip(":").replace("\n", " ")
    return text + (tr(f", ligne {line}", f", line {line}") if line else "")


def _guarded(fn: Callable, file: Path) -> Callable:
    def call(*args, what: str = ""):
        try:
            return fn(*args)
        except KeyboardInterrupt:
            raise
        except BaseException as e:
            raise CausetteError(tr(f"{fn.__name__}({what}) a levé {_where(e, file)}",
                                   f"{fn.__name__}({what}) raised {_where(e, file)}")) from None

    return call


def _fail(what: str, expected: str, got: str, hint: str) -> tuple[bool, str]:
    return False, "\n".join([
        tr(f"différence : {what}", f"difference: {what}"),
        tr(f"  attendu : {expected}", f"  expected: {expected}"),
        tr(f"  obtenu  : {got}", f"  got:      {got}"),
        tr(f"indice : {hint}", f"hint: {hint}"),
    ])


def _ok(lines: list[str]) -> tuple[bool, str]:
    return True, "\n".join([tr("juste", "correct")] + [f"  {line}" for line in lines])

def _wrong_shape(expected, got, name, hint):
    """The failure when ``got`` is not a tensor of ``expected``'s shape, else None."""
    if isinstance(got, torch.Tensor) and got.shape == expected.shape:
        return None
    shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
    return _fail(tr(f"{name} : la forme", f"{name}: the shape"), str(tuple(expected.shape)), str(shape), hint)
