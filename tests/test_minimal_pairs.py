"""Minimal pairs in ``causette eval``: reading BLiMP-style files (every bad line is one error naming
``file:line``), the scores (= one sentence at a time through the training loss, = Hugging Face
``transformers`` on the exported model, Llama and GPT-2 families, ≤ 1e-4 per sentence; padding
and batching change nothing), ties, sentences longer than the context, Wilson intervals, the
overlap with the training corpus (= ``sentence in text``), the table in French and English and
the JSON, ``--suite grammaire``, an imported Hugging Face model, and the API the trainer calls.
"""

from __future__ import annotations

import gzip
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import DEMO, TINY_MODEL, copy_run
from hypothesis import given, settings
from hypothesis import strategies as st

from causette.checkpoint.load import load_checkpoint
from causette.checkpoint.steps import save_checkpoint
from causette.checkpoint.weights import save_model
from causette.cli import main
from causette.config import load_config
from causette.corpus.config import NormalizeConfig
from causette.corpus.store import iter_texts
from causette.errors import CausetteError
from causette.eval import grammar
from causette.eval.minimal_pairs import (
    LABELS,
    MinimalPair,
    fixed_subset,
    phenomenon_label,
    read_pair_files,
    read_pairs,
    summarize,
    wilson_interval,
)
from causette.eval.overlap import sentences_in_texts
from causette.eval.sentence_scores import (
    encode_pairs,
    phenomenon_counts,
    score_pairs,
    sentence_batches,
    sentence_logprobs,
)
from causette.model import Transformer
from causette.tokenizer import train_tokenizer
from causette.tokenizer.config import TokenizerConfig
from causette.tokenizer.io import save_tokenizer
from causette.utils.io import write_json
from causette.utils.lang import NBSP, using
from causette.utils.paths import GRAMMAR_SUITE

ATOL = 1e-4
SENTENCES = [
    "Les enfants jouent dans le jardin.",
    "Les enfants joue dans le jardin.",
    "Une petite maison au bord de l'eau.",
    "Une petit maison au bord de l'eau.",
    "Elle est partie hier soir, sans rien dire à personne.",
    "Elle est parti hier soir, sans rien dire à personne.",
    "Il dort.",
    "« Qu'est-ce que c'est ? » demanda-t-elle ; il répondit : 1789 !",
]
PAIRS = [
    {"sentence_good": SENTENCES[0], "sentence_bad": SENTENCES[1], "phenomenon": "subject_verb_number"},
    {"sentence_good": SENTENCES[2], "sentence_bad": SENTENCES[3], "phenomenon": "determiner_noun_gender"},
    {"sentence_good": SENTENCES[4], "sentence_bad": SENTENCES[5], "phenomenon": "etre_predicate_gender"},
    {"sentence_good": SENTENCES[7], "sentence_bad": SENTENCES[6], "phenomenon": "un_autre_test"},
    {"sentence_good": "Les chats dorment.", "sentence_bad": "Les chats dort.", "phenomenon": "subject_verb_number"},
]


def write_pairs(path: Path, records: list, gz: bool = False) -> Path:
    text = "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records)
    if gz:
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def one_line_error(capsys, code: int) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


# ============================================================================== reading files


