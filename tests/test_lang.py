"""causette/utils/lang.py: which language is spoken, and numbers written the French way."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from causette.eval.report import short_count
from causette.utils.lang import NBSP, NNBSP, language, lang_from_argv, num, set_language, tr, typography, using


def test_french_by_default_and_precedence(monkeypatch):
    assert language() == "fr" and tr("oui", "yes") == "oui"  # conftest: LANG=C.UTF-8, nothing else
    monkeypatch.setenv("LANG", "en_GB.UTF-8")
    assert language() == "en"
    monkeypatch.setenv("LC_ALL", "fr_FR.UTF-8")  # LC_ALL before LANG, as the C library reads them
    assert language() == "fr"
    monkeypatch.setenv("CAUSETTE_LANG", "en")  # CAUSETTE_LANG before the locale
    assert language() == "en"
    monkeypatch.setenv("CAUSETTE_LANG", "klingon")  # a typo is ignored: back to the locale
    assert language() == "fr"
    set_language("en")  # --lang before everything
    monkeypatch.setenv("CAUSETTE_LANG", "fr")
    assert language() == "en"
    set_language(None)
    assert language() == "fr"
    with using("en"):
        assert tr("oui", "yes") == "yes"
    assert tr("oui", "yes") == "oui"
    with pytest.raises(ValueError):
        set_language("de")


def test_lang_read_from_argv_before_parsing():
    assert lang_from_argv(["attention", "Le chat.", "--lang", "en"]) == "en"
    assert lang_from_argv(["--lang=fr", "tokens"]) == "fr"
    assert lang_from_argv(["tokens", "--", "--lang", "en"]) is None
    assert lang_from_argv(["tokens", "--lang", "de"]) is None  # argparse will refuse it, in its own words


def test_numbers_in_french_and_english():
    assert num(3977679, ",") == f"3{NNBSP}977{NNBSP}679"
    assert num(3.6, ".2f") == "3,60"
    assert num(0.248, ".1%") == f"24,8{NBSP}%"
    assert num(-1234.5, ",.1f") == f"-1{NNBSP}234,5"
    assert num(2e-4, ".2e") == "2,00e-04"
    with using("en"):
        assert num(3977679, ",") == "3,977,679" and num(3.6, ".2f") == "3.60" and num(0.248, ".1%") == "24.8%"


def test_french_spacing_before_high_punctuation():
    assert typography("Qui ? Moi ! Ceci : cela ; « bien »") == (
        f"Qui{NNBSP}? Moi{NNBSP}! Ceci{NBSP}: cela{NNBSP}; «{NBSP}bien{NBSP}»")
    assert tr("a : b", "a: b") == f"a{NBSP}: b"


def parse_fr(text: str) -> float:
    """A French number back to a float: « 1 234,5 » → 1234.5."""
    return float(text.replace(NNBSP, "").replace(NBSP, "").replace(",", "."))


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_french_integers_group_by_three(n):
    text = num(n, ",")
    assert parse_fr(text) == n
    assert "," not in text and "." not in text
    groups = text.lstrip("-").split(NNBSP)
    assert 1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])


@given(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), st.integers(min_value=0, max_value=6))
def test_french_decimals_read_back_as_the_english_ones(x, digits):
    french = num(x, f",.{digits}f")
    with using("en"):
        english = num(x, f",.{digits}f")
    assert french.count(",") == (1 if digits else 0) and "." not in french
    assert parse_fr(french) == float(english.replace(",", ""))


@given(st.floats(min_value=0, max_value=1e12, allow_nan=False))
def test_short_tick_labels(x):
    label = short_count(x)
    assert "e" not in label and len(label) <= 7
    m = re.fullmatch(r"([\d,]+)(?:\u00a0([kMG]))?", label)
    assert m, label
    value = parse_fr(m.group(1)) * {None: 1, "k": 1e3, "M": 1e6, "G": 1e9}[m.group(2)]
    assert abs(value - x) <= max(0.005 * x, 0.5)
    with using("en"):
        assert re.fullmatch(r"[\d.]+[kMG]?", short_count(x))


def test_short_tick_labels_examples():
    assert short_count(1_200_000) == f"1,2{NBSP}M" and short_count(120_000) == f"120{NBSP}k"
    assert short_count(800) == "800"
    with using("en"):
        assert short_count(1_250_000) == "1.25M"
