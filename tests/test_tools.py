"""The built-in tools (causette/tools/): every tool with good and bad arguments, the calculator's
properties (Python's own results, no code ever run, limits checked at once), notes kept safe,
conversions against known values, BM25 ranking on a tiny folder."""

from __future__ import annotations

import ast
import json
import math
import operator
import os
import re
import subprocess
import sys
import time
import unicodedata
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from causette.errors import CausetteError
from causette.tools import TOOLS, ToolContext, openai_tools, run_tool
from causette.tools import search as search_mod
from causette.tools.calc import calculate
from causette.tools.context import data_dir
from causette.tools.schema import ToolError, validate
from causette.tools.units import DIMENSIONS, UNITS, convert

REPO = Path(__file__).resolve().parents[1]
CONTRACT = ["calculer", "date_heure", "note_ajouter", "notes_lister", "convertir", "chercher"]
NOON = datetime(2026, 12, 5, 14, 5)  # a Saturday


@pytest.fixture(autouse=True)
def no_user_folders(tmp_path, monkeypatch):
    """A call without a context reads the environment: never the real home folder here."""
    monkeypatch.setenv("CAUSETTE_DATA_DIR", str(tmp_path / "env-data"))
    monkeypatch.delenv("CAUSETTE_NOTES_DIR", raising=False)


@pytest.fixture
def ctx(tmp_path) -> ToolContext:
    return ToolContext(data_dir=tmp_path / "data", roots=(), clock=lambda: NOON)


def call(name, arguments, context=None) -> dict:
    text = run_tool(name, arguments, context)
    assert text == json.dumps(json.loads(text), ensure_ascii=False)  # the contract's serialisation
    return json.loads(text)


def error(name, arguments, context=None) -> str:
    result = call(name, arguments, context)
    assert list(result) == ["erreur"], result
    return result["erreur"]


# ============================================================================== registry


def test_the_tools_of_the_contract_in_order():
    assert [t.name for t in TOOLS] == CONTRACT
    listed = openai_tools()
    assert [t["function"]["name"] for t in listed] == CONTRACT
    for item in listed:
        assert item["type"] == "function" and set(item["function"]) == {"name", "description", "parameters"}
        description = item["function"]["description"]
        assert description and "\n" not in description and len(description) < 120
        params = item["function"]["parameters"]
        assert params["type"] == "object" and params["additionalProperties"] is False
        assert set(params["required"]) == set(params["properties"])  # all required: none optional
    assert [t["function"]["name"] for t in openai_tools(["chercher", "calculer"])] == ["chercher", "calculer"]
    with pytest.raises(CausetteError, match="unknown tool 'cherche'"):
        openai_tools(["cherche"])


def test_a_result_is_the_json_text_of_the_contract(ctx):
    assert run_tool("calculer", {"expression": "17*23"}, ctx) == '{"resultat": 391}'
    assert run_tool("calculer", '{"expression": "17*23"}', ctx) == '{"resultat": 391}'
    assert run_tool("date_heure", {}, ctx) == '{"date": "samedi 5 décembre 2026", "heure": "14:05"}'
    assert run_tool("date_heure", "", ctx) == run_tool("date_heure", None, ctx) == run_tool("date_heure", "{}", ctx)


@pytest.mark.parametrize("name, arguments, named", [
    ("calculer", {}, "expression"),
    ("calculer", {"expression": 17}, "expression"),
    ("calculer", {"expression": ""}, "expression"),
    ("calculer", {"expression": "1+1", "precision": 2}, "precision"),
    ("date_heure", {"fuseau": "UTC"}, "fuseau"),
    ("note_ajouter", {"text": "pain"}, "texte"),
    ("note_ajouter", {"texte": ["pain"]}, "texte"),
    ("note_ajouter", {"texte": "x" * 501}, "texte"),
    ("notes_lister", {"numero": 1}, "numero"),
    ("convertir", {"valeur": "3", "de": "km", "vers": "m"}, "valeur"),
    ("convertir", {"valeur": True, "de": "km", "vers": "m"}, "valeur"),
    ("convertir", {"valeur": 3, "de": "km"}, "vers"),
    ("convertir", {"valeur": 3, "de": 1, "vers": "m"}, "de"),
    ("convertir", {"valeur": float("inf"), "de": "km", "vers": "m"}, "valeur"),
    ("chercher", {"requete": None}, "requete"),
    ("chercher", {}, "requete"),
])
def test_bad_arguments_name_the_argument(ctx, name, arguments, named):
    message = error(name, arguments, ctx)
    assert f"« {named} »" in message and message.endswith(".")


