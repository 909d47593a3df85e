"""Exact and near-duplicate detection, the French check, and the train/val split."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from causette.corpus.split import split_ids
from causette.corpus.dedup import ExactDedup, MinHasher, NearDedup, exact_key, lsh_bands, shingle_hashes
from causette.corpus.language import french_ratio

FRENCH = (
    "Jeanne, ayant fini ses malles, s'approcha de la fenêtre, mais la pluie ne cessait pas. "
    "L'averse, toute la nuit, avait sonné contre les carreaux et les toits. Le ciel, bas et chargé "
    "d'eau, semblait crevé, se vidant sur la terre, la délayant en bouillie."
)
ENGLISH = (
    "This eBook is for the use of anyone anywhere at no cost and with almost no restrictions "
    "whatsoever. You may copy it, give it away or re-use it under the terms of the License "
    "included with this eBook or online."
)


def test_exact_key_ignores_case_and_whitespace_only():
    assert exact_key("Le  Chat\n dort.") == exact_key("le chat dort.")
    assert exact_key("le chat dort.") != exact_key("le chat dort !")
    d = ExactDedup()
    key, first = d.check("Un texte.")
    assert first is None
    d.add(key, "a")
    assert d.check("UN   texte.") == (key, "a")


def random_text(rng: random.Random, n: int) -> list[str]:
    vocab = [f"mot{i}" for i in range(3000)]
    return [rng.choice(vocab) for _ in range(n)]


def jaccard(a: str, b: str, n: int = 5) -> float:
    sa, sb = set(shingle_hashes(a, n).tolist()), set(shingle_hashes(b, n).tolist())
    return len(sa & sb) / len(sa | sb)


def test_minhash_estimates_jaccard():
    rng = random.Random(0)
    hasher = MinHasher(256, seed=3)
    for n_changes in (5, 20, 60):
        words = random_text(rng, 400)
        other = list(words)
        for i in rng.sample(range(400), n_changes):
            other[i] = "autre"
        a, b = " ".join(words), " ".join(other)
        true = jaccard(a, b)
        est = float(np.mean(hasher.signature(shingle_hashes(a, 5)) == hasher.signature(shingle_hashes(b, 5))))
        # standard error of the estimate is sqrt(J(1-J)/P) <= 0.032 for P = 256
        assert abs(est - true) < 0.1, (n_changes, true, est)


def test_shingles_are_deterministic_and_short_texts_have_one():
    assert np.array_equal(shingle_hashes("un deux trois quatre cinq six", 5), shingle_hashes("Un deux trois quatre cinq six", 5))
    assert len(shingle_hashes("un deux", 5)) == 1
    assert len(shingle_hashes("", 5)) == 0


def test_lsh_bands_fit_threshold():
    for threshold in (0.5, 0.8, 0.9):
        b, r = lsh_bands(128, threshold)
        assert b * r <= 128
        # the S-curve's steepest point (1/b)^(1/r) lies near the threshold
        assert abs((1 / b) ** (1 / r) - threshold) < 0.12


def test_near_dedup_finds_edited_copy_not_different_text():
    rng = random.Random(1)
    words = random_text(rng, 1000)
    edited = list(words)
    for i in rng.sample(range(1000), 10):  # 1% of words changed: Jaccard ≈ 0.9
        edited[i] = "variante"
    different = random_text(rng, 1000)
    near = NearDedup(threshold=0.8, num_perm=128, shingle_words=5)
    near.add(near.signature(" ".join(words)), "original")
    found, sim = near.check(near.signature(" ".join(edited)))
    assert found == "original" and sim >= 0.8
    assert near.check(near.signature(" ".join(different))) == (None, 0.0)


def test_french_ratio_separates_french_from_english():
    assert french_ratio(FRENCH) > 0.25
    assert french_ratio(ENGLISH) < 0.08
    assert french_ratio("") == 0.0
    assert french_ratio("1234 5678") == 0.0
    long = (FRENCH + "\n") * 400  # sampled windows give the same verdict
    assert abs(french_ratio(long) - french_ratio(FRENCH)) < 0.05


def test_split_is_deterministic_disjoint_and_order_free():
    docs = [(f"doc{i}", "prose" if i % 3 else "theatre") for i in range(200)]
    train, val = split_ids(docs, 0.1, seed=42)
    assert set(train).isdisjoint(val)
    assert sorted(train + val) == sorted(d for d, _ in docs)
    assert len(val) == round(0.1 * 133) + round(0.1 * 67)  # stratified by kind
    shuffled = list(docs)
    random.Random(5).shuffle(shuffled)
    assert set(split_ids(shuffled, 0.1, seed=42)[1]) == set(val)
    assert set(split_ids(docs, 0.1, seed=43)[1]) != set(val)


def test_split_keeps_one_val_document_when_possible():
    train, val = split_ids([("a", "prose"), ("b", "prose")], 0.05, seed=1)
    assert len(val) == 1 and len(train) == 1
    assert split_ids([("a", "prose")], 0.05, seed=1) == (["a"], [])
    assert split_ids([("a", "prose"), ("b", "prose")], 0.0, seed=1) == (["a", "b"], [])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=8), min_size=0, max_size=40, unique=True), st.floats(0.0, 0.9))
def test_split_property_partition(ids, fraction):
    docs = [(i, "k") for i in ids]
    train, val = split_ids(docs, fraction, seed=0)
    assert sorted(train + val) == sorted(ids)
    assert set(train).isdisjoint(val)
    if fraction > 0 and len(ids) >= 2:
        assert len(val) >= 1
