"""Configuration loading: YAML, extends, --set overrides, and the error messages."""

from __future__ import annotations

import pytest

from causette.config import Config, config_hash, load_config
from causette.config_files import resolve_config_path
from causette.errors import ConfigError


def write(tmp_path, name, text):
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_and_shipped_demo():
    cfg = load_config()
    assert isinstance(cfg, Config)
    assert cfg.corpus.min_chars == 200
    demo = load_config("demo")
    assert demo.run.name == "demo"
    assert demo.corpus.sources == []
    assert resolve_config_path("demo").name == "demo.yaml"


def test_yaml_values_and_nested_sources(tmp_path):
    p = write(
        tmp_path,
        "c.yaml",
        "run: {name: essai}\ncorpus:\n  min_chars: 50\n  sources:\n    - path: a.txt\n    - {path: b.jsonl, format: jsonl, text_field: contenu}\n",
    )
    cfg = load_config(p)
    assert cfg.run.name == "essai"
    assert cfg.corpus.min_chars == 50
    assert [s.path for s in cfg.corpus.sources] == ["a.txt", "b.jsonl"]
    assert cfg.corpus.sources[1].format == "jsonl"
    assert cfg.corpus.sources[1].text_field == "contenu"
    assert cfg.corpus.sources[0].format == "auto"


def test_set_overrides_parse_yaml_values(tmp_path):
    p = write(tmp_path, "c.yaml", "corpus: {min_chars: 50}\n")
    cfg = load_config(p, ["corpus.min_chars=200", "corpus.near_dup=false", "corpus.normalize.exotic_spaces=nbsp"])
    assert cfg.corpus.min_chars == 200
    assert cfg.corpus.near_dup is False
    assert cfg.corpus.normalize.exotic_spaces == "nbsp"
    # ints are accepted for floats, and "3e-1" (a YAML string) too
    cfg = load_config(None, ["corpus.min_french_ratio=3e-1"])
    assert cfg.corpus.min_french_ratio == pytest.approx(0.3)


