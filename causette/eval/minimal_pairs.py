"""Minimal pairs: two sentences that differ in one grammatical point, read from BLiMP-style files.

A pairs file is JSON Lines, one pair a line (plain or ``.gz``)::

    {"sentence_good": "Les enfants jouent.", "sentence_bad": "Les enfants joue.", "phenomenon": "subject_verb_number"}

The group a pair is counted in is its ``phenomenon``; BLiMP's own files have ``UID`` (the
paradigm) and ``field`` instead, used in that order; a pair with none of them is in the group
``all``. Other fields (the suite's provenance: ``source``, ``lemma``…) are kept, never needed.

Every line is checked as it is read, and the first bad one stops the reading with one line
naming ``file:line`` (a line that is not UTF-8 or not JSON, a missing or non-string field, an
empty sentence, two identical sentences); a file without any pair is refused too. Lone
surrogates (``"\\ud800"``) are repaired (:func:`~causette.utils.text.valid_unicode`).

This module also holds what is counted from the scores: a pair *passes* when its grammatical
sentence gets the strictly higher log-probability (a tie fails), accuracy per group with its 95 %
Wilson interval (:func:`summarize`), and the labels a learner reads for the suite's phenomena.
"""

from __future__ import annotations

import gzip
import json
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from causette.errors import CausetteError
from causette.utils.lang import tr
from causette.utils.text import printable_path, valid_unicode

GROUP_FIELDS = ("phenomenon", "UID", "field")  # the first one present names a pair's group
DEFAULT_GROUP = "all"
Z95 = 1.959963984540054  # the standard normal quantile of 0.975

# The phenomena of the built-in suite (GRAMMAR_SUITE, causette/utils/paths.py): id → (French, English).
# An id that is not here is shown as it is.
LABELS: dict[str, tuple[str, str]] = {
    "subject_verb_number": ("accord sujet–verbe en nombre, sujet juste avant",
                            "subject–verb number agreement, subject just before"),
    "subject_verb_number_distant": ("accord sujet–verbe en nombre, mots intercalés",
                                    "subject–verb number agreement, words in between"),
    "subject_verb_number_relative": ("accord sujet–verbe en nombre, après « qui »",
                                     "subject–verb number agreement, after « qui »"),
    "subject_verb_person": ("accord sujet–verbe en personne", "subject–verb person agreement"),
    "determiner_noun_gender": ("genre du déterminant", "determiner–noun gender agreement"),
    "determiner_noun_number": ("nombre du déterminant", "determiner–noun number agreement"),
    "adjective_noun_gender": ("genre de l'adjectif épithète", "attributive adjective gender agreement"),
    "adjective_noun_number": ("nombre de l'adjectif épithète", "attributive adjective number agreement"),
    "etre_predicate_gender": ("genre de l'attribut ou du participe avec « être »",
                              "gender of the predicate or participle with « être »"),
    "etre_predicate_number": ("nombre de l'attribut ou du participe avec « être »",
                              "number of the predicate or participle with « être »"),
    "participle_avoir": ("participe passé avec « avoir »", "past participle with « avoir »"),
}


@dataclass(frozen=True)
class MinimalPair:
    good: str
    bad: str
    phenomenon: str = DEFAULT_GROUP
    where: str = field(default="", compare=False)  # "file:line", for messages
    extra: dict = field(default_factory=dict, compare=False, repr=False)  # the line's other fields


def phenomenon_label(phenomenon: str) -> str:
    """What a learner reads for a phenomenon id, in the current language (the id itself if unknown;
    the group of pairs that name none, ``all``, is « (sans phénomène) »)."""
    if phenomenon == DEFAULT_GROUP:
        return tr("(sans phénomène)", "(no phenomenon)")
    if phenomenon not in LABELS:
        return phenomenon
    return tr(*LABELS[phenomenon])


def display_order(phenomenon: str) -> tuple:
    """Sort key: the suite's phenomena in the order of ``LABELS``, then any other id alphabetically."""
    ids = list(LABELS)
    return (0, ids.index(phenomenon), "") if phenomenon in LABELS else (1, 0, phenomenon)


def _lines(path: Path) -> Iterable[tuple[int, bytes]]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            yield from enumerate(f, 1)
    except (OSError, EOFError) as e:  # a truncated or corrupt .gz
        raise CausetteError(f"{printable_path(path)}: cannot read this file ({e})") from None


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__)


