"""``runs/<name>/report.md``: what a run did, in one page with its plots.

Everything comes from files the stages already wrote — the corpus manifest, the tokenizer,
``data/meta.json``, ``metrics.jsonl`` (pretraining and SFT), the checkpoints' state,
``sft/eval.json`` and ``eval.json`` — so ``causette report RUN`` can be re-run at any time.
Losses are always shown with their unit, and bits per byte next to them: a per-token loss
alone cannot be compared across tokenizers.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from causette.errors import CausetteError
from causette.train.run_log import read_metrics
from causette.utils.io import atomic_write
from causette.utils.paths import RunLayout


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def plot_curves(run: Path, out: Path, title: str) -> str | None:
    """Train/val loss and val bits per byte against tokens seen, as a PNG; returns its name."""
    rows = read_metrics(run)
    train = [r for r in rows if r["kind"] == "train" and r.get("train/loss") is not None]
    if not train:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tokens_at = {r["step"]: r.get("train/tokens_seen", r["step"]) for r in train}
    val = [r for r in rows if r["kind"] == "val" and r.get("val/loss") is not None]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    ax = axes[0]
    ax.plot([tokens_at[r["step"]] for r in train], [r["train/loss"] for r in train], label="train", lw=1)
    if val:
        ax.plot([tokens_at.get(r["step"], r["step"]) for r in val], [r["val/loss"] for r in val], "o-", label="val")
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("loss (nats / token)")
    ax.set_title(f"{title}: loss")
    ax.legend()
    ax = axes[1]
    bpb = [r for r in val if r.get("val/bits_per_byte") is not None]
    if bpb:
        ax.plot([tokens_at.get(r["step"], r["step"]) for r in bpb], [r["val/bits_per_byte"] for r in bpb], "o-", color="C2")
        ax.set_ylabel("val bits / byte")
    else:
        ax.plot([tokens_at[r["step"]] for r in train], [r["train/lr"] for r in train], color="C3")
        ax.set_ylabel("learning rate")
    ax.set_xlabel("tokens seen")
    ax.set_title(f"{title}: {'bits per byte' if bpb else 'learning rate'}")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out.name


def _throughput(run: Path) -> tuple[float, float]:
    rows = [r for r in read_metrics(run) if r["kind"] == "train" and r.get("train/tokens_per_s")]
    if not rows:
        return float("nan"), float("nan")
    tail = rows[len(rows) // 4 :] or rows  # skip the first quarter (compilation, warm-up)
    return statistics.median(r["train/tokens_per_s"] for r in tail), statistics.median(r.get("train/mfu", 0) for r in tail)


def _split_sentence(split: dict) -> str:
    """How the corpus was split, in French, for the report."""
    chars = split.get("characters", {})
    n_train, n_val = len(split["train"]), len(split["val"])
    if split.get("mode") == "tail":
        return (f"Val : la fin ({split['val_fraction']:.0%} des caractères) de {n_val} document(s) sur {n_train}, "
                f"soit {chars.get('val', 0):,} caractères (train {chars.get('train', 0):,}) — trop peu de documents "
                f"pour en réserver des entiers.")
    if split.get("mode") == "none":
        return f"Train {n_train} documents, pas de val (`corpus.val_fraction` = 0)."
    return f"Train {n_train} documents, val {n_val}."


def write_report(run: str | Path) -> Path:
    run = Path(run)
    layout = RunLayout(run)
    if not run.is_dir():
        raise CausetteError(f"{run}: no such run directory")
    lines = [f"# Rapport du run `{run.name}`", ""]

    manifest = _json(layout.corpus_manifest)
    if manifest:
        d = manifest["documents"]
        drops = ", ".join(f"{k} {v}" for k, v in d["dropped"].items() if v) or "aucun"
        lines += ["## Corpus", "",
                  f"{d['kept']:,} documents gardés sur {d['seen']:,} vus (écartés : {drops}) ; "
                  f"{manifest['characters']['kept']:,} caractères, {manifest['bytes']['kept']:,} octets ; "
                  f"{_split_sentence(manifest['split'])}", "",
                  "| genre | documents | caractères |", "|---|---:|---:|"]
        lines += [f"| {k} | {v['documents']:,} | {v['characters']:,} |" for k, v in manifest["by_kind"].items()]
        lines.append("")

    meta = _json(layout.data_meta)
    tok = _json(layout.tokenizer_file)
    if tok or meta:
        lines += ["## Tokeniseur et données", ""]
        if tok:
            lines.append(f"BPE octet par octet de {tok.get('vocab_size', '?'):,} tokens, motif `{tok.get('pattern_name', '?')}`.")
        if meta:
            for split, s in meta["splits"].items():
                lines.append(f"- {split} : {s['tokens']:,} tokens pour {s['bytes']:,} octets "
                             f"({s['bytes'] / max(s['tokens'], 1):.2f} octets par token), {s['documents']} documents")
        lines.append("")

    from causette.checkpoint.steps import find_checkpoint, list_checkpoints, read_state

    ckpts = list_checkpoints(layout.checkpoints)
    if ckpts:
        ck = find_checkpoint(run, warn=lambda s: None)
        state = read_state(ck)
        cfg = state.get("config", {})
        m = cfg.get("model", {})
        from causette.config import from_dict
        from causette.model.config import ModelConfig
        from causette.model.counting import count_params

        counts = count_params(from_dict(ModelConfig, m)) if m else None
        tps, mfu = _throughput(run)
        val = state.get("val") or {}
        lines += ["## Pré-entraînement", ""]
        if counts:
            lines.append(f"Modèle : {counts.total / 1e6:.2f} M de paramètres ({counts.non_embedding / 1e6:.2f} M hors "
                         f"embeddings), {m['n_layer']} couches × {m['n_embd']}, contexte {m['block_size']}, "
                         f"positions {m['pos']}, {m['norm']}, MLP {m['mlp']}.")
        lines.append(f"{state['step']:,} pas, {state.get('tokens_seen', 0):,} tokens vus ; débit médian "
                     f"{tps:,.0f} tokens/s, MFU {100 * mfu:.1f} %.")
        if val:
            uni = state.get("unigram_bits_per_byte")
            lines.append(f"Validation : perte {val.get('loss', float('nan')):.3f} nats/token, perplexité "
                         f"{val.get('perplexity', float('nan')):.1f}, **{val.get('bits_per_byte', float('nan')):.3f} bits par octet**"
                         + (f" (modèle unigramme : {uni:.3f})." if uni else "."))
        png = plot_curves(run, layout.report_dir / "pretrain.png", "pretraining")
        if png:
            lines += ["", f"![courbes du pré-entraînement](report/{png})"]
        lines.append("")

    sft_eval = _json(layout.sft.eval_json)
    if sft_eval:
        from causette.sft.metrics import eval_table

        lines += ["## Affinage conversationnel (SFT)", "",
                  f"{sft_eval.get('steps', '?')} pas à partir de `{sft_eval.get('base', '?')}`"
                  + (f", LoRA r={sft_eval['lora']['r']}" if sft_eval.get("lora", {}).get("r") else ", tous les poids") + ".",
                  "", "```", *eval_table(sft_eval), "```"]
        png = plot_curves(layout.sft.root, layout.report_dir / "sft.png", "SFT")
        if png:
            lines += ["", f"![courbes du SFT](report/{png})"]
        lines.append("")

    ev = _json(layout.eval_json)
    if ev:
        lines += ["## Évaluation et exemples", ""]
        for key, label in (("base", "modèle de base"), ("chat", "modèle conversationnel")):
            part = ev.get(key) or {}
            if "text" in part:
                t = part["text"]
                lines.append(f"- {label} sur le val : {t['bits_per_byte']:.3f} bits par octet, perplexité {t['perplexity']:.1f}")
        base_samples = (ev.get("base") or {}).get("samples") or []
        if base_samples:
            lines += ["", "Continuations du modèle de base :", ""]
            lines += [f"> {s.replace(chr(10), ' ⏎ ')}" + "\n" for s in base_samples]
        chat = (ev.get("chat") or {}).get("chat") or []
        if chat:
            lines += ["", "Réponses du modèle conversationnel :", ""]
            lines += [f"- **{q}** — {a}" for q, a in chat]
        lines.append("")

    out = layout.report
    with atomic_write(out) as f:
        f.write("\n".join(lines).rstrip() + "\n")
    return out
