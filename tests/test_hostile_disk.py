"""A full disk (issue 24): one line saying what, where and how much, nothing half-written left
behind, and the same command resumes once there is room.

The disk is a small tmpfs mounted for the test (root on Linux); elsewhere the tests are skipped
with the reason.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from causette.cli import main
from causette.utils.io import tree_size
from helpers import TINY_MODEL, TINY_TRAIN, demo_excerpt


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(kib)``: a tmpfs of that size at ``tmp_path/disk``; ``.resize(kib)`` grows it."""
    mounts = []

    class Disk:
        def __call__(self, kib: int) -> Path:
            self.path = tmp_path / "disk"
            self.path.mkdir()
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(self.path)],
                               capture_output=True, text=True)
            if r.returncode != 0:
                pytest.skip(f"cannot mount a small tmpfs here ({r.stderr.strip() or 'mount failed'}): needs root on Linux")
            mounts.append(self.path)
            return self.path

        def resize(self, kib: int) -> None:
            subprocess.run(["mount", "-o", f"remount,size={kib}k", str(self.path)], check=True)

    if not sys.platform.startswith("linux") or shutil.which("mount") is None:
        pytest.skip("a small tmpfs needs Linux")
    yield Disk()
    for m in mounts:
        subprocess.run(["umount", "-l", str(m)], capture_output=True)


def test_corpus_build_on_a_full_disk(tmp_path, capsys, small_disk):
    src = tmp_path / "src"
    src.mkdir()
    for i, text in enumerate(demo_excerpt(6, 30_000)):
        (src / f"d{i}.txt").write_text(text, encoding="utf-8")
    disk = small_disk(16)
    assert main(["corpus", "build", str(src), "--out", str(disk / "corpus"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert err[0].startswith(f"error: disk full while writing the corpus folder ({disk / 'corpus'}): it needs more than")
    assert "free some space and run the same command again" in err[0]
    assert list(disk.iterdir()) == []  # nothing half-written left behind


@pytest.mark.slow
def test_training_on_a_full_disk_stops_in_one_line_then_resumes(tmp_path, capsys, small_disk, base_run):
    sets = [*TINY_MODEL, *TINY_TRAIN, "train.max_steps=10", "train.ckpt_every=5", "train.eval_every=5",
            "tokenizer.vocab_size=400", "corpus.min_chars=100", "corpus.val_fraction=0.2"]
    src = base_run.parent / "base-src"
    yaml = tmp_path / "own.yaml"
    yaml.write_text(f"extends: demo\ncorpus: {{sources: [{{path: {src}}}]}}\n", encoding="utf-8")
    # the run up to its token data, then the size of one checkpoint, measured on the normal disk
    probe = tmp_path / "probe"
    argv = ["--config", str(yaml), *[a for s in sets for a in ("--set", s)], "--no-progress"]
    assert main(["run", *argv, "--set", f"run.dir={probe}", "--set", "run.name=x", "--until", "train"]) == 0
    one_checkpoint = tree_size(probe / "x" / "checkpoints" / "step_0000005")
    shutil.rmtree(probe / "x" / "checkpoints")
    capsys.readouterr()

    # the same run on a disk with room for its data and one checkpoint and a half
    prepared = tree_size(probe / "x")
    disk = small_disk((prepared + one_checkpoint * 3 // 2) // 1024 + 64)
    shutil.copytree(probe / "x", disk / "x")
    run_argv = ["run", *argv, "--set", f"run.dir={disk}", "--set", "run.name=x", "--until", "train"]
    assert main(run_argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and not any("Traceback" in line for line in err), err
    assert f"disk full while writing the checkpoint folder ({disk / 'x' / 'checkpoints' / 'step_0000010'})" in errors[0]
    assert "it needs about" in errors[0]
    assert not [p for p in (disk / "x" / "checkpoints").iterdir() if p.name.startswith(".")]

    # room again: the same command resumes from the checkpoint that was written
    small_disk.resize(64 * 1024)
    assert main(run_argv) == 0
    out = capsys.readouterr().out
    assert "== train (resuming)" in out and "step_0000005 (step 5)" in out
    assert (disk / "x" / "checkpoints" / "step_0000010" / "model.safetensors").is_file()


def test_tensorboard_on_a_full_disk_is_one_error_without_a_thread_traceback(capfd, small_disk):
    torch = pytest.importorskip("torch")
    pytest.importorskip("tensorboard")
    from causette.train.run_log import RunLogger
    from causette.utils.io import DiskFullError

    disk = small_disk(64)
    logger = RunLogger(disk / "run", tensorboard=True)
    with pytest.raises(DiskFullError) as e:
        for step in range(10_000):
            logger.histogram(step, "h", torch.randn(2000))
            logger.scalars(step, {"train/loss": 1.0})
        logger.close()
    with contextlib.suppress(DiskFullError):
        logger.close()  # what TensorBoard still holds cannot be written either
    assert str(e.value).startswith("disk full while writing the ")
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception in thread" not in err, err