def test_reads_phenomenon_blimp_fields_gz_bom_and_blank_lines(tmp_path):
    records = [
        {"sentence_good": "a b", "sentence_bad": "b a", "phenomenon": "det_noun_number", "source": "x#1"},
        {"sentence_good": "c d", "sentence_bad": "d c", "field": "syntax", "UID": "anaphor_gender_agreement",
         "linguistics_term": "anaphor_agreement"},
        {"sentence_good": "e f", "sentence_bad": "f e", "field": "morphology"},
        {"sentence_good": "g h", "sentence_bad": "h g"},
        '{"sentence_good": "bad \\ud800 char", "sentence_bad": "ok"}',  # json.loads makes a lone surrogate
    ]
    path = write_pairs(tmp_path / "p.jsonl.gz", records[:2] + ["", "   "] + records[2:], gz=True)
    pairs = read_pairs(path)
    assert [p.phenomenon for p in pairs] == ["det_noun_number", "anaphor_gender_agreement", "morphology", "all", "all"]
    assert pairs[0] == MinimalPair("a b", "b a", "det_noun_number")  # where and extra are not compared
    assert pairs[0].extra == {"phenomenon": "det_noun_number", "source": "x#1"}
    assert pairs[1].where == f"{path}:2" and pairs[2].where == f"{path}:5"  # blank lines keep the numbering
    assert pairs[4].good == "bad \ufffd char"  # a lone surrogate repaired
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(records[0]).encode() + b"\n")
    assert read_pair_files([bom, path])[0] == pairs[0] and len(read_pair_files([bom, path])) == 6


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"sentence_good": "a", "sentence_bad": "b"', "invalid JSON"),
        ('["a", "b"]', "expected a JSON object"),
        ('{"sentence_good": "a"}', "no 'sentence_bad' field"),
        ('{"sentence_bad": "a"}', "no 'sentence_good' field"),
        ('{"sentence_good": 3, "sentence_bad": "b"}', "sentence_good must be a string, not a number"),
        ('{"sentence_good": "a", "sentence_bad": null}', "sentence_bad must be a string, not null"),
        ('{"sentence_good": "  ", "sentence_bad": "b"}', "sentence_good is empty"),
        ('{"sentence_good": "a", "sentence_bad": "a"}', "are the same sentence"),
        ('{"sentence_good": "a", "sentence_bad": "b", "phenomenon": 7}', "phenomenon must be a non-empty string"),
        ('{"sentence_good": "a", "sentence_bad": "b", "UID": ""}', "UID must be a non-empty string"),
    ],
)
def test_bad_line_is_one_error_naming_file_and_line(tmp_path, capsys, line, message):
    path = write_pairs(tmp_path / "p.jsonl", [PAIRS[0], PAIRS[1], line, PAIRS[2]])
    with pytest.raises(CausetteError) as err:
        read_pairs(path)
    assert str(err.value).startswith(f"{path}:3: ") and message in str(err.value)
    # through the command: one line, exit 1, before any model is loaded (no checkpoint here)
    code = main(["eval", "--checkpoint", str(tmp_path / "nothing"), "--pairs", str(path)])
    assert f"{path}:3: " in one_line_error(capsys, code)


def test_not_utf8_empty_and_missing_files(tmp_path):
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(json.dumps(PAIRS[0]).encode() + b"\n" + '{"sentence_good": "été", "sentence_bad": "x"}'.encode("latin-1"))
    with pytest.raises(CausetteError, match=rf"^{bad}:2: not UTF-8 text \(byte 0xe9"):
        read_pairs(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(CausetteError, match=rf"^{empty}: no minimal pair in this file"):
        read_pairs(empty)
    with pytest.raises(CausetteError, match=r"absent.jsonl: no such file$"):
        read_pairs(tmp_path / "absent.jsonl")
    with pytest.raises(CausetteError, match=r": not a file$"):
        read_pairs(tmp_path)
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(gzip.compress(json.dumps(PAIRS[0]).encode() * 50)[:30])
    with pytest.raises(CausetteError, match=r"cut.jsonl.gz: cannot read this file"):
        read_pairs(truncated)


text_st = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30).filter(str.strip)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(text_st, text_st, st.one_of(st.none(), text_st)), min_size=1, max_size=5))
def test_any_written_pair_reads_back(tmp_path_factory, triples):
    records = []
    for good, bad, group in triples:
        if good == bad:
            bad = bad + "!"
        records.append({"sentence_good": good, "sentence_bad": bad, **({"phenomenon": group} if group else {})})
    path = write_pairs(tmp_path_factory.mktemp("h") / "p.jsonl", records)
    pairs = read_pairs(path)
    assert [(p.good, p.bad) for p in pairs] == [(r["sentence_good"], r["sentence_bad"]) for r in records]
    assert [p.phenomenon for p in pairs] == [r.get("phenomenon", "all").strip() for r in records]


# ============================================================================== counting


