"""Functions a reader can hold: no function or method of causette/ is over ``MAX_LINES`` lines.

The rule: a function's length is the number of lines from its ``def`` line to its last line,
both included, as ``ast`` gives them (``end_lineno - lineno + 1``): the signature, the
docstring, comments and blank lines inside all count, the decorators above the ``def`` do not.
A nested function counts in the function around it, and is checked on its own too. A function
that grows past the limit is split along its natural seams (its sections, its steps) into
named functions, rather than the limit raised.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "causette"
MAX_LINES = 80


def function_lengths(path: Path) -> list[tuple[str, int, int]]:
    """``(qualified name, line of its def, length)`` of every function and method in ``path``."""
    found: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                found.append((name, child.lineno, child.end_lineno - child.lineno + 1))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), "")
    return found


def test_the_rule_counts_from_def_to_the_last_line(tmp_path):
    source = (
        "@decorator\n"
        "def f(x):\n"
        '    """Doc."""\n'
        "\n"
        "    # a comment\n"
        "    def g():\n"
        "        return x\n"
        "    return g\n"
        "\n"
        "\n"
        "class C:\n"
        "    def m(self):\n"
        "        pass\n"
    )
    (tmp_path / "m.py").write_text(source, encoding="utf-8")
    assert function_lengths(tmp_path / "m.py") == [("f", 2, 7), ("f.g", 6, 2), ("C.m", 12, 2)]


def test_no_function_is_over_the_limit():
    too_long = [
        f"{path.relative_to(PACKAGE.parent)}:{line} {name}: {length} lines"
        for path in sorted(PACKAGE.rglob("*.py"))
        for name, line, length in function_lengths(path)
        if length > MAX_LINES
    ]
    assert not too_long, f"over {MAX_LINES} lines (split them along their seams):\n" + "\n".join(too_long)
