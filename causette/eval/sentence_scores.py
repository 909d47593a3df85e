"""The log-probability a model gives a sentence, for many sentences at once; minimal pairs scored.

A sentence is read as training reads a document: ``<|bos|>`` then its tokens (no end token: a
training document has none). Its score is the sum of the log-probabilities of its tokens, each
given ``<|bos|>`` and the tokens before it::

    log p(t1 … tn) = Σ_i log p(t_i | <|bos|>, t1 … t_{i-1})

**Batching.** The sentences are sorted by length and cut into batches of similar lengths, at
most ``batch_tokens`` padded tokens each; a batch is right-padded and run in one forward pass.
Attention is causal, so a real token never sees the padding after it, and every row's positions
start at 0: no attention mask is needed, and the padding cannot change a score (the tests check
it against one sentence at a time and against Hugging Face ``transformers``). The padded
positions are ignored when summing. Identical sentences are scored once.

:func:`phenomenon_counts` is what the training loop calls at each evaluation: model in eval mode
(its mode is restored), no gradients, an optional autocast context for bf16.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from causette.corpus.normalize import normalize
from causette.errors import CausetteError
from causette.eval.minimal_pairs import MinimalPair, fixed_subset, group_counts, read_pairs
from causette.utils.paths import GRAMMAR_SUITE

IGNORE = -100
DEFAULT_BATCH_TOKENS = 2048  # padded tokens a batch: 512-2048 are the fastest on 2 cores for the demo model (bench/LOG.md)


def sentence_batches(lengths: list[int], batch_tokens: int) -> list[list[int]]:
    """Indices of ``lengths`` in batches of similar lengths: sorted, each batch holding at most
    ``batch_tokens`` tokens once padded to its longest (a longer sentence is a batch of its own)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # sorted: the newest is the longest, so the padded size is (count + 1) × its length
        if current and (len(current) + 1) * lengths[i] > batch_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


@torch.no_grad()
def sentence_logprobs(
    model: torch.nn.Module,
    sentences: list[list[int]],
    bos_id: int,
    device: torch.device | str | None = None,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    autocast: contextlib.AbstractContextManager | None = None,
) -> np.ndarray:
    """``log p(tokens | <|bos|>)`` of each token list (natural log, float64): see the module docstring.

    Each list holds a sentence's tokens without ``<|bos|>``; it may have at most
    ``model.cfg.block_size`` of them (the model reads ``<|bos|>`` and all but the last). An empty
    list scores 0.
    """
    block = model.cfg.block_size
    too_long = next((len(s) for s in sentences if len(s) > block), None)
    if too_long is not None:
        raise CausetteError(f"a sentence of {too_long} tokens is longer than the model's context ({block})")
    device = device or next(model.parameters()).device
    scores = np.zeros(len(sentences), dtype=np.float64)
    wanted = [i for i, s in enumerate(sentences) if s]
    was_training = model.training
    model.eval()
    try:
        for batch in sentence_batches([len(sentences[i]) for i in wanted], batch_tokens):
            rows = [sentences[wanted[k]] for k in batch]
            width = max(map(len, rows))
            x = torch.full((len(rows), width), bos_id, dtype=torch.long)
            y = torch.full((len(rows), width), IGNORE, dtype=torch.long)
            for r, tokens in enumerate(rows):
                t = torch.as_tensor(tokens, dtype=torch.long)
                x[r, 1 : len(tokens)] = t[:-1]  # <|bos|> t1 … t(n-1) read,
                y[r, : len(tokens)] = t  # t1 … tn predicted
            x, y = x.to(device), y.to(device)
            with autocast or contextlib.nullcontext():
                logits, _ = model(x)
            nll = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=IGNORE, reduction="none")
            totals = -nll.view(len(rows), width).double().sum(1).cpu().numpy()
            scores[[wanted[k] for k in batch]] = totals
    finally:
        model.train(was_training)
    return scores


@dataclass
class EncodedPairs:
    """Minimal pairs as token lists, ready to score again and again (each distinct sentence once)."""

    sentences: list[list[int]]  # distinct token lists
    texts: list[str]  # the text of each (cleaned), for the overlap with a corpus
    good: np.ndarray  # pair i → index of its good sentence in ``sentences``
    bad: np.ndarray
    phenomena: list[str]
    too_long: np.ndarray  # bool per pair: a sentence longer than the context, the pair is not scored
    block_size: int

    @property
    def kept(self) -> np.ndarray:
        return ~self.too_long


def encode_pairs(tokenizer, pairs: list[MinimalPair], block_size: int, normalize_cfg=None) -> EncodedPairs:
    """The token ids of every pair's sentences, cleaned first with ``normalize_cfg`` (a
    :class:`~causette.corpus.config.NormalizeConfig`: the run's corpus settings) unless None.

    A sentence left empty by the cleaning is refused with its pair's ``file:line``.
    """
    index: dict[str, int] = {}
    sentences: list[list[int]] = []
    texts: list[str] = []
    good, bad = [], []
    for pair in pairs:
        for text, out, key in ((pair.good, good, "sentence_good"), (pair.bad, bad, "sentence_bad")):
            if normalize_cfg is not None:
                text = normalize(text, normalize_cfg)
            if text not in index:
                ids = tokenizer.encode(text)
                if not ids:
                    raise CausetteError(f"{pair.where or 'a pair'}: {key} is empty once cleaned like the corpus")
                index[text] = len(sentences)
                sentences.append(ids)
                texts.append(text)
            out.append(index[text])
    good_a, bad_a = np.asarray(good, dtype=np.int64), np.asarray(bad, dtype=np.int64)
    lengths = np.asarray([len(s) for s in sentences] or [0])
    too_long = (lengths[good_a] > block_size) | (lengths[bad_a] > block_size)
    return EncodedPairs(sentences, texts, good_a, bad_a, [p.phenomenon for p in pairs], too_long, block_size)


