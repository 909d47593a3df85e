"""The report's grammar section: what the model knows of French agreement, by minimal pairs.

Two sources, both written by the run itself:

* ``eval.json`` (the eval stage): the base and the chat model on a fixed subset of the built-in
  suite (causette/eval/grammar.py), with the unigram model's score beside them;
* ``metrics.jsonl`` (training): ``val/grammaire`` at every evaluation, the accuracy on the smaller
  subset the training loop scores (eval/sentence_scores.py, ``GrammarProbe``), drawn against the
  tokens seen: grammar emerging during training.
"""

from __future__ import annotations

from pathlib import Path

from causette.eval.minimal_pairs import display_order, phenomenon_label
from causette.train.run_log import read_metrics
from causette.utils.lang import localize, num, tr
from causette.utils.paths import RunLayout


def _percent(entry: dict | None) -> str:
    if not entry or not entry.get("total"):
        return "—"
    return num(100 * entry["accuracy"], ".1f") + tr("\u00a0%", "%")


def grammar_table(base: dict, chat: dict | None) -> list[str]:
    """Markdown: accuracy per phenomenon of chance, the unigram model, the base and the chat model."""
    unigram = base.get("unigram") or {}
    columns = [tr("hasard", "chance"), tr("unigramme", "unigram"), tr("modèle de base", "base model")]
    if chat:
        columns.append(tr("après le SFT", "after SFT"))
    lines = [f"| {tr('phénomène', 'phenomenon')} | {tr('paires', 'pairs')} | " + " | ".join(columns) + " |",
             "|---|---:|" + "---:|" * len(columns)]
    names = sorted(base["phenomena"], key=display_order)
    rows = [(phenomenon_label(n), base["phenomena"][n], (unigram.get("phenomena") or {}).get(n),
             ((chat or {}).get("phenomena") or {}).get(n)) for n in names]
    rows.append((f"**{tr('ensemble', 'overall')}**", base["overall"], unigram.get("overall"), (chat or {}).get("overall")))
    for label, b, u, c in rows:
        cells = [label, num(b["total"], ","), tr("50\u00a0%", "50%"), _percent(u), _percent(b)]
        if chat:
            cells.append(_percent(c))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _grammar_rows(run: Path) -> tuple[list[dict], dict[int, float]]:
    """The evaluations that scored grammar, and the tokens seen at each step."""
    rows = read_metrics(run)
    tokens_at = {r["step"]: r.get("train/tokens_seen", r["step"]) for r in rows if r["kind"] == "train"}
    return [r for r in rows if r["kind"] == "val" and r.get("val/grammaire") is not None], tokens_at


def grammar_curve(run: Path) -> list[tuple[float, float]]:
    """``(tokens seen, accuracy)`` at each evaluation of a training run (``val/grammaire``)."""
    rows, tokens_at = _grammar_rows(run)
    return [(tokens_at.get(r["step"], r["step"]), r["val/grammaire"]) for r in rows]


def plot_grammar(run: Path, out: Path) -> str | None:
    """Accuracy on the training loop's minimal pairs against tokens seen, overall and per
    phenomenon, as a PNG; returns its name (None: no grammar was measured during training)."""
    rows, tokens_at = _grammar_rows(run)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    from causette.eval.report import short_count  # deferred: eval/report.py imports this module

    def x(r: dict) -> float:
        return tokens_at.get(r["step"], r["step"])

    fig, ax = plt.subplots(figsize=(8, 4))
    names = sorted({k.split("/", 2)[2] for r in rows for k in r if k.startswith("val/grammaire/")}, key=display_order)
    for i, name in enumerate(names):
        points = [(x(r), r[f"val/grammaire/{name}"]) for r in rows if r.get(f"val/grammaire/{name}") is not None]
        ax.plot(*zip(*points), lw=0.8, alpha=0.5, color=f"C{i % 10}", label=phenomenon_label(name))
    ax.plot([x(r) for r in rows], [r["val/grammaire"] for r in rows], "o-", lw=2.2, color="black",
            label=tr("ensemble", "overall"))
    ax.axhline(0.5, ls="--", lw=1, color="grey")
    ax.text(x(rows[0]), 0.505, tr("hasard", "chance"), color="grey", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_xlabel(tr("tokens vus", "tokens seen"))
    ax.set_ylabel(tr("paires minimales réussies", "minimal pairs passed"))
    ax.set_title(tr("La grammaire pendant l'entraînement", "Grammar during training"))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: short_count(v)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: localize(f"{100 * v:.0f}") + tr("\u00a0%", "%")))
    ax.legend(fontsize=6.5, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out.name


def grammar_section(layout: RunLayout, ev: dict | None) -> list[str]:
    """The report's « Grammaire » section (empty when nothing was measured)."""
    base = ((ev or {}).get("base") or {}).get("grammar")
    png = plot_grammar(layout.root, layout.report_dir / "grammaire.png")
    if not base and not png:
        return []
    lines = [tr("## Grammaire : les paires minimales", "## Grammar: minimal pairs"), ""]
    if base:
        chat = ((ev or {}).get("chat") or {}).get("grammar")
        lines += [tr(f"Sur {num(base['scored'], ',')} paires du test intégré (`--suite grammaire`) : une paire est "
                     "réussie quand le modèle donne la plus haute probabilité à la phrase correcte. Le hasard fait "
                     "50 % ; le modèle unigramme, qui ne connaît que la fréquence de chaque token, montre ce qu'on "
                     "gagne sans rien savoir de l'accord.",
                     f"On {base['scored']:,} pairs of the built-in suite (`--suite grammaire`): a pair passes when "
                     "the model gives the correct sentence the higher probability. Chance is 50%; the unigram model, "
                     "which knows only each token's frequency, shows what is won knowing nothing of agreement."), "",
                  *grammar_table(base, chat), ""]
        overlap = base.get("overlap") or {}
        if overlap.get("sentences"):
            lines += [tr(f"Attention : {num(overlap['sentences'], ',')} phrases du test figurent telles quelles dans "
                         "le corpus d'entraînement ; les paires qui les contiennent mesurent la mémoire du modèle.",
                         f"Warning: {overlap['sentences']:,} sentences of the suite appear verbatim in the training "
                         "corpus; the pairs holding them measure the model's memory."), ""]
    if png:
        lines += [tr(f"![la grammaire pendant l'entraînement](report/{png})", f"![grammar during training](report/{png})"), ""]
    return lines
