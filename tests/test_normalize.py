"""French-aware normalisation: one test per rule, real hard-wrapped French, and properties."""

from __future__ import annotations

import textwrap
import unicodedata
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causette.corpus.config import NormalizeConfig
from causette.corpus.normalize import (
    EXOTIC_SPACES,
    keeps_hyphen,
    limit_blank_lines,
    normalize,
    rejoin_lines,
    remove_invisible,
    tidy_spaces,
    to_nfc,
    unify_apostrophes,
    unify_line_breaks,
    unify_spaces,
    wrap_width,
)

CFG = NormalizeConfig()
FRENCH = (
    "« Où est l'œuvre ? » — Ève, naïve, Noël, ça, aigüe, Œdipe, cœur, Æsope, ex æquo… "
    "ÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸ àâäçéèêëîïôöùûüÿ – fin"
)

# Code civil, article 1 (French official text, not under copyright), as hard-wrapped at 80 columns
# in /work/shared/data/pretrain/code_civil_fr_2015.jsonl.gz.
CODE_CIVIL_ART_1 = """Article 1
----
Les lois et, lorsqu'ils sont publiés au Journal officiel de la République
française, les actes administratifs entrent en vigueur à la date qu'ils fixent
ou, à défaut, le lendemain de leur publication. Toutefois, l'entrée en vigueur
de celles de leurs dispositions dont l'exécution nécessite des mesures
d'application est reportée à la date d'entrée en vigueur de ces mesures.

En cas d'urgence, entrent en vigueur dès leur publication les lois dont le
décret de promulgation le prescrit et les actes administratifs pour lesquels le
Gouvernement l'ordonne par une disposition spéciale.

Les dispositions du présent article ne sont pas applicables aux actes
individuels."""

CODE_CIVIL_ART_1_JOINED = """Article 1
----
Les lois et, lorsqu'ils sont publiés au Journal officiel de la République française, \
les actes administratifs entrent en vigueur à la date qu'ils fixent ou, à défaut, le lendemain \
de leur publication. Toutefois, l'entrée en vigueur de celles de leurs dispositions dont \
l'exécution nécessite des mesures d'application est reportée à la date d'entrée en vigueur \
de ces mesures.

En cas d'urgence, entrent en vigueur dès leur publication les lois dont le décret de promulgation \
le prescrit et les actes administratifs pour lesquels le Gouvernement l'ordonne par une disposition spéciale.

Les dispositions du présent article ne sont pas applicables aux actes individuels."""

# One paragraph per line, as in the demo corpus and ELTeC: lines of very different lengths.
NOVEL_ONE_PARAGRAPH_PER_LINE = """UNE VIE
I
Jeanne, ayant fini ses malles, s'approcha de la fenêtre, mais la pluie ne cessait pas.
L'averse, toute la nuit, avait sonné contre les carreaux et les toits. Le ciel, bas et chargé \
d'eau, semblait crevé, se vidant sur la terre, la délayant en bouillie, la fondant comme du sucre.
— Partirons-nous ?
— Oui, dit-elle, demain, s'il fait beau et si la voiture est prête à l'heure convenue avec le cocher.
Elle attendait depuis des semaines ce départ qui devait changer sa vie tout entière.
Le baron rentra, mouillé, riant, les mains pleines de paquets qu'il posa sur la table du salon.
— Quel temps ! s'écria-t-il."""

# Classic verse: lines of 30-50 characters, each starting with a capital.
VERSE = """Oui, c'est Agamemnon, c'est ton roi qui t'éveille.
Viens, reconnais la voix qui frappe ton oreille.
C'est vous-même, Seigneur ! Quel important besoin
Vous a fait devancer l'aurore de si loin ?
À peine un faible jour vous éclaire et me guide,
Vos yeux seuls et les miens sont ouverts dans l'Aulide.
Avez-vous dans les airs entendu quelque bruit ?
Les vents nous auraient-ils exaucés cette nuit ?"""


# -- one rule at a time ---------------------------------------------------------------------------


def test_french_letters_and_punctuation_are_kept_exactly():
    assert normalize(FRENCH, CFG) == FRENCH
    assert normalize(FRENCH.replace("'", "’"), CFG) == FRENCH


def test_line_breaks():
    assert unify_line_breaks("a\r\nb\rc\u2028d\u2029e\x0cf\x0bg\nh") == "a\nb\nc\nd\ne\nf\ng\nh"


def test_nfc_and_its_switch():
    decomposed = "e\u0301te\u0301 c\u0327a"
    assert to_nfc(decomposed) == "été ça"
    assert normalize(decomposed, CFG) == "été ça"
    assert normalize(decomposed, replace(CFG, nfc=False)) == decomposed


