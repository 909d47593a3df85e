"""French-aware text cleaning: ``normalize(text, cfg, kind)``.

The same word should reach the tokenizer as the same bytes. Texts from different sources
spell "l'été" with a straight or a curly apostrophe, "é" as one or two code points, "mot ?"
with a plain, a non-breaking or a narrow non-breaking space; books from Project Gutenberg
are cut into lines of ~70 columns with words hyphenated across lines. Each rule below is one
small function, switched on or off in :class:`~causette.corpus.config.NormalizeConfig`:

1. line breaks: ``\\r\\n``, ``\\r``, U+2028/U+2029 and the other characters Python treats as
   line breaks (vertical tab, form feed, U+001C-U+001E) become ``\\n`` (always on);
2. invisible characters and control characters removed (``remove_control``);
3. Unicode NFC (``nfc``);
4. exotic spaces and tabs unified (``exotic_spaces``: plain space or NBSP; always on);
5. typographic apostrophes → ``'`` (``apostrophes``);
6. runs of spaces collapsed and trailing spaces removed (``strip_lines``);
7. hard-wrapped lines re-joined, with de-hyphenation (``rejoin_lines``, ``dehyphenate``);
8. runs of blank lines limited to ``max_blank_lines``, and the document stripped of leading
   and trailing blank lines (``strip_lines``).

What is never touched: letters and their accents (é è ê ë à â ç î ï ô û ù ü ÿ œ æ and
capitals), French punctuation (« » — – …): we never apply NFKC, which would turn "…" into
"..." and "œ" stays a letter of its own.

``normalize`` is idempotent: ``normalize(normalize(x)) == normalize(x)``. Steps 1-6 each remove
characters that no later step brings back, and steps 7-8 are repeated until nothing changes.
"""

from __future__ import annotations

import re
import unicodedata

from causette.corpus.config import NormalizeConfig

# Kinds whose line breaks are meaningful (verse, speeches, code): never re-joined.
LINE_KINDS = frozenset({"theatre", "poetry", "verse", "song", "dialogue", "code"})

# -- 1. line breaks ---------------------------------------------------------------------------
_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029\x0b\x0c\x1c-\x1e]")


def unify_line_breaks(text: str) -> str:
    """Every line break becomes ``\\n``: Windows ``\\r\\n``, old Mac ``\\r``, Unicode U+2028
    (line separator) and U+2029 (paragraph separator), and vertical tab, form feed and
    U+001C-U+001E (Python's ``str.splitlines`` treats those as line breaks too: removing
    them as control characters could glue two words together)."""
    return _LINE_BREAKS.sub("\n", text)


# -- 2. invisible and control characters ------------------------------------------------------
# Zero-width space/non-joiner/joiner, word joiner, BOM, soft hyphen, left-to-right and
# right-to-left marks and embeddings: invisible, they only split words into different tokens.
# (Removing the zero-width joiner also breaks emoji sequences such as family emoji into their
# parts: acceptable for a French text corpus.)
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f\u202a-\u202e\u2066-\u2069"
# C0 controls except tab (step 4 handles it) and \n; DEL; the C1 controls U+0080-U+009F.
_CONTROL = re.compile(f"[{_INVISIBLE}\x00-\x08\x0e-\x1f\x7f\x80-\x9f]")


def _cp1252_repair(char: str) -> str:
    """A C1 control that CP1252 maps to a printable character ("\\x9c" → "œ"), else nothing."""
    try:
        return bytes([ord(char)]).decode("cp1252") if "\x80" <= char <= "\x9f" else ""
    except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D: undefined in CP1252
        return ""


def remove_invisible(text: str) -> str:
    """Remove zero-width characters, soft hyphens, bidi marks and control characters (not ``\\n``).

    C1 controls (U+0080-U+009F) are never meant as controls in French text: they are the
    trace of a CP1252 file decoded as Latin-1 ("c\\x9cur" for "cœur", "\\x92" for "’"). They
    are repaired to the CP1252 character when there is one, and removed otherwise.
    """
    return _CONTROL.sub(lambda m: _cp1252_repair(m.group()), text)


# -- 3. NFC --------------------------------------------------------------------------------------
def to_nfc(text: str) -> str:
    """Unicode NFC: "e" + combining acute (two code points) becomes "é" (one), as most
    French text is already written; the same word then always gets the same tokens."""
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


