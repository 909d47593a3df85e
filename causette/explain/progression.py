"""Topic ``progression`` (docs/progression.md): from a bigram to a Transformer, step by step.

The five steps are model presets (configs/progression/), each trained by ``causette run`` on the
demo corpus with the same budget. This topic lists them with what each adds and its parameter
count (from the presets themselves), the bits per byte measured when the docs were written, and
the bits per byte of your own runs of them when they exist (``runs/etape…/eval.json``); its
picture (``--png``) draws their validation curves side by side (pictures.py).
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from causette.checkpoint.files import LATEST
from causette.checkpoint.load import load_checkpoint
from causette.config import load_config
from causette.data.loader import eval_windows
from causette.errors import CausetteError
from causette.explain.common import Setup, num, table, topic, tr
from causette.explain.pictures import _figure, _save, picture
from causette.model.counting import count_params
from causette.train.run_log import read_metrics
from causette.utils.paths import RunLayout

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
MEASURED = (1.979, 1.818, 1.963, 1.839, 1.792)
TOLERANCE = 0.05  # what a fresh clone should reproduce (same steps, same seed; the machine may differ)


@topic("progression", ("du bigramme au Transformer : les cinq étapes, leurs paramètres, leurs bits par octet",
                       "from a bigram to a Transformer: the five steps, their parameters, their bits per byte"),
       text=False)
def explain_progression(s: Setup | None = None, text: str = "", args=None) -> str:
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
    by_pos = [(name, loss_by_position(run)) for name, run in step_runs(args)]
    by_pos = [(name, curve) for name, curve in by_pos if curve]
    if by_pos:
        heads = [tr(f"{lo} token" if lo == hi else f"{lo} à {hi}", f"{lo} token" if lo == hi else f"{lo} to {hi}")
                 for lo, hi in CONTEXT_BUCKETS]
        out += ["", tr("Ce que chaque étape tire du contexte : bits par octet selon le nombre de tokens déjà lus "
                       "(premières fenêtres de la partie val).",
                       "What each step gets from the context: bits per byte by the number of tokens already read "
                       "(first windows of the val split)."),
                table([tr("étape", "step")] + heads,
                      [[name] + ["—" if v is None else num(v, ".3f") for v in bucket_means(curve)]
                       for name, curve in by_pos])]
    out += grammar_table(step_runs(args))
    out += ["", tr("Lancer une étape : causette run progression/1-bigramme (puis 2-fenetre, 3-une-tete, 4-bloc, "
                   "5-transformer), ou les cinq : make progression.",
                   "Run one step: causette run progression/1-bigramme (then 2-fenetre, 3-une-tete, 4-bloc, "
                   "5-transformer), or all five: make progression.")]
    return "\n".join(out)


def step_runs(args=None) -> list[tuple[str, Path]]:
    """``(preset name, run folder)`` of the five steps, where ``explain progression`` looks."""
    runs = Path(getattr(args, "runs", None) or "runs")
    return [(preset.split("/")[1], runs / load_config(preset).run.name) for preset, _fr, _en in STEPS]


def val_curve(run: Path) -> list[tuple[int, float]]:
    """``(step, val bits per byte)`` of a run's training log (``metrics.jsonl``); empty if none."""
    return [(row["step"], float(row["val/bits_per_byte"])) for row in read_metrics(run)
            if row["kind"] == "val" and row.get("val/bits_per_byte") is not None]


# Buckets of context length (tokens the model has read, the predicted one excluded) for the
# table of losses by position: the window of step 2 is 8 tokens.
CONTEXT_BUCKETS = ((1, 1), (2, 8), (9, 32), (33, 256))


def loss_by_position(run: Path, max_tokens: int = 65_536) -> list[float] | None:
    """See :func:`_loss_by_position`; computed once per run folder and checkpoint in a process."""
    latest = RunLayout(run).checkpoints / LATEST
    stamp = latest.stat().st_mtime_ns if latest.exists() else None
    return _cached_loss_by_position(str(run), stamp, max_tokens)


