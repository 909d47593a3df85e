"""bench/speedrun.py and its yardstick bench/nanogpt.py: the parts a wrong figure would come from.

The nanoGPT model has GPT-2's parameter count and learns; the held-out novels are chosen the same
way every time and never reach training; bits per byte score every held-out token once, divided by
exactly the bytes those tokens spell. No ../shared data needed: small fakes stand in for it.
"""

from __future__ import annotations

import gzip
import json
import math
import random

import numpy as np
import pytest
import torch
import torch.nn as nn

from bench import nanogpt, speedrun
from causette.eval.metrics import token_byte_lengths
from causette.tokenizer import train_tokenizer
from causette.tokenizer.config import TokenizerConfig

# ----------------------------------------------------------------------------- the yardstick


@pytest.mark.parametrize("shape", [dict(n_layer=2, n_embd=64), dict(n_layer=3, n_embd=128, bias=False)])
def test_yardstick_parameters_follow_the_gpt2_formula(shape):
    cfg = nanogpt.GPTConfig(vocab_size=300, block_size=32, **shape)
    model = nanogpt.GPT(cfg)
    counted = nanogpt.parameter_counts(cfg)
    d, L = cfg.n_embd, cfg.n_layer
    per_block = 12 * d * d + (13 * d if cfg.bias else 2 * d)
    assert counted["total"] == sum(p.numel() for p in model.parameters())  # the tied matrix once
    assert counted["total"] == (300 + 32) * d + L * per_block + (2 * d if cfg.bias else d)
    assert counted["non_embedding"] == counted["total"] - model.wte.weight.numel() - model.wpe.weight.numel()
    assert model.lm_head.weight is model.wte.weight
    assert cfg.n_head == d // 64
    # the residual writers start smaller, by 1/sqrt(2·n_layer)
    assert model.h[0].attn.c_proj.weight.std() < 0.9 * model.h[0].mlp.c_fc.weight.std()


def test_yardstick_decays_matrices_only():
    model = nanogpt.GPT(nanogpt.GPTConfig(vocab_size=64, block_size=8, n_layer=1, n_embd=64))
    decay, no_decay = nanogpt.make_optimizer(model, 1e-3).param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_yardstick_learns_a_repeated_sequence():
    cfg = nanogpt.GPTConfig(vocab_size=32, block_size=16, n_layer=2, n_embd=64)
    data = np.tile(np.arange(11, dtype=np.uint16), 300)
    x = torch.as_tensor(data[:16], dtype=torch.long).unsqueeze(0)
    y = torch.as_tensor(data[1:17], dtype=torch.long).unsqueeze(0)
    torch.manual_seed(1337)
    with torch.no_grad():
        before = float(nanogpt.GPT(cfg)(x, y)[1])
    trained = nanogpt.train(cfg, data, seconds=600, lr=3e-3, batch_size=8, warmup=5, compile=False, bf16=False,
                            max_steps=40)
    with torch.no_grad():
        after = float(trained.model(x, y)[1])
    assert trained.steps == 40 and trained.tokens == 40 * 8 * 16
    assert before > 3.0 and after < 0.5 * before
    logits, none = nanogpt.ForScoring(trained.model)(x)
    assert none is None and logits.shape == (1, 16, 32)


def test_yardstick_schedule_follows_the_clock():
    s = nanogpt.ClockSchedule(seconds=100, lr=1e-3, min_lr=1e-4, warmup=4)
    assert s.lr_at(0, 0.0) == pytest.approx(1e-3 / 5) and s.lr_at(3, 2.0) == pytest.approx(1e-3 * 4 / 5)
    assert s.lr_at(4, 10.0) == pytest.approx(1e-3)  # warmup ended at 10 s: the cosine starts there
    assert s.lr_at(50, 55.0) == pytest.approx(5.5e-4)  # half way through the rest of the budget
    assert s.lr_at(90, 100.0) == pytest.approx(1e-4)
    s.record(3.0)
    assert not s.stop(96.9) and s.stop(97.1)  # a step of 3 s would end past 100 s


# ----------------------------------------------------------------------------- the held-out novels


def test_held_out_choice_is_fixed_and_stable():
    ids = [f"FRA{i:05d}_Auteur" for i in range(100)]
    held = speedrun.pick_held_out(ids, 6, seed=28)
    assert len(held) == 6 and held == sorted(held) and set(held) <= set(ids)
    shuffled = ids[:]
    random.Random(0).shuffle(shuffled)
    assert speedrun.pick_held_out(shuffled + ids[:3], 6, seed=28) == held  # order and repeats do not matter
    assert speedrun.pick_held_out(ids, 6, seed=29) != held
    more = speedrun.pick_held_out(ids + ["FRA99999_Nouveau"], 6, seed=28)
    assert len(set(more) - set(held) - {"FRA99999_Nouveau"}) == 0  # a new novel displaces at most one


