"""`causette export ollama`: a folder `ollama create` reads, whose template renders our chat format.

Ollama itself cannot run here; its template language is Go's ``text/template``. When a Go
toolchain is installed (``.ci/run`` installs Debian's), the Modelfile's TEMPLATE is executed by
Go's real engine with the data laid out as Ollama lays it out (tools/ollama/render_template.go),
and must give our text exactly.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import make_chat_checkpoints

from causette.cli import main as cli_main
from causette.data.chat_template import render_text
from causette.export.gguf import export_gguf
from causette.export.ollama import TEMPLATES, modelfile
from causette.inference.config import CHAT_DEFAULTS

ROOT = Path(__file__).resolve().parents[1]
RENDER = ROOT / "tools" / "ollama" / "render_template.go"

CONVERSATIONS = [
    [{"role": "user", "content": "Bonjour !"}],
    [
        {"role": "system", "content": "Tu es concis.\nRéponds en français."},
        {"role": "user", "content": "Quelle est la capitale de l'Italie ?"},
        {"role": "assistant", "content": "Rome."},
        {"role": "user", "content": "  Et {{ .Prompt }} de l'Espagne ?\n\n"},
    ],
]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return make_chat_checkpoints(tmp_path_factory.mktemp("ollama"))


def parse_modelfile(text: str) -> dict:
    """FROM, TEMPLATE and the PARAMETER lines (a list per name) of a Modelfile."""
    out: dict = {"PARAMETER": {}}
    template = re.search(r'^TEMPLATE """(.*?)"""$', text, re.S | re.M)
    out["TEMPLATE"] = template.group(1) if template else None
    for line in text.splitlines():
        if line.startswith("FROM "):
            out["FROM"] = line[5:]
        elif line.startswith("PARAMETER "):
            _, name, value = line.split(" ", 2)
            out["PARAMETER"].setdefault(name, []).append(value)
    return out


def test_export_writes_the_gguf_and_a_modelfile(checkpoints, tmp_path, capsys):
    out = tmp_path / "mon-modele"
    assert cli_main(["export", "ollama", str(checkpoints["sft"]), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ollama create mon-modele -f" in printed
    assert sorted(p.name for p in out.iterdir()) == ["Modelfile", "model.gguf"]
    export_gguf(checkpoints["sft"], tmp_path / "direct.gguf")
    assert (out / "model.gguf").read_bytes() == (tmp_path / "direct.gguf").read_bytes()
    m = parse_modelfile((out / "Modelfile").read_text(encoding="utf-8"))
    assert m["FROM"] == "./model.gguf" and m["TEMPLATE"] == TEMPLATES["chatml"]
    p = m["PARAMETER"]
    assert p["stop"] == ['"<|im_end|>"', '"<|bos|>"', '"<|pad|>"', '"<|im_start|>"']
    assert p["temperature"] == [f"{CHAT_DEFAULTS.temperature:g}"] and p["top_k"] == [str(CHAT_DEFAULTS.top_k)]
    assert p["top_p"] == ["0.95"] and p["repeat_penalty"] == ["1"] and p["num_ctx"] == ["64"]
    assert p["num_predict"] == [str(CHAT_DEFAULTS.max_new_tokens)]
    # a second export into the same folder needs --force
    assert cli_main(["export", "ollama", str(checkpoints["sft"]), str(out)]) == 1
    assert "not empty" in capsys.readouterr().err


def test_a_base_model_continues_the_prompt(checkpoints, tmp_path):
    assert cli_main(["export", "ollama", str(checkpoints["pretrain"]), str(tmp_path / "base")]) == 0
    m = parse_modelfile((tmp_path / "base" / "Modelfile").read_text(encoding="utf-8"))
    assert m["TEMPLATE"] == "{{ .Prompt }}" and "stop" not in m["PARAMETER"]
    assert m["PARAMETER"]["temperature"] == ["0.8"]


def test_modelfile_text_is_stable():
    text = modelfile("chatml", ["<|im_end|>"], 256)
    assert text.splitlines()[1:3] == [
        "FROM ./model.gguf",
        'TEMPLATE """{{ $system := false }}{{ $text := "" }}{{ range $i, $m := .Messages }}'
        '{{ if and (eq $i 0) (eq .Role "system") }}{{ $system = true }}{{ $text = .Content }}{{ end }}{{ end }}'
        "{{ if or $system .Tools }}<|im_start|>system",
    ]
    assert text.count('"""') == 2 and '"""' not in TEMPLATES["chatml"]