# -- 4. spaces ------------------------------------------------------------------------------------
# Every Unicode space separator (category Zs) other than the plain space: NBSP U+00A0, Ogham
# space mark U+1680, en/em/three-per-em/.../figure/punctuation/thin/hair spaces U+2000-U+200A,
# narrow NBSP U+202F (French "mot ?"), medium mathematical space U+205F, ideographic space U+3000.
EXOTIC_SPACES = "\u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"
_TO_SPACE = str.maketrans({c: " " for c in EXOTIC_SPACES + "\t"})
_TO_NBSP = str.maketrans({**{c: "\u00a0" for c in EXOTIC_SPACES}, "\t": " "})


def unify_spaces(text: str, mode: str = "space") -> str:
    """Map every exotic space to one form: a plain space (``"space"``) or NBSP (``"nbsp"``).

    Tabs always become plain spaces: they separate words, they are not French typography.
    Line breaks are not spaces here and are never touched.
    """
    return text.translate(_TO_NBSP if mode == "nbsp" else _TO_SPACE)


# -- 5. apostrophes -------------------------------------------------------------------------------
# Always an apostrophe or a single quote in French text: right and left single quotation marks
# (’ ‘), single high-reversed-9 (‛), modifier letter apostrophe (ʼ), fullwidth apostrophe (＇).
_APOSTROPHES = re.compile("[\u2019\u2018\u201b\u02bc\uff07]")
# Used *as* apostrophes by sloppy typing or OCR, but with meanings of their own elsewhere
# (prime ′ for minutes and feet, acute ´ and grave ` accents): mapped only between two letters,
# as in "l´homme", never in "5′".
_APOSTROPHES_BETWEEN_LETTERS = re.compile(r"(?<=[^\W\d_])[\u2032\u00b4`](?=[^\W\d_])")


def unify_apostrophes(text: str) -> str:
    """Typographic apostrophes and single quotes → ``'`` ("l’été" and "l'été" are one word).

    Double quotes (« » “ ”) are left alone: they are not apostrophes.
    """
    return _APOSTROPHES_BETWEEN_LETTERS.sub("'", _APOSTROPHES.sub("'", text))


# -- 6. spaces inside lines ---------------------------------------------------------------------
_SPACE_RUN = re.compile("[ \u00a0]{2,}")
_TRAILING = re.compile("[ \u00a0]+$", re.MULTILINE)


def tidy_spaces(text: str) -> str:
    """Collapse runs of spaces to one and remove spaces at line ends.

    Runs are collapsed everywhere, line starts included (an indentation becomes one space):
    simple and predictable; indentation carries no meaning the model needs. A run that holds
    a non-breaking space becomes one NBSP (with ``exotic_spaces: nbsp`` it marks French
    typographic spacing, which we keep).
    """
    text = _SPACE_RUN.sub(lambda m: "\u00a0" if "\u00a0" in m.group() else " ", text)
    return _TRAILING.sub("", text)


# -- 7. hard-wrapped lines ----------------------------------------------------------------------
# A document is taken as hard-wrapped when (see wrap_width):
# - its line width W (95th percentile of the lengths of non-empty lines) is 50 to 100 columns;
# - among the lines at least W/2 long that are followed by a line of the same paragraph, at
#   least 60 % (and at least 2) are "full": the next word would not have fitted (_is_full);
# - at least half of those full lines go on with a lower-case letter, as a sentence cut by a
#   wrapper does (classic French verse starts every line with a capital).
MIN_WRAP_WIDTH, MAX_WRAP_WIDTH = 50, 100
MIN_FULL_LINES = 2
MIN_FULL_SHARE = 0.6
MIN_LOWERCASE_SHARE = 0.5

# Lines that start something new, never glued to the line before: dialogue dashes and
# guillemets, list items ("1°", "2.", "a)", "- ", "• ").
_STARTS_UNIT = re.compile(r"^\s*(?:[—–«]|-\s|[•·*]\s|\d+\s*°|\d+[.)]\s|[a-z][.)]\s)")
_HEADING_WORDS = re.compile(
    r"^\s*(?:CHAPITRE|LIVRE|PARTIE|TOME|ACTE|SC[ÈE]NE|ARTICLE|CHAPTER)\b", re.IGNORECASE
)