@functools.lru_cache(maxsize=8)
def _cached_loss_by_position(run: str, _stamp, max_tokens: int) -> list[float] | None:
    return _loss_by_position(Path(run), max_tokens)


def _loss_by_position(run: Path, max_tokens: int) -> list[float] | None:
    """Bits per byte at each position of the context, averaged over the first windows of the
    run's val split: entry ``t`` is the cost of predicting token ``t+1`` having read ``t+1``
    tokens. None when the run has no checkpoint or data. (Bits per byte here is each position's
    loss in bits divided by the val split's mean bytes per token.)"""
    try:
        meta = json.loads(RunLayout(run).data_meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not RunLayout(run).checkpoints.is_dir():
        return None
    model = load_checkpoint(run, device="cpu", precision="fp32").model.eval()
    rows = eval_windows(RunLayout(run).data / "val.bin", meta["dtype"], model.cfg.block_size, max_tokens)
    total = torch.zeros(rows.shape[1] - 1)
    with torch.no_grad():
        for chunk in rows.split(16):  # 16 windows at a time: their logits stay under 70 MB
            logits = model.logits(chunk[:, :-1])
            total += F.cross_entropy(logits.transpose(1, 2).float(), chunk[:, 1:], reduction="none").sum(0)
    val = meta["splits"]["val"]
    bytes_per_token = val["bytes"] / val["tokens"]
    return (total / len(rows) / math.log(2) / bytes_per_token).tolist()


def bucket_means(per_position: list[float], buckets=CONTEXT_BUCKETS) -> list[float | None]:
    """The mean of ``per_position`` over each ``(first, last)`` context length of ``buckets``
    (None past its end)."""
    out = []
    for lo, hi in buckets:
        part = per_position[lo - 1 : hi]
        out.append(sum(part) / len(part) if part else None)
    return out


# The phenomena the grammar table shows: agreement between neighbours, then further away.
GRAMMAR_COLUMNS = (  # (phenomenon, short French and English headers)
    ("subject_verb_number", "sujet-verbe voisins", "subject-verb adjacent"),
    ("subject_verb_number_distant", "sujet-verbe à distance", "subject-verb distant"),
    ("determiner_noun_gender", "genre du déterminant", "determiner gender"),
    ("adjective_noun_number", "nombre de l'adjectif", "adjective number"),
    ("etre_predicate_number", "attribut (être)", "predicate (être)"),
)


def grammar_table(runs: list[tuple[str, Path]]) -> list[str]:
    """Each step's share of French minimal pairs passed (the eval stage's subset of the built-in
    suite, ``eval.json``), overall and for some phenomena: a bigram can only get right an agreement
    between neighbours; attention reaches further."""
    rows = []
    for name, run in runs:
        g = _grammar(run)
        if g is None:
            continue
        cells = [g["overall"]] + [g["phenomena"].get(p) for p, _fr, _en in GRAMMAR_COLUMNS]
        rows.append([name] + ["—" if not e or not e.get("total") else num(100 * e["accuracy"], ".1f") for e in cells])
    if not rows:
        return []
    return ["", tr("La grammaire de chaque étape : paires minimales réussies, en % (hasard : 50 %), sur le "
                   "sous-ensemble du test intégré que mesure l'étape eval (causette eval --suite grammaire pour "
                   "toutes les paires).",
                   "Each step's grammar: minimal pairs passed, in % (chance: 50%), on the subset of the built-in "
                   "suite the eval stage measures (causette eval --suite grammaire for all the pairs)."),
            table([tr("étape", "step"), tr("ensemble", "overall")] + [tr(fr, en) for _p, fr, en in GRAMMAR_COLUMNS],
                  rows)]


def _grammar(run: Path) -> dict | None:
    """The base model's grammar in ``run/eval.json`` (overall and per phenomenon), or None."""
    try:
        data = json.loads(RunLayout(run).eval_json.read_text(encoding="utf-8"))
        g = data["base"]["grammar"]
        return g if g["overall"].get("total") else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _bits_per_byte(run: Path) -> float | None:
    """The base model's bits per byte on the val split in ``run/eval.json`` (causette eval)."""
    try:
        data = json.loads(RunLayout(run).eval_json.read_text(encoding="utf-8"))
        return float(data["base"]["text"]["bits_per_byte"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _verdict(mine: float, measured: float | None) -> str:
    if measured is None:
        return ""
    return tr(" (comme attendu)", " (as expected)") if abs(mine - measured) <= TOLERANCE else tr(
        f" (écart {num(mine - measured, '+.3f')})", f" (off by {mine - measured:+.3f})")


# ------------------------------------------------------------------------------ the picture


@picture("progression")
def progression_picture(s, text: str, args, path) -> Path:
    curves = [(name, run, val_curve(run)) for name, run in step_runs(args)]
    curves = [c for c in curves if c[2]]
    if not curves:
        where = getattr(args, "runs", None) or "runs"
        raise CausetteError(tr(f"aucun run des étapes de la progression dans {where}/ : lancez make progression",
                               f"no run of the progression's steps in {where}/: run make progression"))
    plt, fig, axes = _figure(1, 2, (13, 4.8))
    ax, by_pos = axes[0][0], axes[0][1]
    # context lengths in doubling bins: 1, 2, 3-4, 5-8, ..., 129-256
    bins = [(1, 1)] + [(2 ** k + 1, 2 ** (k + 1)) for k in range(8)]
    # The right panel shows each step's gain over the bigram at the same places of the same texts:
    # what varies from one place to the next because of the text itself cancels out.
    reference = dict((name, run) for name, run, _ in curves).get("1-bigramme")
    reference = loss_by_position(reference) if reference else None
    base = bucket_means(reference, bins) if reference else None
    for name, run, points in curves:
        steps, bpb = zip(*points)
        line, = ax.plot(steps, bpb, marker="o", markersize=3, label=f"{name} ({num(bpb[-1], '.3f')})")
        per_position = loss_by_position(run)
        if per_position:
            means = bucket_means(per_position, bins)
            if base:
                means = [None if m is None or b is None else b - m for m, b in zip(means, base)]
            xs = [math.sqrt(lo * hi) for (lo, hi), m in zip(bins, means) if m is not None]
            by_pos.plot(xs, [m for m in means if m is not None], marker="o", markersize=3, color=line.get_color(),
                        label=name)
    ax.set_xlabel(tr("pas", "step"))
    ax.set_ylabel(tr("bits par octet (val)", "bits per byte (val)"))
    ax.legend(title=tr("étape (dernière mesure)", "step (last measure)"), fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(tr("pendant l'entraînement", "during training"), fontsize=10)
    by_pos.set_xscale("log", base=2)
    by_pos.axvline(8, color="0.6", linewidth=0.8, linestyle=":")
    by_pos.annotate(tr("fenêtre de l'étape 2", "step 2's window"), (8, 1), xycoords=("data", "axes fraction"),
                    textcoords="offset points", xytext=(4, -12), fontsize=8, color="0.4")
    by_pos.set_xlabel(tr("tokens déjà lus (échelle logarithmique)", "tokens already read (log scale)"))
    by_pos.set_ylabel(tr("bits par octet gagnés sur le bigramme", "bits per byte saved over the bigram") if base
                      else tr("bits par octet du token suivant", "bits per byte of the next token"))
    by_pos.grid(alpha=0.3)
    if any(not line.get_label().startswith("_") for line in by_pos.get_lines()):  # none without checkpoints
        by_pos.legend(fontsize=8)
    by_pos.set_title(tr("à la fin, selon la place dans le contexte", "at the end, by place in the context"),
                     fontsize=10)
    fig.suptitle(tr("du bigramme au Transformer : même budget, une pièce de plus à chaque étape",
                    "from a bigram to a Transformer: same budget, one more part at each step"), fontsize=11)
    return _save(plt, fig, path, top=0.93)
