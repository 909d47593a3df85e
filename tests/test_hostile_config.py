"""Hostile configurations, names, options and SFT files: one clear line, never a traceback.

Every value a user can give a setting (NaN, infinities, negatives, zero, huge and 5,000-digit
integers, text, lists, mappings, nothing) either loads into a config whose numbers are all finite
and in range, or is refused by a one-line :class:`ConfigError` that names the override or the file
and line; never another exception. Run names cannot leave their folder, ``explain`` options are
checked while parsing, and a broken SFT file is reported line by line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import types
import typing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from causette.cli_args import config_from_args
from causette.config import Config, load_config
from causette.config_files import Setting
from causette.errors import CausetteError, ConfigError
from causette.inference.config import SamplingParams
from causette.sft.data import check_file, load_conversations
from causette.utils.ranges import check_fields

REPO = Path(__file__).resolve().parents[1]


def dotted_fields(cls: type, prefix: str = "") -> list[str]:
    """Every setting of a config dataclass, by its dotted name (``train.lr``, ``sft.lora.r``...)."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out += dotted_fields(tp, f"{prefix}{f.name}.")
        else:
            out.append(f"{prefix}{f.name}")
    return out


def sections(obj) -> list:
    """``obj`` and every config dataclass inside it (sources of the corpus included)."""
    out = [obj]
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        for v in value if isinstance(value, list) else [value]:
            if dataclasses.is_dataclass(v):
                out += sections(v)
    return out


FIELDS = dotted_fields(Config)

NUMBERS = st.one_of(
    st.sampled_from(["nan", ".nan", "NaN", "inf", "-inf", ".inf", "-.inf", "1e999", "-1e999", "0", "-0", "0.0",
                     "-1", "1", "2", "-0.5", "0.5", "1.5", "255", "256", "1024", "1025", "1e9", "1.0e+30"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=19, max_value=6000).map(lambda n: "9" * n),  # up to 6,000 digits
)
OTHERS = st.one_of(
    st.sampled_from(["", " ", "true", "false", "null", "~", "[]", "{}", "[[[]]]", "{a: {b: 1}}", "[1, 2]",
                     "[nan]", "{x: .inf}", "abc", "'3'", "..", "../escape", "/abs", "a\\b", "gpt4", "bpe", "sft",
                     "[" * 3000]),
    st.text(max_size=30),
    st.lists(st.sampled_from(["1", "-1", ".nan", "a", "[]", "{}"]), max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
)
VALUES = st.one_of(NUMBERS, OTHERS)


def assert_one_line_naming(message: str, label: str) -> None:
    assert message.startswith(f"{label}: "), message
    assert "\n" not in message and message[len(label) + 2 :].strip(), message
    for internal in ("_Override", "_Sourced", "Traceback", "object at 0x"):
        assert internal not in message, message


# ============================================================================ every field, every value


def test_every_numeric_setting_declares_its_range():
    """A numeric field without a range would only be checked for being finite: each one states its
    real range (tests below rely on it)."""
    missing = []
    classes = {type(s) for s in sections(Config())} | {type(s) for s in sections(load_config("demo").sft)}
    from causette.corpus.config import SourceConfig

    for cls in classes | {SourceConfig, SamplingParams}:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]  # a number, or a number or None
            kinds = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
            if {int, float} & set(kinds) and f.name not in getattr(cls, "RANGES", {}):
                missing.append(f"{cls.__name__}.{f.name}")
    assert not missing, missing


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(FIELDS), raw=VALUES)
def test_any_override_gives_a_valid_config_or_one_line_naming_it(key, raw):
    item = f"{key}={raw}"
    try:
        cfg = load_config("demo", [item])
    except ConfigError as e:
        label = f"--set {item}" if item.isprintable() else "--set " + repr(item)[1:-1]
        assert_one_line_naming(str(e), label if len(label) <= 66 else label[:65] + "…")
        return
    for section in sections(cfg):  # loaded: every number finite and in its range, every rule kept
        check_fields(section)
        getattr(section, "validate", lambda: None)()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from([f for f in FIELDS if f.split(".")[0] in ("train", "model", "corpus")]), raw=NUMBERS)
