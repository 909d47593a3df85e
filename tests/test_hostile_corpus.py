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

import codecs
import csv
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from causette.cli import main
from causette.config import load_config
from causette.errors import CausetteError
from causette.corpus.build import build_corpus
from causette.corpus.config import SourceConfig
from causette.corpus.document import Report
from causette.corpus.sources import read_source
from causette.corpus.split import tail_cut
from causette.corpus.store import iter_documents, read_manifest
from causette.utils.paths import DEMO_CORPUS
from causette.utils.text import printable_path, valid_unicode
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
    assert cut == 899_994  # what old_tail_cut gives, in 2.4 s
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


def _refuse(path: str) -> None:
    raise CausetteError(f"{path}: no tokenizer here")


def test_pool_raises_the_error_of_a_failed_initializer():
    with pytest.raises(CausetteError, match="nowhere: no tokenizer here"):
        with OrderedPool(2, _square, _refuse, ("nowhere",), method="spawn") as pool:
            list(pool.imap(range(50)))


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
        preexec_fn=_ctrl_c_as_in_a_terminal,
    )
    return proc, source, out


def _ctrl_c_as_in_a_terminal() -> None:
    """A job started in the background by a script (``make test &``, CI runners) inherits
    SIGINT *ignored*, and Python then installs no KeyboardInterrupt handler: give the build the
    default disposition a terminal gives it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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


# ----------------------------------------------------------------------------- 3. hostile sources

FRENCH = (
    "Il était une fois, dans un village au bord de la mer, une vieille femme qui vivait seule avec son chat. "
    "Chaque matin, elle descendait au port pour voir rentrer les bateaux, et les pêcheurs lui donnaient "
    "toujours un poisson pour le chat. « Vous êtes trop bons », disait-elle, et elle s'en retournait chez elle.\n"
)
ENGLISH = (
    "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer the slings and "
    "arrows of outrageous fortune, or to take arms against a sea of troubles and by opposing end them.\n"
)


def read_all(path, report: Report | None = None, **settings) -> tuple[list, Report]:
    report = report if report is not None else Report(echo=lambda line: None)
    return list(read_source(SourceConfig(path=str(path), **settings), report)), report


def cli(*args: str | bytes, env: dict | None = None) -> subprocess.CompletedProcess:
    """`causette ARGS` in a child process, in a UTF-8 locale whose stdout is strict (not UTF-8 mode)."""
    env = {**{k: v for k, v in os.environ.items() if k not in ("LC_ALL", "PYTHONUTF8")},
           "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "causette", *args], capture_output=True, env=env, timeout=120)


def one_line_error(done: subprocess.CompletedProcess) -> str:
    err = done.stderr.decode("utf-8")
    assert done.returncode == 1, err
    assert "Traceback" not in err and err.startswith("error: ") and err.count("\n") == 1, err
    return err.strip()


def snapshot(folder: Path) -> dict[bytes, bytes]:
    """Every file under ``folder`` (names as bytes), to check that a build left the sources alone."""
    return {os.fsencode(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


# -- lone surrogates and file names that are not UTF-8

_ANY_CODE_POINT = st.lists(st.integers(0, 0x10FFFF), max_size=40).map(lambda cps: "".join(map(chr, cps)))


@settings(max_examples=300, deadline=None)
@given(st.lists(_ANY_CODE_POINT, min_size=1, max_size=5))
def test_jsonl_with_lone_surrogates_is_repaired_at_reading(tmp_path_factory, texts):
    path = tmp_path_factory.mktemp("jsonl") / "d.jsonl"
    # ensure_ascii: "\ud800" escapes, the way other tools write them
    path.write_text("".join(json.dumps({"text": t, "title": t[:5], "auteur": t}) + "\n" for t in texts))
    docs, report = read_all(path)
    assert len(docs) + len(report.problems) == len(texts)
    assert [d.text for d in docs] == [valid_unicode(t) for t in texts if t.strip()]
    for doc in docs:  # everything a later stage writes can be written
        json.dumps([doc.text, doc.title, doc.id, doc.meta], ensure_ascii=False).encode("utf-8")


def test_corpus_build_of_jsonl_with_lone_surrogates(tmp_path):
    src = tmp_path / "d.jsonl"
    src.write_text(json.dumps({"text": FRENCH * 60 + "\ud800 fin", "title": "t\udfff"}) + "\n")
    before = src.read_bytes()
    done = cli("corpus", "build", str(src), "--out", str(tmp_path / "out"), "--no-progress")
    assert done.returncode == 0, done.stderr.decode()
    assert b"Traceback" not in done.stderr
    (doc,) = iter_documents(tmp_path / "out")
    assert doc["text"].endswith("\ufffd fin") and doc["title"] == "t\ufffd"
    assert src.read_bytes() == before


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse names that are not UTF-8")
def test_file_names_that_are_not_utf8(tmp_path):
    folder = tmp_path / "textes"
    folder.mkdir()
    odd = os.fsdecode(os.fsencode(folder) + b"/caf\xe9.txt")  # Latin-1 name, as old archives have
    Path(odd).write_text(FRENCH * 60, encoding="utf-8")
    (folder / "z\udcff.txt").write_bytes(b"\x00\x01" * 10)  # binary, named oddly: a warning naming it
    before = snapshot(folder)
    out = tmp_path / "out"
    for source in (os.fsencode(folder), os.fsencode(odd)):  # a folder, and the file typed as is
        done = cli("corpus", "build", source, "--out", str(out), "--no-progress")
        err = done.stderr.decode("utf-8")
        assert done.returncode == 0 and "Traceback" not in err, err
        (doc,) = iter_documents(out)
        assert doc["source"].endswith("caf\\xe9.txt") and doc["id"] == "caf\\xe9"
        manifest = read_manifest(out)
        assert manifest["inputs"][0]["path"].endswith("caf\\xe9.txt")
        assert manifest["config"]["sources"][0]["path"] == printable_path(os.fsdecode(source))
        assert printable_path(os.fsdecode(source))[-30:] in done.stdout.decode("utf-8")  # the summary table
        if source == os.fsencode(folder):
            assert err == f"warning: {folder}/z\\xff.txt: binary file, skipped\n"
    assert snapshot(folder) == before


# -- what a folder holds: link loops, links, unreadable folders


@pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32", reason="needs symbolic links")
def test_link_loop_broken_link_and_link_to_a_folder_are_one_warning_each(tmp_path):
    folder = tmp_path / "textes"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text(FRENCH * 60, encoding="utf-8")
    (folder / "sub" / "b.txt").write_text(FRENCH.upper() * 60 + "Autre chose encore.\n", encoding="utf-8")
    os.symlink("boucle", folder / "boucle")  # a link to itself
    os.symlink("nulle-part.txt", folder / "casse.txt")
    os.symlink("sub", folder / "lien")  # a link to a folder: not followed
    os.symlink(folder, folder / "sub" / "retour")  # back to the top: would never end
    os.symlink("a.txt", folder / "copie.txt")  # a link to a file: read
    before = snapshot(folder)
    done = cli("corpus", "build", str(folder), "--out", str(tmp_path / "out"), "--no-progress",
               "--set", "corpus.dedup_exact=false", "--set", "corpus.near_dup=false")
    err = done.stderr.decode()
    assert done.returncode == 0 and "Traceback" not in err, err
    assert err.splitlines() == [
        f"warning: {folder / 'boucle'}: unreadable (symbolic link loop), skipped",
        f"warning: {folder / 'casse.txt'}: broken symbolic link, skipped",
        f"warning: {folder / 'lien'}: symbolic link to a folder, not followed (give the folder itself as a source)",
        f"warning: {folder / 'sub' / 'retour'}: symbolic link to a folder, not followed (give the folder itself as a source)",
    ]
    assert sorted(d["id"] for d in iter_documents(tmp_path / "out")) == ["a", "b", "copie"]
    assert snapshot(folder) == before


def test_unreadable_sub_folder_is_one_warning_and_the_rest_is_read(tmp_path, monkeypatch, capsys):
    """Root ignores `chmod 000`: the refusal is simulated where the walk meets it, os.scandir."""
    folder = tmp_path / "textes"
    (folder / "ferme").mkdir(parents=True)
    (folder / "ferme" / "x.txt").write_text(FRENCH * 60, encoding="utf-8")
    (folder / "a.txt").write_text(FRENCH * 60, encoding="utf-8")
    real_scandir = os.scandir

    def scandir(path=".", *args):
        if isinstance(path, (str, os.PathLike)) and Path(path).name == "ferme":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path, *args)

    monkeypatch.setattr(os, "scandir", scandir)
    out = tmp_path / "out"
    assert main(["corpus", "build", str(folder), "--out", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert err == f"warning: {folder / 'ferme'}: unreadable folder (Permission denied), skipped\n"
    assert [d["id"] for d in iter_documents(out)] == ["a"]
    assert main(["corpus", "build", str(folder), "--out", str(out), "--no-progress", "--strict"]) == 1
    err = capsys.readouterr().err
    assert err == f"error: {folder / 'ferme'}: unreadable folder (Permission denied), skipped (--strict)\n"


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="chmod 000 does not stop root")
def test_unreadable_sub_folder_for_real(tmp_path):
    folder = tmp_path / "textes"
    (folder / "ferme").mkdir(parents=True)
    (folder / "a.txt").write_text(FRENCH * 60, encoding="utf-8")
    (folder / "ferme").chmod(0)
    try:
        done = cli("corpus", "build", str(folder), "--out", str(tmp_path / "out"), "--no-progress")
    finally:
        (folder / "ferme").chmod(0o755)
    assert done.returncode == 0
    assert done.stderr.decode() == f"warning: {folder / 'ferme'}: unreadable folder (Permission denied), skipped\n"


# -- encodings: UTF-16 and UTF-32

_LATIN_TEXT = st.text(alphabet=st.sampled_from("abcdeéèàçôœ ÉÀ«»’!?.,;:-\n\t0123456789"), min_size=4, max_size=300)


@settings(max_examples=200, deadline=None)
@given(_LATIN_TEXT, st.sampled_from(["utf-16", "utf-32", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"]),
       st.booleans())
def test_utf16_and_utf32_are_read(tmp_path_factory, text, codec, bom):
    if not text.strip() or (codec.startswith("utf-32") and len(codec) > 6 and not bom):
        return  # UTF-32 without a mark is not guessed
    if not bom:  # UTF-16 without a mark is recognised when it clearly is: mostly Latin letters
        assume(sum(ord(c) > 0xFF for c in text) <= 0.3 * len(text))
        assume(len(text) < 64 or " " in text or "\n" in text)  # words, not one long run of letters
    data = text.encode(codec)
    if bom and len(codec) > 6:  # "utf-16"/"utf-32" write their mark themselves
        data = ("\ufeff" + text).encode(codec)
    if not bom and len(codec) == 6:
        return
    path = tmp_path_factory.mktemp("enc") / "t.txt"
    path.write_bytes(data)
    docs, report = read_all(path)
    assert not report.problems, report.problems
    assert [d.text for d in docs] == [text.strip("\r\n")]
    expected = codec if len(codec) > 6 else f"{codec}-le"  # Python writes little-endian on this machine
    if sys.byteorder == "big" and len(codec) == 6:
        expected = f"{codec}-be"
    assert report.files[0].encoding == expected == docs[0].meta["encoding"]


def test_utf32_with_bom_is_utf32_and_utf16_without_bom_is_not_binary(tmp_path):
    (tmp_path / "a32.txt").write_bytes(codecs.BOM_UTF32_LE + (FRENCH * 60).encode("utf-32-le"))
    (tmp_path / "b16.txt").write_bytes((FRENCH * 60).encode("utf-16-be"))
    (tmp_path / "c.xml").write_bytes('<?xml version="1.0" encoding="UTF-16"?><TEI><text><body><p>Un texte en UTF-16.</p>'
                                      '</body></text></TEI>'.encode("utf-16"))
    docs, report = read_all(tmp_path)
    assert [f.encoding for f in report.files] == ["utf-32-le", "utf-16-be", "utf-16-le"]
    assert [d.text for d in docs[:2]] == [(FRENCH * 60).strip("\n")] * 2
    assert docs[2].text == "Un texte en UTF-16."
    assert not report.problems


def test_binary_with_nul_bytes_is_still_binary(tmp_path):
    (tmp_path / "x.txt").write_bytes(bytes(range(256)) * 8)
    docs, report = read_all(tmp_path / "x.txt")
    assert docs == [] and [p.message for p in report.problems] == ["binary file, skipped"]


# -- e-books and word-processor files


def write_zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def epub(path: Path) -> Path:
    return write_zip(path, {
        "mimetype": "application/epub+zip",
        "META-INF/container.xml": '<?xml version="1.0"?><container xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
        '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>',
        "OEBPS/content.opf": '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Le Chat</dc:title><dc:creator>Anonyme</dc:creator></metadata>'
        '<manifest><item id="c1" href="Text/ch%201.xhtml" media-type="application/xhtml+xml"/>'
        '<item id="c2" href="Text/ch2.xhtml" media-type="application/xhtml+xml"/>'
        '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml"/></manifest>'
        '<spine><itemref idref="c2"/><itemref idref="c1"/><itemref idref="nav" linear="no"/></spine></package>',
        "OEBPS/Text/ch 1.xhtml": '<html><head><title>Titre</title><style>p {}</style></head><body>'
        '<h1>Chapitre deux</h1><p>La  fin,\n  vraiment&nbsp;!</p><script>alert(1)</script></body></html>',
        "OEBPS/Text/ch2.xhtml": '<html><body><h1>Chapitre un</h1><p>Il était <i>une</i> fois.</p>'
        '<p>Un vers,<br/>un autre vers.</p></body></html>',
        "OEBPS/nav.xhtml": "<html><body><p>Table des matières</p></body></html>",
    })


def docx(path: Path) -> Path:
    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    return write_zip(path, {
        "[Content_Types].xml": "<Types/>",
        "word/document.xml": f'<?xml version="1.0"?><w:document {w}><w:body>'
        '<w:p><w:r><w:t>Premier paragraphe, </w:t></w:r><w:r><w:t xml:space="preserve">en deux morceaux.</w:t></w:r></w:p>'
        '<w:p><w:r><w:t>Avant</w:t><w:tab/><w:t>après la tabulation</w:t><w:br/><w:t>et à la ligne.</w:t></w:r>'
        '<w:del><w:r><w:delText>effacé</w:delText></w:r></w:del>'
        '<w:r><w:instrText>PAGE</w:instrText></w:r></w:p>'
        '<w:tbl><w:tr><w:tc><w:p><w:r><w:t>Une cellule.</w:t></w:r></w:p></w:tc></w:tr></w:tbl>'
        '</w:body></w:document>',
        "docProps/core.xml": '<cp:coreProperties xmlns:cp="x" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        "<dc:title>Mon texte</dc:title></cp:coreProperties>",
    })


def odt(path: Path) -> Path:
    ns = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"')
    return write_zip(path, {
        "mimetype": "application/vnd.oasis.opendocument.text",
        "content.xml": f'<?xml version="1.0"?><office:document-content {ns}><office:body><office:text>'
        '<text:sequence-decls/><text:h>Un titre</text:h>'
        '<text:p>Trois<text:s text:c="3"/>espaces et une <text:span>note</text:span>'
        '<text:note><text:note-body><text:p>la note</text:p></text:note-body></text:note>.</text:p>'
        '<text:list><text:list-item><text:p>Un\n   item<text:line-break/>sur deux lignes</text:p></text:list-item></text:list>'
        '<text:p>Énorme<text:s text:c="999999999"/>fin</text:p>'
        '</office:text></office:body></office:document-content>',
        "meta.xml": '<office:document-meta xmlns:office="o" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        "<office:meta><dc:title>Titre ODT</dc:title></office:meta></office:document-meta>",
    })


def test_epub_is_read_in_spine_order(tmp_path):
    (doc,), report = read_all(epub(tmp_path / "livre.epub"))
    assert doc.text == ("Chapitre un\nIl était une fois.\nUn vers,\nun autre vers.\n\n"
                        "Chapitre deux\nLa fin, vraiment\u00a0!")
    assert (doc.id, doc.title, doc.meta["author"]) == ("livre", "Le Chat", "Anonyme")
    assert report.files[0].format == "epub" and not report.problems


def test_docx_paragraphs_without_deleted_text_or_field_codes(tmp_path):
    (doc,), report = read_all(docx(tmp_path / "texte.docx"))
    assert doc.text == ("Premier paragraphe, en deux morceaux.\nAvant\taprès la tabulation\net à la ligne.\n"
                        "Une cellule.")
    assert doc.title == "Mon texte" and report.files[0].format == "docx"


def test_odt_paragraphs_spaces_and_no_notes(tmp_path):
    (doc,), report = read_all(odt(tmp_path / "texte.odt"))
    assert doc.text == ("Un titre\nTrois   espaces et une note.\nUn item\nsur deux lignes\nÉnorme"
                        + " " * 100 + "fin")
    assert doc.title == "Titre ODT" and report.files[0].format == "odt"


def test_office_files_through_the_cli(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    epub(folder / "a.epub")
    docx(folder / "b.docx")
    odt(folder / "c.odt")
    write_zip(folder / "d.xlsx", {"[Content_Types].xml": "<Types/>", "xl/workbook.xml": "<workbook/>"})
    write_zip(folder / "e.docx", {"[Content_Types].xml": "<Types/>", "word/document.xml": "<w:document"})
    before = snapshot(folder)
    done = cli("corpus", "build", str(folder), "--out", str(tmp_path / "out"), "--no-progress",
               "--set", "corpus.min_chars=0", "--set", "corpus.lang_check=false", "--set", "corpus.min_total_chars=0")
    err = done.stderr.decode()
    assert done.returncode == 0 and "Traceback" not in err, err
    assert err.splitlines() == [
        f"warning: {folder / 'd.xlsx'}: a spreadsheet (XLSX) holds no running text: save the column of text as CSV, skipped",
        f"warning: {folder / 'e.docx'}: not a readable DOCX file (malformed XML: unclosed token: line 1, column 0), skipped",
    ]
    assert [d["id"] for d in iter_documents(tmp_path / "out")] == ["a", "b", "c"]
    assert snapshot(folder) == before


# -- CSV


def test_csv_keeps_the_text_column_without_header_or_quotes(tmp_path):
    path = tmp_path / "phrases.csv"
    path.write_text('id;auteur;texte\n1;Hugo;"Il dit ""oui"" ; puis\nil partit."\n\n2;Sand;Elle resta.\n', encoding="utf-8")
    docs, report = read_all(path)
    assert [(d.id, d.text, d.meta["auteur"]) for d in docs] == [
        ("1", 'Il dit "oui" ; puis\nil partit.', "Hugo"), ("2", "Elle resta.", "Sand")]
    assert report.files[0].format == "csv" and not report.problems


def test_csv_without_a_known_column_takes_the_one_with_the_most_text(tmp_path):
    rows = [("numéro", "année", "phrase")] + [(str(i), "1850", f"Voici la phrase numéro {i}, assez longue pour être un texte.")
                                            for i in range(5)]
    path = tmp_path / "a.tsv"
    path.write_text("\n".join("\t".join(r) for r in rows) + "\n", encoding="cp1252")
    docs, report = read_all(path)
    assert [d.text for d in docs] == [r[2] for r in rows[1:]] and not report.problems
    assert docs[0].meta == {"numéro": "0", "année": "1850", "encoding": "cp1252"}
    no_header = tmp_path / "b.csv"
    no_header.write_text("".join(f'"{r[2]}",{r[0]}\n' for r in rows[1:]), encoding="utf-8")
    docs, _ = read_all(no_header)
    assert [d.text for d in docs] == [r[2] for r in rows[1:]]  # the first row is text, not a header


def test_csv_without_text_is_one_line(tmp_path):
    (tmp_path / "n.csv").write_text("a,b\n1,2\n3,4\n", encoding="utf-8")
    done = cli("corpus", "build", str(tmp_path / "n.csv"), "--out", str(tmp_path / "out"), "--no-progress")
    err = done.stderr.decode().splitlines()
    assert err[0] == (f"warning: {tmp_path / 'n.csv'}: no column of text (columns: a, b); name the column to read "
                      "with --text-field (text_field in a config)")
    assert len(err) == 2 and err[1].startswith("error: corpus: no text kept (0 document(s) of 0 read, 0 characters; "
                                               "dropped: 1 unreadable input(s) or record(s) (see the warnings))")
    assert done.returncode == 1 and "Traceback" not in done.stderr.decode()


_CELL = st.text(alphabet=st.sampled_from('ab é,;"\n\t«»'), max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.lists(_CELL, min_size=1, max_size=8), st.sampled_from([",", ";", "\t"]))
def test_csv_round_trip(tmp_path_factory, texts, delimiter):
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(["id", "text"])
        writer.writerows([[i, t] for i, t in enumerate(texts)])
    docs, report = read_all(path)
    kept = [(str(i), t) for i, t in enumerate(texts) if t.strip()]
    assert [(d.id, d.text) for d in docs] == kept
    assert len(report.problems) == len(texts) - len(kept)  # an empty text is a problem, never silent


# ----------------------------------------------------------------------------- 4. own text and the language filter

NOT_FRENCH_LINE = (
    "warning: language filter: kept 1 document that does not look French (French ratio under "
    "corpus.min_french_ratio = 0.15; {source}) because you named its file; "
    "--set corpus.lang_check_named=drop to drop such documents"
)


def test_own_english_text_is_kept_with_one_warning(tmp_path):
    src = tmp_path / "hamlet.txt"
    src.write_text(ENGLISH * 80, encoding="utf-8")
    before = src.read_bytes()
    out = tmp_path / "out"
    done = cli("corpus", "build", str(src), "--out", str(out), "--no-progress")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr.decode() == NOT_FRENCH_LINE.format(source=src) + "\n"
    manifest = read_manifest(out)
    assert manifest["documents"]["kept"] == 1 and manifest["documents"]["dropped"]["not_french"] == 0
    assert [d["id"] for d in manifest["kept_not_french"]] == ["hamlet"]
    assert src.read_bytes() == before

    done = cli("corpus", "build", str(src), "--out", str(out), "--no-progress", "--set", "corpus.lang_check_named=drop")
    assert one_line_error(done) == (
        f"error: corpus: no text kept (0 document(s) of 1 read, {len(ENGLISH * 80) - 1:,} characters; dropped: "
        "1 not French (French ratio under corpus.min_french_ratio = 0.15; corpus.lang_check)): add text, "
        "or change the settings named"
    )
    assert src.read_bytes() == before
    assert [d["id"] for d in iter_documents(out)] == ["hamlet"]  # the earlier corpus is untouched


def test_sources_of_a_config_are_still_filtered(tmp_path):
    """A mixed corpus (the sources of a config, like corpus-shared.yaml): the filter drops."""
    (tmp_path / "fr.txt").write_text(FRENCH * 80, encoding="utf-8")
    (tmp_path / "en.txt").write_text(ENGLISH * 80, encoding="utf-8")
    cfg = load_config(None, ["corpus.workers=1"])
    cfg.corpus.sources = [SourceConfig(path=str(tmp_path / "fr.txt")), SourceConfig(path=str(tmp_path / "en.txt"))]
    warnings: list[str] = []
    m = build_corpus(cfg.corpus, tmp_path / "c", progress=False, echo=warnings.append).manifest
    assert m["documents"]["kept"] == 1 and m["documents"]["dropped"]["not_french"] == 1
    assert warnings == [] and m["kept_not_french"] == []
    cfg.corpus.sources[1].named = True  # the same file, named on the command line
    m = build_corpus(cfg.corpus, tmp_path / "c", progress=False, echo=warnings.append).manifest
    assert m["documents"]["kept"] == 2 and warnings == [NOT_FRENCH_LINE.format(source=tmp_path / "en.txt")]


def test_a_build_that_keeps_too_little_says_why(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "court.txt").write_text("Trop court pour un livre.", encoding="utf-8")
    (folder / "copie1.txt").write_text(FRENCH * 3, encoding="utf-8")
    (folder / "copie2.txt").write_text(FRENCH * 3, encoding="utf-8")
    (folder / "vide.txt").write_text("\u200b\u200b\n", encoding="utf-8")  # invisible: empty once cleaned
    (folder / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    done = cli("corpus", "build", str(folder), "--out", str(tmp_path / "out"), "--no-progress")
    lines = done.stderr.decode().splitlines()
    assert lines[0] == f"warning: {folder / 'image.txt'}: binary file, skipped"
    assert lines[1] == (
        f"error: corpus: only {len((FRENCH * 3).strip()):,} characters of text kept (1 document(s) of 4 read, "
        f"{len(FRENCH * 6) - 2 + 25 + 2:,} characters; dropped: 1 empty (nothing left once cleaned), 1 too short "
        "(under corpus.min_chars = 200 characters), 1 exact duplicate (corpus.dedup_exact), 1 unreadable input(s) "
        "or record(s) (see the warnings)); training needs at least 10,000 (corpus.min_total_chars): add text, or "
        "change the settings named"
    )
    assert len(lines) == 2 and done.returncode == 1


def test_run_on_own_english_text_keeps_it(tmp_path):
    src = tmp_path / "hamlet.txt"
    src.write_text(ENGLISH * 80, encoding="utf-8")
    done = cli("run", str(src), "--until", "corpus", "--no-progress", "--set", f"run.dir={tmp_path / 'runs'}")
    assert done.returncode == 0, done.stderr.decode()
    assert "warning: language filter: kept 1 document" in done.stderr.decode()