@dataclass
class PairScores:
    good: np.ndarray  # log-probability of each pair's good sentence (NaN when not scored)
    bad: np.ndarray
    passed: np.ndarray  # bool: good > bad (a tie fails); False when not scored
    too_long: np.ndarray  # bool: not scored, a sentence longer than the context
    phenomena: list[str]

    def counts(self) -> dict[str, tuple[int, int]]:
        """``{phenomenon: (correct, total)}`` over the pairs scored (a phenomenon whose pairs were
        all too long gets ``(0, 0)``)."""
        return group_counts(self.phenomena, self.passed, ~self.too_long)


def score_encoded(
    model: torch.nn.Module,
    encoded: EncodedPairs,
    bos_id: int,
    device: torch.device | str | None = None,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    autocast: contextlib.AbstractContextManager | None = None,
) -> PairScores:
    """Both sentences of every pair scored (only the sentences of pairs that fit the context)."""
    kept = encoded.kept
    needed = np.unique(np.concatenate([encoded.good[kept], encoded.bad[kept]]))
    logp = np.full(len(encoded.sentences), np.nan)
    logp[needed] = sentence_logprobs(model, [encoded.sentences[i] for i in needed], bos_id, device,
                                     batch_tokens, autocast)
    good, bad = logp[encoded.good], logp[encoded.bad]
    with np.errstate(invalid="ignore"):
        passed = kept & (good > bad)
    return PairScores(good, bad, passed, encoded.too_long.copy(), list(encoded.phenomena))


def score_pairs(
    model: torch.nn.Module,
    tokenizer,
    pairs: list[MinimalPair],
    device: torch.device | str | None = None,
    normalize_cfg=None,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    autocast: contextlib.AbstractContextManager | None = None,
) -> PairScores:
    """:func:`encode_pairs` then :func:`score_encoded`."""
    encoded = encode_pairs(tokenizer, pairs, model.cfg.block_size, normalize_cfg)
    return score_encoded(model, encoded, tokenizer.bos_id, device, batch_tokens, autocast)


def phenomenon_counts(
    model: torch.nn.Module,
    tokenizer,
    pairs: list[MinimalPair],
    device: torch.device | str | None = None,
    normalize_cfg=None,
    autocast: contextlib.AbstractContextManager | None = None,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
) -> dict[str, tuple[int, int]]:
    """``{phenomenon: (correct, total)}`` of ``model`` on ``pairs``: what the training loop logs.

    ``device``: where the model is (default: where its parameters are). ``normalize_cfg``: the
    run's corpus cleaning settings (``cfg.corpus.normalize``), None to score the text as given.
    ``autocast``: e.g. ``torch.autocast("cuda", torch.bfloat16)``. The model is put in eval mode
    and given back in the mode it had; nothing is computed with gradients. Pairs with a sentence
    longer than the context are left out of the counts.
    """
    return score_pairs(model, tokenizer, pairs, device, normalize_cfg, batch_tokens, autocast).counts()


def unigram_scores(encoded: EncodedPairs, token_counts: np.ndarray) -> PairScores:
    """The pairs scored by a **unigram model**: each token's probability is its frequency in the
    training tokens (``token_counts``, add-one smoothed), whatever comes before it.

    The baseline beside chance (50 %) in the report: a unigram model knows which forms are frequent
    and nothing of agreement, so a model that learns grammar must beat it, not only chance.
    """
    counts = np.asarray(token_counts, dtype=np.float64) + 1.0
    logp_token = np.log(counts / counts.sum())
    logp = np.asarray([float(logp_token[s].sum()) for s in encoded.sentences])
    good, bad = logp[encoded.good], logp[encoded.bad]
    passed = encoded.kept & (good > bad)
    return PairScores(good, bad, passed, encoded.too_long.copy(), list(encoded.phenomena))


class GrammarProbe:
    """What training scores at each evaluation: a fixed subset of the built-in suite
    (:func:`~causette.eval.minimal_pairs.fixed_subset`, the same share of each phenomenon), encoded
    once; calling it gives the metrics logged as ``val/grammaire`` (accuracy over the subset) and
    ``val/grammaire/<phenomenon>``.
    """

    def __init__(self, tokenizer, block_size: int, n_pairs: int, normalize_cfg=None, path=None):
        self.pairs = fixed_subset(read_pairs(path or GRAMMAR_SUITE), n_pairs)
        self.encoded = encode_pairs(tokenizer, self.pairs, block_size, normalize_cfg)
        self.bos_id = tokenizer.bos_id

    def __call__(self, model: torch.nn.Module, device=None, autocast=None) -> dict[str, float]:
        counts = score_encoded(model, self.encoded, self.bos_id, device, autocast=autocast).counts()
        correct, total = sum(c for c, _ in counts.values()), sum(t for _, t in counts.values())
        out = {"grammaire": correct / total} if total else {}
        out.update({f"grammaire/{name}": c / t for name, (c, t) in counts.items() if t})
        return out
