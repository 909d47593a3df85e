"""The corpus stage under hostile input (issue 24): no hang, no orphan worker, no traceback,
nothing lost.

- the train/val cut of one huge document is linear, and cuts exactly where the old quadratic
  code did (kept below as the oracle);
- worker processes die with their parent, and Ctrl-C at any moment exits 130 in one line;
- hostile sources (lone surrogates, odd file names, link loops, unreadable folders, UTF-16/32,
  EPUB/DOCX/ODT, CSV) are read cleanly or named in one warning line;
- one's own text is kept despite the language filter, with a warning naming the setting, and a
  build that keeps nothing says why.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causette.config import load_config
from causette.corpus.build import build_corpus
from causette.corpus.config import SourceConfig
from causette.corpus.split import tail_cut
from causette.utils.paths import DEMO_CORPUS
from causette.utils.workers import OrderedPool, WorkerDied

ROOT = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------------------- 1. linear split

_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_LINE = re.compile(r"\n")
_SENTENCE = re.compile(r"[.!?…»][ \n]")
_SPACE = re.compile(r"\s")


def old_tail_cut(text: str, val_fraction: float) -> int | None:
    """The cut as computed before issue 24 (quadratic: two copies of the text per candidate),
    kept verbatim as the oracle of the linear :func:`tail_cut`."""
    tail = round(val_fraction * len(text))
    if val_fraction <= 0 or tail < 1 or len(text) < 2:
        return None
    target = len(text) - tail
    lo, hi = max(target - tail // 2, 1), min(target + tail // 2, len(text) - 1)
    for pattern in (_PARAGRAPH, _LINE, _SENTENCE, _SPACE):
        ends = [m.end() for m in pattern.finditer(text, lo, hi) if text[m.end():].strip() and text[:m.end()].strip()]
        if ends:
            return min(ends, key=lambda e: abs(e - target))
    return target if text[target:].strip() and text[:target].strip() else None


# White space of every kind str.strip() knows (NBSP, U+2028, tabs...), boundaries and letters.
_ALPHABET = st.sampled_from("ab é\n\t\r.!?…«» \u00a0\u2028\u3000\x0b")


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=300),
       st.one_of(st.floats(min_value=0.0, max_value=0.99), st.sampled_from([0.05, 0.1, 0.5])))
def test_linear_cut_equals_the_old_cut(text, fraction):
    assert tail_cut(text, fraction) == old_tail_cut(text, fraction)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["mot", " ", "  ", "\n", "\n\n", "\n \t\n", ". ", "» ", "!\n", "\u00a0"]),
                max_size=120),
       st.floats(min_value=0.01, max_value=0.9))
def test_linear_cut_equals_the_old_cut_on_structured_text(pieces, fraction):
    text = "".join(pieces)
    assert tail_cut(text, fraction) == old_tail_cut(text, fraction)


def demo_documents() -> list[str]:
    with gzip.open(DEMO_CORPUS, "rt", encoding="utf-8") as f:
        whole = f.read()
    return [whole, *whole.split("\n\n\n")]


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.3])
def test_linear_cut_equals_the_old_cut_on_the_demo(fraction):
    for text in demo_documents():
        assert tail_cut(text, fraction) == old_tail_cut(text, fraction)


@pytest.mark.slow
def test_demo_as_one_document_is_cut_where_it_was(tmp_path):
    """Recorded before the change: the shipped demo read as one document (`causette corpus build
    causette/demo/demo_fr_pd.txt.gz`) held out its end from character 3,614,325."""
    cfg = load_config(None, ["corpus.workers=1"])
    cfg.corpus.sources = [SourceConfig(path=str(DEMO_CORPUS))]
    split = build_corpus(cfg.corpus, tmp_path / "c", progress=False, echo=lambda s: None).manifest["split"]
    assert split["mode"] == "tail"
    assert split["cuts"] == {"demo_fr_pd": 3_614_325}
    assert split["characters"] == {"train": 3_614_323, "val": 363_422}


def test_one_huge_line_is_cut_in_linear_time():
    """1 MB on one line, no sentence end: every space near the cut is a candidate. The old code
    copied the whole text twice per candidate (2.4 s here, minutes for 16 MB); now a few ms."""
    import time

    words = "le vent se leva sur la lande — et nous marchâmes longtemps "
    text = words * (1_000_000 // len(words))
    start = time.perf_counter()
    cut = tail_cut(text, 0.1)
    assert time.perf_counter() - start < 0.5
    assert cut == old_tail_cut(text, 0.1) == 899_994
    assert text[cut - 1] == " "  # at a space, the nearest one to the last 10 %


# ----------------------------------------------------------------------------- 2. worker processes

LINUX_PROC = Path("/proc/self/stat").is_file()
needs_proc = pytest.mark.skipif(not LINUX_PROC, reason="reads processes in /proc (Linux)")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, ...), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    """Alive: neither gone nor a zombie (a dead child nobody has reaped yet)."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def workers_of(pid: int) -> list[int]:
    """The multiprocessing workers (spawned) among the children of ``pid``."""
    found = []
    for child in children(pid):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except OSError:
            pass
    return found