def _is_heading(line: str) -> bool:
    """A short line in capitals ("CHAPITRE II", "UNE VEILLÉE.") or starting with a heading word."""
    if len(line) > 60:
        return False
    letters = [c for c in line if c.isalpha()]
    return bool(_HEADING_WORDS.match(line)) or (bool(letters) and all(c.isupper() for c in letters))


def _is_full(line: str, following: str, width: int) -> bool:
    """Would the first word of ``following`` have fitted on ``line``? If not, ``line`` is full.

    This is exactly the test a line-wrapping program applies, so a wrapped paragraph has only
    full lines but its last one, while a line that ends early was ended on purpose (a verse,
    a short paragraph, a list item). A line ending in a hyphenated word counts as full when it
    reaches 80 % of the width: the wrapper cut the word where it could.
    """
    words = following.split()
    if not words:
        return False
    if re.search(r"[^\W\d_]-$", line):
        return len(line) >= 0.8 * width
    return len(line) + 1 + len(words[0]) > width


def wrap_width(lines: list[str]) -> int | None:
    """The width at which ``lines`` were hard-wrapped, or ``None`` if they do not look wrapped."""
    lengths = sorted(len(line) for line in lines if line.strip())
    if len(lengths) < MIN_FULL_LINES + 1:
        return None
    width = lengths[int(0.95 * (len(lengths) - 1))]
    if not MIN_WRAP_WIDTH <= width <= MAX_WRAP_WIDTH:
        return None
    pairs = [(a, b) for a, b in zip(lines, lines[1:]) if b.strip() and len(a) >= width / 2]
    full = [(a, b) for a, b in pairs if _is_full(a, b, width)]
    lowercase = sum(b.lstrip()[:1].islower() for _, b in full)
    if (
        len(full) >= MIN_FULL_LINES
        and len(full) >= MIN_FULL_SHARE * len(pairs)
        and lowercase >= MIN_LOWERCASE_SHARE * len(full)
    ):
        return width
    return None


def _should_join(line: str, following: str, width: int) -> bool:
    return (
        bool(line.strip()) and bool(following.strip())
        and _is_full(line, following, width)
        and not _STARTS_UNIT.match(following)
        and not _is_heading(line) and not _is_heading(following)
    )


# De-hyphenation: "exem-\nple" → "exemple", but French compounds and inversions keep their
# hyphen. The hyphen is kept when the part after the break is one of these words...
_SECOND_PARTS = frozenset(
    "être même mêmes t y en à nous vous moi toi dessus dessous dedans dehors delà deçà bas haut "
    "devant derrière uns unes".split()
)
# ... or one of these, under a condition on the part before the break (which tells the
# inversion "dit-il" from a word cut in two, "fu-sil", "cou-leur", "ver-tu", "ce-lui"):
_CONDITIONAL_SECOND_PARTS = {
    "ce": lambda first: first.endswith("t"),  # est-ce, était-ce, fût-ce (not "for-ce")
    "il": lambda first: first.endswith(("t", "d")),  # dit-il, a-t-il, répond-il
    "ils": lambda first: first.endswith(("t", "d")),
    "elle": lambda first: first.endswith(("t", "d")),
    "elles": lambda first: first.endswith(("t", "d")),
    "on": lambda first: first.endswith(("t", "d")),  # dit-on, peut-on
    "je": lambda first: first.endswith(("s", "x", "ai")),  # puis-je, ai-je, veux-je
    "tu": lambda first: first.endswith(("s", "x")),  # as-tu, veux-tu (not "ver-tu")
    "lui": lambda first: first != "ce",  # dis-lui (not "ce-lui")
    "leur": lambda first: first.endswith(("s", "z", "e", "x")),  # dites-leur (not "va-leur")
    "leurs": lambda first: first.endswith(("s", "z", "e", "x")),
    "là": lambda first: first not in ("voi", "ho"),  # celui-là, là-bas (not "voi-là")
    "ci": lambda first: first not in ("voi", "mer", "sou", "ce"),  # celui-ci (not "mer-ci")
}
# ... or when the part before the break is one of these compound-making words ...
_FIRST_PARTS = frozenset(
    "grand grande grands grandes petit petite petits petites arrière après avant demi semi vice "
    "tout quasi nord sud chef pêle belle".split()
)
# ... or when both parts are numbers (dix-sept, quatre-vingts, vingt-et-un is not covered).
_NUMBERS = frozenset(
    "un une deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize "
    "vingt vingts trente quarante cinquante soixante cent cents".split()
)
_WORD = re.compile(r"[^\W\d_]+")


