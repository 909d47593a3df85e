"""Tool use measured (causette/eval/tools.py): what counts as an exact argument and as an answer
that states the result, the scores of a model whose behaviour is known, and the report's table."""

from __future__ import annotations

import json

import pytest

from helpers import ToolUser

from causette.eval.tools import answer_keys, evaluate_tools, exact_arguments, tools_section
from causette.sft.tool_data import generate_dialogues
from causette.tokenizer import train_tokenizer
from causette.tokenizer.config import TokenizerConfig
from causette.utils.lang import using


def test_exact_arguments_compare_numbers_as_numbers_and_text_without_case():
    assert exact_arguments({"valeur": 5, "de": " KM", "vers": "mi"}, {"valeur": 5.0, "de": "km", "vers": "mi"})
    assert not exact_arguments({"valeur": 5.01, "de": "km", "vers": "mi"}, {"valeur": 5, "de": "km", "vers": "mi"})
    assert not exact_arguments({"valeur": 5, "de": "km"}, {"valeur": 5, "de": "km", "vers": "mi"})
    assert not exact_arguments({"x": True}, {"x": 1})  # a boolean is not the number 1


def test_answer_keys_are_the_result_values_the_reference_states():
    assert answer_keys('{"resultat": 391}', "17 × 23 font 391.") == ["391"]
    assert answer_keys('{"valeur": 2.17479, "unite": "mi"}', "Cela fait 2,17479 mi.") == ["2,17479", "mi"]
    date = json.dumps({"date": "samedi 6 décembre 2026", "heure": "14:05"}, ensure_ascii=False)
    assert answer_keys(date, "Il est 14 h 05.") == ["14 h 05"]
    assert answer_keys(date, "Nous sommes en 2026.") == ["2026"]
    assert "6" not in answer_keys(date, "Il est 16 h.")  # a whole word, not a digit inside a number
    assert answer_keys("pas du json", "391") == []


@pytest.fixture(scope="module")
def tok():
    text = "Combien font 17 fois 23 ? 17 × 23 font 391. " * 20 + '{"name": "calculer", "arguments": {}} ' * 5
    return train_tokenizer(TokenizerConfig(vocab_size=400, workers=1), [text])


def test_a_model_that_always_calls_calculer_is_scored_as_it_behaves(tok):
    """Whatever it is asked, the stand-in calls calculer(17*23) and then says « 17 × 23 font 391. »:
    right tool exactly on the calculer requests, no exact argument (no eval request asks 17*23),
    every no-tool decision wrong, every call parses."""
    n = 40
    model = ToolUser(tok, '\n{"name": "calculer", "arguments": {"expression": "17*23"}}\n', "17 × 23 font 391.")
    model.cfg.block_size = 4096  # the tools line in a 400-token vocabulary is long
    result = evaluate_tools(model, tok, n=n, decode="exact")
    items = list(generate_dialogues(n, 0, split="eval"))
    asked = [i for i in items if i.get("expected")]
    calc = sum(i["expected"]["name"] == "calculer" for i in asked)
    assert result["asked"] == len(asked) and result["no_tool"] == n - len(asked) > 0
    assert result["right_tool"] == pytest.approx(calc / len(asked)) and calc > 0
    assert result["exact_arguments"] == 0 and result["answer_right"] == 0
    assert result["no_tool_right"] == 0 and result["parsed"] == 1.0 and result["calls"] == len(asked)
    assert result["tools"]["calculer"]["right_tool"] == 1.0
    with using("fr"):
        section = "\n".join(tools_section(result))
    assert section.startswith("## Outils") and "| bon outil | " in section and "| `calculer` | " in section
    assert tools_section(None) == []