def test_held_out_novels_never_reach_the_training_copy(tmp_path):
    names = ["Marie", "Jean", "Claire", "Paul", "Louise", "Henri", "Jeanne", "Pierre", "Lucie", "Jacques"]
    novels = [{"id": f"FRA{i:03d}_X", "title": f"Roman {i}", "author": f"Auteur {i}",
               "text": f"{n} regardait la mer pendant que le soleil se couchait sur la ville. " * 20}
              for i, n in enumerate(names)]
    source = tmp_path / "eltec.jsonl.gz"
    source.write_bytes(gzip.compress("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in novels).encode()))
    base = tmp_path / "base"
    cfg = speedrun.base_config(tmp_path / "data", base, 512)
    assert any(s.path == str(base / "eltec_train.jsonl.gz") for s in cfg.corpus.sources)
    described = speedrun.split_eltec(source, base, cfg)

    def ids(path):
        return [json.loads(line)["id"] for line in gzip.decompress(path.read_bytes()).decode().splitlines()]

    held = speedrun.pick_held_out([r["id"] for r in novels])
    train_ids = ids(base / "eltec_train.jsonl.gz")
    assert [d["id"] for d in described] == held == ids(base / "heldout" / "texts.jsonl.gz")
    assert not set(train_ids) & set(held) and sorted(train_ids + held) == sorted(r["id"] for r in novels)
    assert all(d["characters"] > 1000 for d in described)


# ----------------------------------------------------------------------------- bits per byte


class Bigram(nn.Module):
    """Logits from the current token alone: the windows cannot change the total, only miss or repeat targets."""

    def __init__(self, vocab: int):
        super().__init__()
        torch.manual_seed(0)
        self.table = nn.Embedding(vocab, vocab)

    def forward(self, x):
        return self.table(x), None


@pytest.fixture(scope="module")
def tiny_tokenizer():
    texts = ["Le petit chat dort sur le canapé. Élodie lit un livre près de la fenêtre.",
             "Il était une fois une marquise qui sortit à cinq heures ; « quelle journée ! » dit-elle."] * 20
    return train_tokenizer(TokenizerConfig(vocab_size=320), texts)


@pytest.mark.parametrize("block", [5, 16, 64])
def test_bits_per_byte_scores_each_token_once_over_its_own_bytes(tiny_tokenizer, block):
    tok = tiny_tokenizer
    text = "Le chat regardait la marquise ; Élodie sortit à cinq heures, « quelle journée ! »"
    ids = np.asarray([tok.bos_id, *tok.encode(text)], dtype=np.int64)
    lengths = token_byte_lengths(tok)
    model = Bigram(tok.vocab_size)
    got = speedrun.heldout_bpb(model, ids, lengths, block_size=block, batch_size=3)
    # all of the text's tokens scored: exactly its UTF-8 bytes
    assert got["tokens"] == len(ids) - 1 and got["bytes"] == len(text.encode("utf-8"))
    with torch.no_grad():
        logp = torch.log_softmax(model.table.weight, dim=-1)
        nats = -sum(float(logp[a, b]) for a, b in zip(ids[:-1], ids[1:]))
    assert got["bits_per_byte"] == pytest.approx(nats / math.log(2) / len(text.encode("utf-8")), rel=1e-5)
    # a prefix of the tokens: the bytes those tokens spell, a prefix of the text's
    part = speedrun.heldout_bpb(model, ids[:12], lengths, block_size=block)
    spelled = b"".join(tok.token_bytes(int(i)) for i in ids[1:12])
    assert part["tokens"] == 11 and part["bytes"] == len(spelled) and text.encode("utf-8").startswith(spelled)


def test_held_out_tokens_are_the_first_ones(tmp_path, tiny_tokenizer):
    tok = tiny_tokenizer
    texts = ["Le petit chat dort sur le canapé.", "Élodie lit un livre près de la fenêtre, le soir."]
    (tmp_path / "heldout").mkdir()
    (tmp_path / "heldout" / "texts.jsonl.gz").write_bytes(
        gzip.compress("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(texts)).encode()))
    stream = [tok.bos_id, *tok.encode(texts[0]), tok.bos_id, *tok.encode(texts[1])]
    n = len(stream) - 3
    assert speedrun.heldout_tokens(tmp_path, tok, n).tolist() == stream[: n + 1]
    with pytest.raises(speedrun.CausetteError, match="fewer than --eval-tokens"):
        speedrun.heldout_tokens(tmp_path, tok, len(stream))