@pytest.mark.parametrize("name, arguments, said", [
    ("calcul", {"expression": "1"}, "L'outil « calcul » n'existe pas"),
    ("calculer", "[1, 2]", "doivent former un objet JSON"),
    ("calculer", "17", "doivent former un objet JSON"),
    ("calculer", '{"expression": "1+1"', "ne sont pas du JSON valide"),
    ("calculer", "[" * 100_000, "ne sont pas du JSON valide"),
    (None, {}, "n'existe pas"),
])
def test_bad_calls_are_errors_never_exceptions(ctx, name, arguments, said):
    assert said in error(name, arguments, ctx)


def test_a_failing_tool_answers_an_error(ctx, monkeypatch):
    def broken(_expression):
        raise RuntimeError("a bug")

    monkeypatch.setattr("causette.tools.calc.calculate", broken)
    assert error("calculer", {"expression": "1"}, ctx) == \
        "L'outil « calculer » a échoué (RuntimeError) ; réessayez autrement."


def test_the_validator_subset():
    schema = {"type": "object", "required": ["n"], "additionalProperties": False,
              "properties": {"n": {"type": "integer"}, "b": {"type": "boolean"}, "mode": {"enum": ["court", "long"]},
                             "o": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}}}
    assert validate(schema, {"n": 3.0, "b": False, "mode": "long", "o": {"x": 1.5, "y": 0}}) == \
        {"n": 3, "b": False, "mode": "long", "o": {"x": 1.5, "y": 0}}
    for bad, named, said in [({"n": 2.5}, "n", "un nombre entier"), ({"n": True}, "n", "un nombre entier"),
                             ({"n": 1, "b": 1}, "b", "un booléen"), ({"n": 1, "mode": "moyen"}, "mode", "court, long"),
                             ({"n": 1, "o": {}}, "o.x", "Il manque"), ({"n": 1, "o": 3}, "o", "un objet JSON")]:
        with pytest.raises(ToolError, match=said) as e:
            validate(schema, bad)
        assert f"« {named} »" in str(e.value)
    with pytest.raises(ValueError, match="not supported"):
        validate({"type": "array"}, [])


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=8)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(CONTRACT), arguments=JSON | st.dictionaries(st.sampled_from(
    ["expression", "texte", "valeur", "de", "vers", "requete", "autre"]), JSON, max_size=3))
def test_any_arguments_give_a_result_or_an_error(tmp_path, name, arguments):
    context = ToolContext(data_dir=tmp_path / "fuzz", roots=(tmp_path / "textes-absents",), clock=lambda: NOON)
    result = json.loads(run_tool(name, arguments, context))
    assert isinstance(result, dict) and result
    assert "a échoué" not in result.get("erreur", "")  # an error we foresaw, not a caught bug


def test_the_tools_package_does_not_import_torch():
    probe = ("import sys, json\nfrom causette.tools import run_tool\n"
             "print(run_tool('calculer', {'expression': '2+2'}))\nprint('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.stdout.split() == ['{"resultat":', "4}", "False"], r.stderr


# ============================================================================== calculer


