"""Tools a small French assistant can call, in the Hermes/Qwen2.5 ``<tool_call>`` style.

    registry.py   TOOLS, openai_tools(), run_tool(): names, descriptions, schemas, results as JSON
    schema.py     the validator of a call's arguments, ToolError
    context.py    ToolContext: the data folder, the texts searched, the clock
    calc.py       calculer: arithmetic from an AST walked by hand (no eval)
    dates.py      date_heure: the date and time in French
    notes.py      note_ajouter, notes_lister: notes.json in the user's data folder
    units.py      convertir: lengths, masses, volumes, temperatures, speeds, durations
    search.py     chercher: BM25 over the user's texts (or the demo corpus)

Torch-free and below every stage: the chat, the server and the SFT data all call these.
"""

from causette.tools.context import ToolContext
from causette.tools.registry import BY_NAME, TOOLS, Tool, openai_tools, run_tool, tool_result
from causette.tools.schema import ToolError

__all__ = ["BY_NAME", "TOOLS", "Tool", "ToolContext", "ToolError", "openai_tools", "run_tool", "tool_result"]
