"""Grammar during training and in the report (issue 25, item 4): the training loop scores a fixed
subset of the built-in suite at each evaluation, the eval stage puts the unigram model beside the
models, the report draws the table and the curve, ``explain progression`` shows each step's grammar."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from helpers import TINY_MODEL, TINY_TRAIN, copy_run

from causette.cli import main
from causette.eval.minimal_pairs import fixed_subset, read_pairs
from causette.eval.sentence_scores import EncodedPairs, GrammarProbe, score_pairs, unigram_scores
from causette.utils.paths import GRAMMAR_SUITE, RunLayout


def test_the_unigram_model_scores_token_frequencies():
    # token 0 seen 9 times, token 1 once, token 2 never (add-one: 10, 2, 1 over 13)
    encoded = EncodedPairs(sentences=[[0, 0], [1, 2], [0]], texts=["a", "b", "c"], good=np.array([0, 1, 2]),
                           bad=np.array([1, 0, 1]), phenomena=["x", "x", "y"],
                           too_long=np.array([False, False, True]), block_size=8)
    scores = unigram_scores(encoded, np.array([9, 1, 0]))
    logp = np.log(np.array([10, 2, 1]) / 13)
    assert scores.good[0] == pytest.approx(2 * logp[0]) and scores.bad[0] == pytest.approx(logp[1] + logp[2])
    assert scores.passed.tolist() == [True, False, False]  # the third is too long: not scored
    assert scores.counts() == {"x": (1, 2), "y": (0, 0)}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, base_run):
    """A tiny pretrained run (context 64: most suite sentences fit) with grammar scored in training."""
    root = tmp_path_factory.mktemp("grammar")
    run = copy_run(base_run, root, "tiny")
    sets = [*TINY_MODEL, *TINY_TRAIN, f"run.dir={root}", "run.name=tiny", "model.block_size=64",
            "train.max_steps=20", "train.eval_every=10", "train.grammar_pairs=120"]
    assert main(["train", "--no-progress", *[a for s in sets for a in ("--set", s)]]) == 0
    return run


def test_training_logs_grammar_at_each_evaluation(tiny):
    rows = [json.loads(line) for line in (tiny / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if r["kind"] == "val"]
    assert [r["step"] for r in val] == [10, 20]
    for r in val:
        assert 0 <= r["val/grammaire"] <= 1
        per = {k: v for k, v in r.items() if k.startswith("val/grammaire/")}
        assert len(per) >= 6 and all(0 <= v <= 1 for v in per.values())


def test_the_probe_is_the_scorer_on_a_fixed_subset(tiny):
    from causette.checkpoint.load import load_checkpoint
    from causette.config import load_config

    loaded = load_checkpoint(tiny, device="cpu")
    norm = load_config("demo").corpus.normalize
    probe = GrammarProbe(loaded.tokenizer, 64, 120, norm)
    assert probe.pairs == fixed_subset(read_pairs(GRAMMAR_SUITE), 120)
    metrics = probe(loaded.model)
    counts = score_pairs(loaded.model, loaded.tokenizer, probe.pairs, normalize_cfg=norm).counts()
    correct, total = sum(c for c, _ in counts.values()), sum(t for _, t in counts.values())
    assert metrics["grammaire"] == pytest.approx(correct / total)
    assert {k.split("/")[1] for k in metrics if "/" in k} == {n for n, (_, t) in counts.items() if t}
    # the metrics the last evaluation logged are the probe's on the last checkpoint
    last = [json.loads(line) for line in (tiny / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["val/grammaire"] == pytest.approx(metrics["grammaire"])


def test_the_eval_stage_measures_val_grammar_and_the_unigram_model(tiny):
    from causette.eval.evaluate import run_eval

    out = run_eval(tiny, device="cpu", suites=["grammaire"], grammar_limit=300, with_val=True)
    assert out["text"]["bits_per_byte"] > 0  # the val split is measured too
    g = out["grammar"]
    assert 250 <= g["pairs"] <= 320 and g["scored"] + g["too_long"] == g["pairs"]
    uni = g["unigram"]
    assert uni["overall"]["total"] == g["overall"]["total"] and set(uni["phenomena"]) == set(g["phenomena"])
    # the unigram model's figure, computed again from the run's train tokens by hand
    from causette.data.loader import open_tokens

    tokens = np.asarray(open_tokens(tiny / "data" / "train.bin", "uint16"))
    counts = np.bincount(tokens, minlength=400)[:400] + 1.0
    logp = np.log(counts / counts.sum())
    from causette.config import load_config
    from causette.corpus.normalize import normalize
    from causette.tokenizer.io import load_tokenizer

    loaded_tok = load_tokenizer(tiny / "tokenizer")

    norm = load_config("demo").corpus.normalize
    pairs = fixed_subset(read_pairs(GRAMMAR_SUITE), 300)
    ok = total = 0
    for p in pairs:
        ids = [loaded_tok.encode(normalize(s, norm)) for s in (p.good, p.bad)]
        if max(map(len, ids)) > 64:
            continue
        total += 1
        ok += logp[ids[0]].sum() > logp[ids[1]].sum()
    assert (uni["overall"]["correct"], uni["overall"]["total"]) == (ok, total)


def test_the_report_has_the_grammar_table_and_curve(tiny, tmp_path):
    from causette.eval.evaluate import run_eval
    from causette.eval.report import write_report
    from causette.utils.io import write_json

    run = tmp_path / "tiny"
    shutil.copytree(tiny, run)
    base = run_eval(run, device="cpu", suites=["grammaire"], grammar_limit=300, with_val=True)
    write_json(RunLayout(run).eval_json, {"base": base, "chat": {}})
    report = write_report(run).read_text(encoding="utf-8")
    assert "## Grammaire\u00a0: les paires minimales" in report
    assert "| phénomène | paires | hasard | unigramme | modèle de base |" in report
    overall = base["grammar"]["overall"]
    shown = f"{100 * overall['accuracy']:.1f}".replace(".", ",")
    assert f"| **ensemble** | {overall['total']} | 50\u00a0% |" in report and f"{shown}\u00a0% |" in report
    assert "![la grammaire pendant l'entraînement](report/grammaire.png)" in report
    assert (run / "report" / "grammaire.png").stat().st_size > 5000


def test_explain_progression_shows_each_steps_grammar(tmp_path):
    from causette.config import load_config
    from causette.explain.progression import STEPS, grammar_table

    runs = []
    for i, (preset, _fr, _en) in enumerate(STEPS[:2]):
        run = tmp_path / load_config(preset).run.name
        run.mkdir()
        phen = {"subject_verb_number": {"correct": 60 + i, "total": 100, "accuracy": (60 + i) / 100}}
        run.joinpath("eval.json").write_text(json.dumps({"base": {"grammar": {
            "overall": {"correct": 55, "total": 100, "accuracy": 0.55}, "phenomena": phen}}}), encoding="utf-8")
        runs.append((preset.split("/")[1], run))
    lines = grammar_table(runs)
    assert "hasard\u00a0: 50\u00a0%" in lines[1]
    table = lines[2].splitlines()
    assert table[0].split()[:3] == ["étape", "ensemble", "sujet-verbe"]
    assert table[1].split()[:3] == ["1-bigramme", "55,0", "60,0"] and table[1].split()[3] == "—"
    assert table[2].split()[:3] == ["2-fenetre", "55,0", "61,0"]
    assert grammar_table([("x", tmp_path / "absent")]) == []


def test_grammar_can_be_turned_off(tmp_path, base_run):
    run = copy_run(base_run, tmp_path, "sans")
    sets = [*TINY_MODEL, *TINY_TRAIN, f"run.dir={tmp_path}", "run.name=sans", "train.max_steps=10",
            "train.grammar_pairs=0"]
    assert main(["train", "--no-progress", *[a for s in sets for a in ("--set", s)]]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert not any("val/grammaire" in r for r in rows) and any(r["kind"] == "val" for r in rows)
    assert not math.isnan(rows[-1].get("val/loss", math.nan))