def test_exotic_spaces_are_exactly_the_unicode_space_separators():
    import sys

    zs = {chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Zs"} - {" "}
    assert set(EXOTIC_SPACES) == zs


def test_exotic_spaces_and_tabs():
    text = "mot\u00a0? mot\u202f! a\u2009b\u2003c\td\u3000e\nf"
    assert unify_spaces(text, "space") == "mot ? mot ! a b c d e\nf"
    assert unify_spaces(text, "nbsp") == "mot\u00a0? mot\u00a0! a\u00a0b\u00a0c d\u00a0e\nf"
    assert normalize("« Bonjour\u202f»\u00a0!", CFG) == "« Bonjour » !"
    nbsp = replace(CFG, exotic_spaces="nbsp")
    assert normalize("« Bonjour\u202f»\u00a0!", nbsp) == "« Bonjour\u00a0»\u00a0!"


def test_invisible_and_control_characters():
    assert remove_invisible("in\u00adcroy\u200bable\ufeff \u200d\u2060x\u200e") == "incroyable x"
    assert remove_invisible("bip\x07 nul\x00 del\x7f") == "bip nul del"
    assert remove_invisible("tab\tet\nligne") == "tab\tet\nligne"
    # C1 controls are CP1252 read as Latin-1: repaired when CP1252 has a character, else removed
    assert remove_invisible("c\x9cur, l\x92été\x85 \x81") == "cœur, l’été… "
    assert normalize("c\x9cur l\x92été", CFG) == "cœur l'été"
    assert normalize("a\u200bb", replace(CFG, remove_control=False)) == "a\u200bb"


def test_apostrophes():
    expected = "l'été, l'hiver, l'automne, l'an, l'aube"
    assert unify_apostrophes("l’été, l‘hiver, lʼautomne, l‛an, l＇aube") == expected
    assert unify_apostrophes("l´homme et l′arbre, l`eau") == "l'homme et l'arbre, l'eau"
    not_between_letters = "5′ et 3´ et « oui » “non”"
    assert unify_apostrophes(not_between_letters) == not_between_letters
    assert normalize("l’été", replace(CFG, apostrophes=False)) == "l’été"


def test_spaces_inside_lines():
    assert tidy_spaces("  deux   espaces  \nfin \u00a0\n") == " deux espaces\nfin\n"
    assert tidy_spaces("mot \u00a0 ?") == "mot\u00a0?"
    assert normalize("\n\n  Début  du   texte.   \n\n\nFin.  \n\n", CFG) == " Début du texte.\n\nFin."
    assert normalize("\n a  b \n", replace(CFG, strip_lines=False, rejoin_lines="never")) == "\n a  b \n"


@pytest.mark.parametrize("max_blank, expected", [(0, "a\nb\nc"), (1, "a\n\nb\n\nc"), (2, "a\n\n\nb\n\n\nc")])
def test_blank_lines(max_blank, expected):
    text = "a\n\n\n\n\nb\n\n \nc"
    assert normalize(text, replace(CFG, max_blank_lines=max_blank)) == expected
    assert limit_blank_lines("a\n\nb", 1) == "a\n\nb"


# -- re-joining hard-wrapped lines ----------------------------------------------------------------


def test_hard_wrapped_legal_text_is_rejoined():
    assert wrap_width(CODE_CIVIL_ART_1.split("\n")) is not None
    assert normalize(CODE_CIVIL_ART_1, CFG, kind="legal") == CODE_CIVIL_ART_1_JOINED


def test_one_paragraph_per_line_and_verse_are_not_changed():
    for text in (NOVEL_ONE_PARAGRAPH_PER_LINE, VERSE):
        assert wrap_width(text.split("\n")) is None
        assert normalize(text, CFG, kind="prose") == text


def test_theatre_poetry_and_never_keep_wrapped_lines():
    for kind in ("theatre", "poetry"):
        assert normalize(CODE_CIVIL_ART_1, CFG, kind=kind) == CODE_CIVIL_ART_1
    assert normalize(CODE_CIVIL_ART_1, replace(CFG, rejoin_lines="never")) == CODE_CIVIL_ART_1


WRAPPED_STORY = """Il était une fois, dans un village perdu au bord de la grande rivière, une
vieille femme qui gardait les oies du seigneur et qui chantait, peut-
être pour oublier sa peine, des chansons que personne ne comprenait, par
exemple celle du meunier ; elle la chantait le soir, et jamais une exem-
ple de chanson ne fut plus triste. Est-ce le vent ? demandait-on. Ce
n'était que sa voix, répondait le curé, la voix de la grand-
mère de tous les enfants du pays, qui venaient l'écouter près du puits.
— Encore ! criaient-ils quand elle s'arrêtait pour reprendre son souffle.
« Demain », disait-elle en souriant, et elle rentrait chez elle par le
sentier."""


def test_rejoin_and_dehyphenation_of_a_wrapped_story():
    out = normalize(WRAPPED_STORY, CFG)
    lines = out.split("\n")
    assert len(lines) == 3  # dialogue dash and guillemet start their own lines
    assert lines[1].startswith("— Encore !") and lines[2].startswith("« Demain »")
    assert "peut-être pour oublier" in out
    assert "une exemple de chanson" in out
    assert "la grand-mère de tous" in out
    assert "Ce n'était que" in out
    no_dehyphenation = normalize(WRAPPED_STORY, replace(CFG, dehyphenate=False))
    assert "une exem-ple de chanson" in no_dehyphenation and "peut-être" in no_dehyphenation


@pytest.mark.parametrize(
    "first, second, keep",
    [
        ("exem", "ple", False), ("chan", "son", False), ("peut", "être", True), ("dit", "il", True),
        ("t", "il", True), ("est", "ce", True), ("for", "ce", False), ("celui", "ci", True),
        ("mer", "ci", False),
        ("là", "bas", True), ("voi", "là", False), ("celui", "là", True), ("grand", "mère", True),
        ("dites", "leur", True), ("va", "leur", False), ("as", "tu", True), ("ver", "tu", False),
        ("puis", "je", True), ("dit", "on", True), ("lui", "même", True), ("ce", "lui", False),
        ("dix", "sept", True), ("inno", "cent", False), ("Jean", "Pierre", True), ("PEUT", "ÊTRE", True),
        ("EXEM", "PLE", False), ("vas", "y", True), ("c'est", "à", True),
    ],
)
def test_keeps_hyphen(first, second, keep):
    assert keeps_hyphen(first.split("'")[-1], second) is keep


def test_lines_that_start_a_unit_or_are_headings_are_never_glued():
    text = (
        "CHAPITRE PREMIER\n"
        "Le jour se levait à peine sur la plaine quand les premiers cavaliers\n"
        "arrivèrent au village, fatigués par une longue nuit de marche forcée et\n"
        "affamés ; ils demandèrent du pain, du vin et de l'avoine pour les bêtes\n"
        "1° du pain pour les hommes de la troupe et pour les blessés qui suivaient\n"
        "2° de l'avoine pour les chevaux, autant que le village pourrait en donner\n"
    )
    out = rejoin_lines(text.rstrip("\n"))
    assert out.split("\n")[0] == "CHAPITRE PREMIER"
    assert out.split("\n")[1].endswith("pour les bêtes")
    assert out.split("\n")[2].startswith("1°") and out.split("\n")[3].startswith("2°")


# -- properties ---------------------------------------------------------------------------------

REMOVED = set("\r\t\u200b\u200c\u200d\u2060\ufeff\u00ad\u2028\u2029’‘ʼ‛") | set(EXOTIC_SPACES) | {
    chr(c) for c in list(range(0x00, 0x0A)) + list(range(0x0B, 0x20)) + list(range(0x7F, 0xA0))
}
ALPHABET = (
    "abcdefghijklmnopqrstuvwxyzéèêàâçîôûùœæÉÈÀÇŒ«»—–…'-.,;:!?() "
    "\n\n\n\r\t\u00a0\u202f\u2009\u200b\u00ad\u2019\u2018\u02bc\u2028\x07\x9c\x81\ufeff"
    "\u0301\u0327"  # combining accents
)
WORDS = ["le", "chat", "dort", "peut-être", "dit-il", "exemple", "maison", "Paris", "« oui »", "— non",
         "aujourd'hui", "grand-mère", "très", "cœur", "là-bas", "ensuite", "mais", "pourtant"]


@st.composite
def wrapped_texts(draw):
    """Paragraphs of random words hard-wrapped at a random width, some words cut by hyphens."""
    paragraph = st.lists(st.sampled_from(WORDS), min_size=5, max_size=60)
    paragraphs = draw(st.lists(paragraph, min_size=1, max_size=4))
    width = draw(st.integers(min_value=45, max_value=105))
    out = []
    for words in paragraphs:
        out.append("\n".join(textwrap.wrap(" ".join(words), width=width, break_on_hyphens=True)))
    return draw(st.sampled_from(["\n\n", "\n\n\n", "\n"])).join(out)


CONFIGS = [
    CFG,
    replace(CFG, exotic_spaces="nbsp"),
    replace(CFG, max_blank_lines=0),
    replace(CFG, dehyphenate=False, max_blank_lines=2),
]


@settings(max_examples=150, deadline=None)
@given(
    text=st.one_of(st.text(alphabet=ALPHABET, max_size=300), wrapped_texts()),
    cfg=st.sampled_from(CONFIGS),
    kind=st.sampled_from(["prose", "theatre", "legal"]),
)
def test_normalize_is_idempotent(text, cfg, kind):
    once = normalize(text, cfg, kind)
    assert normalize(once, cfg, kind) == once


@settings(max_examples=150, deadline=None)
@given(text=st.one_of(st.text(max_size=300), st.text(alphabet=ALPHABET, max_size=300)))
def test_output_never_contains_removed_characters(text):
    out = normalize(text, CFG)
    assert not set(out) & REMOVED
    assert unicodedata.is_normalized("NFC", out)
    assert "  " not in out and "\n\n\n" not in out
    assert out == out.strip("\n") and all(line == line.rstrip(" ") for line in out.split("\n"))


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet="abcéèêàçœæÉŒÀ«»—–…',.;!? \n", max_size=300))
def test_letters_accents_and_french_punctuation_survive(text):
    """Without hyphens to remove, normalising only ever changes white space."""
    out = normalize(text, CFG)
    assert [c for c in out if not c.isspace()] == [c for c in text if not c.isspace()]
