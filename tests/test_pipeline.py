"""`causette run` end to end on a tiny config: every stage, skip when up to date, resume, report."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from causette.cli import main
from helpers import REPO, TINY_MODEL, TINY_TRAIN, demo_excerpt

pytestmark = pytest.mark.slow


def tiny_yaml(tmp_path) -> str:
    src = tmp_path / "src"
    src.mkdir()
    for i, text in enumerate(demo_excerpt(6, 12_000)):
        (src / f"doc{i}.txt").write_text(text, encoding="utf-8")
    sets = [*TINY_MODEL, *TINY_TRAIN, "tokenizer.vocab_size=400", "corpus.min_chars=100", "corpus.val_fraction=0.2",
            "sft.train.max_steps=10", "sft.train.batch_size=4", "sft.train.eval_every=5", "sft.train.ckpt_every=10",
            "sft.eval_answers=4", "sft.eval_max_new_tokens=8", "train.max_steps=20"]
    lines = ["extends: " + str(REPO / "configs" / "demo.yaml"), f"run: {{dir: {tmp_path / 'runs'}, name: tiny}}",
             f"corpus: {{sources: [{{path: {src}}}]}}"]
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(cfg), [a for s in sets for a in ("--set", s)]


def test_run_all_stages_then_skip(tmp_path, capsys):
    cfg, sets = tiny_yaml(tmp_path)
    assert main(["run", cfg, "--no-progress", *sets]) == 0
    out = capsys.readouterr().out
    run = tmp_path / "runs" / "tiny"
    for stage in ("corpus", "tokenizer", "prepare", "train", "sft", "eval", "report"):
        assert f"== {stage}\n" in out
    assert f"causette chat --checkpoint {run / 'sft'}" in out
    stages = json.loads((run / "stages.json").read_text())
    assert set(stages) >= {"corpus", "tokenizer", "prepare", "train", "sft", "eval", "report"}
    report = (run / "report.md").read_text(encoding="utf-8")
    assert "bits par octet" in report and "report/pretrain.png" in report and "(SFT)" in report
    assert (run / "report" / "pretrain.png").stat().st_size > 1000
    ev = json.loads((run / "eval.json").read_text())
    assert ev["base"]["text"]["bits_per_byte"] > 0 and ev["chat"]["stage"] == "sft"
    # in French: thousands split by a narrow no-break space, decimal commas, the SFT table in French
    assert report.startswith("# Rapport du run `tiny`")
    assert re.search(r"\*\*\d,\d{3} bits par octet\*\*", report)
    assert re.search(r"\d\u202f\d{3} caractères", report) and not re.search(r"\d,\d{3},\d{3}", report)
    assert "| | avant le SFT | après le SFT |" in report and re.search(r"\| perplexité \| \d+,\d \| \d+,\d \|", report)

    # a second run skips everything but the report, here written in English
    assert main(["run", cfg, "--no-progress", *sets, "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert out.count("up to date, skipped") == 6 and "== report\n" in out
    report = (run / "report.md").read_text(encoding="utf-8")
    assert report.startswith("# Report of run `tiny`") and "bits par octet" not in report
    assert re.search(r"\*\*\d\.\d{3} bits per byte\*\*", report) and "| | before SFT | after SFT |" in report

    # changing the SFT settings reruns sft and what follows only
    assert main(["run", cfg, "--no-progress", *sets, "--set", "sft.train.lr=5e-4"]) == 0
    out = capsys.readouterr().out
    for stage in ("corpus", "tokenizer", "prepare", "train"):
        assert f"== {stage}: up to date, skipped" in out
    assert "== sft\n" in out and "== eval\n" in out


def test_interrupted_run_resumes_training(tmp_path):
    cfg, sets = tiny_yaml(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killer = str(REPO / "tests" / "kill_at_step.py")  # SIGKILL right after step 13
    killed = subprocess.run([sys.executable, killer, "13", "run", cfg, "--no-progress", *sets],
                            cwd=REPO, env=env, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    again = subprocess.run([sys.executable, "-m", "causette", "run", cfg, "--no-progress", *sets],
                           cwd=REPO, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    for stage in ("corpus", "tokenizer", "prepare"):
        assert f"== {stage}: up to date, skipped" in again.stdout
    assert "resuming from" in again.stdout and "step_0000010" in again.stdout
    assert (tmp_path / "runs" / "tiny" / "report.md").is_file()