def test_wilson_interval_reference_values():
    # Newcombe (1998), Statistics in Medicine 17:857, table I: 81/263 → 0.2553–0.3662; 15/148 → 0.0624–0.1605;
    # 0/20 → 0–0.1611; 1/29 → 0.0061–0.1718.
    for (k, n), (low, high) in {(81, 263): (0.2553, 0.3662), (15, 148): (0.0624, 0.1605),
                                 (0, 20): (0.0, 0.1611), (1, 29): (0.0061, 0.1718)}.items():
        got = wilson_interval(k, n)
        assert got == pytest.approx((low, high), abs=1e-4), (k, n, got)
    assert wilson_interval(10, 10)[1] == 1.0 and wilson_interval(0, 10)[0] == 0.0
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    s = summarize({"a": (3, 4), "b": (0, 0), "c": (1, 6)})
    assert s["overall"]["correct"] == 4 and s["overall"]["total"] == 10 and s["overall"]["accuracy"] == 0.4
    assert s["phenomena"]["b"] == {"correct": 0, "total": 0, "accuracy": None, "ci95": None}
    assert s["phenomena"]["a"]["ci95"] == pytest.approx(list(wilson_interval(3, 4)))


def test_batches_cover_every_sentence_once_within_the_budget():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, 500).tolist()
    for budget in (1, 64, 1000):
        batches = sentence_batches(lengths, budget)
        assert sorted(i for b in batches for i in b) == list(range(500))
        for b in batches:
            assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= budget
        assert [lengths[b[0]] for b in batches] == sorted(lengths[b[0]] for b in batches)  # by length


def test_fixed_subset_is_reproducible_and_keeps_each_phenomenon():
    pairs = [MinimalPair(f"g{i}", f"b{i}", ["x", "y", "z"][i % 3] if i < 600 else "rare") for i in range(603)]
    sub = fixed_subset(pairs, 60, seed=1)
    assert sub == fixed_subset(pairs, 60, seed=1) != fixed_subset(pairs, 60, seed=2)
    counts = {p: sum(q.phenomenon == p for q in sub) for p in ("x", "y", "z", "rare")}
    assert counts == {"x": 20, "y": 20, "z": 20, "rare": 1}
    assert fixed_subset(pairs, 1000) == pairs


def test_labels_in_both_languages_and_unknown_ids_as_they_are():
    assert {"subject_verb_number", "subject_verb_number_distant", "subject_verb_person", "determiner_noun_gender",
            "determiner_noun_number", "adjective_noun_gender", "etre_predicate_number", "participle_avoir"} <= set(LABELS)
    assert phenomenon_label("subject_verb_person") == "accord sujet–verbe en personne"
    with using("en"):
        assert phenomenon_label("subject_verb_person") == "subject–verb person agreement"
    assert phenomenon_label("mon_test") == "mon_test" and phenomenon_label("all") == "(sans phénomène)"


# ============================================================================== overlap

corpus_chars = st.text(alphabet="ab .\n", max_size=120)


@settings(max_examples=200, deadline=None)
@given(st.lists(corpus_chars, max_size=4), st.lists(st.text(alphabet="ab .\n", min_size=1, max_size=40), max_size=8),
       st.sampled_from([1, 5, 17, 1 << 20]), st.data())
def test_overlap_is_exactly_substring_search(texts, sentences, chunk, data):
    # half of the sentences cut from the texts, so that there are matches of every length
    for t in texts:
        if t:
            i = data.draw(st.integers(0, len(t) - 1))
            sentences.append(t[i : i + data.draw(st.integers(1, 40))])
    expected = {s for s in sentences if any(s in t for t in texts)}
    assert sentences_in_texts(sentences, texts, chunk=chunk) == expected


def test_overlap_finds_real_sentences_in_the_demo_corpus():
    text = gzip.decompress(DEMO.read_bytes()).decode("utf-8")[:300_000]
    inside = [text[i : i + n] for i, n in ((1000, 60), (123_456, 13), (149_990, 30), (5, 12), (299_000, 200))]
    outside = [s + "§" for s in inside] + ["Les enfants joue dans le jardin de la marquise."]
    # cut in two documents: the sentence across the cut is in neither
    assert sentences_in_texts(inside + outside, [text[:150_000], text[150_000:]]) == set(inside) - {inside[2]}
    assert sentences_in_texts(inside + outside, [text]) == set(inside)


