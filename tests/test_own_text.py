"""Your own text, whatever its shape: bad inputs get one line (never a traceback), `causette eval
--data` cleans text like the run's corpus, and `causette run SOURCES` goes from text to chat."""

from __future__ import annotations

import gzip
import io
import json
import math
from pathlib import Path

import pytest
from helpers import TINY_MODEL, TINY_TRAIN, copy_run, demo_excerpt, tiny_config

from causette.cli import main
from causette.corpus.store import iter_texts
from causette.eval.evaluate import run_eval
from causette.train.pretrain import train


def sets(tmp_path: Path, name: str, *extra: str) -> list[str]:
    values = [f"run.dir={tmp_path}", f"run.name={name}", *TINY_MODEL, *TINY_TRAIN, "tokenizer.vocab_size=400", *extra]
    return [a for s in values for a in ("--set", s)]


def one_line_error(capsys, code: int) -> str:
    captured = capsys.readouterr()
    assert code == 1, captured.out + captured.err
    assert "Traceback" not in captured.err + captured.out
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    return captured.err


# ----------------------------------------------------------------------------- one line, never a traceback


def test_empty_token_files_from_an_older_version(base_run, tmp_path, capsys):
    for split in ("train", "val"):
        run = copy_run(base_run, tmp_path, f"empty_{split}")
        (run / "data" / f"{split}.bin").write_bytes(b"")
        err = one_line_error(capsys, main(["train", "--no-progress", *sets(tmp_path, run.name)]))
        assert f"{split}.bin: empty token file" in err and "causette prepare" in err


def test_val_fraction_zero_with_validation_on(tmp_path, capsys):
    src = tmp_path / "livre.txt"
    src.write_text("\n\n".join(demo_excerpt(3, 12_000)), encoding="utf-8")
    common = sets(tmp_path, "noval", "corpus.val_fraction=0", "corpus.min_chars=100")
    assert main(["corpus", "build", str(src), "--no-progress", *common]) == 0
    assert main(["tokenizer", "train", *common]) == 0
    assert main(["prepare", *common]) == 0
    out = capsys.readouterr().out
    assert "no val split" in out and "val 0 tokens" in out
    err = one_line_error(capsys, main(["train", "--no-progress", *common]))
    assert "val split is empty" in err and "corpus.val_fraction" in err and "train.eval_tokens=0" in err
    # without validation, as the message proposes, it trains
    assert main(["train", "--no-progress", *common, "--set", "train.eval_tokens=0"]) == 0
    assert "no validation (train.eval_tokens=0)" in capsys.readouterr().out


def test_block_size_longer_than_the_val_split(base_run, tmp_path, capsys):
    run = copy_run(base_run, tmp_path, "longblock")
    splits = json.loads((run / "data" / "meta.json").read_text())["splits"]
    block = int(splits["val"]["tokens"]) + 5
    assert 2 * (block + 1) < int(splits["train"]["tokens"])  # train still holds two windows
    err = one_line_error(capsys, main(["train", "--no-progress", *sets(tmp_path, run.name, f"model.block_size={block}")]))
    assert "the val split has" in err and f"model.block_size+1 = {block + 1}" in err


def test_vocabulary_larger_than_the_text_can_fill(tmp_path, capsys):
    src = tmp_path / "court.txt"
    src.write_text(demo_excerpt(1, 12_000)[0], encoding="utf-8")
    common = sets(tmp_path, "bigvocab", "corpus.min_chars=100")
    assert main(["corpus", "build", str(src), "--no-progress", *common]) == 0
    capsys.readouterr()
    # the tokenizer cannot invent pairs the text does not have: it says so in one line and goes on
    assert main(["tokenizer", "train", *common, "--set", "tokenizer.vocab_size=16000"]) == 0
    captured = capsys.readouterr()
    warning = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "not 16000" in warning[0] and "too small to fill it" in warning[0]
    assert "Traceback" not in captured.err
    vocab = json.loads((tmp_path / "bigvocab" / "tokenizer" / "tokenizer.json").read_text())["vocab_size"]
    assert 400 < vocab < 16000
    # ...and the model adopts the vocabulary the tokenizer has
    assert main(["prepare", *common]) == 0
    assert main(["train", "--no-progress", *common, "--set", "model.vocab_size=16000"]) == 0
    assert "model.vocab_size set to the tokenizer's" in capsys.readouterr().out


def test_eval_of_a_missing_file(base_run, tmp_path, capsys):
    run = copy_run(base_run, tmp_path, "evalmiss")
    assert main(["train", "--no-progress", *sets(tmp_path, run.name, "train.max_steps=2")]) == 0
    capsys.readouterr()
    err = one_line_error(capsys, main(["eval", "--checkpoint", str(run), "--data", str(tmp_path / "absent.txt")]))
    assert "absent.txt: no such file" in err


# ----------------------------------------------------------------------------- eval cleans text like the corpus