@pytest.mark.parametrize("expression, value", [
    ("17*23", 391), ("17 × 23", 391), ("17 x 23", 391), ("2^10", 1024), ("2**10", 1024), ("7 ÷ 2", 3.5),
    ("12 : 4", 3), ("3,5 * 2", 7), ("1,5 + 2,25", 3.75), ("1 000 000 / 4", 250000), ("-(3 - 5) ** 2", -4),
    ("7 // 2", 3), ("-7 % 3", 2), ("10 / 4", 2.5), ("1/3", 0.3333333333), ("0.1 + 0.2", 0.3),
    ("racine(16)", 4), ("racine(2)", 1.414213562), ("racine(2,25)", 1.5), ("abs(-3.5)", 3.5),
    ("arrondi(2.5)", 3), ("arrondi(-2.5)", -3), ("arrondi(3.14159, 2)", 3.14), ("arrondi(3,14159, 2)", 3.14),
    ("arrondi(2.675, 2)", 2.68), ("arrondi(1234.5, -2)", 1200), ("Racine(9)", 3), ("2 ** -2", 0.25),
    ("2 ** 62", 4.611686018e18), ("10 ** 15", 1e15), ("10 ** 15 - 1", 999_999_999_999_999), ("4.0 * 2", 8),
    ("(-8) ** 3", -512), ("2 ** 0.5", 1.414213562), ("(" * 99 + "1" + ")" * 99, 1),
])
def test_calculer_values(ctx, expression, value):
    result = call("calculer", {"expression": expression}, ctx)["resultat"]
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize("expression, said", [
    ("1/0", "division par zéro"), ("5 // 0", "division par zéro"), ("5 % 0.0", "division par zéro"),
    ("0 ** -1", "division par zéro"), ("9**9**9", "trop grand"), ("10 ** 301", "trop grand"),
    ("2 ** 2 ** 2 ** 2 ** 2", "trop grand"), ("1e308 * 10", "trop grand"), ("1e999", "trop grand"),
    ("(10**150) * (10**151)", "trop grand"), ("1.5 ** 5000", "trop grand"),
    ("racine(-4)", "racine d'un nombre négatif"), ("(-8) ** (1/3)", "pas réel"),
    ("-" * 40 + "1", "trop imbriquée"), ("abs(" * 35 + "1" + ")" * 35, "trop imbriquée"),
    ("1+" * 101, "trop long"), ("__import__('os').system('true')", "appel refusé"),
    ("__import__('os')", "« __import__ »"),
    ("().__class__.__bases__", "ne peut contenir que"), ("lambda: 1", "ne peut contenir que"),
    ("[x for x in (1, 2)]", "ne peut contenir que"), ("open('f')", "« open »"), ("x", "« x »"),
    ("pi * 2", "« pi »"), ("'a' * 3", "n'est pas un nombre"), ("True + 1", "n'est pas un nombre"),
    ("3j", "n'est pas un nombre"), ("abs(x=1)", "sans nom d'argument"), ("racine(4, 2)", "racine s'écrit"),
    ("arrondi(1, 2, 3)", "arrondi s'écrit"), ("abs(*[1])", "abs s'écrit"), ("arrondi(3.5, 0.5)", "entier"),
    ("arrondi(3,5)", "ambiguë"), ("arrondi(10/3,2)", "ambiguë"), ("1 < 2", "ne peut contenir que"),
    ("2 +", "pas un calcul valide"), ("1:30 + 2:45", "pas un calcul valide"), ("1\x00", "pas un calcul valide"), ("a.b(1)", "cet appel n'est pas permis"),
])
def test_calculer_refuses(ctx, expression, said):
    start = time.perf_counter()
    message = error("calculer", {"expression": expression}, ctx)
    assert time.perf_counter() - start < 0.05  # refused at once, never computed
    assert said in message and "expression" in message.lower()


def test_calculer_never_calls_eval_exec_or_compile():
    for path in (REPO / "causette" / "tools").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"eval", "exec", "compile", "__import__"}, f"{path.name}:{node.lineno}"


def test_calculer_runs_nothing(tmp_path, monkeypatch, ctx):
    monkeypatch.chdir(tmp_path)
    for attempt in ("open('CANARY', 'w')", "__import__('pathlib').Path('CANARY').touch()",
                    "[open('CANARY', 'w') for _ in (1,)]", "(lambda: open('CANARY', 'w'))()",
                    "__builtins__['open']('CANARY', 'w')", "globals()", "breakpoint()"):
        assert "erreur" in call("calculer", {"expression": attempt}, ctx)
    assert not (tmp_path / "CANARY").exists()


OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "//": operator.floordiv,
       "%": operator.mod}
TOO_LARGE, ZERO = "trop grand", "division par zéro"


