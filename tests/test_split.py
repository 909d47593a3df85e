"""The train/val split: whole documents when there are enough, else the end of each long document.

Whatever the corpus, train and val are never empty and never share text.
"""

from __future__ import annotations

import gzip
import json

import pytest
from helpers import demo_excerpt
from hypothesis import given, settings
from hypothesis import strategies as st

from causette.config import load_config
from causette.corpus.build import build_corpus
from causette.corpus.config import SourceConfig
from causette.corpus.split import MIN_DOCS_FOR_DOCUMENT_SPLIT, DocInfo, plan_split, split_text, tail_cut
from causette.corpus.store import iter_documents, iter_texts, read_manifest
from causette.errors import CausetteError


def build(tmp_path, paths, **overrides):
    cfg = load_config(None, [f"corpus.{k}={v}" for k, v in overrides.items()])
    cfg.corpus.sources = [SourceConfig(path=str(p)) for p in paths]
    out = tmp_path / "corpus"
    result = build_corpus(cfg.corpus, out, progress=False, echo=lambda s: None)
    return out, result


def paragraphs(text: str) -> set[str]:
    return {p.strip() for p in text.split("\n") if len(p.strip()) > 40}


# ----------------------------------------------------------------------------- cutting one text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab é\n.!«»"), min_size=2, max_size=400),
       st.floats(min_value=0.01, max_value=0.9))
def test_cut_parts_are_disjoint_pieces_of_the_text(text, fraction):
    cut = tail_cut(text, fraction)
    if cut is None:
        return
    head, tail = split_text(text, cut)
    assert head.strip() and tail.strip()  # neither side empty
    assert text.startswith(head) and text.endswith(tail)
    assert len(head) + len(tail) <= len(text)  # no character in both
    assert text[len(head):len(text) - len(tail)].strip() == ""  # only whitespace left out, at the junction


def test_cut_lands_on_the_paragraph_break_nearest_the_fraction():
    paras = [f"Paragraphe {i} : " + "mot " * 40 for i in range(20)]
    text = "\n\n".join(paras)
    head, tail = split_text(text, tail_cut(text, 0.1))
    assert tail.startswith("Paragraphe 18 :")  # the last 10 % of 20 paragraphs: the last two
    assert head.endswith(paras[17].rstrip())
    assert abs(len(tail) / len(text) - 0.1) < 0.02


def test_cut_without_paragraphs_uses_lines_then_sentences():
    lines = "\n".join(f"Ligne {i} du poème." for i in range(100))
    assert split_text(lines, tail_cut(lines, 0.1))[1].startswith("Ligne 90")
    prose = " ".join(f"Phrase {i} finie." for i in range(100))
    assert split_text(prose, tail_cut(prose, 0.1))[1].startswith("Phrase 90")


# ----------------------------------------------------------------------------- choosing the mode


