"""The language Causette speaks to a learner: French by default, English one switch away.

What a learner reads (``python -m causette.explain``, the report, the chat prompts and notes)
is written twice, side by side: ``tr("vous> ", "you> ")`` returns the text in the current
language. Code, identifiers, logs and most errors stay English.

The language is the first of these that is set:

1. :func:`set_language` — what the ``--lang fr|en`` option of ``explain``, ``chat``, ``report``
   and ``run`` does;
2. the environment variable ``CAUSETTE_LANG`` (``fr`` or ``en``);
3. the locale, read as the C library does: ``LC_ALL``, then ``LC_MESSAGES``, then ``LANG`` (the
   first that is not empty); English if it starts with ``en`` (``en_US.UTF-8``);
4. French (also for ``C.UTF-8``, ``POSIX`` or any other locale).

So ``CAUSETTE_LANG=fr`` keeps French on a machine whose locale is English.

Numbers follow the language (:func:`num`): ``3 977 679`` and ``3,60`` in French (narrow
no-break space U+202F between thousands, decimal comma, no-break space before ``%``),
``3,977,679`` and ``3.60`` in English.
"""

from __future__ import annotations

import contextlib
import os
import re

LANGUAGES = ("fr", "en")
NNBSP = "\u202f"  # narrow no-break space: thousands, and before ; ? ! in French
NBSP = "\u00a0"  # no-break space: before : and %, inside « »

_chosen: str | None = None  # set by set_language (a command's --lang); None: read the environment


def _check(lang: str) -> str:
    lang = lang.strip().lower()
    if lang not in LANGUAGES:
        raise ValueError(f"language must be fr or en, not {lang!r}")
    return lang


def language() -> str:
    """``"fr"`` or ``"en"``, by the rule of the module docstring."""
    if _chosen:
        return _chosen
    env = os.environ.get("CAUSETTE_LANG", "").strip().lower()
    if env[:2] in LANGUAGES:  # anything else (a typo) is ignored
        return env[:2]
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var, "").strip()
        if value:
            return "en" if value.lower().startswith("en") else "fr"
    return "fr"


def set_language(lang: str | None) -> None:
    """Choose the language (``None``: back to the environment's)."""
    global _chosen
    _chosen = _check(lang) if lang else None


@contextlib.contextmanager
def using(lang: str):
    """``with using("en"): ...``: the language inside the block, restored after."""
    global _chosen
    before = _chosen
    set_language(lang)
    try:
        yield
    finally:
        _chosen = before


def english() -> bool:
    return language() == "en"


def tr(fr: str, en: str) -> str:
    """The text in the current language (the French one with French spacing, :func:`typography`)."""
    return en if english() else typography(fr)


def typography(text: str) -> str:
    """French spacing: the space before ``:`` and ``%`` and inside « » becomes no-break (U+00A0),
    the one before ``; ? !`` narrow no-break (U+202F), so that they never start a line."""
    text = re.sub(r" ([:%])", NBSP + r"\1", text)
    text = re.sub(r" ([;?!])", NNBSP + r"\1", text)
    return text.replace("« ", "«" + NBSP).replace(" »", NBSP + "»")


def localize(text: str) -> str:
    """An English-formatted number (``"3,977,679"``, ``"-0.25"``, ``"24.8%"``) in the current language."""
    if english():
        return text
    text = text.replace(",", NNBSP).replace(".", ",")
    return re.sub(r"(?<=\d)%", NBSP + "%", text)


def num(value, spec: str = "") -> str:
    """``format(value, spec)`` the learner's way: ``num(3977679, ",")`` → ``"3 977 679"`` in French."""
    return localize(format(value, spec))


def add_lang_argument(parser) -> None:
    """The ``--lang`` option of a command that speaks to the learner."""
    parser.add_argument("--lang", choices=LANGUAGES, default=None,
                        help="language of what the learner reads: fr (default) or en; "
                             "else CAUSETTE_LANG, then LANG starting with 'en' gives English")


def lang_from_argv(argv: list[str]) -> str | None:
    """The value of ``--lang`` in ``argv``, read before the parser exists (so that ``--help`` is translated)."""
    for i, a in enumerate(argv):
        if a == "--":
            break
        if a == "--lang" and i + 1 < len(argv):
            return argv[i + 1] if argv[i + 1] in LANGUAGES else None
        if a.startswith("--lang="):
            value = a.split("=", 1)[1]
            return value if value in LANGUAGES else None
    return None