def wait_for(condition, timeout: float, step: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return condition()


POOL_SCRIPT = """
import time
from causette.utils.workers import OrderedPool

if __name__ == "__main__":
    with OrderedPool(2, time.sleep) as pool:
        print("ready", flush=True)
        for _ in pool.imap([1000, 1000]):
            pass
"""

WATCH_SCRIPT = """
import os, sys, time, multiprocessing as mp
from causette.utils.workers import watch_parent

def orphan(parent):
    watch_parent(parent, poll=0.1)  # the portable guard alone, no prctl
    time.sleep(1000)

if __name__ == "__main__":
    p = mp.get_context("fork").Process(target=orphan, args=(os.getpid(),))
    p.start()
    print(p.pid, flush=True)
    time.sleep(1000)
"""


def _kill_all(pids: list[int]) -> None:
    """Clean up after a failed test: kill what is still running among the processes it started."""
    for pid in pids:
        if pid and running(pid):
            os.kill(pid, signal.SIGKILL)


def _start(script: str, tmp_path: Path, *args: str, **kw) -> subprocess.Popen:
    path = tmp_path / "script.py"
    path.write_text(script, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(path), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=tmp_path, **kw)


@needs_proc
def test_pool_workers_die_with_their_parent(tmp_path):
    """Workers busy for 1000 s: once their parent is killed (-9), the kernel kills them too."""
    proc = _start(POOL_SCRIPT, tmp_path)
    workers: list[int] = []
    try:
        assert proc.stdout.readline() == b"ready\n"
        workers = wait_for(lambda: len(workers_of(proc.pid)) == 2 and workers_of(proc.pid), 20)
        assert workers, "two workers expected"
        time.sleep(0.5)  # let them reach time.sleep(1000)
        assert all(running(w) for w in workers)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert wait_for(lambda: not any(running(w) for w in workers), 5), "workers outlived their parent"
    finally:
        _kill_all([proc.pid, *workers])
        proc.wait()


@needs_proc
def test_watching_thread_alone_ends_an_orphan(tmp_path):
    """The portable guard (no prctl): a thread that sees its parent change ends the process."""
    proc = _start(WATCH_SCRIPT, tmp_path)
    child = 0
    try:
        child = int(proc.stdout.readline())
        assert running(child)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert wait_for(lambda: not running(child), 5), "the orphan kept running"
    finally:
        _kill_all([proc.pid, child])
        proc.wait()


def _square(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative: {x}")
    return x * x


def test_pool_keeps_order_and_raises_the_workers_errors():
    with OrderedPool(2, _square, method="spawn", ahead=2) as pool:
        assert list(pool.imap(range(20))) == [x * x for x in range(20)]
        assert list(pool.imap([])) == []
        with pytest.raises(ValueError, match="negative: -3"):
            list(pool.imap([1, 2, -3, 4]))


def test_pool_reports_a_dead_worker_in_one_exception():
    with pytest.raises(WorkerDied, match=r"a worker process died \(exit code 3\)"):
        with OrderedPool(1, os._exit, method="spawn") as pool:
            list(pool.imap([3]))


def many_documents(path: Path, n: int = 300, chars: int = 40_000) -> Path:
    """A JSON Lines source of ``n`` French documents cut from the demo corpus (12 MB by default)."""
    text = demo_documents()[0]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            start = (i * chars) % (len(text) - chars)
            f.write(json.dumps({"id": f"d{i}", "text": text[start:start + chars]}, ensure_ascii=False) + "\n")
    return path


def corpus_build_process(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, Path, Path]:
    """`causette corpus build` on many documents with 2 workers, in its own process group (as a
    terminal runs it: Ctrl-C reaches the whole group)."""
    source = many_documents(tmp_path / "docs.jsonl")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "causette", "corpus", "build", str(source), "--out", str(out), "--no-progress",
         "--set", "corpus.workers=2", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path, start_new_session=True,
    )
    return proc, source, out


@needs_proc
def test_corpus_workers_die_when_the_build_is_killed(tmp_path):
    proc, source, out = corpus_build_process(tmp_path)
    before = source.read_bytes()
    workers: list[int] = []
    try:
        workers = wait_for(lambda: len(workers_of(proc.pid)) == 2 and workers_of(proc.pid), 30)
        assert workers, "the build should start two workers"
        time.sleep(1.0)  # at work
        assert proc.poll() is None, "the build finished too early for this test"
        helpers = children(proc.pid)  # the workers and multiprocessing's resource tracker
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert wait_for(lambda: not any(running(p) for p in helpers), 5), "processes outlived the killed build"
        assert source.read_bytes() == before
        assert not out.exists()
    finally:
        _kill_all([proc.pid, *workers])
        proc.wait()


def _interrupt(proc: subprocess.Popen) -> tuple[int, str]:
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err.decode("utf-8", "replace")


@needs_proc
@pytest.mark.parametrize("when", ["workers starting", "workers at work"])
def test_ctrl_c_during_the_corpus_build(tmp_path, when):
    proc, source, out = corpus_build_process(tmp_path)
    before = source.read_bytes()
    workers: list[int] = []
    try:
        workers = wait_for(lambda: workers_of(proc.pid), 30, step=0.002)  # the first worker exists
        assert workers, "the build should start workers"
        if when == "workers at work":
            workers = wait_for(lambda: len(workers_of(proc.pid)) == 2 and workers_of(proc.pid), 30)
            time.sleep(1.0)
        assert proc.poll() is None, "the build finished too early for this test"
        helpers = children(proc.pid)
        code, err = _interrupt(proc)
        assert code == 130, err
        assert err == "interrupted\n", err  # one line, no traceback from the build or its workers
        assert wait_for(lambda: not any(running(p) for p in helpers), 5), "processes outlived the build"
        assert source.read_bytes() == before
        assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
    finally:
        _kill_all([proc.pid, *workers])
        proc.wait()
