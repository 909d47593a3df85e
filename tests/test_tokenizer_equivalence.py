"""Same ids everywhere: reference encoder = tiktoken fast path = exported Hugging Face tokenizer.

Checked on arbitrary Unicode (hypothesis) and on the whole demo corpus, for every shipped
pattern; and the three regex engines must cut text into the same chunks.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import tiktoken
import tokenizers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from causette.tokenizer import BPETokenizer, load_tokenizer, train_tokenizer
from causette.tokenizer.config import TokenizerConfig
from causette.tokenizer.io import save_tokenizer
from causette.tokenizer.pattern import PATTERNS, split_chunks

ROOT = Path(__file__).resolve().parents[1]


def demo_text() -> str:
    for p in (
        ROOT / "data" / "demo_fr_pd.txt.gz",
        ROOT.parent / "shared" / "data" / "demo" / "demo_fr_pd.txt.gz",
    ):
        if p.is_file():
            return gzip.decompress(p.read_bytes()).decode("utf-8")
    pytest.skip("demo corpus not found")


# Text that tries hard to break things: French, accents precomposed and combining, NBSP and
# narrow NBSP, emoji (4 bytes, with ZWJ and flags), CJK, special-token look-alikes, long runs of
# digits, spaces and line breaks, and anything else Unicode holds (surrogates excepted).
FRENCH = "abcdeéèêëàâîïôöùûüçœæÀÉÈÇŒ'’-«» ,.;:!?…—\n\t\u00a0\u202f0123456789"
PIECES = st.one_of(
    st.text(alphabet=FRENCH, max_size=24),
    # Any assigned code point. Unassigned ones (Cn) are left out: Python's `regex` already knows
    # Unicode 17 (2025) while tiktoken and Oniguruma stop at 16, so on the ~5,000 characters new
    # in 17.0 the engines disagree on what a letter is (see pattern.py). Python's own tables
    # (Unicode 14 to 16, depending on its version) give the characters all engines know.
    st.text(alphabet=st.characters(exclude_categories=("Cs", "Cn")), max_size=8),
    st.sampled_from(
        ["e\u0301", "a\u0300", "\u0301", "😀", "👩\u200d💻", "🇫🇷", "東京", "한국어", "\r\n", "\u2028"]
    ),
    st.sampled_from(
        ["<|user|>", "<|bos|>", "<|end|>", "<|end", "|>", "<|", "<||>", "<|USER|>", "<|reserved_3|>"]
    ),
    st.text(alphabet="0123456789", min_size=1, max_size=40),
    st.text(alphabet=" \u00a0\n\t", min_size=1, max_size=40),
    st.sampled_from(["jusqu'à", "l'homme", "qu'il", "est-ce", "peut-être", "a-t-il", "aujourd'hui", "L’été"]),
)
TEXTS = st.lists(PIECES, max_size=12).map("".join)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", params=sorted(PATTERNS))
def trio(request, tmp_path_factory):
    """For each shipped pattern: (our tokenizer, reference-only twin, Hugging Face tokenizer)."""
    docs = demo_text().split("\n\n\n")
    cfg = TokenizerConfig(vocab_size=1500, pattern=request.param)
    out = tmp_path_factory.mktemp(f"tok-{request.param}")
    tok = train_tokenizer(cfg, docs[:8] + ["l'an 1789, 2024, 007 — 3,14 €"] * 20, out_dir=out)
    ref = BPETokenizer(tok.merges, tok.pattern, tok.special_tokens, use_fast=False)
    hf = tokenizers.Tokenizer.from_file(str(out / "hf" / "tokenizer.json"))
    return tok, ref, hf


def hf_encode(hf, text: str, specials: bool) -> list[int]:
    hf.encode_special_tokens = not specials  # True: "<|user|>" is split like ordinary text
    return hf.encode(text, add_special_tokens=False).ids


@FAST
@given(text=TEXTS)
def test_reference_fast_and_hf_agree(trio, text):
    tok, ref, hf = trio
    for allowed in ("none", "all"):
        ids = ref.encode(text, allowed_special=allowed)
        assert tok.encode(text, allowed_special=allowed) == ids
        assert hf_encode(hf, text, specials=allowed == "all") == ids
        assert tok.decode(ids) == text
        assert ref.decode(ids) == text
        assert hf.decode(ids, skip_special_tokens=False) == text


def test_whole_demo_corpus_agrees(trio):
    tok, ref, hf = trio
    docs = demo_text().split("\n\n\n")
    fast = tok.encode_batch(docs)
    assert [ref.encode(d) for d in docs] == fast
    hf.encode_special_tokens = True
    assert [e.ids for e in hf.encode_batch(docs, add_special_tokens=False)] == fast
    assert hf.decode_batch(fast, skip_special_tokens=False) == docs
    assert [tok.decode(ids) for ids in fast] == docs


def test_trained_demo_tokenizer_reloads_identically(trio, tmp_path):
    tok, _, _ = trio
    save_tokenizer(tok, tmp_path)
    again = load_tokenizer(tmp_path)
    text = demo_text()[:200_000]
    assert again.encode(text) == tok.encode(text) and again.hash == tok.hash


# ------------------------------------------------------------------------------ the regex engines


def chunks_by_tiktoken(pattern: str, text: str) -> list[bytes]:
    """tiktoken's chunks: give it every Python chunk as a whole token; a chunk that tiktoken cut
    differently would come out as other tokens and change the list."""
    ranks = {bytes([b]): b for b in range(256)}
    for chunk in split_chunks(text, pattern):
        ranks.setdefault(chunk.encode("utf-8"), len(ranks))
    enc = tiktoken.Encoding("check", pat_str=pattern, mergeable_ranks=ranks, special_tokens={})
    return [enc.decode_single_token_bytes(i) for i in enc.encode_ordinary(text)]


@settings(max_examples=120, deadline=None)
@given(text=TEXTS)
def test_three_regex_engines_cut_alike(text):
    for name, pattern in PATTERNS.items():
        py = split_chunks(text, pattern)
        assert "".join(py) == text, name  # nothing falls between chunks
        split = tokenizers.pre_tokenizers.Split(tokenizers.Regex(pattern), "isolated")
        assert [c for c, _ in split.pre_tokenize_str(text)] == py, name
        assert chunks_by_tiktoken(pattern, text) == [c.encode("utf-8") for c in py], name