def combine(a, op, b):
    """(text, Python's value or the error expected) of ``a op b``."""
    (text_a, va), (text_b, vb) = a, b
    text = f"({text_a} {op} {text_b})"
    if isinstance(va, str) or isinstance(vb, str):
        return text, va if isinstance(va, str) else vb
    try:
        value = va ** vb if op == "**" else OPS[op](va, vb)
    except ZeroDivisionError:
        return text, ZERO
    except OverflowError:
        return text, TOO_LARGE
    return text, value if abs(value) <= 1e300 else TOO_LARGE


LEAF = st.integers(-30, 30).map(lambda n: (f"({n})" if n < 0 else str(n), n))
ARITHMETIC = st.recursive(
    LEAF,
    lambda inner: st.one_of(
        st.builds(combine, inner, st.sampled_from(list(OPS)), inner),
        st.builds(combine, inner, st.just("**"), st.integers(0, 4).map(lambda n: (str(n), n)))),
    max_leaves=12)


def contract_number(value):
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    if isinstance(value, int) and abs(value) < 10**15:
        return value
    return float(f"{float(value):.10g}")


@settings(max_examples=400, deadline=None)
@given(ARITHMETIC)
def test_calculer_gives_pythons_result(case):
    text, expected = case
    assume(len(text) <= 200)
    if isinstance(expected, str):
        with pytest.raises(ToolError, match=expected):
            calculate(text)
    else:
        assert calculate(text) == contract_number(expected)


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=-1000, max_value=1000, places=3, allow_nan=False),
       st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False), st.sampled_from(["+", "-", "*"]))
def test_calculer_reads_french_decimal_commas(x, y, op):
    french = f"{x} {op} ({y})".replace(".", ",")
    assert calculate(french) == contract_number(OPS[op](float(x), float(y)))


SOUP = st.lists(st.sampled_from(["9", "99", "0", "1e308", "2", "3,5", ".5", "**", "^", "*", "/", "//", "%", "+", "-",
                                 "(", ")", ",", " ", "x", "×", "racine", "arrondi", "abs", "e", "_", "'", "[", "]",
                                 "lambda", ":", ".", "__class__", "os", "=", "if", "for", "\\", "j"]),
                max_size=60).map("".join)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.text(max_size=250), SOUP))
def test_calculer_on_any_text_answers_quickly(text):
    start = time.perf_counter()
    try:
        value = calculate(text)
    except ToolError as e:
        assert str(e).endswith(".")
    else:
        assert isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= 1e300
        for word in re.finditer(r"[^\W\d]+", text):  # a name is never run: only the three functions
            if word.start() == 0 or not text[word.start() - 1].isdigit():  # not a number's e, x, _
                assert unicodedata.normalize("NFKC", word.group()).lower() in {"racine", "arrondi", "abs", "x"}, text
    assert time.perf_counter() - start < 0.05


# ============================================================================== date_heure


def test_date_heure_in_french(ctx):
    assert call("date_heure", {}, ctx) == {"date": "samedi 5 décembre 2026", "heure": "14:05"}
    days = [call("date_heure", {}, ToolContext(ctx.data_dir, clock=lambda d=d: datetime(2026, 6, d, 9, 3)))
            for d in range(1, 8)]
    assert [d["date"].split()[0] for d in days] == ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi",
                                                    "dimanche"]
    assert days[0] == {"date": "lundi 1er juin 2026", "heure": "09:03"}
    months = [call("date_heure", {}, ToolContext(ctx.data_dir, clock=lambda m=m: datetime(2027, m, 15, 23, 59)))["date"]
              for m in range(1, 13)]
    assert [m.split()[2] for m in months] == ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
                                              "septembre", "octobre", "novembre", "décembre"]


def test_the_default_clock_is_now(tmp_path):
    before = datetime.now()
    result = call("date_heure", {}, ToolContext(tmp_path))
    assert result["heure"] in {f"{t.hour:02d}:{t.minute:02d}" for t in (before, datetime.now())}


# ============================================================================== notes