def test_unknown_key_names_key_file_and_suggestion(tmp_path):
    p = write(tmp_path, "bad.yaml", "corpus:\n  min_char: 10\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert "bad.yaml" in msg and "'corpus.min_char'" in msg and "did you mean 'corpus.min_chars'" in msg


def test_unknown_key_in_override_names_the_override():
    with pytest.raises(ConfigError, match=r"--set corpus.minchars=3: unknown key 'corpus.minchars'"):
        load_config(None, ["corpus.minchars=3"])


def test_unknown_section():
    with pytest.raises(ConfigError, match="unknown key 'corpse'"):
        load_config(None, ["corpse.x=1"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("corpus.min_chars=abc", "'corpus.min_chars' must be an integer, got 'abc'"),
        ("corpus.near_dup=maybe", "'corpus.near_dup' must be true or false"),
        ("corpus.normalize.exotic_spaces=tab", "must be one of 'space', 'nbsp'"),
        ("corpus.val_fraction=1.5", "val_fraction must be within [0, 1)"),
        ("corpus.min_chars", "expected KEY=VALUE"),
    ],
)
def test_bad_values_are_one_clear_line(override, message):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_extends_merges_sections(tmp_path):
    write(tmp_path, "base.yaml", "run: {name: base, dir: out}\ncorpus: {min_chars: 10, seed: 7}\n")
    child = write(tmp_path, "child.yaml", "extends: base.yaml\nrun: {name: child}\ncorpus: {min_chars: 20}\n")
    cfg = load_config(child)
    assert (cfg.run.name, cfg.run.dir) == ("child", "out")
    assert (cfg.corpus.min_chars, cfg.corpus.seed) == (20, 7)


def test_extends_loop_and_bad_yaml(tmp_path):
    a = write(tmp_path, "a.yaml", "extends: b.yaml\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    with pytest.raises(ConfigError, match="loops back"):
        load_config(a)
    bad = write(tmp_path, "bad.yaml", "corpus: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: line \d+: invalid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="config not found: neither a file .* nor a shipped config"):
        load_config(tmp_path / "nope.yaml")


def test_extends_a_shipped_name_from_any_folder(tmp_path):
    """A config of one's own, outside configs/, starts from `demo` exactly as --config demo does."""
    mine = write(tmp_path / "elsewhere", "mine.yaml", "extends: demo\nrun: {name: perso}\ntrain: {max_steps: 7}\n")
    cfg, demo = load_config(mine), load_config("demo")
    assert cfg.run.name == "perso" and cfg.train.max_steps == 7
    assert cfg.model == demo.model and cfg.corpus == demo.corpus and cfg.train.lr == demo.train.lr
    # nested shipped names, lists, and a sibling file without its .yaml suffix
    both = write(tmp_path / "elsewhere", "both.yaml", "extends: [mine, model/llama]\n")
    cfg = load_config(both)
    assert cfg.run.name == "perso" and cfg.model == load_config("model/llama").model
    # a file beside the config wins over a shipped config of the same name
    write(tmp_path / "local", "demo.yaml", "train: {max_steps: 3}\n")
    local = write(tmp_path / "local", "top.yaml", "extends: demo\n")
    assert load_config(local).train.max_steps == 3


def test_extends_neither_file_nor_shipped_lists_the_shipped_names(tmp_path):
    bad = write(tmp_path, "bad.yaml", "extends: demoo\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: extends demoo: config not found.*shipped: .*\bdemo\b.*model/llama"):
        load_config(bad)


def test_hash_changes_with_settings():
    a, b = load_config(), load_config(None, ["corpus.min_chars=201"])
    assert config_hash(a.corpus) != config_hash(b.corpus)
    assert config_hash(a.corpus) == config_hash(load_config().corpus)


@pytest.mark.parametrize("override, message", [
    ("sft.val_fraction=2", "sft.val_fraction must be within [0, 1)"),
    ("sft.lora.r=-1", "sft.lora.r must be >= 0"),
    ("sft.lora.targets=[nope]", "sft.lora.targets: unknown layer(s)"),
    ("train.max_steps=0", "train.max_steps must be >= 1"),
])
def test_validation_errors_name_the_key_once(override, message):
    with pytest.raises(ConfigError) as e:
        load_config("demo", [override])
    assert message in str(e.value) and "sft.sft." not in str(e.value) and "lora.lora." not in str(e.value)


def test_sft_section_loads_from_yaml_into_the_sft_settings(tmp_path):
    """The ``sft:`` keys (settings of causette/sft/config.py) read as they always have: its own keys,
    its LoRA, and ``sft.train`` with fine-tuning defaults under the keys of ``train:``."""
    from causette.config import to_dict
    from causette.sft.config import SFTConfig, SFTTrainConfig
    from causette.train.config import TrainConfig

    p = write(tmp_path, "c.yaml", "train: {lr: 0.002}\nsft:\n  data: [a.jsonl]\n  base: runs/x\n  val_fraction: 0.2\n"
              "  eval_answers: 4\n  eval_max_new_tokens: 16\n  lora: {r: 8, alpha: 16}\n"
              "  train: {lr: 0.0001, max_steps: 40, batch_size: 2}\n")
    cfg = load_config(p, ["sft.train.warmup_steps=3"])
    assert type(cfg.sft) is SFTConfig and type(cfg.sft.train) is SFTTrainConfig and isinstance(cfg.sft.train, TrainConfig)
    s = cfg.sft
    assert (s.data, s.base, s.val_fraction, s.eval_answers, s.eval_max_new_tokens) == (["a.jsonl"], "runs/x", 0.2, 4, 16)
    assert (s.lora.r, s.lora.alpha) == (8, 16)
    assert (s.train.lr, s.train.max_steps, s.train.batch_size, s.train.warmup_steps) == (1e-4, 40, 2, 3)
    assert s.train.weight_decay == 0.0 and s.train.compile is False and cfg.train.lr == 0.002  # sft's own defaults
    # the keys of the section: SFT's own, then every setting of the training loop under sft.train
    d = to_dict(load_config().sft)
    assert list(d) == ["data", "base", "val_fraction", "lora", "train", "eval_answers", "eval_max_new_tokens", "tool_data"]
    assert list(d["train"]) == list(to_dict(TrainConfig()))
    assert {k: d["train"][k] for k in ("batch_size", "max_steps", "lr", "min_lr", "warmup_steps", "eval_every",
                                        "eval_tokens", "ckpt_every", "sample_tokens", "grammar_pairs", "prompts")} == {
        "batch_size": 8, "max_steps": 300, "lr": 3e-4, "min_lr": 3e-5, "warmup_steps": 20, "eval_every": 50,
        "eval_tokens": 0, "ckpt_every": 100, "sample_tokens": 0, "grammar_pairs": 0, "prompts": []}
    with pytest.raises(ConfigError, match="did you mean 'sft.train.max_steps'"):
        load_config(None, ["sft.train.max_step=3"])
