"""docs/exercices.md: each checker accepts the reference solution and rejects a typical mistake.

The reference solutions and the mistakes live in tests/exercises/ (not in the docs); the checker
is ``python -m causette.explain check EXERCICE FICHIER.py`` (causette/explain/exercises/).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from causette.errors import CausetteError
from causette.explain import cli
from causette.explain.exercises import BPE_INPUTS, check, reference_merges
from causette.utils.lang import using

HERE = Path(__file__).parent / "exercises"


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))  # the mistakes import the reference solutions
    yield
    for name in [m for m in sys.modules if m.split(".")[0] in {p.stem for p in HERE.glob("*.py")}]:
        del sys.modules[name]


@pytest.mark.parametrize("exercise, solution", [
    ("bpe", "bpe_ok"), ("attention", "attention_ok"), ("masque", "mask_ok"), ("top-p", "top_p_ok"),
])
def test_the_reference_solution_is_right(exercise, solution):
    with using("fr"):
        verdict = check(exercise, str(HERE / f"{solution}.py"))
    assert verdict.ok, verdict
    assert verdict.startswith("juste\n")


@pytest.mark.parametrize("exercise, mistake, where, hint", [
    ("bpe", "bpe_tie_max", "la fusion n° 2", "la paire la plus petite gagne"),
    ("attention", "attention_no_mask", "q, k, v aléatoires", "masque causal"),
    ("attention", "attention_no_scale", "q, k, v aléatoires", "√d"),
    ("masque", "mask_header", "la position 12", "l'en-tête « assistant↵ » est donné"),
    ("top-p", "top_p_drop_crossing", "les tokens gardés", "le token qui fait franchir p est gardé"),
])
def test_a_typical_mistake_is_shown(exercise, mistake, where, hint):
    with using("fr"):
        verdict = check(exercise, str(HERE / f"{mistake}.py"))
    assert not verdict.ok
    lines = verdict.splitlines()
    assert lines[0].startswith("différence\u00a0: ") and where in lines[0], verdict
    assert lines[1].lstrip().startswith("attendu") and lines[2].lstrip().startswith("obtenu")
    assert hint.replace(" »", "\u00a0»").replace("« ", "«\u00a0") in lines[3], verdict


def test_the_bpe_inputs_have_no_reused_token():
    # train_bpe reuses a token when two pairs build the same bytes; the exercise's inputs avoid
    # that case, which the docs only mention, so that a plain trainer matches exactly
    for _name, text, n in BPE_INPUTS:
        merges = reference_merges(text, n)
        vocab = [bytes([b]) for b in range(256)]
        for a, b in merges:
            vocab.append(vocab[a] + vocab[b])
        assert len(set(vocab)) == len(vocab)


def test_the_command_exit_codes_and_errors(tmp_path, capsys):
    assert cli.main(["check", "top-p", str(HERE / "top_p_ok.py")]) == 0
    assert capsys.readouterr().out.startswith("juste")
    assert cli.main(["check", "top-p", str(HERE / "top_p_drop_crossing.py"), "--lang", "en"]) == 1
    assert capsys.readouterr().out.startswith("difference: ")

    broken = tmp_path / "broken.py"
    broken.write_text("import math\n\ndef top_p(logits, p):\n    return 1 / 0\n")
    assert cli.main(["check", "top-p", str(broken), "--lang", "en"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: top_p(") and "ZeroDivisionError" in err and "line 4" in err
    assert len(err.splitlines()) == 1

    (tmp_path / "syntax.py").write_text("def top_p(:\n")
    (tmp_path / "empty.py").write_text("x = 1\n")
    with using("en"):
        for name, message in [("syntax.py", "importing it failed (SyntaxError"),
                              ("empty.py", "no function top_p(...)"), ("missing.py", "no such file")]:
            with pytest.raises(CausetteError, match=re.escape(message)):
                check("top-p", str(tmp_path / name))
        with pytest.raises(CausetteError, match="unknown exercise"):
            check("softmax", str(broken))