def go_render(template: str, messages: list[dict], tmp_path: Path, tools=None, tag: bool = False) -> str:
    (tmp_path / "t.txt").write_text(template, encoding="utf-8")
    (tmp_path / "c.json").write_text(json.dumps({"messages": messages, "tools": tools}), encoding="utf-8")
    done = subprocess.run(
        ["go", "run", str(RENDER), str(tmp_path / "t.txt"), str(tmp_path / "c.json")] + (["tag"] if tag else []),
        capture_output=True, text=True, timeout=300, env=go_env(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def go_env(tmp_path: Path) -> dict:
    import os

    env = dict(os.environ)
    env.setdefault("GOCACHE", str(tmp_path / "gocache"))  # a writable build cache
    env["GOFLAGS"] = "-mod=mod"
    env["GO111MODULE"] = "off"  # one file, standard library only: no module, no network
    return env


@pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain (apt-get install golang-go)")
@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_go_text_template_renders_our_chat_format(messages, tmp_path):
    """Ollama adds <|bos|> itself (the GGUF's add_bos_token): the template gives the rest."""
    got = go_render(TEMPLATES["chatml"], messages, tmp_path)
    assert "<|bos|>" + got == render_text(messages, add_generation_prompt=True)
    legacy = go_render(TEMPLATES["legacy"], messages, tmp_path)
    assert "<|bos|>" + legacy == render_text(messages, add_generation_prompt=True, fmt="legacy")


# ------------------------------------------------------------------------------ tools


def tool(name: str, args: list[str], description: str = "Un outil.") -> dict:
    properties = {a: {"type": "string", "description": f"l'argument {a}"} for a in args}
    return {"type": "function", "function": {"name": name, "description": description,
                                             "parameters": {"type": "object", "properties": properties, "required": args}}}


def call(name: str, arguments: dict, n: int = 1) -> dict:
    return {"id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": arguments}}


BUILTIN = [tool("calculer", ["expression"]), tool("date_heure", []), tool("note_ajouter", ["texte"]),
           tool("notes_lister", []), tool("convertir", ["valeur", "de", "vers"]), tool("chercher", ["requete"])]
METEO = tool("météo", ["ville"], "La météo d'une ville « en direct » & <sans> garantie")
ONE_ARGUMENT = [
    {"role": "system", "content": "Tu es Causette."},
    {"role": "user", "content": "Combien font 17 fois 23 ? Et note-le."},
    {"role": "assistant", "content": "Je calcule.", "tool_calls": [
        call("calculer", {"expression": "17*23 <= 400 & \"vrai\""}, 1), call("note_ajouter", {"texte": "Léa\n→ 391"}, 2)]},
    {"role": "tool", "tool_call_id": "call_1", "content": '{"resultat": 391}'},
    {"role": "tool", "tool_call_id": "call_2", "content": '{"ok": true, "numero": 1, "texte": "Léa"}'},
    {"role": "assistant", "content": "391, c'est noté."},
    {"role": "user", "content": "Quelle heure est-il ?"},
    {"role": "assistant", "content": "", "tool_calls": [call("date_heure", {}, 3)]},
    {"role": "tool", "tool_call_id": "call_3", "content": '{"date": "samedi 6 décembre 2026", "heure": "14:05"}'},
]
needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain (apt-get install golang-go)")


@needs_go
@pytest.mark.parametrize("tools", [BUILTIN, BUILTIN[:1] + BUILTIN[2:3], None], ids=["builtin", "subset", "none"])
@pytest.mark.parametrize("messages", [ONE_ARGUMENT, ONE_ARGUMENT[1:3] + ONE_ARGUMENT[3:5], ONE_ARGUMENT[1:2]],
                         ids=["history", "no-system", "question"])
def test_go_text_template_renders_tool_conversations(messages, tools, tmp_path):
    """Calls, results and the compact tools line, as Ollama hands them over (arguments as a map,
    consecutive tool messages kept apart): our text."""
    got = go_render(TEMPLATES["chatml"], messages, tmp_path, tools=tools)
    assert "<|bos|>" + got == render_text(messages, add_generation_prompt=True, tools=tools)


@needs_go
def test_ollama_sorts_the_arguments_and_writes_client_tools_its_way(tmp_path):
    """Ollama's two known differences: a template sees arguments as a Go map (its keys come
    sorted) and tools as Ollama's own structures (its ``json`` is Go's, compact, in its field
    order): the same content, other bytes. Everything else is our text."""
    messages = [
        {"role": "user", "content": "5 km en miles ?"},
        {"role": "assistant", "content": "", "tool_calls": [call("convertir", {"valeur": 5, "de": "km", "vers": "mi"})]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"valeur": 3.10686, "unite": "mi"}'},
    ]
    got = "<|bos|>" + go_render(TEMPLATES["chatml"], messages, tmp_path, tools=[METEO, BUILTIN[4]])
    sorted_args = [dict(m, tool_calls=[call("convertir", {"de": "km", "valeur": 5, "vers": "mi"})]) if m.get("tool_calls") else m
                   for m in messages]
    ours = render_text(sorted_args, add_generation_prompt=True, tools=[METEO, BUILTIN[4]]).splitlines()
    got_lines = got.splitlines()
    assert len(got_lines) == len(ours)
    tool_lines = [i for i, line in enumerate(ours) if line.startswith('{"type": "function"')]
    assert len(tool_lines) == 2
    for i, (theirs, mine) in enumerate(zip(got_lines, ours)):
        if i in tool_lines:
            assert theirs != mine and json.loads(theirs) == json.loads(mine)
        else:
            assert theirs == mine
    assert '{"name": "convertir", "arguments": {"de": "km", "valeur": 5, "vers": "mi"}}' in got


@needs_go
def test_ollama_finds_the_tool_call_tag(tmp_path):
    """Ollama reads the tag that starts a call in the model's output from the template (the first
    text inside the first ``if`` on ``.ToolCalls``): ours must give ``<tool_call>``."""
    assert go_render(TEMPLATES["chatml"], [], tmp_path, tag=True) == "<tool_call>"
    # the rule, on templates that do not give a tag: an action first, or no "if" on .ToolCalls
    assert go_render("{{ if .ToolCalls }}{{ .Content }}<tool_call>{{ end }}", [], tmp_path, tag=True) == "{"
    assert go_render("{{ range .ToolCalls }}<tool_call>{{ end }}", [], tmp_path, tag=True) == "{"