def test_a_bad_number_in_a_file_names_the_file_line_and_setting(tmp_path, key, raw):
    *path, last = key.split(".")
    lines = ["extends: demo"] + [f"{'  ' * i}{p}:" for i, p in enumerate(path)] + [f"{'  ' * len(path)}{last}: {raw}"]
    file = tmp_path / "mine.yaml"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        load_config(file)
    except ConfigError as e:
        message = str(e)
        assert "\n" not in message and message.startswith(f"{file}: line "), message
        if "must be" in message and "digits, too large" not in message:
            assert f"line {len(lines)}: " in message and key.split(".")[-1] in message, message


@pytest.mark.parametrize("change, message", [
    ({"seed": 10**23}, "seed must be within [0, 9223372036854775807], got an integer of 24 digits"),
    ({"seed": -1}, "seed must be within [0, 9223372036854775807], got -1"),
    ({"temperature": float("inf")}, "temperature must be 0 or within [0.001, 100] (0 = greedy), got inf"),
    ({"temperature": 1e-40}, "temperature must be 0 or within [0.001, 100] (0 = greedy), got 1e-40"),
    ({"top_p": float("nan")}, "top_p must be a finite number within (0, 1] (1 = off), got nan"),
    ({"max_new_tokens": 0}, "max_new_tokens must be >= 1, got 0"),
])
def test_sampling_settings_use_the_same_ranges(change, message):
    with pytest.raises(CausetteError) as e:
        SamplingParams(**change).validate()
    assert str(e.value) == message


# ============================================================================ the reported cases


@pytest.mark.parametrize("override, message", [
    ("corpus.seed=-1", "corpus.seed must be within [0, 9223372036854775807], got -1"),
    ("train.lr=nan", "train.lr must be a finite number > 0, got nan"),
    ("train.lr=1e999", "train.lr must be a finite number > 0, got inf"),
    ("train.log_every=0", "train.log_every must be >= 1, got 0"),
    ("train.ckpt_every=0", "train.ckpt_every must be >= 1, got 0"),
    ("train.beta1=2", "train.beta1 must be within [0, 1), got 2.0"),
    ("model.init_std=nan", "model.init_std must be a finite number > 0, got nan"),
    ("train.max_minutes=-1", "train.max_minutes must be within [0, 1000000000] (0 = no limit), got -1.0"),
    ("train.max_minutes=nan", "train.max_minutes must be a finite number within [0, 1000000000] (0 = no limit), got nan"),
    ("train.weight_decay=-1", "train.weight_decay must be >= 0 (0 = none), got -1.0"),
    ("train.grad_clip=-1", "train.grad_clip must be >= 0 (0 = no clipping), got -1.0"),
    ("train.eval_tokens=-1", "train.eval_tokens must be >= 0 (0 = no validation), got -1"),
    ("sft.train.lr=-inf", "sft.train.lr must be a finite number > 0, got -inf"),
    ("sft.lora.alpha=0", "sft.lora.alpha must be > 0, got 0.0"),
    ("corpus.workers=100000", "corpus.workers must be within [0, 1024] (0 = one per core), got 100000"),
    ("corpus.normalize.max_blank_lines=-1", "corpus.normalize.max_blank_lines must be within [0, 1000], got -1"),
    ("train.seed=123456789012345678901234567890",
     "train.seed must be within [0, 9223372036854775807], got an integer of 30 digits"),
    ("model.block_size=1",
     "model.block_size must be >= 2 (generation needs a prompt token and room for the next one), got 1"),
    ("train.min_lr=1", "train.min_lr (1) must be <= lr (0.002): the schedule decays from lr to min_lr"),
])
def test_reported_values_are_refused_with_the_override_and_the_rule(override, message):
    with pytest.raises(ConfigError) as e:
        load_config("demo", [override])
    assert str(e.value) == f"--set {override}: {message}"


def test_a_5000_digit_integer_is_refused_without_printing_it():
    item = "train.seed=" + "7" * 5000
    with pytest.raises(ConfigError) as e:
        load_config("demo", [item])
    assert str(e.value) == f"--set {item[:59]}…: an integer of 5000 digits, too large for any setting"