def test_notes_round_trip(ctx):
    assert call("notes_lister", {}, ctx) == {"notes": []}
    assert call("note_ajouter", {"texte": "  Acheter du pain  "}, ctx) == \
        {"ok": True, "numero": 1, "texte": "Acheter du pain"}
    assert call("note_ajouter", {"texte": "Rappeler Léa à 18 h ; « urgent »"}, ctx)["numero"] == 2
    assert call("notes_lister", {}, ctx) == {"notes": [{"numero": 1, "texte": "Acheter du pain"},
                                                        {"numero": 2, "texte": "Rappeler Léa à 18 h ; « urgent »"}]}
    assert sorted(p.name for p in ctx.data_dir.iterdir()) == ["notes.json"]  # no temporary file left
    assert "Léa" in ctx.notes_file.read_text(encoding="utf-8")  # readable by a person, accents as they are
    assert "texte" in error("note_ajouter", {"texte": " \n "}, ctx)
    assert call("note_ajouter", {"texte": "é" * 500}, ctx)["numero"] == 3


@pytest.mark.parametrize("content", ['{"notes": [{"numero": 1, "texte": "pain"}', "[1, 2]",
                                     '{"notes": [{"numero": "1"}]}', b"\xff\xfe not utf-8"])
def test_a_damaged_notes_file_is_kept(ctx, content):
    ctx.data_dir.mkdir(parents=True)
    data = content if isinstance(content, bytes) else content.encode("utf-8")
    ctx.notes_file.write_bytes(data)
    for name, arguments in [("note_ajouter", {"texte": "pain"}), ("notes_lister", {})]:
        message = error(name, arguments, ctx)
        assert "endommagé" in message and str(ctx.notes_file) in message and "pas été modifié" in message
    assert ctx.notes_file.read_bytes() == data


def test_notes_that_cannot_be_read_or_written(ctx, tmp_path, monkeypatch):
    in_the_way = ToolContext(data_dir=tmp_path / "un-fichier", roots=())
    in_the_way.data_dir.write_text("pas un dossier", encoding="utf-8")
    assert "n'a pas pu être lu" in error("notes_lister", {}, in_the_way)

    def refused(path, *args, **kwargs):
        raise PermissionError(13, "Permission non accordée", str(path))

    monkeypatch.setattr("causette.tools.notes.atomic_write", refused)
    message = error("note_ajouter", {"texte": "pain"}, ctx)
    assert message == f"La note n'a pas pu être enregistrée dans {ctx.notes_file} (Permission non accordée)."


def test_where_the_notes_live(tmp_path, monkeypatch):
    home = Path("~").expanduser()
    assert data_dir({"CAUSETTE_DATA_DIR": "/d", "XDG_DATA_HOME": "/x"}) == Path("/d")
    assert data_dir({"XDG_DATA_HOME": "/x", "APPDATA": "/a"}, platform="win32") == Path("/x/causette")
    assert data_dir({"APPDATA": "/a"}, platform="win32") == Path("/a/causette")
    assert data_dir({"APPDATA": "/a"}, platform="linux") == home / ".local/share/causette"
    assert data_dir({}) == home / ".local/share/causette"
    monkeypatch.setenv("CAUSETTE_DATA_DIR", str(tmp_path / "mes-donnees"))
    call("note_ajouter", {"texte": "sans contexte"})  # the context of the environment
    stored = json.loads((tmp_path / "mes-donnees" / "notes.json").read_text(encoding="utf-8"))
    assert stored == {"notes": [{"numero": 1, "texte": "sans contexte"}]}


# ============================================================================== convertir


@pytest.mark.parametrize("valeur, de, vers, expected", [
    (100, "°C", "°F", 212), (32, "°F", "°C", 0), (0, "K", "°C", -273.15), (98.6, "degrés Fahrenheit", "Celsius", 37),
    (1, "mi", "km", 1.60934), (1000, "miles", "km", 1609.34), (12, "pouces", "cm", 30.48), (3, "Pieds", "m", 0.9144),
    (1, "lb", "g", 453.592), (16, "oz", "lb", 1), (1, "gal", "L", 3.78541), (1, "L", "mL", 1000), (25, "cl", "l", 0.25),
    (100, "km/h", "m/s", 27.7778), (1, "mètres par seconde", "km/h", 3.6), (60, "mph", "km/h", 96.5606),
    (1, "h", "s", 3600), (1, "jour", "min", 1440), (2, "Heures", "minutes", 120), (1, "Kilomètre", "MÈTRES", 1000),
    (10, "noeuds", "km/h", 18.52), (1.5, "t", "kg", 1500), (1, "m³", "L", 1000),
])
def test_convertir_known_values(ctx, valeur, de, vers, expected):
    result = call("convertir", {"valeur": valeur, "de": de, "vers": vers}, ctx)
    assert result == {"valeur": expected, "unite": vers}


