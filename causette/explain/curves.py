"""Topic ``curves`` (docs/apprentissage.md): read a run's training and validation losses.

``python -m causette.explain curves --checkpoint runs/demo`` (or ``runs/demo/sft``) reads the
run's ``metrics.jsonl`` and says what a learner should see in it: the validation loss at each
evaluation next to the training loss of the same moment (a mean of the logged steps around it,
since one batch is noisy), the best validation step, and a diagnosis in one line:

* **still learning**: the validation loss was still going down at the end;
* **plateau**: it stopped going down (its last value is not its best, or beats the previous
  one by less than 0.01 nat);
* **overfitting**: it went back up from its best (by more than 0.005 nat) while the training
  loss kept going down (by more than 0.05);
* **diverging**: the training loss ends well above its lowest value (too high a learning rate).

``--png FILE`` draws the two curves with the best step and the diagnosis marked (pictures.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from causette.errors import CausetteError
from causette.explain.common import num, table, topic, tr

PLATEAU = 0.01  # nats: a last evaluation better than the previous by less than this: flat
OVERFIT_RISE = 0.005  # nats above the best validation loss: more than evaluation noise
OVERFIT_TRAIN_DROP = 0.05  # ... while the training loss went down at least this much
DIVERGED = 0.5  # nats: a final training loss this far above its minimum means the run diverged


@dataclass
class Curves:
    run: Path
    train: list[tuple[int, float]]  # (step, training loss of that logged step)
    val: list[tuple[int, float]]  # (step, validation loss)

    def train_near(self, step: int, width: int = 3) -> float:
        """Mean training loss of the ``width`` logged steps closest to ``step`` (one batch is noisy)."""
        near = sorted(self.train, key=lambda sv: abs(sv[0] - step))[:width]
        return sum(v for _, v in near) / len(near)

    @property
    def best(self) -> tuple[int, float]:
        return min(self.val, key=lambda sv: sv[1])

    def diagnosis(self) -> tuple[str, str, str]:
        """``(kind, French, English)``: still-learning, plateau, overfitting or diverging."""
        best_step, best = self.best
        last_step, last = self.val[-1]
        train_end, train_min = self.train_near(self.train[-1][0]), min(v for _, v in self.train)
        if train_end > train_min + DIVERGED:
            return ("diverging",
                    f"l'entraînement diverge : sa perte finit à {num(train_end, '.2f')}, bien au-dessus de son "
                    f"minimum {num(train_min, '.2f')} (taux d'apprentissage trop haut ?)",
                    f"training diverges: its loss ends at {train_end:.2f}, well above its minimum {train_min:.2f} "
                    "(learning rate too high?)")
        if last > best + OVERFIT_RISE and self.train_near(best_step) - train_end > OVERFIT_TRAIN_DROP:
            rise, drop = last - best, self.train_near(best_step) - train_end
            return ("overfitting",
                    f"surapprentissage : la validation est remontée de {num(rise, '.3f')} depuis le pas {best_step} "
                    f"pendant que l'entraînement baissait encore de {num(drop, '.3f')} : c'est au pas {best_step} "
                    "que le modèle généralisait le mieux",
                    f"overfitting: validation went back up by {rise:.3f} since step {best_step} while training "
                    f"went down by another {drop:.3f}: the model generalised best at step {best_step}")
        previous = self.val[-2][1] if len(self.val) >= 2 else float("inf")
        if last_step != best_step or previous - last < PLATEAU:
            return ("plateau",
                    f"plateau : la validation ne baisse presque plus ({num(previous, '.3f')} puis "
                    f"{num(last, '.3f')} aux deux dernières évaluations) ; plus de pas n'aideraient guère",
                    f"plateau: validation barely goes down ({previous:.3f} then {last:.3f} at the last two "
                    "evaluations); more steps would hardly help")
        return ("still-learning",
                f"la validation baissait encore à la fin ({num(previous, '.3f')} puis {num(last, '.3f')}) : plus "
                "de pas (ou plus de temps) auraient aidé",
                f"validation was still going down at the end ({previous:.3f} then {last:.3f}): more steps (or "
                "more time) would have helped")


def read_curves(path: str | Path | None) -> Curves:
    """The losses of a run folder (``runs/demo``, ``runs/demo/sft``) or of a checkpoint inside one."""
    from causette.utils.paths import RunLayout

    if not path:
        raise CausetteError(tr("curves lit un run : donnez --checkpoint runs/demo (ou runs/demo/sft)",
                               "curves reads a run: give --checkpoint runs/demo (or runs/demo/sft)"))
    path = Path(path)
    root = path if (path / "metrics.jsonl").is_file() else None
    if root is None:
        found = RunLayout.find(path)
        root = found.root if found is not None else path
        if path.parts[-1:] != ("sft",) and "sft" in path.parts and (root / "sft" / "metrics.jsonl").is_file():
            root = root / "sft"  # a checkpoint of the SFT sub-run
    metrics = root / "metrics.jsonl"
    if not metrics.is_file():
        raise CausetteError(tr(f"{path} : pas de metrics.jsonl (un dossier de run, après causette train ou sft)",
                               f"{path}: no metrics.jsonl (a run folder, after causette train or sft)"))
    train, val = [], []
    for n, line in enumerate(metrics.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise CausetteError(f"{metrics}:{n}: {e.msg}") from None
        if row.get("kind") == "train" and "train/loss" in row:
            train.append((int(row["step"]), float(row["train/loss"])))
        elif "val/loss" in row:
            val.append((int(row["step"]), float(row["val/loss"])))
    if not train or not val:
        raise CausetteError(tr(f"{metrics} : il faut des pertes d'entraînement et de validation",
                               f"{metrics}: training and validation losses are needed"))
    return Curves(root, train, val)


@topic("curves", ("lire les courbes d'un run : entraînement contre validation, le surapprentissage",
                  "read a run's curves: training against validation, overfitting"), text=False)
def explain_curves(s=None, text: str = "", args=None) -> str:
    c = read_curves(getattr(args, "checkpoint", None))
    rows = [[step, num(c.train_near(step), ".3f"), num(v, ".3f"), num(v - c.train_near(step), "+.3f")]
            for step, v in c.val]
    best_step, best = c.best
    _kind, fr, en = c.diagnosis()
    return "\n".join([
        tr(f"run {c.run} : {len(c.train)} relevés d'entraînement, {len(c.val)} évaluations",
           f"run {c.run}: {len(c.train)} training records, {len(c.val)} evaluations"),
        "",
        table([tr("pas", "step"), tr("entraînement (moyenne locale)", "training (local mean)"),
               tr("validation", "validation"), tr("écart", "gap")], rows),
        "",
        tr(f"meilleure validation : {num(best, '.3f')} au pas {best_step}",
           f"best validation: {best:.3f} at step {best_step}"),
        tr(fr, en),
    ])
