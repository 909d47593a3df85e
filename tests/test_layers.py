"""The package's layers: every import goes down (or sideways within a layer), never up.

Read from the source with ``ast`` (nothing is imported): each module of ``causette/`` gets the
layer of the first pattern it matches in ``LAYERS``; an import of a module of a higher layer is
an upward edge and fails the test, with the line that does it. The picture of these layers is in
docs/architecture.md.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "causette"

# (layer, patterns), from the bottom up. A module takes the layer of the first pattern that
# matches it, trying the patterns in PRECEDENCE order (the command-line modules that live inside
# each stage's package, and the settings dataclasses, before the stage packages themselves).
LAYERS: list[tuple[str, list[str]]] = [
    # the names of a checkpoint's files (importing nothing): the run layout and artefact checks read them
    ("base", ["causette", "causette.errors", "causette.utils", "causette.utils.*", "causette.checkpoint.files"]),
    # the tools an assistant calls (calculer, notes, chercher...): torch-free, under every stage that uses them
    ("tools", ["causette.tools", "causette.tools.*"]),
    # the settings dataclasses of each stage, their loader, and the constants they validate against
    ("settings", ["causette.config", "causette.config_files", "causette.*.config", "causette.model.depth", "causette.tokenizer.special", "causette.tokenizer.pattern"]),
    ("text", ["causette.corpus", "causette.corpus.*", "causette.tokenizer", "causette.tokenizer.*"]),
    ("model", ["causette.model", "causette.model.*"]),
    # the measures the training loop also takes (loss, bits per byte; minimal pairs)
    ("data", ["causette.data", "causette.data.*", "causette.eval.metrics", "causette.eval.minimal_pairs",
              "causette.eval.sentence_scores"]),
    ("checkpoint", ["causette.checkpoint", "causette.checkpoint.*"]),
    ("inference", ["causette.inference", "causette.inference.*"]),
    ("train", ["causette.train", "causette.train.*"]),
    ("sft", ["causette.sft", "causette.sft.*"]),
    ("eval", ["causette.eval", "causette.eval.*"]),
    ("export", ["causette.export", "causette.export.*"]),
    # one stage of a run (causette run chains them; explain curves runs its examples with them)
    ("stages", ["causette.stages"]),
    ("explain", ["causette.explain", "causette.explain.*"]),
    ("cli-args", ["causette.cli_args"]),
    ("commands", ["causette.*.cli", "causette.*.cli_*", "causette.pipeline", "causette.run_state"]),
    ("front", ["causette.cli", "causette.__main__", "causette.*.__main__"]),
]
PRECEDENCE = ["cli-args", "commands", "front", "settings"] + [name for name, _ in LAYERS]
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}


def modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = f.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


def layer_of(module: str) -> str:
    patterns = dict(LAYERS)
    for layer in PRECEDENCE:
        if any(fnmatch.fnmatchcase(module, p) for p in patterns[layer]):
            return layer
    raise AssertionError(f"{module}: in no layer of tests/test_layers.py")


def imports(module: str, path: Path, known: dict[str, Path]) -> list[tuple[int, str]]:
    """``(line, imported causette module)`` for every import in ``path``, top level or not."""
    found = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
        else:
            continue
        for t in targets:
            while t and t not in known:  # `import causette.model.attention as a` → the deepest known module
                t = t.rpartition(".")[0]
            if t and t.startswith("causette") and t != module:
                found.append((node.lineno, t))
    return found


def upward_edges() -> list[str]:
    known = modules()
    bad = []
    for module, path in sorted(known.items()):
        here = RANK[layer_of(module)]
        for line, target in imports(module, path, known):
            if RANK[layer_of(target)] > here:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {module} ({layer_of(module)}) imports "
                           f"{target} ({layer_of(target)}), a higher layer")
    return bad


def test_every_module_has_a_layer():
    for module in modules():
        layer_of(module)


def test_no_import_goes_up():
    bad = upward_edges()
    assert not bad, "\n".join(bad)


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    """The test can fail: a model module importing the trainer is caught."""
    fake = tmp_path / "causette"
    (fake / "model").mkdir(parents=True)
    (fake / "train").mkdir()
    for f in ("__init__.py", "model/__init__.py", "train/__init__.py", "train/trainer.py"):
        (fake / f).write_text("", encoding="utf-8")
    name = "upward"  # a module that does not exist in the real package
    (fake / "model" / f"{name}.py").write_text("def f():\n    from causette.train.trainer import Trainer\n", encoding="utf-8")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    (edge,) = upward_edges()
    assert edge.startswith(f"causette/model/{name}.py:2: causette.model.{name} (model) imports causette.train.trainer")


if __name__ == "__main__":  # python tests/test_layers.py: the edges that go up, if any
    print("\n".join(upward_edges()) or "no upward edge")
    pytest.main([__file__, "-q"])
