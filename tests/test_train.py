"""Pretraining: exact resume after SIGKILL, DDP equivalence, Ctrl-C, NaN guard, error cases."""

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
from helpers import REPO, TINY_MODEL, TINY_TRAIN, copy_run, tiny_config
from safetensors.torch import load_file

from causette.checkpoint.steps import list_checkpoints
from causette.errors import CausetteError
from causette.train.run_log import read_metrics
from causette.train.pretrain import train


def cli_args(tmp_path: Path, name: str, extra: list[str] = ()) -> list[str]:
    sets = [f"run.dir={tmp_path}", f"run.name={name}", *TINY_MODEL, *TINY_TRAIN, *extra]
    return [a for s in sets for a in ("--set", s)]


def losses(run_dir: Path) -> dict[int, float]:
    return {r["step"]: r["train/loss"] for r in read_metrics(run_dir) if r["kind"] == "train"}


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(list_checkpoints(run_dir / "checkpoints")[-1] / "model.safetensors"))


def run_cli(args: list[str], env_extra: dict | None = None, kill_at: int = 0, **kw) -> subprocess.CompletedProcess:
    """`causette ARGS` in a subprocess; ``kill_at``: SIGKILL right after that training step (tests/kill_at_step.py)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    command = [str(REPO / "tests" / "kill_at_step.py"), str(kill_at)] if kill_at else ["-m", "causette"]
    return subprocess.run([sys.executable, *command, *args], cwd=REPO, env=env, capture_output=True, text=True, **kw)


def test_resume_after_sigkill_is_bit_exact(base_run, tmp_path):
    copy_run(base_run, tmp_path, "straight")
    copy_run(base_run, tmp_path, "killed")
    straight = train(tiny_config(tmp_path, "straight", TINY_TRAIN), progress=False, echo=lambda s: None)
    assert straight.steps == 20

    # step 13 is not a checkpoint step: steps 11-13 are lost and must be replayed identically
    killed = run_cli(["train", "--no-progress", *cli_args(tmp_path, "killed")], kill_at=13)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [c.name for c in list_checkpoints(tmp_path / "killed" / "checkpoints")][-1] == "step_0000010"

    resumed = run_cli(["train", "--resume", "--no-progress", *cli_args(tmp_path, "killed")])
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout and "step 10" in resumed.stdout

    a, b = losses(tmp_path / "straight"), losses(tmp_path / "killed")
    assert sorted(a) == sorted(b) == list(range(1, 21))
    assert a == b  # every step's loss identical, bit for bit (fp32 on CPU)
    wa, wb = final_weights(tmp_path / "straight"), final_weights(tmp_path / "killed")
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_ddp_two_ranks_half_batch_equals_one_rank(base_run, tmp_path):
    copy_run(base_run, tmp_path, "single")
    copy_run(base_run, tmp_path, "ddp")
    steps = ["train.max_steps=6", "train.eval_every=0", "train.ckpt_every=6"]
    single = run_cli(["train", "--no-progress", *cli_args(tmp_path, "single", steps + ["train.batch_size=4"])])
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "causette", "train",
         "--no-progress", *cli_args(tmp_path, "ddp", steps + ["train.batch_size=2"])],
        cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    # torchrun's default OMP_NUM_THREADS=1 is read as "unset": each rank gets cores ÷ 2 threads
    from causette.utils.threads import usable_cores

    per_rank = max(1, usable_cores() // 2)
    assert f"2 processes × {per_rank} thread" in ddp.stdout
    a, b = losses(tmp_path / "single"), losses(tmp_path / "ddp")
    assert sorted(a) == sorted(b) == list(range(1, 7))
    for step in a:  # same samples, gradients averaged in another order: equal up to float rounding
        assert a[step] == pytest.approx(b[step], abs=1e-5)
    wa, wb = final_weights(tmp_path / "single"), final_weights(tmp_path / "ddp")
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=1e-4, rtol=1e-4)


def test_ctrl_c_saves_and_resume_continues(base_run, tmp_path):
    copy_run(base_run, tmp_path, "int")
    cfg = tiny_config(tmp_path, "int")
    from causette.data import loader

    original = loader.TokenWindows.batch

    def batch_then_interrupt(self, step, *a, **kw):
        if step == 7:
            signal.raise_signal(signal.SIGINT)  # as if the user pressed Ctrl-C during step 8
        return original(self, step, *a, **kw)

    loader.TokenWindows.batch = batch_then_interrupt
    try:
        result = train(cfg, progress=False, echo=lambda s: None)
    finally:
        loader.TokenWindows.batch = original
    assert result.stopped == "interrupted" and result.steps == 8
    assert list_checkpoints(tmp_path / "int" / "checkpoints")[-1].name == "step_0000008"
    again = train(cfg, resume=True, progress=False, echo=lambda s: None)
    assert again.steps == 20 and again.stopped == "done"


def test_non_finite_loss_stops_with_last_good_checkpoint(base_run, tmp_path):
    copy_run(base_run, tmp_path, "nan")
    cfg = tiny_config(tmp_path, "nan")
    from causette.data import loader

    original = loader.TokenWindows.batch
    poisoned = []

    def batch(self, step, *a, **kw):
        if step == 6:  # the 7th optimizer step
            poisoned.append(step)
        return original(self, step, *a, **kw)

    def nan_embeddings(module, inputs, output):
        if poisoned and isinstance(module, torch.nn.Embedding):
            return output * float("nan")
        return None

    loader.TokenWindows.batch = batch
    hook = torch.nn.modules.module.register_module_forward_hook(nan_embeddings)
    try:
        with pytest.raises(CausetteError) as e:
            train(cfg, progress=False, echo=lambda s: None)
    finally:
        hook.remove()
        loader.TokenWindows.batch = original
    msg = str(e.value)
    assert "non-finite loss" in msg and "step 7" in msg and "step_0000005" in msg
    # the broken update never reached a checkpoint
    assert [c.name for c in list_checkpoints(tmp_path / "nan" / "checkpoints")] == ["step_0000005"]


def test_refuses_to_overwrite_and_falls_back_from_corrupt_checkpoint(base_run, tmp_path, capsys):
    copy_run(base_run, tmp_path, "c")
    cfg = tiny_config(tmp_path, "c", ["train.max_steps=10", "train.keep_last=3"])
    train(cfg, progress=False, echo=lambda s: None)
    with pytest.raises(CausetteError, match="already has checkpoints; continue it with --resume"):
        train(cfg, progress=False, echo=lambda s: None)
    latest = list_checkpoints(tmp_path / "c" / "checkpoints")[-1]
    assert latest.name == "step_0000010"
    (latest / "model.safetensors").write_bytes(b"truncated")
    cfg2 = tiny_config(tmp_path, "c", ["train.max_steps=12", "train.keep_last=3"])
    seen = []
    result = train(cfg2, resume=True, progress=False, echo=seen.append)
    assert any("corrupt checkpoint" in s and "step_0000010" in s for s in seen)
    assert any("resuming from" in s and "step_0000005" in s for s in seen)
    assert result.steps == 12


def test_data_and_tokenizer_mismatches_are_clear_errors(base_run, tmp_path):
    root = copy_run(base_run, tmp_path, "m")
    with pytest.raises(CausetteError, match=r"train.bin: only [\d,]+ tokens.*lower model.block_size"):
        train(tiny_config(tmp_path, "m", ["model.block_size=100000"]), progress=False, echo=lambda s: None)
    # a tokenizer retrained after `prepare`: the data no longer matches it
    tok = json.loads((root / "tokenizer" / "tokenizer.json").read_text(encoding="utf-8"))
    tok_path = root / "tokenizer" / "tokenizer.json"
    from causette.corpus.store import iter_texts
    from causette.tokenizer.io import load_tokenizer
    from causette.tokenizer.train import train_tokenizer

    cfg = tiny_config(tmp_path, "m", ["tokenizer.vocab_size=380"])
    train_tokenizer(cfg.tokenizer, iter_texts(root / "corpus", "train"), out_dir=root / "tokenizer")
    assert load_tokenizer(tok_path).vocab_size == 380 != tok.get("vocab_size", 400)
    with pytest.raises(CausetteError, match=r"meta.json: token data was made with another tokenizer"):
        train(cfg, progress=False, echo=lambda s: None)
    shutil.rmtree(root / "data")
    with pytest.raises(CausetteError, match=r"data/meta.json: no token data here \(run `causette prepare` first\)"):
        train(cfg, progress=False, echo=lambda s: None)


def test_cli_errors_are_one_line(tmp_path):
    r = run_cli(["train", "--no-progress", "--set", f"run.dir={tmp_path}", "--set", "run.name=none"])
    assert r.returncode == 1
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