@pytest.fixture(scope="module")
def trained(base_run, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    run = copy_run(base_run, root, "trained")
    train(tiny_config(root, "trained", ["train.max_steps=30", "train.eval_tokens=100000"]), progress=False, echo=lambda s: None)
    return run


def test_eval_of_the_val_documents_equals_training_val(trained, tmp_path):
    """The val documents, given back as text files, score the trainer's own val bits per byte."""
    final = [r for r in map(json.loads, (trained / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "val"][-1]
    files = []
    for i, text in enumerate(iter_texts(trained / "corpus", "val")):
        files.append(tmp_path / f"val{i}.txt")
        files[-1].write_text(text, encoding="utf-8")
    result = run_eval(trained, data=[str(f) for f in files], max_tokens=100_000)
    assert result["text"]["text"] == "normalised" and result["text"]["normalize_from"] == str(trained / "corpus")
    assert result["text"]["bits_per_byte"] == pytest.approx(final["val/bits_per_byte"], abs=1e-3)
    assert result["text"]["tokens"] == final["val/tokens"]  # the same windows


def test_eval_normalises_typography_unless_raw(trained, tmp_path, capsys):
    text = next(iter_texts(trained / "corpus", "val"))
    assert "'" in text
    typographic = text.replace("'", "\u2019").replace(" ?", "\u00a0?").replace(" !", "\u202f!")
    clean, typo = tmp_path / "propre.txt", tmp_path / "typo.txt.gz"
    clean.write_text(text, encoding="utf-8")
    typo.write_bytes(gzip.compress(typographic.encode("utf-8")))
    a = run_eval(trained, data=[str(clean)])["text"]
    b = run_eval(trained, data=[str(typo)])["text"]
    raw = run_eval(trained, data=[str(typo)], raw=True)["text"]
    assert b["bits_per_byte"] == pytest.approx(a["bits_per_byte"], abs=1e-9)  # the same text once cleaned
    assert b["input_bytes"] > a["input_bytes"]  # ’ is 3 bytes, ' is 1
    assert raw["text"] == "raw" and not math.isclose(raw["bits_per_byte"], a["bits_per_byte"], abs_tol=1e-3)
    # the output says which bytes were scored
    assert main(["eval", "--checkpoint", str(trained), "--data", str(typo), "--raw"]) == 0
    assert "bytes scored:" in capsys.readouterr().out
    assert main(["eval", "--checkpoint", str(trained), "--data", str(typo)]) == 0
    out = capsys.readouterr().out
    assert "UTF-8 bytes of the text cleaned like the run's corpus" in out


# ----------------------------------------------------------------------------- causette run SOURCES


def test_run_split_args():
    from causette.errors import CausetteError
    from causette.pipeline import default_run_name, split_run_args

    assert split_run_args([]) == (None, [])
    assert split_run_args(["demo"]) == ("demo", [])
    assert split_run_args(["model/llama"]) == ("model/llama", [])
    with pytest.raises(CausetteError, match=r"nope.txt: no such file or folder, nor a shipped config \(shipped: .*demo"):
        split_run_args(["nope.txt"])
    assert default_run_name("textes/livre.txt.gz") == "livre" and default_run_name("mes_textes/") == "mes_textes"


@pytest.mark.slow
def test_run_own_text_to_chat(tmp_path, capsys, monkeypatch):
    """`causette run livre.txt`: the demo settings on one file, fitted to its size, then a chat."""
    monkeypatch.chdir(tmp_path)
    Path("livre.txt").write_text("\n\n".join(demo_excerpt(4, 15_000)), encoding="utf-8")
    sft = ["sft.train.max_steps=4", "sft.train.batch_size=4", "sft.train.eval_every=2", "sft.train.ckpt_every=4",
           "sft.eval_answers=2", "sft.eval_max_new_tokens=4"]
    tiny = [a for s in [*TINY_MODEL, *[t for t in TINY_TRAIN if not t.startswith(("train.max_steps", "train.batch_size"))],
                        "corpus.min_chars=100", *sft] for a in ("--set", s)]
    assert main(["run", "livre.txt", "--no-progress", *tiny]) == 0
    out = capsys.readouterr().out
    run = Path("runs/livre")
    assert "split: val = the last 10% of 1 of 1 document(s)" in out
    assert "uses the demo conversations" in out
    assert "fit: tokenizer.vocab_size" in out  # ~50k characters: a smaller vocabulary than the demo's 4096
    assert "steps: " in out and "2 epochs of" in out  # capped at 2 epochs (train.max_epochs)
    assert "causette chat --checkpoint runs/livre/sft" in out
    meta = json.loads((run / "data" / "meta.json").read_text())
    assert meta["splits"]["val"]["tokens"] > 0
    state = json.loads(next((run / "checkpoints").glob("step_*/state.json")).read_text())
    assert state["config"]["train"]["max_epochs"] == 2
    steps = max(int(p.name.split("_")[1]) for p in (run / "checkpoints").glob("step_*"))
    per_step = 4 * 32  # batch_size 4 (fitted down) × block 32
    assert steps == math.ceil(2 * meta["splits"]["train"]["tokens"] / per_step)

    # and the printed command answers (a piped chat: one question, then end of input)
    monkeypatch.setattr("sys.stdin", io.StringIO("Bonjour !\n"))
    assert main(["chat", "--checkpoint", "runs/livre/sft", "--max-new-tokens", "5", "--temperature", "0"]) == 0
    out = capsys.readouterr().out
    assert "stage sft" in out and "modèle> " in out and out.split("modèle> ", 1)[1].strip()
