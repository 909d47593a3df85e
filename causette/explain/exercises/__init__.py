"""The exercises of docs/exercices.md and their checker: ``python -m causette.explain check EXERCICE FICHIER.py``.

The learner writes one function in a file of their own; :func:`check` imports that file, runs the
function on fixed inputs and compares each answer with what Causette's own code gives, in order:
the first difference is shown (which input, expected, got) with a hint, else « juste » with what
was compared. The reference is always the project's code (``train_bpe``, the model's attention,
``render_chat``, ``top_p_filter``), never a second copy, so the exercise cannot drift from it.

Each checker returns ``(ok, text)``; a file that cannot be imported, lacks the function or raises
is a :class:`CausetteError` (one line).

One module per exercise (bpe, attention, mask, top_p), the learner's file in common.
"""

from __future__ import annotations

from causette.errors import CausetteError
from causette.explain.exercises.attention import check_attention
from causette.explain.exercises.bpe import BPE_INPUTS, check_bpe, reference_merges
from causette.explain.exercises.common import Verdict, load_function
from causette.explain.exercises.mask import check_mask
from causette.explain.exercises.top_p import check_top_p
from causette.utils.lang import tr

__all__ = ["BPE_INPUTS", "EXERCISES", "Verdict", "check", "load_function", "reference_merges"]


# ============================================================================== the command

EXERCISES = {  # name: (function the learner writes, checker, its signature in the docs)
    "bpe": ("train", check_bpe),
    "attention": ("attention", check_attention),
    "masque": ("mask", check_mask),
    "top-p": ("top_p", check_top_p),
}
ALIASES = {"mask": "masque", "top_p": "top-p", "topp": "top-p"}


def check(exercise: str, path: str) -> Verdict:
    """Run the checker of ``exercise`` on the learner's file ``path``: « juste » or the first difference."""
    exercise = ALIASES.get(exercise, exercise)
    if exercise not in EXERCISES:
        raise CausetteError(tr(f"exercice inconnu {exercise!r} : {', '.join(EXERCISES)}",
                               f"unknown exercise {exercise!r}: {', '.join(EXERCISES)}"))
    name, checker = EXERCISES[exercise]
    fn = load_function(path, name)
    ok, text = checker(fn)
    verdict = Verdict(text)
    verdict.ok = ok
    return verdict
