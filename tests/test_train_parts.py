"""Schedules, the token-window loader, optimiser groups and the loss units (bits per byte)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from causette.data.loader import TokenWindows, eval_windows
from causette.eval.metrics import bits_per_byte, unigram_bits_per_byte
from causette.train.optim import param_groups
from causette.train.schedule import lr_at


def test_warmup_then_cosine_to_min_lr():
    kw = dict(lr=1.0, min_lr=0.1, warmup_steps=10, total_steps=110)
    assert lr_at(0, **kw) == pytest.approx(0.1)
    assert lr_at(9, **kw) == pytest.approx(1.0)
    assert lr_at(10, **kw) == pytest.approx(1.0)
    assert lr_at(60, **kw) == pytest.approx(0.55)  # half-way down the cosine
    assert lr_at(110, **kw) == pytest.approx(0.1)
    assert lr_at(500, **kw) == pytest.approx(0.1)  # never below min_lr, never zero


def test_wsd_is_flat_then_decays_linearly():
    kw = dict(lr=1.0, min_lr=0.0, warmup_steps=0, total_steps=100, schedule="wsd", decay_frac=0.2)
    assert [lr_at(s, **kw) for s in (0, 50, 79)] == [1.0, 1.0, 1.0]
    assert lr_at(90, **kw) == pytest.approx(0.5)
    assert lr_at(100, **kw) == 0.0


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 400), st.sampled_from(["cosine", "wsd", "constant"]), st.integers(0, 50))
def test_schedule_stays_within_bounds(step, schedule, warmup):
    lr = lr_at(step, lr=2.0, min_lr=0.2, warmup_steps=warmup, total_steps=300, schedule=schedule)
    assert 0.0 < lr <= 2.0
    if step >= warmup:
        assert lr >= 0.2 - 1e-12


def token_file(tmp_path, n=1000):
    path = tmp_path / "t.bin"
    np.arange(n, dtype=np.uint16).tofile(path)
    return path


def test_windows_cover_each_epoch_once_and_shift(tmp_path):
    w = TokenWindows(token_file(tmp_path), "uint16", block_size=9, seed=3)
    per = w.windows_per_epoch
    starts = [int(w.window(g)[0]) for g in range(per)]
    assert len(set(starts)) == per and all(s % 10 == 0 for s in starts)  # epoch 0: aligned, each once
    nxt = [int(w.window(g)[0]) for g in range(per, 2 * per)]
    assert len(set(nxt)) == per
    x, y = w.batch(0, 4)
    assert x.shape == y.shape == (4, 9) and torch.equal(x[:, 1:], y[:, :-1])  # targets shifted by one


def test_rank_slices_union_is_the_single_process_batch(tmp_path):
    w = TokenWindows(token_file(tmp_path), "uint16", block_size=7, seed=0)
    for step in (0, 5):
        full, _ = w.batch(step, 8)
        halves = torch.cat([w.batch(step, 4, rank=r, world=2)[0] for r in (0, 1)])
        accum = torch.cat([w.batch(step, 4, micro=m, accum=2)[0] for m in (0, 1)])
        assert torch.equal(full, halves) and torch.equal(full, accum)
    assert torch.equal(w.batch(3, 8)[0], TokenWindows(w.path, "uint16", 7, seed=0).batch(3, 8)[0])  # stateless


def test_eval_windows_are_fixed(tmp_path):
    rows = eval_windows(token_file(tmp_path), "uint16", block_size=9, max_tokens=45)
    assert rows.shape == (5, 10) and rows[1, 0] == 10


def test_bits_per_byte_units():
    # a uniform choice among 256 tokens each spelling one byte is 8 bits per byte
    assert bits_per_byte(1000 * math.log(256), 1000) == pytest.approx(8.0)
    # the same information spread over twice the bytes is half the bits per byte
    assert bits_per_byte(1000 * math.log(256), 2000) == pytest.approx(4.0)


def test_unigram_baseline_matches_hand_computation():
    train = np.array([0, 0, 0, 1], dtype=np.uint16)
    val = np.array([0, 1], dtype=np.uint16)
    byte_lengths = torch.tensor([1.0, 2.0])
    # add-one counts: token0 4/6, token1 2/6
    expected = -(math.log(4 / 6) + math.log(2 / 6)) / (math.log(2) * 3)
    assert unigram_bits_per_byte(train, val, byte_lengths) == pytest.approx(expected)


def test_param_groups_split_matrices_and_gains():
    from causette.model.config import ModelConfig
    from causette.model.transformer import Transformer

    model = Transformer(ModelConfig(vocab_size=64, block_size=8, n_layer=1, n_head=2, n_embd=16, bias=True))
    hidden, embed, flat = param_groups(model)
    assert all(p.dim() == 2 for p in hidden + embed) and all(p.dim() == 1 for p in flat)
    assert len({id(p) for p in hidden + embed + flat}) == len(list(model.parameters()))
    assert any(p is model.wte.weight for p in embed)


def test_grad_accum_weights_micro_batches_by_their_counted_targets(tmp_path):
    """Two micro-batches with 2 and 6 trained targets = one batch of both (not a mean of means)."""
    from causette.model.config import ModelConfig
    from causette.model.layers import IGNORE_INDEX
    from causette.model.transformer import Transformer
    from causette.train.config import TrainConfig
    from causette.train.trainer import Runtime, Trainer

    cfg = ModelConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=32, mlp_hidden=32)
    x = torch.randint(0, 32, (2, 8), generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 32, (2, 8), generator=torch.Generator().manual_seed(1))
    y[0, :6] = IGNORE_INDEX  # row 0: 2 trained targets (an SFT prompt masked), row 1: 8
    y[1, :2] = IGNORE_INDEX  # row 1: 6

    def run(grad_accum):
        torch.manual_seed(0)
        model = Transformer(cfg)
        tc = TrainConfig(batch_size=2 // grad_accum, grad_accum=grad_accum, max_steps=10, warmup_steps=0,
                         grad_clip=0.0, tensorboard=False)
        rows = 2 // grad_accum

        def batch_fn(step, micro, rank, world):
            return x[micro * rows : (micro + 1) * rows], y[micro * rows : (micro + 1) * rows]

        trainer = Trainer(model, tc, tmp_path / f"ga{grad_accum}", batch_fn, Runtime(torch.device("cpu")), progress=False)
        loss, grad_norm, _ = trainer.train_step()
        return loss, grad_norm

    whole, split = run(1), run(2)
    assert abs(whole[0] - split[0]) < 1e-6  # the same loss: mean over the 8 trained targets
    assert abs(whole[1] - split[1]) < 1e-5  # and the same gradient


def test_mfu_above_one_warns_once_and_stays_uncapped(tmp_path):
    """MFU > 100 % means the run's peak is too low (a stale cache, a busy machine, a small
    train.peak_flops): one warning naming the peak, and MFU logged as it is against that same peak."""
    from causette.model.config import ModelConfig
    from causette.model.transformer import Transformer
    from causette.train.config import TrainConfig
    from causette.train.trainer import Runtime, Throughput, Trainer

    model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=8, block_size=4, vocab_size=16, mlp_hidden=16))
    said: list[str] = []
    speed = Throughput(flops_per_token=1e6, peak_flops=1e9, peak_source="cached quiet measurement, ~/x/peaks.json")
    trainer = Trainer(model, TrainConfig(), tmp_path, None, Runtime(torch.device("cpu")), speed=speed, echo=said.append)
    assert trainer._mfu(500.0) == 0.5 and said == []
    assert trainer._mfu(3000.0) == 3.0 and trainer._mfu(4000.0) == 4.0  # uncapped, the same peak
    assert trainer.peak_flops == 1e9 and len(said) == 1
    assert said[0].startswith("warning: MFU 300% exceeds 100 %: the peak 1 GFLOP/s (cached quiet measurement, "
                              "~/x/peaks.json) is stale or too low")
    assert "python -m causette.utils.flops --remeasure" in said[0]
    no_peak = Trainer(model, TrainConfig(), tmp_path, None, Runtime(torch.device("cpu")),
                      speed=Throughput(flops_per_token=1e6), echo=said.append)
    assert no_peak._mfu(1e9) == 0.0 and len(said) == 1
