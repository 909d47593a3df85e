"""The built-in tools: their names, French descriptions, JSON-schema parameters and functions.

A model asks for a tool with a name and JSON arguments; :func:`run_tool` checks both against
the tool's schema (:mod:`causette.tools.schema`), runs it, and returns the JSON text of the
result (``json.dumps(..., ensure_ascii=False)``). Whatever goes wrong (an unknown tool,
arguments that are not a JSON object, a missing, extra or ill-typed argument, a division by zero,
a damaged notes file) the answer is ``{"erreur": "<one French sentence>"}``: a tool never raises
into the chat. :func:`openai_tools` gives the ``tools`` list of an OpenAI chat request.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from causette.errors import CausetteError
from causette.tools import calc, dates, notes, search, units
from causette.tools.context import ToolContext
from causette.tools.schema import ToolError, validate
from causette.utils.text import valid_unicode


@dataclass(frozen=True)
class Tool:
    """One tool: ``function(context, **arguments)`` returns the result as a dict."""

    name: str
    description: str
    parameters: dict
    function: Callable[..., dict]

    def openai(self) -> dict:
        """The tool as an item of an OpenAI ``tools`` list."""
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


def _params(required: dict[str, dict], optional: dict[str, dict] | None = None) -> dict:
    return {"type": "object", "properties": {**required, **(optional or {})}, "required": list(required),
            "additionalProperties": False}


def _text(description: str, max_length: int) -> dict:
    return {"type": "string", "description": description, "minLength": 1, "maxLength": max_length}


TOOLS: tuple[Tool, ...] = (
    Tool("calculer",
         "Calcule une expression arithmétique : + - * / // % ** (ou ^), parenthèses, racine, abs, arrondi.",
         _params({"expression": _text("le calcul, par exemple « 17 * 23 » ou « racine(2) »", calc.MAX_LENGTH)}),
         lambda ctx, expression: {"resultat": calc.calculate(expression)}),
    Tool("date_heure", "Donne la date et l'heure actuelles.", _params({}),
         lambda ctx: dates.date_and_time(ctx.clock())),
    Tool("note_ajouter", "Enregistre une note pour l'utilisateur.",
         _params({"texte": _text("le texte de la note", notes.MAX_NOTE)}),
         lambda ctx, texte: notes.add_note(ctx.notes_file, texte)),
    Tool("notes_lister", "Liste les notes enregistrées, avec leur numéro.", _params({}),
         lambda ctx: notes.list_notes(ctx.notes_file)),
    Tool("convertir",
         "Convertit une valeur d'une unité à une autre : longueur, masse, volume, température, vitesse, durée.",
         _params({"valeur": {"type": "number", "description": "la valeur à convertir"},
                  "de": _text("l'unité de départ, par exemple km, °C, lb", 40),
                  "vers": _text("l'unité d'arrivée, par exemple mi, °F, kg", 40)}),
         lambda ctx, valeur, de, vers: units.convert(valeur, de, vers)),
    Tool("chercher", "Cherche des passages dans les textes de l'utilisateur.",
         _params({"requete": _text("les mots à chercher", 500)}),
         lambda ctx, requete: search.search(requete, ctx.roots)),
)
BY_NAME = {tool.name: tool for tool in TOOLS}


def openai_tools(names=None) -> list[dict]:
    """The OpenAI ``tools`` list of ``names`` (in that order; all the built-in tools by default)."""
    if names is None:
        return [tool.openai() for tool in TOOLS]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise CausetteError(f"unknown tool {unknown[0]!r}: the built-in tools are {', '.join(BY_NAME)}")
    return [BY_NAME[n].openai() for n in names]


def tool_result(name: str, arguments: dict | str | None, context: ToolContext | None = None) -> dict:
    """The result of the call as a dict: the tool's, or ``{"erreur": ...}``."""
    try:
        tool = BY_NAME.get(name) if isinstance(name, str) else None
        if tool is None:
            raise ToolError(f"L'outil « {name} » n'existe pas ; les outils sont : {', '.join(BY_NAME)}.")
        args = validate(tool.parameters, _arguments(arguments, tool))
        return tool.function(context or ToolContext.from_env(), **args)
    except ToolError as e:
        return {"erreur": str(e)}
    except Exception as e:  # noqa: BLE001 - a tool never raises into the chat; the type helps a bug report
        return {"erreur": f"L'outil « {name} » a échoué ({type(e).__name__}) ; réessayez autrement."}


def _arguments(arguments: Any, tool: Tool) -> Any:
    """``arguments`` as given by a model: an object, or its JSON text (empty means none)."""
    name = tool.name
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        if not arguments.strip():
            return {}
        try:
            arguments = json.loads(arguments)
        except (json.JSONDecodeError, RecursionError):
            raise ToolError(f"Les arguments de l'outil « {name} » ne sont pas du JSON valide.") from None
    if not isinstance(arguments, dict):
        first = next(iter(tool.parameters["properties"]), None)
        example = f'{{"{first}": …}}' if first else "{}"
        raise ToolError(f"Les arguments de l'outil « {name} » doivent former un objet JSON, comme {example}.")
    return arguments


def run_tool(name: str, arguments: dict | str | None, context: ToolContext | None = None) -> str:
    """The JSON text of the call's result (see :func:`tool_result`), as the ``tool`` message's content."""
    return valid_unicode(json.dumps(tool_result(name, arguments, context), ensure_ascii=False))
