"""The depth dial: model.depth → shape and optimiser settings by written rules; explicit settings win."""

from __future__ import annotations

import argparse
import math
import re

import pytest

from causette.cli_args import add_config_args, add_depth_arg, config_from_args
from causette.config import load_config
from causette.errors import ConfigError
from causette.model.__main__ import main as model_main
from causette.model.counting import count_params
from causette.model.depth import depth_lr, shape_for_depth, training_for_depth


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5, 6, 8, 12, 16])
def test_shape_rules(depth):
    s = shape_for_depth(depth, kv_group=2)
    assert s["n_layer"] == depth and s["n_embd"] == 64 * depth
    assert s["n_embd"] // s["n_head"] == 64  # heads of 64 dimensions
    kv = s["n_kv_head"] or s["n_head"]
    assert s["n_head"] % kv == 0
    assert kv == (s["n_head"] // 2 if s["n_head"] % 2 == 0 else s["n_head"])


def test_learning_rate_rule():
    assert depth_lr(4) == 2e-3  # the demo's
    assert depth_lr(16) == 1e-3  # ∝ 1/√width: 4× wider, half the rate
    assert depth_lr(6) == pytest.approx(2e-3 * math.sqrt(4 / 6), rel=3e-3)  # 3 significant digits
    rates = [depth_lr(d) for d in range(1, 20)]
    assert rates == sorted(rates, reverse=True)
    t = training_for_depth(8)
    assert t["min_lr"] == pytest.approx(t["lr"] / 10, rel=1e-2) and t["warmup_steps"] == 120
    assert training_for_depth(8, lr=5e-4)["min_lr"] == 5e-5  # a tenth of the rate set by hand


def test_depth_4_on_demo_is_the_demo():
    plain, dial = load_config("demo"), load_config("demo", ["model.depth=4"])
    for key in ("n_layer", "n_embd", "n_head", "n_kv_head"):
        assert getattr(dial.model, key) == getattr(plain.model, key)
    for key in ("lr", "min_lr", "warmup_steps", "batch_size", "weight_decay"):
        assert getattr(dial.train, key) == getattr(plain.train, key)
    assert count_params(dial.model).total == 4_000_000


def test_dial_replaces_inherited_settings():
    cfg = load_config("demo", ["model.depth=8"])
    m, t = cfg.model, cfg.train
    assert (m.n_layer, m.n_embd, m.n_head, m.n_kv_head, m.depth) == (8, 512, 8, 4, 8)
    assert (t.lr, t.min_lr, t.warmup_steps) == (depth_lr(8), 1.41e-4, 120)
    assert m.vocab_size == 4096 and m.block_size == 256  # not the dial's business


def test_explicit_overrides_win_whatever_their_order():
    for overrides in (["model.depth=6", "model.n_head=3", "train.lr=1e-3"],
                      ["train.lr=1e-3", "model.n_head=3", "model.depth=6"]):
        cfg = load_config("demo", overrides)
        assert (cfg.model.n_layer, cfg.model.n_embd, cfg.model.n_head) == (6, 384, 3)
        assert cfg.train.lr == 1e-3 and cfg.train.min_lr == 1e-4  # min_lr follows the given lr


def test_same_file_and_child_files_win_parent_files_give_way(tmp_path):
    (tmp_path / "base.yaml").write_text("extends: demo\nmodel:\n  depth: 6\n  n_embd: 512\n  n_head: 8\n")
    base = load_config(tmp_path / "base.yaml")
    assert (base.model.n_layer, base.model.n_embd, base.model.n_head) == (6, 512, 8)  # same file: explicit
    assert base.train.lr == depth_lr(6)  # demo.yaml's 2e-3 is inherited: the rule replaces it
    (tmp_path / "child.yaml").write_text("extends: base.yaml\ntrain:\n  lr: 7.0e-4\nmodel:\n  n_layer: 3\n")
    child = load_config(tmp_path / "child.yaml")
    assert (child.model.n_layer, child.model.n_embd, child.train.lr) == (3, 512, 7e-4)
    # A depth given later (a child file) replaces what its parent wrote.
    (tmp_path / "deeper.yaml").write_text("extends: base.yaml\nmodel:\n  depth: 2\n")
    deeper = load_config(tmp_path / "deeper.yaml")
    assert (deeper.model.n_layer, deeper.model.n_embd, deeper.model.n_head) == (2, 128, 2)


def test_gpt2_family_keeps_plain_multi_head_attention():
    cfg = load_config("model/gpt2", ["model.depth=6"])
    assert cfg.model.n_head == 6 and cfg.model.kv_heads == 6


def test_bad_depth_names_where_it_came_from(tmp_path):
    for value, message in (("0", "model.depth must be within [1, 256]"), ("abc", "'model.depth' must be an integer"),
                           ("2.5", "'model.depth' must be an integer")):
        with pytest.raises(ConfigError, match="^" + re.escape(f"--set model.depth={value}: {message}")):
            load_config("demo", [f"model.depth={value}"])
    (tmp_path / "bad.yaml").write_text("extends: demo\nmodel:\n  depth: -3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: line 3: model.depth must be within"):
        load_config(tmp_path / "bad.yaml")


def test_depth_option_of_the_stages():
    p = argparse.ArgumentParser()
    add_config_args(p)
    add_depth_arg(p)
    cfg = config_from_args(p.parse_args(["--depth", "6", "--set", "train.lr=1e-3"]))
    assert (cfg.model.n_layer, cfg.model.n_embd, cfg.train.lr) == (6, 384, 1e-3)
    with pytest.raises(SystemExit):
        p.parse_args(["--depth", "0"])
    assert config_from_args(p.parse_args(["--depth", "auto"])).model.depth == "auto"


def test_model_command_prints_the_dial(capsys):
    assert model_main(["--depth", "6"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("depth 6: 6 layers × 384, 6 heads (3 key/value); train.lr 0.00163 → min_lr 0.000163")
    assert "parameters: 11,309,952 total" in out
    assert "training FLOPs per token at context 256: 74.9 M" in out