def infos(sizes, fraction=0.1, kind="prose"):
    return [DocInfo.of(f"d{i}", kind, ("Un mot. " * (n // 8)) + "\n", fraction) for i, n in enumerate(sizes)]


def test_enough_documents_split_by_document():
    plan = plan_split(infos([5000] * 30), 0.1, seed=1)
    assert plan.mode == "document" and len(plan.val) == 3 and not set(plan.train) & set(plan.val)


def test_few_documents_hold_out_their_ends():
    plan = plan_split(infos([100_000, 50_000, 3_000]), 0.1, seed=1)
    assert plan.mode == "tail"
    assert plan.train == ["d0", "d1", "d2"] and plan.val == ["d0", "d1"]  # 3,000 characters: too short to cut
    assert "3 documents: too few" in plan.reason
    assert 0.08 < plan.characters["val"] / sum(plan.characters.values()) < 0.12


def test_uneven_documents_hold_out_their_ends():
    """30 documents, but the whole-document split would put a giant in val (or leave val a sliver)."""
    sizes = [4000] * 29 + [2_000_000]
    plan = plan_split(infos(sizes), 0.1, seed=1)
    assert plan.mode == "tail" and "would put" in plan.reason
    assert 0.08 < plan.characters["val"] / sum(plan.characters.values()) < 0.12  # the share asked for


def test_short_documents_only_are_never_left_without_val():
    one = plan_split(infos([1200]), 0.1, seed=1)  # a tail of 120 characters: below MIN_TAIL_CHARS, still cut
    assert one.mode == "tail" and one.val == ["d0"] and one.characters["val"] > 0
    few = plan_split(infos([1200] * 5), 0.1, seed=1)  # five short documents: one of them whole in val
    assert few.mode == "document" and len(few.val) == 1 and len(few.train) == 4


def test_val_fraction_zero_means_no_val():
    plan = plan_split(infos([5000] * 3), 0.0, seed=1)
    assert plan.mode == "none" and plan.val == [] and len(plan.train) == 3


def test_nothing_to_split_is_an_error():
    with pytest.raises(CausetteError, match="no text to split"):
        plan_split([], 0.1, seed=1)


# ----------------------------------------------------------------------------- whole corpora


def test_one_document_corpus(tmp_path):
    text = "\n\n".join(demo_excerpt(3, 20_000))
    (tmp_path / "livre.txt").write_text(text, encoding="utf-8")
    out, result = build(tmp_path, [tmp_path / "livre.txt"])
    split = read_manifest(out)["split"]
    assert split["mode"] == "tail" and split["train"] == split["val"] == ["livre"]
    assert any("val = the last 10% of 1 of 1 document(s)" in line for line in result.summary_lines)
    (train,), (val,) = list(iter_texts(out, "train")), list(iter_texts(out, "val"))
    (whole,) = list(iter_texts(out, "all"))
    assert whole.startswith(train) and whole.endswith(val) and len(train) + len(val) <= len(whole)
    assert 0.07 < len(val) / len(whole) < 0.13
    assert paragraphs(val) and not paragraphs(train) & paragraphs(val)  # no shared text
    assert split["characters"] == {"train": len(train), "val": len(val)}


def test_two_document_corpus_and_gzip(tmp_path):
    a, b = demo_excerpt(2, 30_000)
    (tmp_path / "a.txt.gz").write_bytes(gzip.compress(a.encode("utf-8")))
    (tmp_path / "b.txt").write_text(b, encoding="utf-8")
    out, _ = build(tmp_path, [tmp_path / "a.txt.gz", tmp_path / "b.txt"])
    split = read_manifest(out)["split"]
    assert split["mode"] == "tail" and sorted(split["val"]) == ["a", "b"]
    train = {d["id"]: d["text"] for d in iter_documents(out, "train")}
    val = {d["id"]: d["text"] for d in iter_documents(out, "val")}
    for doc_id, original in (("a", a), ("b", b)):
        assert original.startswith(train[doc_id][:1000]) and val[doc_id] not in train[doc_id]
        assert not paragraphs(train[doc_id]) & paragraphs(val[doc_id])
    # the split is a pure function of the corpus: rebuilding gives the same manifest split
    (tmp_path / "again").mkdir()
    out2, _ = build(tmp_path / "again", [tmp_path / "a.txt.gz", tmp_path / "b.txt"])
    assert read_manifest(out2)["split"] == split


def test_many_documents_keep_the_document_split(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i, text in enumerate(demo_excerpt(MIN_DOCS_FOR_DOCUMENT_SPLIT + 5, 3_000)):
        (src / f"doc{i:02d}.txt").write_text(text, encoding="utf-8")
    out, _ = build(tmp_path, [src], min_chars=100)
    split = read_manifest(out)["split"]
    assert split["mode"] == "document" and "cuts" not in split
    assert set(split["train"]).isdisjoint(split["val"]) and split["val"]
    whole = {d["id"]: d["text"] for d in iter_documents(out)}
    assert all(d["text"] == whole[d["id"]] for d in iter_documents(out, "val"))


def test_val_fraction_zero_corpus(tmp_path):
    (tmp_path / "livre.txt").write_text("\n\n".join(demo_excerpt(2, 20_000)), encoding="utf-8")
    out, result = build(tmp_path, [tmp_path / "livre.txt"], val_fraction=0)
    split = read_manifest(out)["split"]
    assert split["mode"] == "none" and split["val"] == [] and list(iter_texts(out, "val")) == []
    assert any("no val split" in line for line in result.summary_lines)


def test_too_small_corpus_is_refused_at_build_time(tmp_path):
    (tmp_path / "note.txt").write_text(demo_excerpt(1, 3_000)[0], encoding="utf-8")
    with pytest.raises(CausetteError, match=r"only 3,000 characters of text kept .* needs at least 10,000"):
        build(tmp_path, [tmp_path / "note.txt"])
    assert not (tmp_path / "corpus").exists()


def test_manifest_is_json_with_the_split_mode(tmp_path):
    (tmp_path / "livre.txt").write_text("\n\n".join(demo_excerpt(2, 20_000)), encoding="utf-8")
    out, _ = build(tmp_path, [tmp_path / "livre.txt"])
    split = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["split"]
    assert {"mode", "reason", "cuts", "characters", "train", "val", "seed", "val_fraction"} <= set(split)
