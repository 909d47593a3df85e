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

import contextlib
import io
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from causette.config import load_config
from causette.corpus.config import SourceConfig
from causette.errors import CausetteError
from causette.explain.common import demo_text, num, table, topic, tr
from causette.stages import run_stage
from causette.tokenizer.config import TokenizerConfig
from causette.tokenizer.train import train_tokenizer
from causette.train.run_log import read_metrics
from causette.utils.paths import RunLayout

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
    if not path:
        raise CausetteError(tr("curves lit un run : donnez --checkpoint runs/demo (ou runs/demo/sft), ou --examples",
                               "curves reads a run: give --checkpoint runs/demo (or runs/demo/sft), or --examples"))
    path = Path(path)
    run = RunLayout(path)
    if not run.metrics.is_file():
        run = RunLayout.find(path) or run
        if path.parts[-1:] != ("sft",) and "sft" in path.parts and run.sft.metrics.is_file():
            run = run.sft  # a checkpoint of the SFT sub-run
    if not run.metrics.is_file():
        raise CausetteError(tr(f"{path} : pas de metrics.jsonl (un dossier de run, après causette train ou sft)",
                               f"{path}: no metrics.jsonl (a run folder, after causette train or sft)"))
    train, val = [], []
    for row in read_metrics(run.root):  # damaged lines skipped with a warning
        if row["kind"] == "train" and row.get("train/loss") is not None:
            train.append((row["step"], float(row["train/loss"])))
        elif row["kind"] == "val" and row.get("val/loss") is not None:
            val.append((row["step"], float(row["val/loss"])))
    if not train or not val:
        raise CausetteError(tr(f"{run.metrics} : il faut des pertes d'entraînement et de validation",
                               f"{run.metrics}: training and validation losses are needed"))
    return Curves(run.root, train, val)


@topic("curves", ("lire les courbes d'un run : entraînement contre validation, le surapprentissage",
                  "read a run's curves: training against validation, overfitting"), text=False)
def explain_curves(s=None, text: str = "", args=None) -> str:
    if getattr(args, "examples", False):
        return explain_examples(args)
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


# ------------------------------------------------------------------------------------- --examples
#
# Three real, tiny trainings on the start of the demo corpus (the stages of `causette run`,
# causette/stages.py), to see the three shapes a learner must recognise. Same tokenizer,
# same model (2 layers × 32, ~30 k parameters), same seed; only the named setting differs.

EXAMPLE_TEXT_CHARS = 60_000  # characters of the demo corpus: ~20 k tokens with a 320-token BPE
EXAMPLE_MODEL = ["model.n_layer=2", "model.n_head=2", "model.n_kv_head=1", "model.n_embd=32",
                 "model.block_size=32", "model.mlp_hidden=64"]
EXAMPLE_LR = 1e-2  # fine for this tiny model (it learns fastest around here)
# 200×: with Adam and gradient clipping this tiny model survives 10-30× (measured: 0.1 still learns,
# slower; 0.3 stays stuck at the unigram loss); at 2.0 its loss goes back up once warmup ends.
EXAMPLE_HIGH_LR = 2.0
EXAMPLE_OVERFIT_CHARS = 4_000  # half for training (~700 tokens, seen ~200 times in 2 × steps), half held out


@dataclass
class Example:
    name: str  # folder name, and the key of the expected diagnosis
    title: tuple[str, str]  # (French, English)
    setting: tuple[str, str]  # what differs, one line (French, English)
    expected: str  # the diagnosis this run should get
    curves: Curves | None = None


def examples() -> list[Example]:
    return [
        Example("sain", ("un entraînement sain", "a healthy run"),
                (f"taux {num(EXAMPLE_LR, 'g')}, décroissance cosinus, {num(EXAMPLE_TEXT_CHARS, ',')} caractères",
                 f"lr {EXAMPLE_LR:g}, cosine decay, {EXAMPLE_TEXT_CHARS:,} characters"), "still-learning"),
        Example("taux-trop-haut", ("un taux d'apprentissage trop haut", "too high a learning rate"),
                (f"taux {num(EXAMPLE_HIGH_LR, 'g')} (×{EXAMPLE_HIGH_LR / EXAMPLE_LR:.0f}), atteint au tiers des pas",
                 f"lr {EXAMPLE_HIGH_LR:g} (×{EXAMPLE_HIGH_LR / EXAMPLE_LR:.0f}), reached at a third of the steps"), "diverging"),
        Example("surapprentissage", ("du surapprentissage", "overfitting"),
                (f"{num(EXAMPLE_OVERFIT_CHARS // 2, ',')} caractères d'entraînement, vus des centaines de fois",
                 f"{EXAMPLE_OVERFIT_CHARS // 2:,} training characters, seen hundreds of times"), "overfitting"),
    ]