# ============================================================================== scores

TOK_TEXT = gzip.decompress(DEMO.read_bytes()).decode("utf-8")[:20_000]


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(TokenizerConfig(vocab_size=400, workers=1), [TOK_TEXT])


def tiny_model(tok, preset: str = "llama", block_size: int = 64, seed: int = 0) -> Transformer:
    cfg = load_config(f"model/{preset}", ["model.n_layer=2", "model.n_embd=64", "model.n_head=4",
                                          f"model.vocab_size={tok.vocab_size}", f"model.block_size={block_size}",
                                          "model.init_std=0.3"]).model
    torch.manual_seed(seed)
    model = Transformer(cfg).eval()
    with torch.no_grad():  # norm scales away from 1, so that a mix-up would show
        for p in model.parameters():
            if p.dim() == 1:
                p.uniform_(0.5, 1.5)
    return model


def reference_logprob(model, tok, text: str) -> float:
    """One sentence alone, through the training loss: -(mean cross-entropy × number of targets)."""
    ids = torch.tensor([[tok.bos_id, *tok.encode(text)]])
    with torch.no_grad():
        return -float(model.loss(ids[:, :-1], ids[:, 1:])) * (ids.shape[1] - 1)


def test_scores_equal_one_sentence_at_a_time_whatever_the_batching(tok):
    model = tiny_model(tok)
    ids = [tok.encode(s) for s in SENTENCES]
    expected = np.array([reference_logprob(model, tok, s) for s in SENTENCES])
    assert np.ptp(expected) > 1.0  # the sentences do differ
    for budget in (1, 40, 100_000):
        got = sentence_logprobs(model, ids, tok.bos_id, batch_tokens=budget)
        np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)
    assert sentence_logprobs(model, [[], ids[0]], tok.bos_id)[0] == 0.0
    with pytest.raises(CausetteError, match="longer than the model's context"):
        sentence_logprobs(model, [ids[0] * 20], tok.bos_id)


try:
    import transformers
except ImportError:  # an optional dependency (pip install -e .[hf])
    transformers = None
needs_transformers = pytest.mark.skipif(transformers is None, reason="transformers is not installed")


