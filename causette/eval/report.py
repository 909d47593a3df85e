"""``runs/<name>/report.md``: what a run did, in one page with its plots.

Everything comes from files the stages already wrote — the corpus manifest, the tokenizer,
``data/meta.json``, ``metrics.jsonl`` (pretraining and SFT), the checkpoints' state,
``sft/eval.json`` and ``eval.json`` — so ``causette report RUN`` can be re-run at any time.
Losses are always shown with their unit, and bits per byte next to them: a per-token loss
alone cannot be compared across tokenizers.

The report speaks the learner's language (causette/utils/lang.py): French text and numbers
(« 3 977 679 », « 3,60 ») by default, English with ``--lang en``; plot ticks are short
(« 1,2 M ») so that they never run into each other.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from causette.errors import CausetteError
from causette.eval.report_grammar import grammar_section
from causette.eval.tools import tools_section
from causette.train.run_log import read_metrics
from causette.utils.artefact import kind_of
from causette.utils.io import atomic_write
from causette.utils.lang import localize, num, tr
from causette.utils.lock import run_lock
from causette.utils.paths import RunLayout


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def plot_curves(run: Path, out: Path, title: str) -> str | None:
    """Train/val loss and val bits per byte against tokens seen, as a PNG; returns its name."""
    fig = curves_figure(run, title)
    if fig is None:
        return None
    import matplotlib.pyplot as plt

    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out.name


def curves_figure(run: Path, title: str):
    """The figure of :func:`plot_curves` (``None``: no training rows), titles and axes in the learner's language."""
    rows = read_metrics(run)
    train = [r for r in rows if r["kind"] == "train" and r.get("train/loss") is not None]
    if not train:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    tokens_at = {r["step"]: r.get("train/tokens_seen", r["step"]) for r in train}
    val = [r for r in rows if r["kind"] == "val" and r.get("val/loss") is not None]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    ax = axes[0]
    ax.plot([tokens_at[r["step"]] for r in train], [r["train/loss"] for r in train], label="train", lw=1)
    if val:
        ax.plot([tokens_at.get(r["step"], r["step"]) for r in val], [r["val/loss"] for r in val], "o-", label="val")
    ax.set_ylabel(tr("perte (nats / token)", "loss (nats / token)"))
    ax.set_title(f"{title}{tr(' : perte', ': loss')}")
    ax.legend()
    ax = axes[1]
    bpb = [r for r in val if r.get("val/bits_per_byte") is not None]
    if bpb:
        ax.plot([tokens_at.get(r["step"], r["step"]) for r in bpb], [r["val/bits_per_byte"] for r in bpb], "o-", color="C2")
        ax.set_ylabel(tr("bits par octet (val)", "val bits / byte"))
    else:
        ax.plot([tokens_at[r["step"]] for r in train], [r["train/lr"] for r in train], color="C3")
        ax.set_ylabel(tr("taux d'apprentissage", "learning rate"))
    ax.set_title(f"{title}{tr(' : ', ': ')}"
                 + (tr("bits par octet", "bits per byte") if bpb else tr("taux d'apprentissage", "learning rate")))
    for ax in axes:
        ax.set_xlabel(tr("tokens vus", "tokens seen"))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: short_count(x)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: localize(f"{y:g}")))
    fig.tight_layout()
    return fig


