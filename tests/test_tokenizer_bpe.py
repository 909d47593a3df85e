"""BPE trainer and tokenizer behaviour: merges, determinism, specials, round trips, streaming, char."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causette.tokenizer import BPETokenizer, CharTokenizer, train_bpe, train_tokenizer
from causette.tokenizer.config import TokenizerConfig
from causette.tokenizer.pattern import FRENCH_PATTERN, split_chunks
from causette.tokenizer.train import _blocks, _cut_long, count_chunks

ROOT = Path(__file__).resolve().parents[1]


def demo_text() -> str:
    for p in (
        ROOT / "data" / "demo_fr_pd.txt.gz",
        ROOT.parent / "shared" / "data" / "demo" / "demo_fr_pd.txt.gz",
    ):
        if p.is_file():
            return gzip.decompress(p.read_bytes()).decode("utf-8")
    pytest.skip("demo corpus not found")


@pytest.fixture(scope="module")
def demo_docs() -> list[str]:
    return demo_text().split("\n\n\n")


@pytest.fixture(scope="module")
def small_tok(demo_docs) -> BPETokenizer:
    """A 1,024-token BPE trained on ~600 k characters of the demo corpus."""
    return train_tokenizer(TokenizerConfig(vocab_size=1024), demo_docs[:4])


# ------------------------------------------------------------------------------ the trainer


def naive_train(counts: dict[bytes, int], num_merges: int, min_frequency: int) -> list[tuple[int, int]]:
    """The textbook algorithm: recount every pair after every merge (slow, obviously right)."""
    words = [(list(chunk), n) for chunk, n in counts.items()]
    vocab = [bytes([b]) for b in range(256)]
    merges: list[tuple[int, int]] = []
    while len(merges) < num_merges:
        stats: Counter = Counter()
        for w, n in words:
            for pair in zip(w, w[1:]):
                stats[pair] += n
        if not stats:
            break
        pair = min(stats, key=lambda p: (-stats[p], p))
        if stats[pair] < min_frequency:
            break
        joined = vocab[pair[0]] + vocab[pair[1]]
        if joined in vocab:
            new = vocab.index(joined)
        else:
            new = len(vocab)
            vocab.append(joined)
            merges.append(pair)
        for w, _ in words:
            i = 0
            while i < len(w) - 1:
                if (w[i], w[i + 1]) == pair:
                    w[i : i + 2] = [new]
                i += 1
    return merges


def test_trainer_on_a_known_example():
    # "aaabdaaabac" (the classic example), by hand: pairs aa:4 ab:2 bd:1 da:1 ba:1 ac:1.
    merges = train_bpe({b"aaabdaaabac": 1}, 3, min_frequency=2)
    a, b = ord("a"), ord("b")
    assert merges[0] == (a, a)  # "aa" = 256: aa a b d aa a b a c
    # now (256, a) = 2, (a, b) = 2, (b, ...) = 1: tie → smallest pair ids → (a, b) = (97, 98)
    assert merges[1] == (a, b)  # "ab" = 257: aa ab d aa ab a c
    assert merges[2] == (256, 257)  # "aaab" = 258, seen twice
    assert len(merges) == 3


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.text(alphabet="abc ée", min_size=1, max_size=12).map(lambda s: s.encode("utf-8")),
        st.integers(1, 5),
        max_size=12,
    ),
    st.integers(1, 3),
)
def test_incremental_trainer_equals_naive_recount(counts, min_frequency):
    assert train_bpe(counts, 40, min_frequency) == naive_train(counts, 40, min_frequency)


def test_training_is_deterministic(demo_docs, monkeypatch):
    import causette.tokenizer.train as train_mod

    monkeypatch.setattr(train_mod, "BLOCK_CHARS", 100_000)  # several blocks: really in parallel
    cfg = TokenizerConfig(vocab_size=700, workers=2)
    first = train_tokenizer(cfg, demo_docs[:6])
    second = train_tokenizer(TokenizerConfig(vocab_size=700, workers=1), list(reversed(demo_docs[:6])))
    assert first.merges == second.merges  # parallel or not, document order aside
    assert first.hash == second.hash
    assert len(first.merges) == 700 - 256 - 32


def test_parallel_counting_equals_serial(demo_docs, monkeypatch):
    import causette.tokenizer.train as train_mod

    monkeypatch.setattr(train_mod, "BLOCK_CHARS", 50_000)  # many blocks, and long texts are cut
    text = demo_docs[:3]
    parallel, n1 = count_chunks(text, FRENCH_PATTERN, [], workers=2)
    serial, n2 = count_chunks(text, FRENCH_PATTERN, [], workers=1)
    whole = Counter(c.encode() for t in text for c in split_chunks(t, FRENCH_PATTERN))
    assert n1 == n2 == sum(map(len, text))
    assert parallel == serial == dict(whole)


def test_long_texts_are_cut_at_line_starts(monkeypatch):
    import causette.tokenizer.train as train_mod

    monkeypatch.setattr(train_mod, "BLOCK_CHARS", 10)
    text = "ligne une\n\n  suite\nencore une ligne\n" * 5
    pieces = list(_cut_long(text))
    assert "".join(pieces) == text and len(pieces) > 2
    assert all(p.endswith("\n") and not p[-2:-1].isspace() for p in pieces[:-1])
    assert sum(len(b) for block in _blocks([text]) for b in block) == len(text)


def test_min_frequency_stops_early(capsys):
    tok = train_tokenizer(TokenizerConfig(vocab_size=1000), ["abc abc abc xyz"])
    assert 0 < len(tok.merges) < 1000 - 256 - 32
    assert tok.vocab_size == 256 + len(tok.merges) + 32
    assert "warning: only" in capsys.readouterr().err


# ------------------------------------------------------------------------------ specials


def test_specials_are_split_out_in_training_and_never_merged():
    text = "<|im_start|>bonjour<|im_end|>salut<|pad|>" * 200
    tok = train_tokenizer(TokenizerConfig(vocab_size=400), [text])
    learned = tok.vocab[256:]
    assert learned, "some merges were learned"
    # "<", "|", "im_", "start", "pad" exist only inside specials: no merge may contain them
    assert not [t for t in learned if b"|" in t or b"<" in t or b"im" in t or b"tart" in t or b"pad" in t]
    assert tok.special_tokens["<|bos|>"] == 256 + len(tok.merges)


def test_typed_special_is_ordinary_text(small_tok):
    tok = small_tok
    user = tok.special_tokens["<|im_start|>"]
    typed = "Moi, je tape <|im_start|> et <|im_end|> dans le message."
    ids = tok.encode(typed)  # user text: nothing allowed
    assert user not in ids and tok.end_id not in ids
    assert not set(ids) & tok.special_ids
    assert tok.decode(ids) == typed
    assert tok.encode(typed) == tok.encode_reference(typed)
    # allowed explicitly: one id each
    allowed = tok.encode("<|im_start|>Bonjour<|im_end|>", allowed_special="all")
    assert allowed[0] == user and allowed[-1] == tok.end_id
    assert tok.decode(allowed) == "<|im_start|>Bonjour<|im_end|>"
    # only <|im_end|> allowed: <|im_start|> stays text
    partial = tok.encode("<|im_start|>x<|im_end|>", allowed_special={"<|im_end|>"})
    assert partial[-1] == tok.end_id and user not in partial
    assert partial == tok.encode_reference("<|im_start|>x<|im_end|>", allowed_special={"<|im_end|>"})
    with pytest.raises(ValueError, match="unknown special token"):
        tok.encode("x", allowed_special={"<|nope|>"})


def test_special_ids_and_names(small_tok):
    tok = small_tok
    assert tok.vocab_size == 1024
    assert tok.bos_id == 1024 - 32 and tok.pad_id == tok.bos_id + 1 and tok.end_id == tok.bos_id + 3
    assert tok.special_tokens["<|reserved_27|>"] == 1023
    assert tok.token_bytes(tok.bos_id) == b"<|bos|>"
    assert tok.is_special(tok.bos_id) and not tok.is_special(65)


# ------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize(
    "text",
    [
        "",
        "é",
        "L'été où j'ai lu « Ruy Blas »…",
        "a\u0301 e\u0300 naïve",
        "😀🇫🇷 东京 \u00a0;\u202f!",
        "1" * 50,
        " " * 40,
    ],
)
def test_decode_encode_is_exact(small_tok, text):
    ids = small_tok.encode(text)
    assert small_tok.decode(ids) == text
    assert small_tok.decode_bytes(ids) == text.encode("utf-8")


def test_decode_accepts_arrays(small_tok):
    np = pytest.importorskip("numpy")
    ids = small_tok.encode("Ça va très bien.")
    assert small_tok.decode(np.array(ids, dtype=np.uint16)) == "Ça va très bien."
    decoder = small_tok.incremental_decoder()
    assert "".join(decoder.push(i) for i in np.array(ids)) == "Ça va très bien."


def test_lone_surrogates_are_repaired_like_tiktoken(small_tok):
    text = "a\ud800b"
    assert small_tok.encode(text) == small_tok.encode_reference(text)
    assert small_tok.decode(small_tok.encode(text)) == "a\ufffdb"


def test_out_of_range_id_is_a_clear_error(small_tok):
    from causette.errors import CausetteError

    with pytest.raises(CausetteError, match="token id 5000 is out of range for a vocabulary of 1024"):
        small_tok.decode([65, 5000])


def test_french_segmentation(small_tok):
    pieces = [small_tok.decode([i]) for i in small_tok.encode("jusqu'à")]
    assert "".join(pieces) == "jusqu'à"
    assert split_chunks("de l'homme qu'il", FRENCH_PATTERN) == ["de", " l'", "homme", " qu'", "il"]
    assert split_chunks("Est-ce lui ? A-t-il 1789 ans", FRENCH_PATTERN) == [
        "Est", "-ce", " lui", " ?", " A", "-t", "-il", " ", "17", "89", " ans",
    ]  # fmt: skip
    assert split_chunks("« Jusqu'où ? »\n", FRENCH_PATTERN) == ["«", " Jusqu'", "où", " ?", " »\n"]


def test_encode_batch_matches_encode(small_tok, demo_docs, monkeypatch):
    import causette.tokenizer.base as base

    monkeypatch.setattr(base, "PARALLEL_MIN_CHARS", 1000)  # use worker processes even for this
    texts = demo_docs[4:8] + ["", "<|im_start|> é"]
    batch = small_tok.encode_batch(texts, workers=2)
    assert batch == [small_tok.encode(t) for t in texts]
    ref = BPETokenizer(small_tok.merges, small_tok.pattern, small_tok.special_tokens, use_fast=False)
    assert ref.encode_batch(texts, workers=2) == batch  # processes, pure Python
    assert ref.encode_ordinary(texts[0]) == small_tok.encode_ordinary(texts[0]) == batch[0]


# ------------------------------------------------------------------------------ streaming


def test_incremental_decoder_never_emits_broken_characters():
    # A tiny vocabulary: accented letters and emoji stay split into several byte tokens.
    tok = train_tokenizer(TokenizerConfig(vocab_size=320), ["le chat et le chien " * 50])
    text = "Où êtes-vous, Cécile ? Ça déçoit… 😀 œuvre naïve « 東 »"
    ids = tok.encode(text)
    decoder = tok.incremental_decoder()
    pieces = [decoder.push(i) for i in ids]
    assert "".join(pieces) + decoder.flush() == text
    assert all("\ufffd" not in p for p in pieces)
    assert pieces.count("") >= 10  # many tokens ended mid-character and were held back
    naive = [tok.decode([i]) for i in ids]  # what token-by-token decoding would print
    assert any("\ufffd" in p for p in naive)


def test_incremental_decoder_flushes_an_unfinished_character(small_tok):
    decoder = small_tok.incremental_decoder()
    assert decoder.push(0xC3) == ""  # first byte of "é"
    assert decoder.pending == b"\xc3"
    assert decoder.flush() == "\ufffd"
    assert decoder.push(ord("a")) == "a"


# ------------------------------------------------------------------------------ char level


def test_char_tokenizer(demo_docs):
    cfg = TokenizerConfig(type="char", vocab_size=256 + 32 + 10)
    tok = train_tokenizer(cfg, demo_docs[:3])
    assert isinstance(tok, CharTokenizer)
    assert len(tok.chars) == 10 and tok.vocab_size == 256 + 10 + 32  # the 10 most frequent kept
    assert "é" in tok.chars and "à" in tok.chars
    text = "Été à Noël, ça — 😀 <|im_start|>"
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    expected = sum(1 if ord(c) < 128 or c in tok.chars else len(c.encode("utf-8")) for c in text)
    assert len(ids) == expected
    assert tok.encode("é") == [256 + tok.chars.index("é")]  # one token per character
    assert tok.encode("😀") == list("😀".encode("utf-8"))  # unseen: byte fallback
    assert tok.encode("<|im_start|>", allowed_special="all") == [tok.special_tokens["<|im_start|>"]]
    assert tok.special_tokens["<|bos|>"] == 256 + 10
    everything = train_tokenizer(TokenizerConfig(type="char", vocab_size=2000), demo_docs[:3])
    assert set(tok.chars) < set(everything.chars) and everything.vocab_size < 2000