def train_examples(root: str | Path, steps: int = 300, echo=lambda s: None) -> list[Example]:
    """Train the three example runs under ``root`` (``steps`` each) and read their curves.

    Each is a run folder made by the stages of ``causette run`` (causette/stages.py): its corpus
    (its own text), then the token data and the training; the tokenizer is trained once, on the
    healthy run's text, and shared, so that only the named setting differs."""
    if steps < 60:
        raise CausetteError(tr("--example-steps : au moins 60", "--example-steps: at least 60"))
    root = Path(root)
    text = demo_text(EXAMPLE_TEXT_CHARS)
    shared_tokenizer = root / "tokenizer"
    train_tokenizer(TokenizerConfig(vocab_size=320, workers=1), [text], out_dir=shared_tokenizer)
    every = steps // 6
    settings = {
        "sain": (text, 0.1, [f"train.lr={EXAMPLE_LR}", f"train.min_lr={EXAMPLE_LR / 10}"]),
        "taux-trop-haut": (text, 0.1, [f"train.lr={EXAMPLE_HIGH_LR}", f"train.min_lr={EXAMPLE_HIGH_LR}",
                                       "train.schedule=constant", f"train.warmup_steps={steps // 3}"]),
        "surapprentissage": (text[:EXAMPLE_OVERFIT_CHARS], 0.5, [f"train.lr={EXAMPLE_LR}", f"train.min_lr={EXAMPLE_LR / 10}",
                                                               f"train.max_steps={2 * steps}",
                                                               f"train.eval_every={2 * every}"]),
    }
    out = examples()
    for ex in out:
        source, val_fraction, extra = settings[ex.name]
        src = root / "sources" / ex.name
        src.mkdir(parents=True)
        (src / "texte.txt").write_text(source, encoding="utf-8")
        cfg = load_config("demo", [
            f"run.dir={root}", f"run.name={ex.name}", "corpus.min_chars=100", "corpus.min_total_chars=1000",
            f"corpus.val_fraction={val_fraction}", "corpus.workers=1", "corpus.near_dup=false", *EXAMPLE_MODEL,
            "train.device=cpu", "train.precision=fp32", "train.compile=false", "train.batch_size=8",
            f"train.max_steps={steps}", "train.max_minutes=0", "train.warmup_steps=10", f"train.eval_every={every}",
            "train.eval_tokens=2048", "train.log_every=5", f"train.ckpt_every={steps}", "train.keep_last=1",
            "train.sample_tokens=0", "train.tensorboard=false", "train.peak_flops=1e12", *extra])
        cfg.corpus.sources = [SourceConfig(path=str(src))]
        run = RunLayout(cfg.run.path)
        with contextlib.redirect_stderr(io.StringIO()):  # the corpus's warnings (a small text)
            run_stage("corpus", cfg, run, progress=False, echo=_silent, device=None, resume=False)
        shutil.copytree(shared_tokenizer, run.tokenizer)
        run_stage("prepare", cfg, run, progress=False, echo=_silent, device=None, resume=False)
        echo(tr(f"entraînement de l'exemple {ex.name} ({steps} pas)…", f"training example {ex.name} ({steps} steps)…"))
        with contextlib.redirect_stdout(io.StringIO()):  # the trainer's own lines (tqdm.write)
            run_stage("train", cfg, run, progress=False, echo=_silent, device=None, resume=False)
        ex.curves = read_curves(run.root)
        ex.curves.run = Path(ex.name)  # the temporary folder is gone once drawn: name the run only
    return out


def _silent(line: str) -> None:
    pass


def example_curves(args) -> list[Example]:
    """The three example runs of ``--examples``, trained once per command (text and picture share them)."""
    found = getattr(args, "trained_examples", None)
    if found is None:
        with tempfile.TemporaryDirectory(prefix="causette-curves-") as tmp:
            found = train_examples(tmp, getattr(args, "example_steps", 300))
        args.trained_examples = found
    return found


def explain_examples(args) -> str:
    if getattr(args, "checkpoint", None):
        raise CausetteError(tr("--examples entraîne ses propres runs : pas avec --checkpoint",
                               "--examples trains its own runs: not with --checkpoint"))
    out = [tr("trois petits entraînements réels sur le début du corpus de démonstration (même tokeniseur, même "
              "modèle, même graine ; seul le réglage nommé change) :",
              "three small real trainings on the start of the demo corpus (same tokenizer, same model, same "
              "seed; only the named setting differs):")]
    for ex in example_curves(args):
        c = ex.curves
        rows = [[step, num(c.train_near(step), ".3f"), num(v, ".3f")] for step, v in c.val]
        _kind, fr, en = c.diagnosis()
        out += ["", f"{tr(*ex.title)} ({tr(*ex.setting)})",
                table([tr("pas", "step"), tr("entraînement", "training"), tr("validation", "validation")], rows),
                tr(fr, en)]
    return "\n".join(out)
