"""A checkpoint's file names are spelled in causette/checkpoint/ only (causette/checkpoint/files.py).

Read from the source with ``ast``: every string of the package outside ``causette/checkpoint/``
that *is* one of those names, or a path made of them (``"checkpoints/latest"``), fails the test
with its line. Docstrings and sentences (a string with a space: help texts, error messages) are
prose and are not checked. The names are those of files.py itself, so a new one is checked at once.

``tokenizer.json`` is left out: it is the tokenizer's own file (causette/tokenizer/io.py, FILENAME),
which a checkpoint holds a copy of under the same name.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from causette.checkpoint import files

PACKAGE = Path(__file__).resolve().parents[1] / "causette"
HOME = "causette/checkpoint/"
NAMES = {value for key, value in vars(files).items()
         if key.isupper() and isinstance(value, str) and value not in (files.TOKENIZER_FILE, files.STEP_PREFIX)}
STEP = re.compile(re.escape(files.STEP_PREFIX) + r"(\d+|X+)?")  # "step_", "step_0000200", "step_XXXXXXX"
# A Hugging Face model folder names its own files as we do: the exporter writes them, the importer reads them.
HUGGING_FACE = {"causette/export/hf.py": {"config.json", "model.safetensors"},
                "causette/export/importer.py": {"config.json"}}


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def spelled_names(package: Path = PACKAGE) -> list[str]:
    """``path:line: 'literal'`` for every checkpoint file name spelled outside causette/checkpoint/."""
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent).as_posix()
        if rel.startswith(HOME):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in docs:
                continue
            if not node.value or any(c.isspace() for c in node.value):
                continue  # prose, or no name at all
            hits = [p for p in node.value.split("/") if p in NAMES or STEP.fullmatch(p)]
            if any(h not in HUGGING_FACE.get(rel, ()) for h in hits):
                found.append(f"{rel}:{node.lineno}: {node.value!r}")
    return sorted(found)


def test_checkpoint_file_names_are_spelled_in_checkpoint_only():
    found = spelled_names()
    assert not found, ("checkpoint file names spelled outside causette/checkpoint/ (use the names and "
                       "functions of causette/checkpoint/files.py):\n" + "\n".join(found))


def test_the_names_are_those_the_checkpoints_use():
    assert {"model.safetensors", "config.json", "state.json", "optimizer.pt", "adapter.safetensors",
            "adapter.json", "checkpoints", "latest", "best"} == NAMES
    assert files.step_name(200) == "step_0000200"
    assert files.weights_path("d") == Path("d/model.safetensors") and files.state_path("d") == Path("d/state.json")
    assert files.config_path("d") == Path("d/config.json")


def test_the_check_sees_a_name_spelled_elsewhere(tmp_path):
    """The test can fail: a literal file name or pointer path is caught; prose and docstrings are not."""
    fake = tmp_path / "causette"
    (fake / "train").mkdir(parents=True)
    (fake / "checkpoint").mkdir()
    (fake / "checkpoint" / "files.py").write_text('MODEL_FILE = "model.safetensors"\n', encoding="utf-8")
    name = "spelled"  # a module that does not exist in the real package
    (fake / "train" / f"{name}.py").write_text(
        '"""Reads model.safetensors."""\n'
        'def load(d):\n'
        '    """d/state.json"""\n'
        '    print("no state.json here")\n'
        '    latest = d / "checkpoints/latest"\n'
        '    return d / "model.safetensors", f"step_{7:07d}", {"step_seconds": 1}\n',
        encoding="utf-8")
    where = f"causette/train/{name}.py"
    assert spelled_names(fake) == [f"{where}:5: 'checkpoints/latest'", f"{where}:6: 'model.safetensors'",
                                   f"{where}:6: 'step_'"]
