"""`causette corpus build` end to end: accounting, dedup, split, errors, atomicity, CLI."""

from __future__ import annotations

import bz2
import gzip
import random
from pathlib import Path

import pytest

from causette.cli import main
from causette.config import load_config
from causette.corpus.build import build_corpus
from causette.utils.paths import DEMO_CORPUS
from causette.corpus.config import SourceConfig
from causette.corpus.store import iter_documents, read_manifest
from causette.errors import CausetteError, ConfigError

PHRASES = [
    "La marquise sortit à cinq heures, et l'on ne sut jamais pourquoi elle avait pris la route du bois.",
    "Il pleuvait sur la ville depuis le matin ; les gens se hâtaient sous les porches en se plaignant du temps.",
    "Le vieux marin racontait aux enfants des histoires de tempêtes et de baleines qu'il n'avait jamais vues.",
    "Elle ouvrit la lettre d'une main tremblante, puis la relut trois fois avant de comprendre ce qu'elle disait.",
    "On entendait au loin les cloches du village, et le chien du fermier aboyait contre la lune.",
    "Nous avions marché toute la nuit sans rien dire, chacun perdu dans ses pensées et dans sa fatigue.",
]


def french_text(seed: int, n: int = 40) -> str:
    rng = random.Random(seed)
    return "\n".join(f"{rng.choice(PHRASES)} ({seed}-{i})" for i in range(n))


ENGLISH = "\n".join(
    ["It was the best of times, it was the worst of times, it was the age of wisdom and of foolishness."] * 10
)


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    d = tmp_path / "src"
    (d / "sub").mkdir(parents=True)
    a = french_text(1)
    (d / "a.txt").write_text(a, encoding="utf-8")
    (d / "sub" / "b.txt.gz").write_bytes(gzip.compress(french_text(2).encode("utf-8")))
    (d / "c_copy.txt").write_text(a.upper().replace("\n", "\n\n"), encoding="utf-8")  # exact dup up to case/space
    lines = a.split("\n")
    lines[3] = "Une seule ligne a changé dans cette copie presque identique du premier texte."
    (d / "d_near.txt").write_text("\n".join(lines), encoding="utf-8")
    (d / "e_english.txt").write_text(ENGLISH, encoding="utf-8")
    (d / "f_short.txt").write_text("Trop court.", encoding="utf-8")
    (d / "g_cp1252.txt.bz2").write_bytes(bz2.compress(french_text(3).encode("cp1252")))
    (d / "h_binary.txt").write_bytes(b"\x00\x01\x02\xff" * 100)
    (d / "i_empty.txt").write_bytes(b"")
    return d


def build(src: Path, out: Path, **overrides):
    overrides.setdefault("min_total_chars", 0)  # these corpora are tiny on purpose
    cfg = load_config(None, [f"corpus.{k}={v}" for k, v in overrides.items()])
    cfg.corpus.sources = [SourceConfig(path=str(src))]
    return build_corpus(cfg.corpus, out, progress=False, echo=lambda s: None)


def test_accounting_dedup_and_problems(sources, tmp_path):
    out = tmp_path / "corpus"
    result = build(sources, out, min_chars=200)
    m = result.manifest
    docs = m["documents"]
    assert docs["kept"] + sum(docs["dropped"].values()) == docs["seen"]
    assert docs["dropped"]["exact_duplicate"] == 1
    assert docs["dropped"]["near_duplicate"] == 1
    assert docs["dropped"]["not_french"] == 1
    assert docs["dropped"]["too_short"] == 1
    assert docs["kept"] == 3
    chars = m["characters"]
    assert chars["kept"] + sum(chars["dropped"].values()) <= chars["seen"]  # cleaning may shorten
    reasons = {d["reason"]: d for d in m["dropped_documents"]}
    assert reasons["exact_duplicate"]["duplicate_of"] == "a"
    assert reasons["near_duplicate"]["duplicate_of"] == "a"
    # the binary and the empty file are problems, not documents, and name their file
    problem_files = sorted(Path(p["file"]).name for p in m["problems"])
    assert problem_files == ["h_binary.txt", "i_empty.txt"]
    # every input file is listed with its hash
    listed = {Path(f["path"]).name: f for f in m["inputs"]}
    assert len(listed["a.txt"]["sha256"]) == 64
    assert listed["g_cp1252.txt.bz2"]["encoding"].lower() in ("cp1252", "windows-1252")
    # the written documents are exactly the kept ones, accents intact
    written = list(iter_documents(out))
    assert {d["id"] for d in written} == set(m["split"]["train"]) | set(m["split"]["val"])
    assert len(written) == docs["kept"]
    assert any("à" in d["text"] and "é" in d["text"] for d in written)
    assert set(m["split"]["train"]).isdisjoint(m["split"]["val"])
    assert len(m["split"]["val"]) >= 1
    assert read_manifest(out)["documents"] == docs


def test_build_is_deterministic(sources, tmp_path):
    build(sources, tmp_path / "one")
    build(sources, tmp_path / "two")
    assert (tmp_path / "one" / "docs.jsonl.gz").read_bytes() == (tmp_path / "two" / "docs.jsonl.gz").read_bytes()
    m1, m2 = read_manifest(tmp_path / "one"), read_manifest(tmp_path / "two")
    assert m1["split"] == m2["split"]


