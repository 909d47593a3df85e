"""``causette eval --pairs FILE… / --suite grammaire``: a checkpoint's grammar, measured by minimal pairs.

    causette eval --checkpoint runs/demo --suite grammaire         # the built-in French suite
    causette eval --checkpoint runs/demo --pairs mes_paires.jsonl  # any BLiMP-style file(s)

The sentences are cleaned with the run's own corpus settings (as ``eval --data`` cleans text),
scored by :mod:`causette.eval.sentence_scores`, counted per phenomenon with Wilson intervals
(:mod:`causette.eval.minimal_pairs`). When the checkpoint belongs to a run whose corpus is on
disk, the suite's sentences found verbatim in its train split are counted (:mod:`causette.eval.overlap`):
a pair the model read during training measures its memory, not its grammar.

What is printed is for the learner: French by default, English with ``--lang en``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from causette.corpus.store import iter_texts
from causette.data.loader import open_tokens
from causette.data.prepare import read_meta
from causette.errors import CausetteError
from causette.eval.evaluate import DEFAULT_SETTINGS
from causette.eval.minimal_pairs import display_order, phenomenon_label, read_pair_files, summarize
from causette.eval.overlap import sentences_in_texts
from causette.eval.sentence_scores import encode_pairs, score_encoded, unigram_scores
from causette.utils.lang import num, tr
from causette.utils.paths import GRAMMAR_SUITE, RunLayout

SUITES = {"grammaire": GRAMMAR_SUITE}


def suite_file(name: str) -> Path:
    """The file of a built-in suite; a one-line error when it is not installed."""
    if name not in SUITES:
        raise CausetteError(f"unknown suite {name!r}: choose one of {', '.join(SUITES)}")
    path = SUITES[name]
    if not path.is_file():
        raise CausetteError(f"{path}: the built-in suite {name!r} is missing from this installation "
                            "(reinstall Causette, or score your own pairs with --pairs FILE)")
    return path


def pair_sources(pairs: list[str] | None, suites: list[str] | None) -> list[Path]:
    """The files to read: the built-in suites first, then the ``--pairs`` files."""
    return [suite_file(s) for s in dict.fromkeys(suites or [])] + [Path(p) for p in pairs or []]


def training_overlap(run: Path | None, texts: list[str], good, bad) -> dict | None:
    """How many of the (cleaned) ``texts`` occur verbatim in the train split of ``run``'s corpus,
    and how many pairs (``good``/``bad``: indices into ``texts``) have one; None without a corpus."""
    if run is None:
        return None
    layout = RunLayout(run)
    if not layout.corpus_manifest.is_file() or not (layout.corpus / "docs.jsonl.gz").is_file():
        return None

    found = sentences_in_texts(texts, iter_texts(layout.corpus, "train"))
    hit = [t in found for t in texts]
    pairs = sum(1 for g, b in zip(good, bad) if hit[g] or hit[b])
    return {"corpus": str(layout.corpus), "split": "train", "sentences": len(found), "of": len(texts),
            "pairs": pairs, "examples": sorted(found)[:5]}


def evaluate_grammar(model, tokenizer, sources: list[Path], normalize_cfg=None, normalize_from: str = "",
                     run: Path | None = None, device=None, pairs: list | None = None) -> dict:
    """Everything the grammar part of ``causette eval`` prints, as a JSON-ready dict.

    ``pairs``: the pairs of ``sources`` if already read (:func:`read_pair_files`)."""
    pairs = read_pair_files(sources) if pairs is None else pairs
    start = time.perf_counter()
    encoded = encode_pairs(tokenizer, pairs, model.cfg.block_size, normalize_cfg)
    scores = score_encoded(model, encoded, tokenizer.bos_id, device)
    seconds = time.perf_counter() - start
    kept = encoded.kept
    out = {
        "sources": [str(s) for s in sources],
        "normalize_from": normalize_from if normalize_cfg is not None else "",
        "pairs": len(pairs),
        "scored": int(kept.sum()),
        "too_long": int(encoded.too_long.sum()),
        "context": model.cfg.block_size,
        "ties": int((scores.good[kept] == scores.bad[kept]).sum()),
        "seconds": round(seconds, 3),
        **summarize(scores.counts()),
    }
    out["overlap"] = training_overlap(run, encoded.texts, encoded.good, encoded.bad)
    counts = train_token_counts(run, tokenizer.vocab_size)
    out["unigram"] = summarize(unigram_scores(encoded, counts).counts()) if counts is not None else None
    return out


def train_token_counts(run: Path | None, vocab_size: int):
    """How often each token occurs in ``run``'s train tokens (``data/train.bin``), for the unigram
    baseline; None without token data of this vocabulary."""
    if run is None:
        return None
    layout = RunLayout(run)
    try:
        meta = read_meta(layout.data)
        if int(meta["vocab_size"]) != vocab_size:
            return None
        tokens = open_tokens(layout.data / "train.bin", meta["dtype"])
    except (CausetteError, OSError, KeyError, ValueError):
        return None
    return np.bincount(np.asarray(tokens), minlength=vocab_size)[:vocab_size]


def _percent(value: float) -> str:
    return num(100 * value, ".1f")


def format_grammar(result: dict) -> list[str]:
    """The learner's table: accuracy per phenomenon and overall, 95 % interval, number of pairs."""
    names = ", ".join(Path(s).name for s in result["sources"])
    source = result.get("normalize_from", "")
    if not source:
        cleaned = tr("texte tel quel", "text as given")
    elif source == DEFAULT_SETTINGS:  # no record of the model's corpus (an imported model)
        cleaned = tr("texte nettoyé avec les réglages de corpus par défaut", "text cleaned with the default corpus settings")
    else:
        cleaned = tr(f"texte nettoyé comme le corpus du modèle ({source})", f"text cleaned like the model's corpus ({source})")
    lines = [tr(f"grammaire : {num(result['pairs'], ',')} paires minimales ({names}), {cleaned}, "
                f"{num(result['seconds'], '.1f')} s",
                f"grammar: {num(result['pairs'], ',')} minimal pairs ({names}), {cleaned}, "
                f"{num(result['seconds'], '.1f')} s")]
    rows = [(phenomenon_label(name), result["phenomena"][name]) for name in sorted(result["phenomena"], key=display_order)]
    if len(rows) != 1:
        rows.append((tr("ensemble", "overall"), result["overall"]))
    width = max([len(label) for label, _ in rows] + [12])
    header = (tr("phénomène", "phenomenon").ljust(width), tr("paires", "pairs").rjust(7),
              tr("réussite", "accuracy").rjust(9), tr("IC 95 %", "95% CI").rjust(15))
    lines.append("  " + "  ".join(header))
    for label, e in rows:
        if e["total"]:
            acc = _percent(e["accuracy"]) + tr(" %", "%")
            low, high = e["ci95"]
            ci = f"{_percent(low)} – {_percent(high)}" + tr(" %", "%")
        else:
            acc, ci = "—", "—"
        lines.append("  " + "  ".join((label.ljust(width), num(e["total"], ",").rjust(7), acc.rjust(9),
                                       ci.rjust(15))))
    ties = result.get("ties", 0)
    lines.append(tr(f"  hasard : 50 %. Une paire est réussie quand la phrase correcte a la log-probabilité la plus "
                    f"haute ; une égalité compte comme un échec ({num(ties, ',')} égalité{'s' if ties > 1 else ''}).",
                    f"  chance: 50%. A pair passes when the correct sentence has the higher log-probability; "
                    f"a tie counts as a failure ({num(ties, ',')} tie{'s' if ties != 1 else ''})."))
    uni = (result.get("unigram") or {}).get("overall") or {}
    if uni.get("total"):
        lines.append(tr(f"  modèle unigramme (la fréquence de chaque token, rien d'autre) : {_percent(uni['accuracy'])} % ; "
                        "qui apprend la grammaire doit faire mieux que lui, pas seulement mieux que le hasard.",
                        f"  unigram model (each token's frequency, nothing else): {_percent(uni['accuracy'])}%; "
                        "a model that learns grammar must beat it, not only chance."))
    if result.get("too_long"):
        n = result["too_long"]
        lines.append(tr(f"  {num(n, ',')} paire{'s' if n > 1 else ''} non comptée{'s' if n > 1 else ''} : une phrase "
                        f"dépasse le contexte du modèle ({num(result['context'], ',')} tokens).",
                        f"  {num(n, ',')} pair{'s' if n != 1 else ''} not counted: a sentence is longer than the "
                        f"model's context ({num(result['context'], ',')} tokens)."))
    lines += format_overlap(result.get("overlap"))
    return lines