def test_one_mile_is_exactly_1609_344_metres():
    assert UNITS["mi"][1] == Fraction("1609.344") and UNITS["mile"] == UNITS["mi"]
    assert convert(1, "mi", "km")["valeur"] == 1.60934 and convert(1, "mi", "mm")["valeur"] == 1609340  # 6 digits


@pytest.mark.parametrize("de, vers, named, said", [
    ("km", "kg", "de", "On ne peut pas convertir des km en kg : « de » est une longueur et « vers » une masse."),
    ("°C", "km/h", "vers", "une température"), ("furlong", "m", "de", "unité inconnue « furlong »"),
    ("m", "parsec", "vers", "unité inconnue « parsec »"), ("km/kg", "m/s", "de", "unité inconnue"),
])
def test_convertir_refuses(ctx, de, vers, named, said):
    message = error("convertir", {"valeur": 1, "de": de, "vers": vers}, ctx)
    assert said in message and f"« {named} »" in message


def test_convertir_below_absolute_zero(ctx):
    assert "« valeur »" in error("convertir", {"valeur": -300, "de": "°C", "vers": "K"}, ctx)
    assert "« valeur »" in error("convertir", {"valeur": 1e308, "de": "km", "vers": "mm"}, ctx)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(DIMENSIONS)).flatmap(
    lambda d: st.tuples(st.sampled_from(list(DIMENSIONS[d][1])), st.sampled_from(list(DIMENSIONS[d][1])))),
    st.floats(min_value=0, max_value=1e6))
def test_convertir_there_and_back(units, value):
    de, vers = units
    there = convert(value, de, vers)["valeur"]
    back = convert(there, vers, de)["valeur"]
    assert back == pytest.approx(value, rel=2e-5, abs=1e-3 * max(1, abs(Fraction(value))))


# ============================================================================== chercher


@pytest.fixture
def texts(tmp_path) -> Path:
    root = tmp_path / "textes"
    (root / "cours").mkdir(parents=True)
    (root / ".cache").mkdir()
    (root / "baleines.md").write_text(
        "# Les baleines\n\nLa baleine bleue est le plus grand animal.\nUne baleine chante.\n\n"
        "Le harpon servait à la chasse.\n", encoding="utf-8")
    (root / "jardin.txt").write_text("Au jardin, l'été, les tomates mûrissent.\n\nUne baleine en pot ? Non.\n",
                                     encoding="utf-8")
    (root / "cours" / "histoire.md").write_text("La Révolution française commence en 1789.\n", encoding="utf-8")
    (root / "image.png").write_bytes(b"baleine baleine baleine")
    (root / ".cache" / "vieux.txt").write_text("baleine baleine baleine baleine", encoding="utf-8")
    return root


def search_in(root, query) -> dict:
    return call("chercher", {"requete": query}, ToolContext(root.parent / "data", roots=(root,)))


def test_chercher_ranks_by_bm25(texts):
    found = search_in(texts, "les baleines")["passages"]
    assert [p["source"] for p in found] == ["baleines.md", "jardin.txt"]  # not the .png, not the hidden folder
    assert "baleine bleue" in found[0]["texte"]
    assert search_in(texts, "ETE tomate")["passages"] == [{"source": "jardin.txt", "texte": found[1]["texte"]}]
    assert search_in(texts, "révolution")["passages"][0]["source"] == "cours/histoire.md"
    assert search_in(texts, "kangourou") == {"passages": []}
    assert "« requete »" in error("chercher", {"requete": "le la de"}, ToolContext(texts, roots=(texts,)))


def test_bm25_by_hand():
    index = search_mod.Index([search_mod.Passage("a", "chat chat souris"), search_mod.Passage("b", "chien souris")])
    n, avg = 2, 2.5
    idf = math.log(1 + (n - 1 + 0.5) / (1 + 0.5))
    tf_part = 2 * 2.5 / (2 + 1.5 * (1 - 0.75 + 0.75 * 3 / avg))
    (score, passage), = index.search("chats")
    assert passage.source == "a" and score == pytest.approx(idf * tf_part)
    scores = {p.source: s for s, p in index.search("souris")}
    assert scores["b"] > scores["a"]  # the same word in a shorter passage