def test_filters_can_be_switched_off(sources, tmp_path):
    m = build(sources, tmp_path / "c", dedup_exact="false", near_dup="false", lang_check="false", min_chars=0).manifest
    assert m["documents"]["dropped"] == {r: 0 for r in m["documents"]["dropped"]}
    assert m["documents"]["kept"] == m["documents"]["seen"] == 7


def test_strict_fails_and_keeps_previous_corpus(sources, tmp_path):
    out = tmp_path / "corpus"
    build(sources / "sub", out)
    before = (out / "docs.jsonl.gz").read_bytes()
    with pytest.raises(CausetteError, match=r"h_binary.txt.*--strict"):
        build(sources, out, strict="true")
    assert (out / "docs.jsonl.gz").read_bytes() == before  # atomic: untouched
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".corpus")]  # no temp dir left


def test_missing_source_is_immediate_error(tmp_path):
    with pytest.raises(CausetteError, match="nope: no such file or directory"):
        build(tmp_path / "nope", tmp_path / "out")


def test_cli_build_and_errors(sources, tmp_path, capsys):
    runs = tmp_path / "runs"
    code = main(["corpus", "build", str(sources / "sub"), "--name", "t", "--no-progress", "--set", f"run.dir={runs}"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "only 4,331 characters of text kept" in err and "needs at least 10,000 (corpus.min_total_chars)" in err
    assert not (runs / "t" / "corpus").exists()

    code = main(["corpus", "build", str(sources / "sub"), "--name", "t", "--no-progress", "--set", f"run.dir={runs}",
                 "--set", "corpus.min_total_chars=1000"])
    assert code == 0
    out = capsys.readouterr().out
    assert "corpus: 1 documents" in out and str(runs / "t" / "corpus") in out
    assert "split: val = the last 10% of 1 of 1 document(s)" in out
    assert (runs / "t" / "corpus" / "manifest.json").is_file()

    code = main(["corpus", "build", str(tmp_path / "missing"), "--no-progress", "--set", f"run.dir={runs}"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: ") and "missing: no such file or directory" in err
    assert err.count("\n") == 1 and "Traceback" not in err

    code = main(["corpus", "build", "--set", "corpus.min_char=3"])
    err = capsys.readouterr().err
    assert code == 1 and "unknown key 'corpus.min_char'" in err and "did you mean" in err

    code = main(["corpus", "build", str(sources), "--strict", "--no-progress", "--set", f"run.dir={runs}"])
    err = capsys.readouterr().err
    assert code == 1 and "error: " in err and "--strict" in err


@pytest.mark.slow
def test_demo_corpus(tmp_path):
    assert DEMO_CORPUS.is_file(), "the demo corpus must ship in data/"
    cfg = load_config("demo")
    result = build_corpus(cfg.corpus, tmp_path / "corpus", progress=False, echo=lambda s: None)
    m = result.manifest
    assert m["documents"]["seen"] == 35
    assert m["documents"]["kept"] == 35, m["dropped_documents"]
    assert m["problems"] == []
    kinds = m["by_kind"]
    assert set(kinds) == {"theatre", "prose"}
    assert kinds["theatre"]["documents"] == 17 and kinds["prose"]["documents"] == 18
    texts = {d["title"]: d["text"] for d in iter_documents(tmp_path / "corpus")}
    assert "ALCESTE." in texts["LE MISANTHROPE"]
    alltext = "".join(texts.values())
    for bad in ("Ã©", "â€", "\ufffd", "Gutenberg"):
        assert bad not in alltext
    for good in ("«", "»", "œ", "—", "é", "à", "ç"):
        assert good in alltext
    assert 2 <= len(m["split"]["val"]) <= 5


def _output_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_workers_give_the_same_corpus(sources, tmp_path):
    """Cleaning and hashing in a pool of processes: same documents, drops and manifest, byte for byte."""
    one = build(sources, tmp_path / "one", workers=1)
    two = build(sources, tmp_path / "two", workers=2)
    assert one.manifest["documents"]["dropped"]["near_duplicate"] == 1  # the decisions are exercised
    assert "workers" not in one.manifest["config"]  # it does not shape the corpus
    assert _output_files(tmp_path / "one") == _output_files(tmp_path / "two")
    assert one.summary_lines == two.summary_lines


def test_workers_must_be_non_negative(sources, tmp_path):
    with pytest.raises(ConfigError, match=r"workers must be within \[0, 1024\] \(0 = one per core\), got -1"):
        build(sources, tmp_path / "out", workers=-1)


@pytest.mark.slow
def test_demo_corpus_workers_byte_identical(tmp_path):
    outputs = []
    for workers in (1, 2):
        cfg = load_config("demo", [f"corpus.workers={workers}"])
        build_corpus(cfg.corpus, tmp_path / f"w{workers}", progress=False, echo=lambda s: None)
        outputs.append(_output_files(tmp_path / f"w{workers}"))
    assert set(outputs[0]) == {"docs.jsonl.gz", "manifest.json", ".causette"}
    assert outputs[0] == outputs[1]