@needs_transformers
@pytest.mark.parametrize("preset", ["llama", "gpt2"])
def test_scores_equal_hugging_face_log_probabilities(tmp_path, tok, preset):
    """The exported model, run by transformers on the same ids: log-softmax, gather, sum."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    model = tiny_model(tok, preset)
    save_model(model, tmp_path / "ckpt")
    save_tokenizer(tok, tmp_path / "ckpt")
    write_json(tmp_path / "ckpt" / "state.json", {"stage": "pretrain", "step": 0})
    assert main(["export", "hf", str(tmp_path / "ckpt"), str(tmp_path / "hf")]) == 0
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf", dtype=torch.float32).eval()
    expected = []
    for s in SENTENCES:
        ids = torch.tensor([[tok.bos_id, *tok.encode(s)]])
        with torch.no_grad():
            logp = torch.log_softmax(hf(ids).logits[0, :-1].double(), -1)
        expected.append(float(logp.gather(1, ids[0, 1:, None]).sum()))
    pairs = [MinimalPair(SENTENCES[i], SENTENCES[i + 1]) for i in range(0, len(SENTENCES), 2)]
    scores = score_pairs(model, tok, pairs)
    np.testing.assert_allclose(np.stack([scores.good, scores.bad], 1).ravel(), expected, atol=ATOL, rtol=0)
    assert list(scores.passed) == [expected[i] > expected[i + 1] for i in range(0, len(expected), 2)]


def test_ties_fail_and_too_long_pairs_are_left_out(tok):
    model = tiny_model(tok, block_size=16)
    with torch.no_grad():
        for p in model.parameters():  # every logit 0: each token costs log V, only lengths matter
            p.zero_()
    n = lambda s: len(tok.encode(s))
    same = [(a, b) for a, b in [("un grand arbre", "une grand arbre"), ("elle dit", "elle dis"),
                                  ("nous avons", "nous avez"), ("une femme", "un femme")] if n(a) == n(b)][:2]
    assert len(same) == 2
    shorter = ("il dort", "il dort encore")
    long = ("mot " * 30, "mots " * 30)
    pairs = [MinimalPair(a, b, "x") for a, b in same + [shorter]] + [MinimalPair(*long, "y")]
    scores = score_pairs(model, tok, pairs)
    assert scores.good[0] == scores.bad[0] == pytest.approx(-n(same[0][0]) * math.log(tok.vocab_size))
    assert list(scores.passed) == [False, False, True, False]
    assert list(scores.too_long) == [False, False, False, True] and math.isnan(scores.good[3])
    assert scores.counts() == {"x": (1, 3), "y": (0, 0)}


def test_sentences_are_cleaned_with_the_given_corpus_settings(tok):
    model = tiny_model(tok)
    curly = MinimalPair(f"L’arbre{NBSP}? Oui\u200b.", "L’arbres ? Oui.")
    plain = MinimalPair("L'arbre ? Oui.", "L'arbres ? Oui.")
    cleaned = score_pairs(model, tok, [curly, plain], normalize_cfg=NormalizeConfig())
    assert cleaned.good[0] == cleaned.good[1] and cleaned.bad[0] == cleaned.bad[1]
    as_given = score_pairs(model, tok, [curly, plain])
    assert as_given.good[0] != as_given.good[1]
    encoded = encode_pairs(tok, [curly, plain], 64, NormalizeConfig())
    assert encoded.texts == ["L'arbre ? Oui.", "L'arbres ? Oui."]  # each distinct sentence once
    with pytest.raises(CausetteError, match="x.jsonl:4: sentence_good is empty once cleaned"):
        encode_pairs(tok, [MinimalPair("\u200b", "b", where="x.jsonl:4")], 64, NormalizeConfig())


def test_trainer_api_counts_in_eval_mode_without_gradients_and_restores_the_mode(tok):
    model = tiny_model(tok).train()
    pairs = [MinimalPair(p["sentence_good"], p["sentence_bad"], p["phenomenon"]) for p in PAIRS]
    counts = phenomenon_counts(model, tok, pairs, "cpu", autocast=torch.autocast("cpu", torch.bfloat16))
    assert model.training and all(p.grad is None for p in model.parameters())
    assert sum(t for _, t in counts.values()) == len(pairs) and set(counts) == {p.phenomenon for p in pairs}
    exact = phenomenon_counts(model, tok, pairs)
    ref = [reference_logprob(model.eval(), tok, p.good) > reference_logprob(model, tok, p.bad) for p in pairs]
    assert exact == {k: (sum(r for r, p in zip(ref, pairs) if p.phenomenon == k), v[1]) for k, v in exact.items()}


# ============================================================================== the command


@pytest.fixture(scope="module")
def scored_run(base_run, tmp_path_factory, tok):
    """The tiny prepared run (its corpus on disk) with a random checkpoint of its tokenizer."""
    run = copy_run(base_run, tmp_path_factory.mktemp("runs"), "gram")
    from causette.tokenizer.io import load_tokenizer

    run_tok = load_tokenizer(run / "tokenizer" / "tokenizer.json")
    cfg = load_config("model/llama", TINY_MODEL + [f"model.vocab_size={run_tok.vocab_size}", "model.block_size=48",
                                                    "model.init_std=0.3"]).model
    torch.manual_seed(1)
    save_checkpoint(run / "checkpoints", 3, Transformer(cfg), None, state={"stage": "pretrain"},
                    tokenizer_file=run / "tokenizer" / "tokenizer.json")
    return run


def train_sentence(run: Path) -> str:
    """A sentence of the run's train split, as stored there."""
    text = next(iter(iter_texts(run / "corpus", "train")))
    return next(line for line in text.split("\n") if 25 < len(line) < 50)