def test_chercher_keeps_its_index_until_a_file_changes(texts):
    first = search_mod.index_for((texts,))
    assert search_mod.index_for((texts,)) is first
    (texts / "cours" / "nouveau.md").write_text("Le cachalot plonge.\n", encoding="utf-8")
    assert search_mod.index_for((texts,)) is not first
    assert search_in(texts, "cachalot")["passages"][0]["source"] == "cours/nouveau.md"


def test_a_pinned_index_is_not_checked_again_until_unpinned(texts):
    context = ToolContext(texts.parent / "data", roots=(texts,))
    with search_mod.pinned(context.roots):
        pinned = search_mod.index_for(context.roots)
        (texts / "cours" / "nouveau.md").write_text("Le cachalot plonge.\n", encoding="utf-8")
        assert search_mod.index_for(context.roots) is pinned
        assert call("chercher", {"requete": "cachalot"}, context) == {"passages": []}
        assert search_mod.index_for((texts,)) is not pinned  # another tuple, though equal: checked as usual
    assert search_mod.index_for(context.roots) is not pinned
    assert call("chercher", {"requete": "cachalot"}, context)["passages"][0]["source"] == "cours/nouveau.md"


def test_chercher_in_a_missing_folder(tmp_path):
    message = error("chercher", {"requete": "baleine"}, ToolContext(tmp_path, roots=(tmp_path / "absent",)))
    assert "n'existe pas" in message and "CAUSETTE_NOTES_DIR" in message


def test_chercher_in_the_demo_corpus(tmp_path, monkeypatch):
    found = call("chercher", {"requete": "Alceste Philinte misanthrope"})["passages"]  # no CAUSETTE_NOTES_DIR
    assert 1 <= len(found) <= 3 and {p["source"] for p in found} == {"demo_fr_pd.txt.gz"}
    assert all(len(p["texte"]) <= 300 for p in found) and "Alceste" in found[0]["texte"]
    monkeypatch.setenv("CAUSETTE_NOTES_DIR", str(tmp_path))
    (tmp_path / "moi.txt").write_text("Alceste est mon chat.", encoding="utf-8")
    mine = call("chercher", {"requete": "Alceste"})["passages"]
    assert mine == [{"source": "moi.txt", "texte": "Alceste est mon chat."}]


def test_passages_of_a_file():
    novel = "TITRE\nAuteur\n\nI\n" + "\n".join("Un long paragraphe de roman. " * 10 for _ in range(3))
    parts = search_mod.passages_of(novel)
    assert parts[0].startswith("TITRE Auteur I Un long") and len(parts) == 3  # short lines joined to the next
    verse = "\n".join(f"Vers numéro {i} d'une longue tirade," for i in range(60))
    assert all(len(p) < 900 for p in search_mod.passages_of(verse)) and len(search_mod.passages_of(verse)) > 1


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000), st.sampled_from(["baleine", "ete", "coeur", "xyz"]))
def test_an_excerpt_is_at_most_300_characters(text, term):
    out = search_mod.excerpt(" ".join(text.split()), {term})
    assert len(out) <= 300


def test_an_excerpt_shows_the_match():
    text = "Début sans rapport. " * 40 + "Ici la baleine bleue chante. " + "Fin sans rapport. " * 40
    out = search_mod.excerpt(text, {"baleine"})
    assert "baleine bleue" in out and out.startswith("…") and out.endswith("…") and len(out) <= 300


def test_the_chat_templates_compact_line_names_the_registry():
    """The system turn's compact tools line (causette/data/chat_template.py) is written from the
    registry: every tool with its arguments, in the registry's order."""
    from causette.data.chat_template import render_text
    from causette.tools import openai_tools

    text = render_text([{"role": "user", "content": "Bonjour"}], tools=openai_tools())
    assert ("Outils : calculer(expression), date_heure(), note_ajouter(texte), notes_lister(), "
            "convertir(valeur, de, vers), chercher(requete).") in text