def test_extends_must_name_configs(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("# mine\nextends: 42\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(bad)
    assert str(e.value) == (f"{bad}: line 2: 'extends' must name a config (a file or a shipped name such as demo) "
                            "or a list of them, got 42")
    bad.write_text("extends: [demo, {a: 1}]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 1: 'extends' must name a config .*got a list \[demo, \{a: 1\}\]"):
        load_config(bad)


def test_file_errors_name_the_line_of_the_setting(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("extends: demo\ntrain:\n  max_steps: 10\n  lr: .nan\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert str(e.value) == f"{f}: line 4: train.lr must be a finite number > 0, got nan"
    f.write_text("train:\n  lr: 0.1\n  min_lr: 0.5\n", encoding="utf-8")  # a rule between two settings
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert str(e.value) == f"{f}: line 3: train.min_lr (0.5) must be <= lr (0.1): the schedule decays from lr to min_lr"
    f.write_text("train:\n  seed: " + "1" * 200 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert str(e.value) == f"{f}: line 2: an integer of 200 digits, too large for any setting"
    f.write_text("a: &x [*x]\ntrain: {prompts: *x}\n", encoding="utf-8")  # a list that contains itself
    with pytest.raises(ConfigError):
        load_config(f)


# ============================================================================ --set blames the override


@pytest.mark.parametrize("override, message", [
    ("train.lr=abc", "--set train.lr=abc: 'train.lr' must be a number, got 'abc'"),
    ("train.lr=[1, 2]", "--set train.lr=[1, 2]: 'train.lr' must be a number, got a list [1, 2]"),
    ("train.lr=", "--set train.lr=: 'train.lr' must be a number, got an empty value"),
    ("train.lr.x=1", ("--set train.lr.x=1: 'train.lr' is one value (0.002), not a section of settings: "
                      "set it whole, --set train.lr=VALUE")),
    ("train.seed.x=1", "--set train.seed.x=1: 'train.seed' must be an integer, got a mapping {x: 1}"),
    ("train.warmup=5", "--set train.warmup=5: unknown key 'train.warmup' (did you mean 'train.warmup_steps'?)"),
    ("corpus.sources.0.path=a.txt", ("--set corpus.sources.0.path=a.txt: 'corpus.sources' is one value (a list []), "
                                     "not a section of settings: set it whole, --set corpus.sources=VALUE")),
])
def test_set_errors_name_the_override_and_show_user_values(override, message):
    with pytest.raises(ConfigError) as e:
        load_config("demo", [override])
    assert str(e.value) == message  # never the demo.yaml it was applied to, never an internal repr


# ============================================================================ run names and folders


@pytest.mark.parametrize("name, message", [
    ("../escape", "--name ../escape: run.name must be one folder name, without '/' or '\\', got '../escape'"),
    ("/abs", "--name /abs: run.name must be one folder name, without '/' or '\\', got '/abs'"),
    ("a\\b", "--name 'a\\b': run.name must be one folder name, without '/' or '\\', got 'a\\\\b'"),
    ("..", "--name ..: run.name must be a folder name, not '.' or '..', got '..'"),
    (".", "--name .: run.name must be a folder name, not '.' or '..', got '.'"),
    ("", "--name '': run.name must not be empty (it names the run's folder, <run.dir>/<name>)"),
    (" ", "--name ' ': run.name must not be empty (it names the run's folder, <run.dir>/<name>)"),
    ("a\x00b", "--name 'a\\x00b': run.name must not hold control characters, got 'a\\x00b'"),
    ("a\nb", "--name 'a\\nb': run.name must not hold control characters, got 'a\\nb'"),
    ("caf\udce9", "--name 'caf\\udce9': run.name must be valid UTF-8 text, got 'caf\\udce9'"),
    ("x" * 256, (f"--name {'x' * 58}…: run.name must be at most 255 bytes long (a folder name's limit), not 256, "
                 f"got '{'x' * 59}…'")),
])
def test_bad_run_names_are_refused_naming_the_option(name, message):
    with pytest.raises(ConfigError) as e:
        config_from_args(argparse.Namespace(config=None, overrides=[], name=name))
    assert str(e.value) == message


@pytest.mark.parametrize("override, message", [
    ("run.name=", "--set run.name=: run.name must not be empty (it names the run's folder, <run.dir>/<name>)"),
    ("run.name=a/b", "--set run.name=a/b: run.name must be one folder name, without '/' or '\\', got 'a/b'"),
    ("run.dir=", "--set run.dir=: run.dir must not be empty (it is the folder that holds the runs, e.g. runs)"),
    ("run.dir='  '", "--set run.dir='  ': run.dir must not be empty (it is the folder that holds the runs, e.g. runs)"),
])
def test_bad_run_settings_are_refused(override, message):
    with pytest.raises(ConfigError) as e:
        load_config("demo", [override])
    assert str(e.value) == message
    with pytest.raises(ConfigError, match="run.dir must not hold control characters"):
        load_config("demo", [Setting("run.dir", "ru\nns", "--set run.dir")])


def test_name_is_taken_as_written_and_good_names_pass():
    for name in ("007", "true", "null", "mon-run_2", "été", "a..b", ".cache"):
        cfg = config_from_args(argparse.Namespace(config=None, overrides=[], name=name))
        assert cfg.run.name == name and cfg.run.path == Path("runs") / name


def commands_with_name() -> list[list[str]]:
    from causette.cli import build_parser

    def walk(p, path):
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sp in a.choices.items():
                    yield from walk(sp, [*path, name])
        if any("--name" in a.option_strings for a in p._actions):
            yield path

    return list(walk(build_parser(), []))


def test_every_command_with_name_refuses_an_escaping_name_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from causette.cli import main

    commands = commands_with_name()
    assert ["tokenizer", "train"] in commands and ["run"] in commands and len(commands) >= 7
    monkeypatch.chdir(tmp_path)
    for command in commands:
        assert main([*command, "--name", "../escape"]) == 1, command
        err = capsys.readouterr().err
        assert err == ("error: --name ../escape: run.name must be one folder name, without '/' or '\\', "
                       "got '../escape'\n"), (command, err)
    assert not list(tmp_path.iterdir()) and not (tmp_path.parent / "escape").exists()


# ============================================================================ explain options


@pytest.mark.parametrize("argv, message", [
    (["embeddings", "--top", "-5"], "argument --top: must be within [1, 100], got -5"),
    (["embeddings", "--seed", "-1"], "argument --seed: must be within [0, 9223372036854775807], got -1"),
    (["attention", "--head", "-1"], "argument --head: must be >= 0, got -1"),
    (["positions", "--dim", "7"], "argument --dim: must be even (sines and cosines come in pairs), got 7"),
    (["schedule", "--steps", "0"], "argument --steps: must be >= 1, got 0"),
    (["schedule", "--warmup", "x"], "argument --warmup: expected an integer, got 'x'"),
    (["mask", "--window", "0"], "argument --window: must be >= 1, got 0"),
    (["cache", "--prefill", "-3"], "argument --prefill: must be >= 1, got -3"),
    (["curves", "--examples", "--example-steps", "0"], "argument --example-steps: must be >= 60, got 0"),
    (["sampling", "--logits", "1", "nan"], "argument --logits: must be a finite number, got nan"),
    (["sampling", "--temperature", "inf"], "argument --temperature: must be a finite number >= 0 (0 = greedy), got inf"),
    (["sampling", "--top-p", "0"], "argument --top-p: must be within (0, 1] (1 = off), got 0"),
    (["sampling", "--min-p", "2"], "argument --min-p: must be within [0, 1], got 2"),
    (["sampling", "--top-k", "9" * 5000], "argument --top-k: an integer of 5000 digits is too large"),
])
def test_explain_options_are_checked_while_parsing(argv, message, capsys):
    from causette.explain.cli import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    topic = argv[0]
    assert err == f"python -m causette.explain {topic}: error: {message} (see --help)\n"


# ============================================================================ SFT files


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


GOOD = json.dumps({"messages": [{"role": "user", "content": "Bonjour"}, {"role": "assistant", "content": "Salut !"}]})


def test_sft_check_refuses_an_empty_file(tmp_path, capsys):
    from causette.cli import main

    for text in ("", "\n  \n"):
        f = write(tmp_path / "vide.jsonl", text)
        assert main(["sft", "check", str(f)]) == 1
        out = capsys.readouterr().out
        assert f"{f}: no conversation: the file is empty (or holds only blank lines)\n" in out and "1 error" in out
        assert "ok: no errors" not in out
    good = write(tmp_path / "good.jsonl", GOOD)
    assert len(load_conversations([good])) == 1
    with pytest.raises(CausetteError) as e:  # training refuses it too, even beside a good file
        load_conversations([good, f])
    assert str(e.value) == f"{f}: no conversation: the file is empty (or holds only blank lines)"


def test_sft_reader_reports_bad_lines_with_file_and_line(tmp_path, capsys):
    from causette.cli import main

    f = write(tmp_path / "x.jsonl", b"\n".join([
        GOOD.encode(),
        b"[" * 50_000,                                                        # 2: RecursionError in json
        b'{"messages": ' + b"1" * 5000 + b"}",                                # 3: beyond Python's int limit
        b'{"messages": [{"role": "user", "content": "a\\ud800b"}, {"role": "assistant", "content": "\\udfff"}]}',
        b"\xff\xfe{}",                                                        # 5: not UTF-8
        b'{"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "x"}]}',
        b'{"messages": [{"role": ["x"], "content": "a"}]}',
        b'{"instruction": "Dis bonjour.", "input": 0, "output": "Bonjour."}',
    ]) + b"\n")
    assert main(["sft", "check", str(f)]) == 1
    out = capsys.readouterr().out
    for expected in [f"{f}:2: invalid JSON (nested too deeply)",
                     f"{f}:3: invalid JSON (a number too long to read)",
                     f"{f}:5: not UTF-8 text (byte 0xff at column 1)",
                     f"{f}:6: message 1 (user): 'content' must be a string, got a number",
                     f"{f}:7: message 1: 'role' must be system, user, assistant or tool, got a list",
                     f"{f}:8: 'input' must be a string, got a number"]:
        assert expected + "\n" in out, out
    assert "6 errors" in out and "Traceback" not in out
    report = check_file(f)
    assert report.lines == [1, 4]  # lone surrogates repaired at reading, not an error
    assert report.conversations[1] == [{"role": "user", "content": "a\ufffdb"}, {"role": "assistant", "content": "\ufffd"}]
    with pytest.raises(CausetteError) as e:  # the reader of training: the first bad line, with file and line
        load_conversations([f])
    assert str(e.value) == f"{f}:2: invalid JSON (nested too deeply) (and 5 more: run `causette sft check {f}`)"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(
    st.binary(max_size=40),
    st.text(alphabet=st.characters(exclude_categories=()), max_size=30).map(lambda t: json.dumps({"messages": [
        {"role": "user", "content": t}, {"role": "assistant", "content": t + "!"}]})),
    st.sampled_from(["[" * 2000, "{" * 2000, '"\\ud800"', "null", "[]", "{}", '{"messages": null}', GOOD]),
), max_size=6))
def test_any_jsonl_bytes_give_a_report_never_an_exception(tmp_path, lines):
    f = tmp_path / "h.jsonl"
    f.write_bytes(b"\n".join(line if isinstance(line, bytes) else line.encode("utf-8", "surrogatepass") for line in lines))
    report = check_file(f)
    assert report.errors or report.conversations
    for issue in report.errors:
        assert "\n" not in issue.message
    for conversation in report.conversations:  # what training gets is always writable text
        for message in conversation:
            message["content"].encode("utf-8")


# ============================================================================ the command line


def causette(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env,
                          check=False)


@pytest.mark.parametrize("args, line", [
    (["causette", "train", "--set", "train.lr=nan"], "error: --set train.lr=nan: train.lr must be a finite number > 0, got nan"),
    (["causette", "run", "--name", ""],
     "error: --name '': run.name must not be empty (it names the run's folder, <run.dir>/<name>)"),
    (["causette", "sft", "check", "deep.jsonl"], None),
    (["causette.explain", "embeddings", "--top", "-5"],
     "python -m causette.explain embeddings: error: argument --top: must be within [1, 100], got -5 (see --help)"),
])
def test_cli_mistakes_are_one_line_and_write_nothing(tmp_path, args, line):
    (tmp_path / "deep.jsonl").write_text("[" * 50_000 + "\n", encoding="utf-8")
    before = sorted(p.name for p in tmp_path.iterdir())
    r = causette(*args, cwd=tmp_path)
    assert "Traceback" not in r.stderr + r.stdout
    if line is None:  # sft check: its report on stdout, exit 1
        assert r.returncode == 1 and "deep.jsonl:1: invalid JSON (nested too deeply)" in r.stdout
    else:
        assert r.returncode == (2 if "explain" in args[0] else 1)
        assert r.stderr == line + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no run folder, nothing written
