"""model.depth: auto — the depth chosen from the time budget and the measured speed."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import copy_run, tiny_config  # noqa: F401

from causette.checkpoint.weights import read_config
from causette.config import load_config, with_depth
from causette.errors import CausetteError
from causette.eval.report import _pretraining_section
from causette.model.counting import count_params
from causette.model.depth import depth_lr
from causette.train import sizing
from causette.train.pretrain import train
from causette.train.sizing import Candidate, choose, measure
from causette.utils.paths import RunLayout


def _cands(speeds: dict[int, float], budget_s: float, params=lambda d: 1e3 * d**3) -> list[Candidate]:
    return [Candidate(d, int(params(d)), s, s * budget_s) for d, s in speeds.items()]


def test_choose_the_depth_closest_to_the_target():
    speeds = {2: 40_000, 3: 24_000, 4: 15_000, 5: 9_000, 6: 6_700}
    # params 1,000·d³: tokens/param at 600 s = 3000, 533, 140.6, 43.2, 18.6 → target 100: depth 4
    c = choose(_cands(speeds, 600), target=100)
    assert c.depth == 4 and "depth 3 would see 533.3" in c.reason and "depth 5 would see 43.2" in c.reason
    assert choose(_cands(speeds, 600), target=60).depth == 5  # 43 is closer to 60 than 141 is (by ratio)
    assert choose(_cands(speeds, 6000), target=100).depth == 6  # ten times the budget: deeper
    assert choose(_cands(speeds, 6), target=100).depth == 2  # nothing reaches it: the smallest
    assert "a longer budget would help" in choose(_cands(speeds, 6), target=100).reason
    assert "largest tried" in choose(_cands(speeds, 1e9), target=100).reason


def test_the_grid_s_best_depths_are_chosen():
    """The grid behind TOKENS_PER_PARAM (bench/LOG.md « Issue 28 »): tokens seen per parameter by each
    depth at 2, 5 and 12 minutes; the best depth of each budget is the one chosen."""
    params = {2: 1_442_432, 3: 2_901_312, 4: 5_048_576, 6: 12_882_816}  # vocabulary 8,192
    seen = {2: {2: 4.7e6, 3: 2.9e6, 4: 1.7e6}, 5: {2: 13.3e6, 3: 7.2e6, 4: 4.3e6, 6: 1.9e6},
            12: {3: 16.0e6, 4: 11.3e6, 6: 4.7e6}}
    best = {2: 3, 5: 3, 12: 4}
    for minutes, tokens in seen.items():
        cands = [Candidate(d, params[d], t / (minutes * 60), t) for d, t in tokens.items()]
        assert choose(cands).depth == best[minutes], minutes


def test_measure_stops_early_and_predicts_from_the_time():
    cfg = load_config("demo", ["model.depth=auto", "train.max_minutes=10"])
    seen = []

    def timer(c):
        seen.append(c.model.depth)
        return 1e6 / c.model.n_layer**3  # deeper: much slower

    out = measure(cfg, 600, device=torch.device("cpu"), dtype=torch.float32, compiled=False, target=20, timer=timer)
    assert seen == [c.depth for c in out] and seen[0] == 2
    assert out[-1].ratio < 20 / 4 and all(c.ratio >= 20 / 4 for c in out[:-1])  # stopped at the first far below
    for c in out:
        assert c.params == count_params(with_depth(cfg, c.depth).model).total
        assert c.tokens == pytest.approx(c.tokens_per_s * 600 * sizing.USABLE)
    # A small text that train.max_epochs stops early does not shrink the model (bench/LOG.md): the
    # prediction is the budget's.
    capped = load_config("demo", ["model.depth=auto", "train.max_epochs=2"])
    small = measure(capped, 600, device=torch.device("cpu"), dtype=torch.float32, compiled=True, timer=lambda c: 1e6)
    assert small[0].tokens_per_s == 1e6 * sizing.COMPILE_GAIN
    assert small[0].tokens == pytest.approx(small[0].tokens_per_s * 600 * sizing.USABLE)


def test_with_depth_keeps_what_was_given():
    cfg = load_config("demo", ["model.depth=auto", "train.lr=1e-3", "model.n_head=2"])
    assert cfg.model.n_layer == 4  # nothing derived before the choice
    six = with_depth(cfg, 6)
    assert (six.model.n_layer, six.model.n_embd, six.model.n_head, six.model.depth) == (6, 384, 2, 6)
    assert (six.train.lr, six.train.min_lr, six.train.warmup_steps) == (1e-3, 1e-4, 90)
    plain = with_depth(load_config("demo", ["model.depth=auto"]), 8)
    assert plain.train.lr == depth_lr(8) and plain.model.n_kv_head == 4


def _auto_config(root, name: str, steps: int):
    """The demo config at depth auto (no shape given: the dial owns it), tiny context and steps."""
    return load_config("demo", [f"run.dir={root}", f"run.name={name}", "model.depth=auto", "model.block_size=32",
                                "train.device=cpu", "train.precision=fp32", "train.compile=false",
                                "train.max_minutes=0.05", f"train.max_steps={steps}", "train.eval_every=0",
                                "train.eval_tokens=256", "train.ckpt_every=3", "train.sample_tokens=0",
                                "train.grammar_pairs=0", "train.tensorboard=false"])


def test_auto_depth_trains_the_chosen_model_and_resume_keeps_it(base_run, tmp_path, monkeypatch):
    copy_run(base_run, tmp_path, "auto")
    timed = []

    def fake_speed(cfg, device, dtype, steps=2):  # deterministic: 3,000 tokens/s at depth 2, ÷ d³
        timed.append(cfg.model.depth)
        return 24_000 / cfg.model.depth**3

    monkeypatch.setattr(sizing, "time_steps", fake_speed)
    monkeypatch.setattr(sizing, "TOKENS_PER_PARAM", 0.02)
    lines = []
    result = train(_auto_config(tmp_path, "auto", 6), progress=False, echo=lines.append)
    chosen = json.loads((tmp_path / "auto" / "sizing.json").read_text())
    # 3 s × 0.9 × 3,000 tokens/s = 8,100 tokens: 0.02 per parameter reached by depth 2 only
    assert chosen["depth"] == 2 and timed[:2] == [2, 3] and chosen["budget_s"] == 3.0
    assert any(line.startswith("model.depth auto → 2: ") for line in lines)
    saved, _ = read_config(result.checkpoint / "config.json")
    assert (saved.depth, saved.n_layer, saved.n_embd, saved.n_head, saved.vocab_size) == (2, 2, 128, 2, 400)
    report = "\n".join(_pretraining_section(tmp_path / "auto", RunLayout(tmp_path / "auto")))
    assert "2 couches × 128" in report
    assert f"Profondeur choisie d'après le budget (model.depth: auto)\u00a0: 2 — {chosen['reason']}" in report
    # Resumed: the same depth, read back, whatever the machine's speed is now.
    monkeypatch.setattr(sizing, "time_steps", lambda *a, **k: pytest.fail("measured again on resume"))
    lines.clear()
    train(_auto_config(tmp_path, "auto", 9), resume=True, progress=False, echo=lines.append)
    assert any("model.depth auto → 2 (chosen when this run started" in line for line in lines)


def test_time_steps_measures_a_real_model():
    cfg = with_depth(load_config("demo", ["model.depth=auto", "model.block_size=16", "train.batch_size=2"]), 2)
    assert 100 < sizing.time_steps(cfg, torch.device("cpu"), torch.float32, steps=1) < 1e8


def test_auto_depth_needs_a_budget(base_run, tmp_path):
    copy_run(base_run, tmp_path, "nobudget")
    cfg = tiny_config(tmp_path, "nobudget", ["model.depth=auto", "train.max_minutes=0"])
    with pytest.raises(CausetteError, match="model.depth: auto chooses the model from the time budget"):
        train(cfg, progress=False, echo=lambda s: None)


@pytest.mark.parametrize("extra, depth", [([], "auto"), (["--depth", "3"], 3), (["--set", "model.n_layer=2"], None),
                                          (["--config", "demo"], None)])
def test_own_text_sizes_the_model_unless_told(tmp_path, monkeypatch, extra, depth):
    from causette.cli import main

    seen = []
    monkeypatch.setattr("causette.pipeline.run_pipeline", lambda cfg, **kw: seen.append(cfg))
    (tmp_path / "livre.txt").write_text("Il était une fois.", encoding="utf-8")
    assert main(["run", str(tmp_path / "livre.txt"), "--set", f"run.dir={tmp_path}", *extra]) == 0
    assert seen[0].model.depth == depth
    assert seen[0].train.max_epochs == 2
