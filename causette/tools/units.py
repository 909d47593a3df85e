"""``convertir``: a value from one unit to another of the same dimension.

Each unit has a factor to its dimension's base unit (metre, kilogram, litre, kelvin, metre per
second, second) and, for temperatures, an offset: ``base = (valeur + offset) × factor``. Units are
found by French or international name or symbol, whatever their case, accents, plural or a
leading ``°``/``degré`` (``Kilomètres``, ``°C``, ``degrés Fahrenheit``); a speed may also be written
as a length over a time (``km/h``, ``m/s``, ``mètres par seconde``). The result keeps 6
significant digits.
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction as F

from causette.tools.schema import ToolError

# dimension: (French name with its article, {unit: (factor, offset, aliases)})
DIMENSIONS: dict[str, tuple[str, dict[str, tuple[F | int, F | int, tuple[str, ...]]]]] = {
    "longueur": ("une longueur", {
        "m": (1, 0, ("metre", "meter")),
        "km": (1000, 0, ("kilometre", "kilometer")),
        "dm": (F("0.1"), 0, ("decimetre",)),
        "cm": (F("0.01"), 0, ("centimetre", "centimeter")),
        "mm": (F("0.001"), 0, ("millimetre", "millimeter")),
        "mi": (F("1609.344"), 0, ("mile",)),
        "ft": (F("0.3048"), 0, ("pied", "foot", "feet")),
        "in": (F("0.0254"), 0, ("pouce", "inch", "inches")),
        "yd": (F("0.9144"), 0, ("yard",)),
        "nmi": (1852, 0, ("mille marin", "mille nautique")),
    }),
    "masse": ("une masse", {
        "kg": (1, 0, ("kilogramme", "kilogram", "kilo")),
        "g": (F("0.001"), 0, ("gramme", "gram")),
        "mg": (F("1e-6"), 0, ("milligramme", "milligram")),
        "t": (1000, 0, ("tonne",)),
        "lb": (F("0.45359237"), 0, ("livre", "pound")),
        "oz": (F("0.028349523125"), 0, ("once", "ounce")),
    }),
    "volume": ("un volume", {
        "l": (1, 0, ("litre", "liter")),
        "dl": (F("0.1"), 0, ("decilitre",)),
        "cl": (F("0.01"), 0, ("centilitre",)),
        "ml": (F("0.001"), 0, ("millilitre", "milliliter")),
        "m3": (1000, 0, ("metre cube",)),
        "cm3": (F("0.001"), 0, ("centimetre cube",)),
        "gal": (F("3.785411784"), 0, ("gallon",)),  # the US gallon
    }),
    "temperature": ("une température", {
        "c": (1, F("273.15"), ("celsius",)),
        "f": (F(5, 9), F("459.67"), ("fahrenheit",)),
        "k": (1, 0, ("kelvin",)),
    }),
    "vitesse": ("une vitesse", {
        "mph": (F("0.44704"), 0, ("mile par heure",)),
        "kmh": (F(1000, 3600), 0, ("kph",)),
        "kn": (F(1852, 3600), 0, ("noeud", "nd")),
    }),
    "duree": ("une durée", {
        "s": (1, 0, ("sec", "seconde", "second")),
        "ms": (F("0.001"), 0, ("milliseconde", "millisecond")),
        "min": (60, 0, ("minute",)),
        "h": (3600, 0, ("heure", "hour", "hr")),
        "j": (86400, 0, ("jour", "day", "d")),
        "sem": (604800, 0, ("semaine", "week")),
        "an": (F("365.25") * 86400, 0, ("annee", "year")),  # a Julian year
    }),
}


def _units() -> dict[str, tuple[str, F | int, F | int]]:
    """``{folded name: (dimension, factor, offset)}`` for every symbol and alias."""
    out = {}
    for dimension, (_, units) in DIMENSIONS.items():
        for symbol, (factor, offset, aliases) in units.items():
            for name in (symbol, *aliases):
                out[name] = (dimension, factor, offset)
    return out


UNITS = _units()


def fold(name: str) -> str:
    """A unit's name as looked up: lower case, no accents, ``°``, ``degré`` or extra spaces; ``par`` as ``/``."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower().replace("°", " ")
    text = re.sub(r"\s*(?:/|\bpar\b|\bper\b)\s*", "/", text)
    text = re.sub(r"^\s*degres?\b", "", " ".join(text.split())).strip()
    return text.replace("œ", "oe")


def find_unit(name: str, argument: str) -> tuple[str, F | int, F | int]:
    """``(dimension, factor, offset)`` of the unit ``name``; a :class:`ToolError` naming ``argument``."""
    key = fold(name)
    found = _lookup(key)
    if found is None and "/" in key:
        found = _speed(key)
    if found is None:
        raise ToolError(f"L'argument « {argument} » : unité inconnue « {name} » (par exemple km, kg, L, °C, "
                        f"km/h, min).")
    return found


def _lookup(key: str):
    if key in UNITS:
        return UNITS[key]
    singular = " ".join(w[:-1] if len(w) > 2 and w[-1] in "sx" else w for w in key.split())
    return UNITS.get(singular)


def _speed(key: str):
    """``km/h``, ``metres/seconde``: a length over a time."""
    top, _, bottom = key.partition("/")
    length, time = _lookup(top), _lookup(bottom)
    if length and time and length[0] == "longueur" and time[0] == "duree":
        return ("vitesse", length[1] / time[1], 0.0)
    return None


def convert(value: float, source: str, target: str) -> dict:
    """The result of ``convertir``: ``{"valeur": ..., "unite": target}``."""
    dim_a, factor_a, offset_a = find_unit(source, "de")
    dim_b, factor_b, offset_b = find_unit(target, "vers")
    if dim_a != dim_b:
        raise ToolError(f"On ne peut pas convertir des {source} en {target} : « de » est "
                        f"{DIMENSIONS[dim_a][0]} et « vers » {DIMENSIONS[dim_b][0]}.")
    base = (F(repr(float(value))) + offset_a) * factor_a  # exact: 32 °F is 0 °C, not 5.7e-14
    if dim_a == "temperature" and base < 0:
        raise ToolError(f"L'argument « valeur » est sous le zéro absolu ({value} {source} < 0 K).")
    return {"valeur": _six_digits(base / factor_b - offset_b), "unite": target.strip()}


def _six_digits(x: F) -> int | float:
    try:
        rounded = float(f"{float(x):.6g}")
    except OverflowError:
        raise ToolError("L'argument « valeur » est trop grand : le résultat dépasse ce qu'un nombre peut "
                        "tenir.") from None
    return int(rounded) if rounded.is_integer() and abs(rounded) < 1e15 else rounded