def parse_pair(record: object, where: str) -> MinimalPair:
    """The pair of one decoded JSON line; CausetteError ``where: what is wrong`` otherwise."""
    if not isinstance(record, dict):
        raise CausetteError(f"{where}: expected a JSON object with sentence_good and sentence_bad")
    sentences = []
    for key in ("sentence_good", "sentence_bad"):
        if key not in record:
            raise CausetteError(f"{where}: no {key!r} field")
        value = record[key]
        if not isinstance(value, str):
            raise CausetteError(f"{where}: {key} must be a string, not {_json_kind(value)}")
        if not value.strip():
            raise CausetteError(f"{where}: {key} is empty")
        sentences.append(valid_unicode(value))
    if sentences[0] == sentences[1]:
        raise CausetteError(f"{where}: sentence_good and sentence_bad are the same sentence")
    group = DEFAULT_GROUP
    for key in GROUP_FIELDS:
        if key in record:
            value = record[key]
            if not isinstance(value, str) or not value.strip():
                raise CausetteError(f"{where}: {key} must be a non-empty string")
            group = valid_unicode(value.strip())
            break
    extra = {k: v for k, v in record.items() if k not in ("sentence_good", "sentence_bad")}
    return MinimalPair(sentences[0], sentences[1], group, where, extra)


def read_pairs(path: str | Path) -> list[MinimalPair]:
    """Every pair of one file, each line checked (see the module docstring)."""
    path = Path(path)
    shown = printable_path(path)
    if not path.is_file():
        raise CausetteError(f"{shown}: no such file" if not path.exists() else f"{shown}: not a file")
    pairs = []
    for n, raw in _lines(path):
        where = f"{shown}:{n}"
        if n == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
            raw = raw[3:]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise CausetteError(f"{where}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1})") from None
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise CausetteError(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from None
        except (RecursionError, ValueError):  # nested too deeply, a number too long to read
            raise CausetteError(f"{where}: invalid JSON (too deep or a number too long)") from None
        pairs.append(parse_pair(record, where))
    if not pairs:
        raise CausetteError(f"{shown}: no minimal pair in this file (one JSON object a line: "
                            "sentence_good, sentence_bad, phenomenon)")
    return pairs


def read_pair_files(paths: Iterable[str | Path]) -> list[MinimalPair]:
    """The pairs of several files, in order."""
    return [pair for path in paths for pair in read_pairs(path)]


def fixed_subset(pairs: list[MinimalPair], n: int = 300, seed: int = 0) -> list[MinimalPair]:
    """A reproducible subset of about ``n`` pairs, the same share of each phenomenon (at least one
    of each): the pairs the training loop scores at each evaluation. All of them if ``n`` ≥ their number."""
    if n >= len(pairs):
        return list(pairs)
    groups: dict[str, list[MinimalPair]] = {}
    for p in pairs:
        groups.setdefault(p.phenomenon, []).append(p)
    rng = random.Random(seed)
    out = []
    for name in sorted(groups):
        members = groups[name]
        k = max(1, round(n * len(members) / len(pairs)))
        out += rng.sample(members, min(k, len(members)))
    return out


def wilson_interval(correct: int, total: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``correct / total`` (95 % by default).

    Unlike the textbook ``p ± z·sqrt(p(1-p)/n)``, it stays inside [0, 1] and is not empty at
    0 % or 100 %, which small groups of pairs reach. NaN, NaN when ``total`` is 0.
    """
    if total <= 0:
        return math.nan, math.nan
    p = correct / total
    z2 = z * z
    denominator = 1 + z2 / total
    centre = (p + z2 / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / denominator
    low = 0.0 if correct == 0 else max(0.0, centre - half)  # exact ends (no 1e-17 from rounding)
    high = 1.0 if correct == total else min(1.0, centre + half)
    return low, high


def group_counts(phenomena: Iterable[str], passed: Iterable[bool],
                 counted: Iterable[bool] | None = None) -> dict[str, tuple[int, int]]:
    """``{phenomenon: (correct, total)}``, phenomena in sorted order. ``counted``: False for a
    pair left out (its phenomenon still gets a row, maybe ``(0, 0)``)."""
    counts: dict[str, list[int]] = {}
    flags = counted if counted is not None else iter(lambda: True, None)
    for name, ok, keep in zip(phenomena, passed, flags):
        c = counts.setdefault(name, [0, 0])
        if keep:
            c[0] += bool(ok)
            c[1] += 1
    return {name: (c[0], c[1]) for name, c in sorted(counts.items())}


def accuracy_entry(correct: int, total: int) -> dict:
    """``{"correct", "total", "accuracy", "ci95": [low, high]}`` (JSON-ready; accuracy None when total is 0)."""
    low, high = wilson_interval(correct, total)
    return {
        "correct": correct,
        "total": total,
        "accuracy": correct / total if total else None,
        "ci95": [low, high] if total else None,
    }


def summarize(counts: dict[str, tuple[int, int]]) -> dict:
    """Accuracy overall and per phenomenon, with Wilson intervals, from :func:`group_counts`."""
    correct = sum(c for c, _ in counts.values())
    total = sum(t for _, t in counts.values())
    return {
        "overall": accuracy_entry(correct, total),
        "phenomena": {name: accuracy_entry(c, t) for name, (c, t) in counts.items()},
    }