def keeps_hyphen(first: str, second: str) -> bool:
    """Should ``first-`` at a line end and ``second`` on the next line keep their hyphen?

    Yes for French compounds and inversions that this module knows (``peut-être``,
    ``dit-il``, ``a-t-il``, ``est-ce``, ``celui-ci``, ``là-bas``, ``grand-mère``,
    ``dix-sept``), and when the second part starts with a capital (``Jean-Pierre``,
    ``Saint-Denis``). Otherwise the hyphen was the wrapper's and goes away (``exem-ple``).

    Limits: compounds outside the lists lose their hyphen (``couvre-feu`` → ``couvrefeu``),
    and a word cut right before one of the listed parts keeps a hyphen it should not have
    (rare: printers avoid carrying over fewer than three letters).
    """
    if second[:1].isupper() and not second.isupper():
        return True
    first, second = first.lower(), second.lower()
    if second in _SECOND_PARTS or first in _FIRST_PARTS:
        return True
    condition = _CONDITIONAL_SECOND_PARTS.get(second)
    if condition is not None and condition(first):
        return True
    return first in _NUMBERS and second in _NUMBERS


def _join(left: str, right: str, dehyphenate: bool) -> str:
    """Glue two lines of a paragraph: with a space, or without the hyphen of a cut word."""
    right = right.lstrip(" \u00a0")
    hyphenated = re.search(r"([^\W\d_]+)-$", left)
    second = _WORD.match(right)
    if hyphenated and second:
        if dehyphenate and not keeps_hyphen(hyphenated.group(1), second.group()):
            return to_nfc(left[:-1] + right)
        return to_nfc(left + right)  # a real hyphen: keep it, no space after it
    return left + " " + right


def rejoin_lines(text: str, dehyphenate: bool = True) -> str:
    """Re-join the lines of hard-wrapped paragraphs; unchanged if the text does not look wrapped.

    Blank lines separate paragraphs and are kept. Within a paragraph, a line is glued to the
    next only when it is full (:func:`_is_full`), the next one does not start a dialogue
    turn or a list item, and neither is a heading: a conservative rule, since wrongly gluing
    verse or dialogue is worse than leaving a few wrapped lines.
    """
    lines = text.split("\n")
    width = wrap_width(lines)
    if width is None:
        return text
    out: list[str] = []
    previous: str | None = None  # the previous line as it was, before any joining
    for line in lines:
        if previous is not None and out and _should_join(previous, line, width):
            out[-1] = _join(out[-1], line, dehyphenate)
        else:
            out.append(line)
        previous = line
    return "\n".join(out)


# -- 8. blank lines -----------------------------------------------------------------------------
def limit_blank_lines(text: str, max_blank_lines: int = 1) -> str:
    """Runs of blank (empty or white-space-only) lines become at most ``max_blank_lines`` ones."""
    return re.sub(r"\n(?:[ \u00a0]*\n){%d,}" % (max_blank_lines + 1), "\n" * (max_blank_lines + 1), text)


def _layout(text: str, cfg: NormalizeConfig, rejoin: bool) -> str:
    if rejoin:
        text = rejoin_lines(text, cfg.dehyphenate)
    text = limit_blank_lines(text, cfg.max_blank_lines)
    return text.strip("\n") if cfg.strip_lines else text


def normalize(text: str, cfg: NormalizeConfig | None = None, kind: str = "prose") -> str:
    """Clean one document's text with the rules switched on in ``cfg`` (see the module doc).

    ``kind`` matters for one rule: lines of theatre, poetry (and the other ``LINE_KINDS``)
    are never re-joined.
    """
    cfg = cfg or NormalizeConfig()
    text = unify_line_breaks(text)
    if cfg.remove_control:
        text = remove_invisible(text)
    if cfg.nfc:
        text = to_nfc(text)
    text = unify_spaces(text, cfg.exotic_spaces)
    if cfg.apostrophes:
        text = unify_apostrophes(text)
    if cfg.strip_lines:
        text = tidy_spaces(text)
    rejoin = cfg.rejoin_lines == "auto" and kind not in LINE_KINDS
    while True:  # re-joining can make new lines look wrapped: repeat until stable (idempotence)
        new = _layout(text, cfg, rejoin)
        if new == text:
            return text
        text = new