def test_eval_pairs_prints_the_table_and_writes_the_json(scored_run, tmp_path, capsys):
    seen = train_sentence(scored_run)
    records = PAIRS + [{"sentence_good": seen.replace("'", "’"), "sentence_bad": seen + " Non.", "phenomenon": "vu"},
                       {"sentence_good": "mot " * 60, "sentence_bad": "mots " * 60, "phenomenon": "vu"}]
    path = write_pairs(tmp_path / "paires.jsonl", records)
    out_json = tmp_path / "eval.json"
    assert main(["eval", "--checkpoint", str(scored_run), "--pairs", str(path), "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    result = json.loads(out_json.read_text(encoding="utf-8"))["grammar"]

    loaded = load_checkpoint(scored_run, device="cpu", precision="fp32")
    cfg = NormalizeConfig()  # what the tiny run's corpus was built with
    pairs = read_pairs(path)
    scores = score_pairs(loaded.model, loaded.tokenizer, pairs, normalize_cfg=cfg)
    counts = scores.counts()
    assert result["pairs"] == 7 and result["too_long"] == 1 and result["scored"] == 6 and result["context"] == 48
    assert {k: (v["correct"], v["total"]) for k, v in result["phenomena"].items()} == counts
    assert result["overall"]["total"] == 6 and result["overall"]["correct"] == sum(c for c, _ in counts.values())
    assert result["normalize_from"] == str(scored_run / "corpus")
    assert result["overlap"]["sentences"] == 1 and result["overlap"]["pairs"] == 1  # the curly ’ was cleaned
    assert result["overlap"]["examples"] == [seen]

    lines = out.splitlines()
    assert lines[1].startswith(f"grammaire{NBSP}: 7 paires minimales (paires.jsonl), texte nettoyé comme le corpus")
    row = next(line for line in lines if "accord sujet–verbe en nombre" in line)
    c, t = counts["subject_verb_number"]
    low, high = wilson_interval(c, t)
    assert row.split()[-7:] == ["2", f"{100 * c / t:.1f}".replace(".", ","), "%",
                                f"{100 * low:.1f}".replace(".", ","), "–", f"{100 * high:.1f}".replace(".", ","), "%"]
    assert any(line.split()[0] == "un_autre_test" for line in lines)  # an unknown id, shown as it is
    assert any(line.strip().startswith("ensemble") and line.split()[1] == "6" for line in lines)
    assert f"1 paire non comptée{NBSP}: une phrase dépasse le contexte du modèle (48 tokens)." in out
    assert "recouvrement" in out and f"attention{NBSP}: 1 paire a une phrase lue pendant l'entraînement" in out
    assert not any(line.startswith("» ") for line in lines) and "bits/byte" not in out  # pairs alone: no val, no samples

    assert main(["eval", "--checkpoint", str(scored_run), "--pairs", str(path), "--lang", "en"]) == 0
    en = capsys.readouterr().out
    assert "grammar: 7 minimal pairs" in en and "subject–verb number agreement" in en and "overall" in en
    assert "warning: 1 pair has a sentence read during training" in en


def test_eval_pairs_with_data_measures_both(scored_run, tmp_path, capsys):
    path = write_pairs(tmp_path / "p.jsonl", PAIRS)
    text = tmp_path / "t.txt"
    text.write_text(TOK_TEXT[:3000], encoding="utf-8")
    assert main(["eval", "--checkpoint", str(scored_run), "--pairs", str(path), "--data", str(text),
                 "--max-tokens", "256"]) == 0
    out = capsys.readouterr().out
    assert "bits/byte" in out and "grammaire" in out


def test_eval_without_run_corpus_says_the_overlap_is_not_measured(scored_run, tmp_path, capsys):
    import shutil

    step = tmp_path / "alone"
    shutil.copytree(scored_run / "checkpoints" / "step_0000003", step)
    path = write_pairs(tmp_path / "p.jsonl", PAIRS)
    assert main(["eval", "--checkpoint", str(step), "--pairs", str(path), "--json", str(tmp_path / "e.json")]) == 0
    assert "recouvrement avec le corpus d'entraînement" in capsys.readouterr().out
    assert json.loads((tmp_path / "e.json").read_text())["grammar"]["overlap"] is None


def test_suite_grammaire_missing_is_one_line_and_combines_with_pairs(scored_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(grammar.SUITES, "grammaire", tmp_path / "absent" / "grammaire.jsonl.gz")
    code = main(["eval", "--checkpoint", str(scored_run), "--suite", "grammaire"])
    assert "the built-in suite 'grammaire' is missing" in one_line_error(capsys, code)
    suite = write_pairs(tmp_path / "grammaire.jsonl.gz", PAIRS[:3], gz=True)
    monkeypatch.setitem(grammar.SUITES, "grammaire", suite)
    mine = write_pairs(tmp_path / "mine.jsonl", PAIRS[3:])
    out_json = tmp_path / "e.json"
    assert main(["eval", "--checkpoint", str(scored_run), "--suite", "grammaire", "--pairs", str(mine),
                 "--json", str(out_json)]) == 0
    result = json.loads(out_json.read_text())["grammar"]
    assert result["sources"] == [str(suite), str(mine)] and result["pairs"] == 5
    assert "(grammaire.jsonl.gz, mine.jsonl)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:  # refused while the command line is read
        main(["eval", "--checkpoint", str(scored_run), "--suite", "anglais"])
    assert exit_.value.code == 2 and "--suite" in one_line_error(capsys, 1)


@pytest.mark.skipif(not GRAMMAR_SUITE.is_file(), reason="the built-in suite is not generated yet")
def test_the_shipped_suite_reads_and_its_phenomena_have_labels():
    pairs = read_pairs(GRAMMAR_SUITE)
    phenomena = {p.phenomenon for p in pairs}
    assert len(phenomena) >= 6 and phenomena <= set(LABELS), phenomena - set(LABELS)  # each has a label
    assert all({"source", "lemma", "good_form", "bad_form", "position"} <= set(p.extra) for p in pairs)


# ============================================================================== an imported model


@needs_transformers
def test_imported_hugging_face_model_is_scored(tmp_path, capsys):
    """A Llama saved by transformers with its own BPE, imported: the command scores it, and its
    scores are its log-probabilities computed one sentence at a time (training loss)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    os.environ["HF_HUB_OFFLINE"] = "1"
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator([TOK_TEXT], trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    hf_dir = tmp_path / "hf"
    transformers.PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>",
                                         pad_token="<pad>").save_pretrained(hf_dir)
    cfg = transformers.LlamaConfig(vocab_size=tk.get_vocab_size(), hidden_size=64, intermediate_size=96,
                                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                   max_position_embeddings=64, tie_word_embeddings=False, initializer_range=0.3,
                                   bos_token_id=0, eos_token_id=1, pad_token_id=2)
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(cfg).save_pretrained(hf_dir)
    assert main(["import", "hf", str(hf_dir), str(tmp_path / "ckpt")]) == 0
    path = write_pairs(tmp_path / "p.jsonl", PAIRS)
    assert main(["eval", "--checkpoint", str(tmp_path / "ckpt"), "--pairs", str(path), "--json",
                 str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out
    assert "accord sujet–verbe en nombre" in out and "texte nettoyé avec les réglages de corpus par défaut" in out
    result = json.loads((tmp_path / "e.json").read_text())["grammar"]
    loaded = load_checkpoint(tmp_path / "ckpt", device="cpu", precision="fp32")
    pairs = read_pairs(path)
    scores = score_pairs(loaded.model, loaded.tokenizer, pairs, normalize_cfg=NormalizeConfig())
    ref = [(reference_logprob(loaded.model, loaded.tokenizer, p.good), reference_logprob(loaded.model, loaded.tokenizer, p.bad))
           for p in pairs]
    np.testing.assert_allclose(np.stack([scores.good, scores.bad], 1), ref, atol=ATOL, rtol=0)
    assert result["overall"]["correct"] == sum(g > b for g, b in ref) and result["overall"]["total"] == 5