def format_overlap(overlap: dict | None) -> list[str]:
    if overlap is None:
        return [tr("  recouvrement avec le corpus d'entraînement : non mesuré (pas de corpus de run sur le disque).",
                   "  overlap with the training corpus: not measured (no run corpus on disk).")]
    n, of, pairs = overlap["sentences"], overlap["of"], overlap["pairs"]
    where = overlap["corpus"]
    if n == 0:
        return [tr(f"  recouvrement : aucune des {num(of, ',')} phrases ne figure telle quelle dans le corpus "
                   f"d'entraînement ({where}, partie train).",
                   f"  overlap: none of the {num(of, ',')} sentences appears verbatim in the training corpus "
                   f"({where}, train split).")]
    plural = n > 1
    return [
        tr(f"  recouvrement : {num(n, ',')} des {num(of, ',')} phrases figure{'nt' if plural else ''} "
           f"telle{'s' if plural else ''} quelle{'s' if plural else ''} dans le corpus d'entraînement "
           f"({where}, partie train).",
           f"  overlap: {num(n, ',')} of the {num(of, ',')} sentences appear{'' if plural else 's'} verbatim in the "
           f"training corpus ({where}, train split)."),
        tr(f"  attention : {num(pairs, ',')} paire{'s' if pairs > 1 else ''} {'ont' if pairs > 1 else 'a'} une phrase "
           f"lue pendant l'entraînement ; {'elles mesurent' if pairs > 1 else 'elle mesure'} la mémoire du modèle, "
           "pas sa grammaire.",
           f"  warning: {num(pairs, ',')} pair{'s' if pairs != 1 else ''} {'have' if pairs != 1 else 'has'} a sentence "
           f"read during training; {'they measure' if pairs != 1 else 'it measures'} the model's memory, not its grammar."),
    ]
