"""``python -m causette.explain`` speaks French by default, English with ``--lang`` or the environment;
every topic accepts a sentence; without ``--checkpoint`` one line says what a trained model would show."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from causette import explain
from causette.explain.cli import run
from causette.utils.lang import NBSP, NNBSP

FRENCH_NUMBER = re.compile(r"\d,\d")  # a decimal comma
ENGLISH_DECIMAL = re.compile(r"\d\.\d")


def test_tokens_in_french_then_in_english():
    fr = run(["tokens", "Qu'est-ce que l'été ?"])
    assert f"texte{NBSP}: 21 caractères, 23 octets UTF-8" in fr
    assert f"decode(encode(texte)) == texte{NBSP}: oui" in fr
    assert re.search(r"\d+ tokens pour 23 octets\u00a0: \d,\d\d octets par token", fr)
    assert "BPE sur le plus long morceau «\u00a0'été\u00a0»" in fr
    en = run(["tokens", "Qu'est-ce que l'été ?", "--lang", "en"])
    assert "text: 21 characters, 23 UTF-8 bytes" in en and "decode(encode(text)) == text: True" in en
    assert "caractères" not in en and re.search(r"\d\.\d\d bytes per token", en)


def test_numbers_follow_the_language():
    fr = run(["heads", "Le chat dort."])
    assert f"multi-têtes (4 têtes kv) 4{NNBSP}096 octets, ce modèle (2) 2{NNBSP}048 octets" in fr
    assert "BPE de 2\u202f048 tokens appris sur 400\u202f000 caractères" in fr
    fr = run(["mlp"])
    assert f"LayerNorm (x - moyenne)/écart type = [0,447{NNBSP}; -1,342{NNBSP}; -0,447{NNBSP}; 1,342]" in fr
    assert FRENCH_NUMBER.search(fr) and not ENGLISH_DECIMAL.search(fr.split("\n", 1)[1])
    en = run(["mlp", "--lang", "en"])
    assert "LayerNorm (x - mean)/std = [0.447, -1.342, -0.447, 1.342]" in en


def test_environment_chooses_english(monkeypatch):
    monkeypatch.setenv("CAUSETTE_LANG", "en")
    assert run(["schedule"]).startswith("lr 0.002 → min_lr 0.0002, warmup 60 steps")
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    monkeypatch.setenv("CAUSETTE_LANG", "fr")  # CAUSETTE_LANG wins over the locale
    assert run(["schedule"]).startswith("lr 0,002 → min_lr 0,0002, préchauffage 60 pas")
    assert run(["schedule", "--lang", "en"]).startswith("lr 0.002")  # and --lang over both


@pytest.mark.parametrize("name", sorted(set(explain.TOPICS) - {"bleu", "curves"}))  # curves: tests/test_pictures.py
def test_every_topic_accepts_a_sentence(name):
    out = run([name, "Le roi dort."])
    assert out.strip()
    if name in ("positions", "schedule", "muon", "progression", "scaling"):
        assert out.startswith(f"note{NBSP}: ") and "la phrase" in out.splitlines()[0]
        assert out.split("\n\n", 1)[1] == run([name])  # the rest is the same
    elif name != "sampling":
        assert f"modèle{NBSP}: model/" in out and "poids aléatoires" in out


def test_lora_uses_the_sentence():
    assert run(["lora", "Le roi dort."]) != run(["lora", "Qui a écrit Phèdre ?"])


def test_bleu_takes_its_two_sentences():
    out = run(["bleu", "Le chat dort.", "Le chat dort."])
    assert f"réponse exacte{NBSP}: oui" in out and "BLEU 100,0" in out


def test_random_model_says_what_a_trained_one_would_show():
    for name in ("attention", "embeddings", "model", "loss", "moe"):
        lines = run([name, "Le chat dort."]).split("\n\n")[0].splitlines()
        hint = [ln for ln in lines if ln.startswith("un modèle entraîné (--checkpoint")]
        assert len(hint) == 1 and "montrerait" in hint[0]
    en = run(["attention", "--lang", "en"]).split("\n\n")[0]
    assert "a trained model (--checkpoint, e.g. runs/demo) would show" in en


def test_errors_in_french_then_english():
    base = [sys.executable, "-m", "causette.explain", "attention", "Le chat.", "--layer", "9"]
    r = subprocess.run(base, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr.strip() == f"erreur{NBSP}: --layer doit être entre 0 et 3"
    r = subprocess.run([*base, "--lang", "en"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr.strip() == "error: --layer must be between 0 and 3"


def test_help_speaks_the_language(capsys):
    with pytest.raises(SystemExit):
        run(["--help"])
    assert "Voir les notions de docs/" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        run(["--lang", "en", "--help"])
    assert "See the concepts of docs/" in capsys.readouterr().out
