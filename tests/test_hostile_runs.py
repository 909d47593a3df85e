"""A hostile user's runs (issue 24): nothing deleted that Causette did not write, nothing reused on
a stale record's word, one process per run folder, every stage resumable, damaged checkpoints
refused, one line for every error.

Each test runs the real command line (in-process through ``causette.cli.main``, or as a
subprocess when a process must die or hold a lock) and asserts the exit code, the one ``error:``
line, and that the user's files are untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from causette.cli import main
from causette.checkpoint.steps import find_checkpoint
from causette.errors import CausetteError
from causette.utils.io import sha256_file
from causette.utils.lock import is_locked, run_lock
from helpers import REPO, TINY_MODEL, TINY_TRAIN, copy_run, demo_excerpt


def one_error_line(capsys) -> str:
    """The command's stderr, checked to be exactly one ``error: …`` line (and no traceback)."""
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and not any("Traceback" in line for line in err), err
    return errors[0]


def texts(folder: Path, n: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(demo_excerpt(n, 12_000)):
        (folder / f"d{i}.txt").write_text(text, encoding="utf-8")
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- never delete what is not ours


def test_corpus_out_refuses_a_folder_causette_did_not_write(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = texts(tmp_path / "mytexts")
    other = tmp_path / "other"
    other.mkdir()
    (other / "mine.txt").write_text("à garder", encoding="utf-8")
    assert main(["corpus", "build", str(src), "--out", str(other), "--no-progress"]) == 1
    line = one_error_line(capsys)
    assert "other: exists and was not written by Causette (mine.txt)" in line and "--force" in line
    assert snapshot(other) == {"mine.txt": "à garder".encode()}

    # a Causette corpus there is replaced; --force replaces the user's folder, as asked
    assert main(["corpus", "build", str(src), "--out", str(tmp_path / "c"), "--no-progress"]) == 0
    assert main(["corpus", "build", str(src), "--out", str(tmp_path / "c"), "--no-progress"]) == 0
    assert main(["corpus", "build", str(src), "--out", str(other), "--no-progress", "--force"]) == 0
    assert sorted(snapshot(other)) == [".causette", "docs.jsonl.gz", "manifest.json"]


@pytest.mark.parametrize("out", ["mytexts", "mytexts/sub", ".", "~"])
def test_corpus_never_writes_over_or_inside_its_sources_even_forced(tmp_path, capsys, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    src = texts(tmp_path / "mytexts")
    before = snapshot(src)
    target = os.path.expanduser(out)
    assert main(["corpus", "build", "mytexts", "--out", target, "--no-progress", "--force"]) == 1
    line = one_error_line(capsys)
    why = {"mytexts": "it holds mytexts, which is being read", "mytexts/sub": "it lies inside mytexts",
           ".": "it holds mytexts", "~": "it is your home folder"}[out]
    assert "Causette will not write a corpus folder here" in line and why in line
    assert snapshot(src) == before and not (src / "sub").exists()


def test_other_outputs_refuse_foreign_folders(tmp_path, capsys, base_run):
    foreign = tmp_path / "docs"
    foreign.mkdir()
    (foreign / "lettre.odt").write_bytes(b"\x00\x01")
    # token data
    assert main(["prepare", "--corpus", str(base_run / "corpus"), "--tokenizer", str(base_run / "tokenizer"),
                 "--out", str(foreign), "--no-progress"]) == 1
    assert "docs: exists and was not written by Causette (lettre.odt)" in one_error_line(capsys)
    # a Causette folder of another kind is not token data either (nor one being read)
    shutil.copytree(base_run / "corpus", tmp_path / "corpus2")
    assert main(["prepare", "--corpus", str(base_run / "corpus"), "--tokenizer", str(base_run / "tokenizer"),
                 "--out", str(tmp_path / "corpus2"), "--no-progress"]) == 1
    assert "holds a Causette corpus folder, not a data folder" in one_error_line(capsys)
    assert main(["prepare", "--corpus", str(base_run / "corpus"), "--tokenizer", str(base_run / "tokenizer"),
                 "--out", str(base_run / "corpus"), "--no-progress", "--force"]) == 1
    assert "it holds" in one_error_line(capsys) and (base_run / "corpus" / "docs.jsonl.gz").is_file()
    # tokenizer files added to a foreign folder
    assert main(["tokenizer", "train", "--corpus", str(base_run / "corpus"), "--out", str(foreign),
                 "--set", "tokenizer.vocab_size=300"]) == 1
    assert "--force to write the tokenizer files into it" in one_error_line(capsys)
    # a report only in a run folder
    assert main(["report", str(foreign)]) == 1
    assert "not a Causette run folder" in one_error_line(capsys)
    assert snapshot(foreign) == {"lettre.odt": b"\x00\x01"}


def test_a_run_folder_must_be_a_run(tmp_path, capsys, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    (here / "notes.txt").write_text("mes notes", encoding="utf-8")
    assert main(["run", "demo", "--set", "run.dir=.", "--set", "run.name=.", "--no-progress"]) == 1
    assert "run.name must be a folder name, not '.' or '..'" in one_error_line(capsys)
    # the current folder by another path
    assert main(["run", "demo", "--set", f"run.dir={tmp_path}", "--set", "run.name=here", "--no-progress"]) == 1
    assert "cannot be a run folder: it is the current folder" in one_error_line(capsys)
    papers = tmp_path / "papiers"
    papers.mkdir()
    (papers / "facture.pdf").write_bytes(b"%PDF")
    assert main(["run", "demo", "--set", f"run.dir={tmp_path}", "--set", "run.name=papiers", "--no-progress"]) == 1
    assert "papiers: exists and is not a Causette run folder" in one_error_line(capsys)
    assert snapshot(tmp_path) == {"here/notes.txt": b"mes notes", "papiers/facture.pdf": b"%PDF"}


# ----------------------------------------------------------------------------- reuse only what is proven


def stages_argv(tmp_path: Path, name: str) -> list[str]:
    src = tmp_path / "src"
    if not src.is_dir():
        texts(src, 6)
    sets = [*TINY_MODEL, *TINY_TRAIN, "tokenizer.vocab_size=400", "corpus.min_chars=100", "corpus.val_fraction=0.2",
            f"run.dir={tmp_path / 'runs'}", f"run.name={name}"]
    cfg = tmp_path / "own.yaml"
    cfg.write_text(f"extends: demo\ncorpus: {{sources: [{{path: {src}}}]}}\n", encoding="utf-8")
    return ["--config", str(cfg), *[a for s in sets for a in ("--set", s)]]


def test_a_tokenizer_changed_by_hand_is_redone_never_lent(tmp_path, capsys):
    """The issue's case: `causette tokenizer train --name mix --set tokenizer.vocab_size=512` in a
    finished run; later runs with the run's settings must not take mix's 512-token tokenizer."""
    runs = tmp_path / "runs"
    assert main(["run", *stages_argv(tmp_path, "mix"), "--until", "prepare", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["tokenizer", "train", *stages_argv(tmp_path, "mix"), "--set", "tokenizer.vocab_size=300"]) == 0
    assert json.loads((runs / "mix" / "tokenizer" / "tokenizer.json").read_text())["vocab_size"] == 300
    capsys.readouterr()

    # a sibling with the run's settings borrows the unchanged corpus, but trains its own tokenizer;
    # the token data it may borrow only if made from a tokenizer of the same content as its own
    assert main(["run", *stages_argv(tmp_path, "other"), "--until", "prepare", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"== corpus: same settings as {runs / 'mix'}, its outputs reused" in out and "== tokenizer\n" in out
    meta = json.loads((runs / "other" / "data" / "meta.json").read_text())
    assert meta["vocab_size"] == 400
    assert meta["tokenizer_sha256"] == sha256_file(runs / "other" / "tokenizer" / "tokenizer.json")

    # the changed run itself redoes its tokenizer (or takes the proven one of its sibling, which has
    # the same settings); its token data, made from a tokenizer of that very content, stays
    assert main(["run", *stages_argv(tmp_path, "mix"), "--until", "prepare", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "== corpus: up to date, skipped" in out
    assert redone(out, "tokenizer") and "tokenizer: up to date" not in out
    assert json.loads((runs / "mix" / "tokenizer" / "tokenizer.json").read_text())["vocab_size"] == 400
    meta = json.loads((runs / "mix" / "data" / "meta.json").read_text())
    assert meta["tokenizer_sha256"] == sha256_file(runs / "mix" / "tokenizer" / "tokenizer.json")

    # token data changed by hand (another `causette prepare`) is redone too
    meta = runs / "mix" / "data" / "meta.json"
    meta.write_text(meta.read_text().replace('"vocab_size": 400', '"vocab_size": 400 '), encoding="utf-8")
    assert main(["run", *stages_argv(tmp_path, "mix"), "--until", "prepare", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "== tokenizer: up to date, skipped" in out and redone(out, "prepare")


def redone(out: str, stage: str) -> bool:
    """``stage`` ran again, or took a sibling's outputs proven to match its settings."""
    return f"== {stage}\n" in out or f"== {stage}: same settings as" in out


def test_a_source_changed_in_place_rebuilds_the_corpus(tmp_path, capsys):
    argv = stages_argv(tmp_path, "t")
    assert main(["run", *argv, "--until", "corpus", "--no-progress"]) == 0
    doc = tmp_path / "src" / "d0.txt"
    stat = doc.stat()
    text = doc.read_text(encoding="utf-8")
    doc.write_text(text.replace("e", "é", 1), encoding="utf-8")  # same size in characters, not bytes
    os.utime(doc, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same modification time
    capsys.readouterr()
    assert main(["run", *argv, "--until", "corpus", "--no-progress"]) == 0
    assert "== corpus\n" in capsys.readouterr().out


# ----------------------------------------------------------------------------- one process per run folder


def test_a_second_process_on_a_run_folder_stops_at_once(tmp_path, capsys):
    run = tmp_path / "runs" / "busy"
    with run_lock(run, "causette run demo"):
        assert is_locked(run)
        r = subprocess.run([sys.executable, "-m", "causette", "run", "demo", "--set", f"run.dir={tmp_path / 'runs'}",
                            "--set", "run.name=busy", "--no-progress"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert f"{run}: in use by another Causette process (pid {os.getpid()}, `causette run demo`, since" in r.stderr
        # the same process may take it again (causette run → its stages)
        with run_lock(run):
            pass
    assert not is_locked(run)


def test_a_lock_dies_with_its_process(tmp_path):
    run = tmp_path / "runs" / "x"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from causette.utils.lock import run_lock\n"
                               f"with run_lock({str(run)!r}):\n print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert is_locked(run)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        assert not is_locked(run)  # nothing stale to clean up after a kill -9
    finally:
        holder.kill()


# ----------------------------------------------------------------------------- every stage resumes


def full_run_argv(tmp_path: Path) -> list[str]:
    return [*stages_argv(tmp_path, "tiny"), *[a for s in ["sft.train.max_steps=12", "sft.train.batch_size=4",
            "sft.train.eval_every=6", "sft.train.ckpt_every=3", "sft.eval_answers=2", "sft.eval_max_new_tokens=4",
            "train.max_steps=10"] for a in ("--set", s)]]


@pytest.mark.slow
def test_an_interrupted_sft_stage_resumes_inside_causette_run(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    argv = ["run", *full_run_argv(tmp_path), "--no-progress"]
    killed = subprocess.run([sys.executable, str(REPO / "tests" / "kill_at_step.py"), "sft:7", *argv],
                            cwd=REPO, env=env, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    sft = tmp_path / "runs" / "tiny" / "sft" / "checkpoints"
    assert (sft / "step_0000006").is_dir()
    again = subprocess.run([sys.executable, "-m", "causette", *argv], cwd=REPO, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "== train: up to date, skipped" in again.stdout and "== sft (resuming)" in again.stdout
    assert "resuming from" in again.stdout and "step_0000006 (step 6)" in again.stdout
    state = json.loads((sft / "step_0000012" / "state.json").read_text())
    assert state["step"] == 12 and state["stage"] == "sft"


# ----------------------------------------------------------------------------- checked loading


@pytest.fixture(scope="module")
def trained(tmp_path_factory, base_run) -> Path:
    """A tiny pretrained run (two checkpoints: steps 5 and 10) for the loading tests to copy."""
    root = tmp_path_factory.mktemp("trained")
    run = copy_run(base_run, root, "tiny")
    sets = [*TINY_MODEL, *TINY_TRAIN, f"run.dir={root}", "run.name=tiny", "train.max_steps=10", "train.keep_last=5"]
    assert main(["train", "--no-progress", *[a for s in sets for a in ("--set", s)]]) == 0
    return run


def test_flipped_bytes_in_the_weights_are_refused(tmp_path, capsys, trained):
    run = copy_run(trained, tmp_path, "run")
    shutil.copytree(trained / "checkpoints", run / "checkpoints")
    weights = run / "checkpoints" / "step_0000010" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0x55  # one byte of a tensor's values: the header still reads
    weights.write_bytes(bytes(data))
    step = str(weights.parent)
    assert main(["generate", "--checkpoint", step, "--prompt", "Il", "--max-new-tokens", "2"]) == 1
    line = one_error_line(capsys)
    assert "step_0000010: corrupt checkpoint" in line and "SHA-256" in line
    # given the run, the loader falls back to the previous checkpoint, with a warning
    from causette.checkpoint.load import load_checkpoint

    assert load_checkpoint(run).path.name == "step_0000005"
    assert "step_0000010: corrupt checkpoint" in capsys.readouterr().err


def test_non_finite_weights_are_refused_by_name(tmp_path, capsys, trained):
    from causette.checkpoint.weights import load_model, save_model

    model = load_model(trained / "checkpoints" / "step_0000010")
    name, param = list(model.named_parameters())[-1]
    with torch.no_grad():
        param.view(-1)[:5] = float("nan")
        param.view(-1)[5] = float("inf")
    save_model(model, tmp_path / "nan")  # a valid checksum: the values themselves are wrong
    with pytest.raises(CausetteError) as e:
        load_model(tmp_path / "nan")
    assert f"model.safetensors: tensor '{name}' holds 6 NaN or infinite values" in str(e.value)


def test_a_config_claiming_a_huge_model_is_refused_before_any_allocation(tmp_path, trained):
    """The shapes are checked on the meta device: a config.json that claims ~70 GB of weights
    beside a 100 kB file fails fast in a process limited to 3 GB of address space."""
    ckpt = tmp_path / "huge"
    shutil.copytree(trained / "checkpoints" / "step_0000010", ckpt)
    config = json.loads((ckpt / "config.json").read_text())
    config["model"].update(n_embd=65536, n_head=16, n_kv_head=16, mlp_hidden=None)  # ~50 GB
    (ckpt / "config.json").write_text(json.dumps(config), encoding="utf-8")
    probe = ("import resource, sys\n"
             "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
             "from causette.cli import main\n"
             f"sys.exit(main(['generate', '--checkpoint', {str(ckpt)!r}, '--prompt', 'a']))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "CAUSETTE_NATIVE": "0"})
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "model.safetensors: tensor" in r.stderr and "but the config expects" in r.stderr


def test_a_damaged_state_json_on_resume_is_one_line(tmp_path, capsys, trained):
    run = copy_run(trained, tmp_path, "tiny")
    shutil.copytree(trained / "checkpoints", run / "checkpoints")
    sets = [*TINY_MODEL, *TINY_TRAIN, f"run.dir={tmp_path}", "run.name=tiny", "train.max_steps=12", "train.keep_last=5"]
    argv = ["train", "--resume", "--no-progress", *[a for s in sets for a in ("--set", s)]]
    state_file = run / "checkpoints" / "step_0000010" / "state.json"
    state = json.loads(state_file.read_text())
    for damaged, words in [({**state, "step": "dix"}, "step is 'dix'"), ({k: v for k, v in state.items() if k != "step"},
                           "no 'step'"), ([1, 2], "a JSON object was expected")]:
        state_file.write_text(json.dumps(damaged), encoding="utf-8")
        assert main(argv) == 1
        line = one_error_line(capsys)
        assert "state.json" in line and words in line, line


# ----------------------------------------------------------------------------- logs and reports


def test_torn_metrics_lines_are_skipped_with_a_warning(tmp_path, capsys, trained):
    run = tmp_path / "tiny"
    shutil.copytree(trained, run)
    lines = (trained / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    damaged = [lines[0], '{"step": 3, "kind": "train", "train/lo', json.dumps({"step": 4, "train/loss": "beaucoup"}),
               json.dumps({"kind": "train"}), *lines[1:], '{"step": 99, "kind": "val", "val/l']
    (run / "metrics.jsonl").write_text("\n".join(damaged), encoding="utf-8")  # torn, no final newline
    assert main(["report", str(run)]) == 0
    err = capsys.readouterr().err
    assert err.count("metrics.jsonl:2: 4 damaged line(s) skipped") == 1 and "Traceback" not in err
    assert "![courbes du pré-entraînement](report/pretrain.png)" in (run / "report.md").read_text(encoding="utf-8")
    from causette.train.run_log import RunLogger, read_metrics

    # the next row written starts a line of its own: the torn line stays the only loss
    logger = RunLogger(run, tensorboard=False)
    logger.scalars(100, {"train/loss": 1.5})
    logger.close()
    rows = read_metrics(run, warn=lambda s: None)
    assert rows[-1]["step"] == 100 and rows[-1]["train/loss"] == 1.5


# ----------------------------------------------------------------------------- the machine's errors


def test_an_unwritable_export_path_is_one_line(tmp_path, capsys, trained):
    blocker = tmp_path / "fichier"
    blocker.write_text("x", encoding="utf-8")
    assert main(["export", "hf", str(trained), str(blocker / "sortie")]) == 1
    assert one_error_line(capsys) == f"error: {blocker / 'sortie'}: Not a directory"


def test_a_damaged_lora_adapter_is_refused(tmp_path):
    from causette.checkpoint.adapters import adapter_loader, adapter_saver
    from causette.checkpoint.weights import save_model
    from causette.model.config import LoRAConfig, ModelConfig
    from causette.model.lora import apply_lora
    from causette.model.transformer import Transformer

    torch.manual_seed(0)
    model = Transformer(ModelConfig(vocab_size=96, block_size=16, n_layer=2, n_head=2, n_kv_head=1, n_embd=32,
                                    mlp_hidden=64))
    save_model(model, tmp_path / "base")
    apply_lora(model, LoRAConfig(r=4, alpha=8))
    (tmp_path / "step").mkdir()
    adapter_saver(LoRAConfig(r=4, alpha=8), tmp_path / "base")(model, tmp_path / "step")
    adapter_loader(model, tmp_path / "step")  # intact: loads
    path = tmp_path / "step" / "adapter.safetensors"
    data = bytearray(path.read_bytes())
    data[-8] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CausetteError, match=r"adapter.safetensors: damaged file: its SHA-256 differs"):
        adapter_loader(model, tmp_path / "step")


def test_a_model_too_big_for_the_memory_is_one_line(tmp_path, base_run):
    """Settings in range that the machine cannot hold (here 3 GB of address space for a model of
    ~50 GB): one line naming the settings to lower, no traceback."""
    copy_run(base_run, tmp_path, "tiny")
    sets = [*TINY_MODEL, *TINY_TRAIN, f"run.dir={tmp_path}", "run.name=tiny", "model.n_embd=65536",
            "model.n_head=16", "model.n_kv_head=16", "model.mlp_hidden=null"]
    probe = ("import resource, sys\n"
             "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
             "from causette.cli import main\n"
             f"sys.exit(main(['train', '--no-progress', *{[a for s in sets for a in ('--set', s)]!r}]))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1].startswith("error: out of memory: this machine cannot hold what was asked")


def test_an_empty_run_name_is_refused_for_own_text(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = texts(tmp_path / "mytexts")
    assert main(["run", str(src), "--name", "", "--until", "corpus", "--no-progress"]) == 1
    assert "--name '': run.name must not be empty" in one_error_line(capsys)
    assert not (tmp_path / "runs").exists()


def test_the_latest_and_best_files_name_their_step(tmp_path, trained):
    """``--checkpoint runs/x/checkpoints/best``, the file a user sees in the listing: the step it
    names; an empty or stale pointer is one clear line."""
    root = tmp_path / "checkpoints"
    shutil.copytree(trained / "checkpoints", root)
    assert (root / "latest").read_text().strip() == "step_0000010"
    assert find_checkpoint(root / "latest") == root / "step_0000010"
    (root / "best").write_text("step_0000005\n")  # a pointer names any complete step
    assert find_checkpoint(root / "best") == root / "step_0000005"
    (root / "best").write_text("step_9999999\n")
    with pytest.raises(CausetteError, match=r"best: names no checkpoint of .* \(step_9999999\)"):
        find_checkpoint(root / "best")
