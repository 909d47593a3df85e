"""Topic ``progression`` (docs/progression.md): from a bigram to a Transformer, step by step.

The five steps are model presets (configs/progression/), each trained by ``causette run`` on the
demo corpus with the same budget. This topic lists them with what each adds and its parameter
count (from the presets themselves), the bits per byte measured when the docs were written, and
the bits per byte of your own runs of them when they exist (``runs/etape…/eval.json``); its
picture (``--png``) draws their validation curves side by side (pictures.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from causette.explain.common import Setup, num, table, topic, tr

# (preset, what the step adds, in French and English)
STEPS = (
    ("progression/1-bigramme", "le token courant seul (une table)", "the current token alone (a table)"),
    ("progression/2-fenetre", "les 8 tokens précédents, concaténés", "the 8 previous tokens, concatenated"),
    ("progression/3-une-tete", "une tête d'attention, tout le contexte", "one attention head, the whole context"),
    ("progression/4-bloc", "4 têtes + MLP : un bloc complet", "4 heads + MLP: a full block"),
    ("progression/5-transformer", "4 blocs : l'architecture de la démo", "4 blocks: the demo's architecture"),
)

# Bits per byte on the demo's val split (causette eval, full split), measured for docs/progression.md
# with `make progression` (tests/test_progression.py checks the docs' table says the same).
MEASURED = (1.979, None, None, None, None)
TOLERANCE = 0.05  # what a fresh clone should reproduce (same steps, same seed; the machine may differ)


@topic("progression", ("du bigramme au Transformer : les cinq étapes, leurs paramètres, leurs bits par octet",
                       "from a bigram to a Transformer: the five steps, their parameters, their bits per byte"),
       text=False)
def explain_progression(s: Setup | None = None, text: str = "", args=None) -> str:
    from causette.config import load_config
    from causette.model.counting import count_params

    runs = Path(getattr(args, "runs", None) or "runs")
    rows, first = [], None
    for i, ((preset, fr, en), measured) in enumerate(zip(STEPS, MEASURED), start=1):
        cfg = load_config(preset)
        first = first or cfg
        mine = _bits_per_byte(runs / cfg.run.name)
        rows.append([i, preset.split("/")[1], num(count_params(cfg.model).total, ","), tr(fr, en),
                     "?" if measured is None else num(measured, ".3f"),
                     "—" if mine is None else num(mine, ".3f") + _verdict(mine, measured)])
    budget = first.train.max_steps * first.train.batch_size * first.model.block_size
    head = tr(f"Le même budget pour les cinq : {first.train.max_steps} pas × "
              f"{num(first.train.batch_size * first.model.block_size, ',')} tokens = {num(budget, ',')} tokens "
              f"du corpus de la démo ; bits par octet sur sa partie val (plus bas = mieux).",
              f"The same budget for all five: {first.train.max_steps} steps × "
              f"{first.train.batch_size * first.model.block_size:,} tokens = {budget:,} tokens of the demo "
              f"corpus; bits per byte on its val split (lower is better).")
    out = [head, "", table([tr("étape", "step"), "preset", tr("paramètres", "parameters"),
                            tr("ce qu'elle voit", "what it sees"), tr("mesuré", "measured"),
                            tr(f"vos runs ({runs}/)", f"your runs ({runs}/)")], rows, left=(1, 3))]
    out += ["", tr("Lancer une étape : causette run progression/1-bigramme (puis 2-fenetre, 3-une-tete, 4-bloc, "
                   "5-transformer), ou les cinq : make progression.",
                   "Run one step: causette run progression/1-bigramme (then 2-fenetre, 3-une-tete, 4-bloc, "
                   "5-transformer), or all five: make progression.")]
    return "\n".join(out)


def step_runs(args=None) -> list[tuple[str, Path]]:
    """``(preset name, run folder)`` of the five steps, where ``explain progression`` looks."""
    from causette.config import load_config

    runs = Path(getattr(args, "runs", None) or "runs")
    return [(preset.split("/")[1], runs / load_config(preset).run.name) for preset, _fr, _en in STEPS]


def val_curve(run: Path) -> list[tuple[int, float]]:
    """``(step, val bits per byte)`` of a run's training log (``metrics.jsonl``); empty if none."""
    out = []
    try:
        lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("kind") == "val" and "val/bits_per_byte" in rec:
            out.append((int(rec["step"]), float(rec["val/bits_per_byte"])))
    return out


def _bits_per_byte(run: Path) -> float | None:
    """The base model's bits per byte on the val split in ``run/eval.json`` (causette eval)."""
    try:
        data = json.loads((run / "eval.json").read_text(encoding="utf-8"))
        return float(data["base"]["text"]["bits_per_byte"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _verdict(mine: float, measured: float | None) -> str:
    if measured is None:
        return ""
    return tr(" (comme attendu)", " (as expected)") if abs(mine - measured) <= TOLERANCE else tr(
        f" (écart {num(mine - measured, '+.3f')})", f" (off by {mine - measured:+.3f})")