def short_count(x: float) -> str:
    """A count as a short tick label, three significant digits at most: ``1 250 000`` → ``1,25 M``
    (``1.25M`` in English), ``800`` → ``800``."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            value = f"{x / scale:.3g}"
            if "e" in value:  # 999.96 k rounds to 1e+03 k
                value = f"{x / scale:.0f}"
            return localize(value) + tr("\u00a0" + unit, unit)
    return localize(f"{x:.0f}" if abs(x) >= 1 else f"{x:.2f}".rstrip("0").rstrip("."))


def _throughput(run: Path, flops_per_token: float = 0.0, peak_flops: float = 0.0) -> tuple[float, float]:
    """Median tokens/s and MFU of the run's training rows, past the first quarter. Given the
    FLOPs per token and the peak the run recorded (its checkpoint's state), MFU is recomputed from
    tokens/s against that peak, the one the report names, even across resumes; else the logged
    MFU (runs from before the state recorded them)."""
    rows = [r for r in read_metrics(run) if r["kind"] == "train" and r.get("train/tokens_per_s")]
    if not rows:
        return float("nan"), float("nan")
    tail = rows[len(rows) // 4 :] or rows  # skip the first quarter (compilation, warm-up)
    tps = statistics.median(r["train/tokens_per_s"] for r in tail)
    if flops_per_token and peak_flops:
        return tps, flops_per_token * tps / peak_flops
    return tps, statistics.median(r.get("train/mfu", 0) for r in tail)


# Where a run's peak came from (state.json "peak", causette/utils/flops.py Peak.kind), as the report says it.
PEAK_KINDS = {"spec": ("fiche technique du GPU", "the GPU's spec sheet"),
              "cached": ("mesuré au calme sur cette machine", "measured on this machine while quiet"),
              "measured": ("mesuré au calme sur cette machine", "measured on this machine while quiet"),
              "busy": ("mesuré sur une machine occupée : MFU sans doute surestimé",
                       "measured on a busy machine: MFU likely overstated"),
              "config": ("donné par train.peak_flops", "given by train.peak_flops")}


def _peak_note(peak: dict | None) -> str:
    """« (pic 880 GFLOP/s, mesuré au calme sur cette machine) », or "" when the run did not record it."""
    if not peak or not peak.get("flops"):
        return ""
    fr, en = PEAK_KINDS.get(peak.get("kind"), (peak.get("source", "?"), peak.get("source", "?")))
    gflops = num(peak["flops"] / 1e9, ",.0f")
    return tr(f" (pic {gflops} GFLOP/s, {fr})", f" (peak {gflops} GFLOP/s, {en})")


def _split_sentence(split: dict) -> str:
    """How the corpus was split, for the report."""
    chars = split.get("characters", {})
    n_train, n_val = len(split["train"]), len(split["val"])
    if split.get("mode") == "tail":
        share, c_val, c_train = num(split["val_fraction"], ".0%"), num(chars.get("val", 0), ","), num(chars.get("train", 0), ",")
        return tr(f"Val : la fin ({share} des caractères) de {n_val} document(s) sur {n_train}, "
                  f"soit {c_val} caractères (train {c_train}) — trop peu de documents pour en réserver des entiers.",
                  f"Val: the end ({share} of the characters) of {n_val} document(s) out of {n_train}, "
                  f"{c_val} characters (train {c_train}) — too few documents to hold whole ones out.")
    if split.get("mode") == "none":
        return tr(f"Train {n_train} documents, pas de val (`corpus.val_fraction` = 0).",
                  f"Train {n_train} documents, no val (`corpus.val_fraction` = 0).")
    return tr(f"Train {n_train} documents, val {n_val}.", f"Train {n_train} documents, val {n_val}.")


# Why documents were dropped (causette/corpus/build.py REASONS), as the report says it.
DROP_REASONS = {"empty": ("vides", "empty"), "too_short": ("trop courts", "too short"),
                "not_french": ("pas en français", "not French"), "exact_duplicate": ("doublons exacts", "exact duplicates"),
                "near_duplicate": ("quasi-doublons", "near duplicates")}
# Kinds of text (corpus ``kind``) the report names in French.
KINDS_FR = {"theatre": "théâtre", "poetry": "poésie", "legal": "juridique", "encyclopedia": "encyclopédie",
            "dialogue": "dialogue", "prose": "prose"}


def write_report(run: str | Path) -> Path:
    run = Path(run)
    layout = RunLayout(run)
    if not run.is_dir():
        raise CausetteError(f"{run}: no such run directory")
    if kind_of(run) != "run":  # the report writes report.md and report/ into it: only into a run
        raise CausetteError(f"{run}: not a Causette run folder (a folder such as runs/demo, made by causette run)")
    with run_lock(run):
        return _write_report(run, layout)


def _write_report(run: Path, layout: RunLayout) -> Path:
    lines = [tr(f"# Rapport du run `{run.name}`", f"# Report of run `{run.name}`"), ""]
    lines += _corpus_section(layout)
    lines += _tokenizer_section(layout)
    lines += _pretraining_section(run, layout)
    lines += _sft_section(layout)
    ev = _json(layout.eval_json)
    lines += grammar_section(layout, ev)
    lines += tools_section(((ev or {}).get("chat") or {}).get("tools"))
    lines += _evaluation_section(ev)

    out = layout.report
    with atomic_write(out) as f:
        f.write("\n".join(lines).rstrip() + "\n")
    return out


def _corpus_section(layout: RunLayout) -> list[str]:
    """« Corpus »: the documents kept and dropped, how it was split, its kinds of text (empty
    without a corpus manifest)."""
    manifest = _json(layout.corpus_manifest)
    if not manifest:
        return []
    d = manifest["documents"]
    drops = ", ".join(f"{tr(*DROP_REASONS.get(k, (k, k)))} {num(v, ',')}" for k, v in d["dropped"].items() if v)
    drops = drops or tr("aucun", "none")
    kept_chars, kept_bytes = num(manifest["characters"]["kept"], ","), num(manifest["bytes"]["kept"], ",")
    lines = ["## Corpus", "",
             tr(f"{num(d['kept'], ',')} documents gardés sur {num(d['seen'], ',')} vus (écartés : {drops}) ; "
                f"{kept_chars} caractères, {kept_bytes} octets ; {_split_sentence(manifest['split'])}",
                f"{d['kept']:,} documents kept of {d['seen']:,} seen (dropped: {drops}); "
                f"{kept_chars} characters, {kept_bytes} bytes; {_split_sentence(manifest['split'])}"), "",
             tr("| genre | documents | caractères |", "| kind | documents | characters |"), "|---|---:|---:|"]
    lines += [f"| {tr(KINDS_FR.get(k, k), k)} | {num(v['documents'], ',')} | {num(v['characters'], ',')} |"
              for k, v in manifest["by_kind"].items()]
    lines.append("")
    return lines


def _tokenizer_section(layout: RunLayout) -> list[str]:
    """« Tokenizer and data »: the vocabulary and, for each split, tokens and bytes per token
    (empty before the tokenizer and data stages)."""
    meta = _json(layout.data_meta)
    tok = _json(layout.tokenizer_file)
    if not (tok or meta):
        return []
    lines = [tr("## Tokeniseur et données", "## Tokenizer and data"), ""]
    if tok:
        vocab, pattern = tok.get("vocab_size", "?"), tok.get("pattern_name", "?")
        vocab = num(vocab, ",") if isinstance(vocab, int) else vocab
        lines.append(tr(f"BPE octet par octet de {vocab} tokens, motif `{pattern}`.",
                        f"Byte-level BPE of {vocab} tokens, pattern `{pattern}`."))
    if meta:
        for split, s in meta["splits"].items():
            ratio = num(s["bytes"] / max(s["tokens"], 1), ".2f")
            lines.append(tr(f"- {split} : {num(s['tokens'], ',')} tokens pour {num(s['bytes'], ',')} octets "
                            f"({ratio} octets par token), {num(s['documents'], ',')} documents",
                            f"- {split}: {s['tokens']:,} tokens for {s['bytes']:,} bytes "
                            f"({ratio} bytes per token), {s['documents']} documents"))
    lines.append("")
    return lines


def _pretraining_section(run: Path, layout: RunLayout) -> list[str]:
    """« Pretraining »: the model, steps and speed, the validation scores of the latest checkpoint,
    the curves (empty without checkpoints)."""
    from causette.checkpoint.steps import find_checkpoint, list_checkpoints, read_state

    ckpts = list_checkpoints(layout.checkpoints)
    if not ckpts:
        return []
    ck = find_checkpoint(run, warn=lambda s: None)
    state = read_state(ck)
    from causette.checkpoint.files import config_path
    from causette.checkpoint.weights import read_config
    from causette.model.counting import count_params

    mc, _ = read_config(config_path(ck))  # the model as trained (its vocabulary is the tokenizer's)
    counts = count_params(mc)
    peak = state.get("peak")  # the one the run measured its MFU against (causette/train/pretrain.py)
    tps, mfu = _throughput(run, state.get("flops_per_token", 0.0), (peak or {}).get("flops", 0.0))
    val = state.get("val") or {}
    lines = [tr("## Pré-entraînement", "## Pretraining"), ""]
    total, non_emb = num(counts.total / 1e6, ".2f"), num(counts.non_embedding / 1e6, ".2f")
    shape = f"{mc.n_layer} {tr('couches', 'layers')} × {mc.n_embd}"
    lines.append(tr(f"Modèle : {total}\u00a0M de paramètres ({non_emb}\u00a0M hors plongements), {shape}, "
                    f"contexte {mc.block_size}, positions {mc.pos}, {mc.norm}, MLP {mc.mlp}.",
                    f"Model: {total}M parameters ({non_emb}M without embeddings), {shape}, "
                    f"context {mc.block_size}, positions {mc.pos}, {mc.norm}, MLP {mc.mlp}."))
    sizing = _json(run / "sizing.json")  # model.depth: auto (causette/train/sizing.py)
    if sizing and sizing.get("depth") == mc.depth:
        lines.append(tr(f"Profondeur choisie d'après le budget (model.depth: auto) : {sizing['depth']} — "
                        f"{sizing.get('reason', '')}.",
                        f"Depth chosen from the budget (model.depth: auto): {sizing['depth']} — "
                        f"{sizing.get('reason', '')}."))
    steps, seen = num(state["step"], ","), num(state.get("tokens_seen", 0), ",")
    speed, mfu_ = num(tps, ",.0f"), num(mfu, ".1%")
    lines.append(tr(f"{steps} pas, {seen} tokens vus ; débit médian {speed} tokens/s, MFU {mfu_}",
                    f"{steps} steps, {seen} tokens seen; median throughput {speed} tokens/s, MFU {mfu_}")
                 + _peak_note(peak) + ".")
    if val:
        uni = state.get("unigram_bits_per_byte")
        loss = num(val.get("loss", float("nan")), ".3f")
        ppl = num(val.get("perplexity", float("nan")), ".1f")
        bpb = num(val.get("bits_per_byte", float("nan")), ".3f")
        lines.append(tr(f"Validation : perte {loss} nats/token, perplexité {ppl}, **{bpb} bits par octet**"
                        + (f" (modèle unigramme : {num(uni, '.3f')})." if uni else "."),
                        f"Validation: loss {loss} nats/token, perplexity {ppl}, **{bpb} bits per byte**"
                        + (f" (unigram model: {uni:.3f})." if uni else ".")))
    png = plot_curves(run, layout.report_dir / "pretrain.png", tr("pré-entraînement", "pretraining"))
    if png:
        lines += ["", tr(f"![courbes du pré-entraînement](report/{png})", f"![pretraining curves](report/{png})")]
    lines.append("")
    return lines


def _sft_section(layout: RunLayout) -> list[str]:
    """« Conversational fine-tuning (SFT) »: the before/after table and the curves (empty
    without ``sft/eval.json``)."""
    sft_eval = _json(layout.sft.eval_json)
    if not sft_eval:
        return []
    lora = sft_eval.get("lora", {}).get("r")
    how = (f", LoRA r={lora}" if lora else tr(", tous les poids", ", all weights")) + "."
    lines = [tr("## Affinage conversationnel (SFT)", "## Conversational fine-tuning (SFT)"), "",
             tr(f"{sft_eval.get('steps', '?')} pas à partir de `{sft_eval.get('base', '?')}`",
                f"{sft_eval.get('steps', '?')} steps from `{sft_eval.get('base', '?')}`") + how,
             "", *sft_table(sft_eval)]
    png = plot_curves(layout.sft.root, layout.report_dir / "sft.png", "SFT")
    if png:
        lines += ["", tr(f"![courbes du SFT](report/{png})", f"![SFT curves](report/{png})")]
    lines.append("")
    return lines


def _evaluation_section(ev: dict | None) -> list[str]:
    """« Evaluation and samples »: the eval stage's scores on val, the base model's continuations
    and the chat model's answers (empty without ``eval.json``)."""
    if not ev:
        return []
    lines = [tr("## Évaluation et exemples", "## Evaluation and samples"), ""]
    for key, label in (("base", tr("modèle de base", "base model")), ("chat", tr("modèle conversationnel", "chat model"))):
        part = ev.get(key) or {}
        if "text" in part:
            t = part["text"]
            bpb, ppl = num(t["bits_per_byte"], ".3f"), num(t["perplexity"], ".1f")
            lines.append(tr(f"- {label} sur la validation : {bpb} bits par octet, perplexité {ppl}",
                            f"- {label} on val: {bpb} bits per byte, perplexity {ppl}"))
    base_samples = (ev.get("base") or {}).get("samples") or []
    if base_samples:
        lines += ["", tr("Continuations du modèle de base :", "Continuations of the base model:"), ""]
        lines += [f"> {s.replace(chr(10), ' ⏎ ')}" + "\n" for s in base_samples]
    chat = (ev.get("chat") or {}).get("chat") or []
    if chat:
        lines += ["", tr("Réponses du modèle conversationnel :", "Answers of the chat model:"), ""]
        lines += [f"- **{q}** — {a}" for q, a in chat]
    lines.append("")
    return lines


def sft_table(report: dict) -> list[str]:
    """The before/after SFT table (``sft/eval.json``) as Markdown, in the learner's language."""
    b, a = report.get("before") or {}, report.get("after") or {}
    if not (a or b):
        return []  # nothing held out (sft.val_fraction=0)
    rows = [(("perte SFT sur les exemples réservés", "held-out SFT loss"), "loss", ".3f"),
            (("perplexité", "perplexity"), "perplexity", ".1f"), (("BLEU", "BLEU"), "bleu", ".1f"),
            (("chrF", "chrF"), "chrf", ".1f"), (("réponses exactes", "exact answers"), "exact", ".0%")]
    lines = [tr("| | avant le SFT | après le SFT |", "| | before SFT | after SFT |"), "|---|---:|---:|"]
    for label, key, spec in rows:
        if key in b or key in a:
            before = num(b[key], spec) if key in b else "-"
            after = num(a[key], spec) if key in a else "-"
            lines.append(f"| {tr(*label)} | {before} | {after} |")
    return lines
