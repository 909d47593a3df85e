"""A small JSON-schema validator for the arguments of a tool call, and the error tools raise.

Only the subset our tools declare is understood: ``type`` (object, string, number, integer,
boolean), ``properties``, ``required``, ``additionalProperties: false``, ``enum``, and the string
bounds ``minLength``/``maxLength``. Anything wrong becomes a :class:`ToolError` whose message is
one French sentence naming the argument, which the registry returns to the model as
``{"erreur": ...}``: a small model learns from it and tries again, the chat never breaks.
"""

from __future__ import annotations

import math
from typing import Any

_TYPE_WORDS = {
    "object": "un objet JSON",
    "string": "une chaîne de caractères",
    "number": "un nombre",
    "integer": "un nombre entier",
    "boolean": "un booléen (true ou false)",
}


class ToolError(Exception):
    """Bad arguments or a failure a tool reports: its message is one French sentence for the model."""


def validate(schema: dict, value: Any, where: str = "") -> Any:
    """``value`` checked against ``schema`` (integral floats given for an integer become ints);
    a :class:`ToolError` naming the argument (``where``) otherwise."""
    kind = schema.get("type")
    if kind == "object":
        value = _object(schema, value, where)
    elif kind is not None:
        value = _scalar(kind, value, where)
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(str(v) for v in schema["enum"])
        raise ToolError(f"L'argument « {where} » doit valoir l'une de ces valeurs : {choices}.")
    if isinstance(value, str):
        _length(schema, value, where)
    return value


def _object(schema: dict, value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        if where:
            raise ToolError(f"L'argument « {where} » doit être {_TYPE_WORDS['object']}.")
        raise ToolError("Les arguments doivent former un objet JSON, par exemple {\"nom\": valeur}.")
    properties = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            raise ToolError(f"Il manque l'argument « {_join(where, name)} ».")
    out = {}
    for name, item in value.items():
        if name not in properties:
            if schema.get("additionalProperties", True) is False:
                known = ", ".join(properties) or "aucun"
                raise ToolError(f"L'argument « {_join(where, name)} » n'existe pas pour cet outil "
                                f"(arguments possibles : {known}).")
            out[name] = item
            continue
        out[name] = validate(properties[name], item, _join(where, name))
    return out


def _scalar(kind: str, value: Any, where: str) -> Any:
    ok = {
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "integer": (isinstance(value, int) and not isinstance(value, bool))
        or (isinstance(value, float) and value.is_integer()),
    }.get(kind)
    if ok is None:
        raise ValueError(f"schema type {kind!r} is not supported by causette.tools.schema")
    if not ok:
        raise ToolError(f"L'argument « {where} » doit être {_TYPE_WORDS[kind]}.")
    if kind in ("number", "integer") and isinstance(value, float) and not math.isfinite(value):
        raise ToolError(f"L'argument « {where} » doit être un nombre fini.")
    return int(value) if kind == "integer" else value


def _length(schema: dict, value: str, where: str) -> None:
    if "minLength" in schema and len(value.strip()) < schema["minLength"]:
        raise ToolError(f"L'argument « {where} » est vide.")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise ToolError(f"L'argument « {where} » est trop long ({len(value)} caractères, "
                        f"{schema['maxLength']} au plus).")


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else str(name)
