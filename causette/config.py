"""Configuration: dataclasses per stage, YAML files, dotted ``--set`` overrides, validation.

A configuration file is YAML whose top-level keys are the stages (``run``, ``corpus``,
``tokenizer``, ``model``, ...). Every section is a dataclass defined next to the code that
uses it (``causette/corpus/config.py`` for the corpus, ...); this module only knows how to
turn nested dicts into those dataclasses, and complains clearly when it cannot, in one line
that names the setting and where it came from (the file and line, or the override):

    mine.yaml: line 4: unknown key 'corpus.min_char' (did you mean 'corpus.min_chars'?)
    --set corpus.min_chars=abc: 'corpus.min_chars' must be an integer, got 'abc'
    mine.yaml: line 9: train.lr must be a finite number > 0, got nan

Every number is checked against the range its section declares (``RANGES``, see
causette/utils/ranges.py) as it is read, then each section's ``validate`` checks the rules
between settings (``min_lr <= lr``, ``n_head`` divides ``n_embd``...).

A file may start from other files with ``extends: other.yaml`` (or a list of them): a path
relative to the file, or the name of a shipped config (``demo``, ``model/llama``), exactly as
``--config`` accepts; its own keys then override theirs, section by section.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from causette.config_files import (
    Override,
    Setting,
    Sourced,
    apply_override,
    override_label,
    plain,
    rank_of,
    read_yaml_tree,
    resolve_config_path,
    show_value,
)
from causette.corpus.config import CorpusConfig
from causette.errors import ConfigError
from causette.model.config import ModelConfig
from causette.model.depth import derived
from causette.sft.config import SFTConfig
from causette.tokenizer.config import TokenizerConfig
from causette.train.config import TrainConfig
from causette.utils.ranges import Range, show_number
from causette.utils.text import printable_path

T = TypeVar("T")


@dataclass
class RunConfig:
    """Where a pipeline's artefacts go: ``<dir>/<name>/{corpus,tokenizer,data,...}``."""

    name: str = "demo"
    dir: str = "runs"
    # Stages ``causette run`` leaves out; only ``sft`` can be (a base model only, no chat model:
    # the progression's steps, configs/progression/).
    skip: list[str] = field(default_factory=list)

    def validate(self) -> None:
        problem = run_name_problem(self.name)
        if problem:
            raise ValueError(f"name {problem}" + (f", got {show_value(self.name)}" if self.name.strip() else ""))
        if not self.dir.strip():
            raise ValueError("dir must not be empty (it is the folder that holds the runs, e.g. runs)")
        if _has_control(self.dir):
            raise ValueError(f"dir must not hold control characters, got {show_value(self.dir)}")
        wrong = [s for s in self.skip if s != "sft"]
        if wrong:
            raise ValueError(f"skip: only the stage sft can be skipped, got {wrong[0]!r}")

    @property
    def path(self) -> Path:
        return Path(self.dir) / self.name


def run_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a run (one folder inside ``run.dir``), or None when it can."""
    if not name.strip():
        return "must not be empty (it names the run's folder, <run.dir>/<name>)"
    if name in (".", ".."):
        return "must be a folder name, not '.' or '..'"
    if "/" in name or "\\" in name:
        return "must be one folder name, without '/' or '\\'"
    if _has_control(name):
        return "must not hold control characters"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:  # bytes of a terminal that are not UTF-8
        return "must be valid UTF-8 text"
    if size > 255:
        return f"must be at most 255 bytes long (a folder name's limit), not {size}"
    return None


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


@dataclass
class Config:
    """The whole configuration of one pipeline run."""

    run: RunConfig = field(default_factory=RunConfig)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)


# ----------------------------------------------------------------------------- loading


def load_config(path: str | Path | None = None, overrides: list[str | Setting] | None = None,
                cls: type[T] = Config) -> T:
    """Read ``path`` (or the defaults when None), apply ``--set`` overrides, validate.

    ``path`` may be a file path or the name of a shipped config (``demo`` → configs/demo.yaml).
    Any mistake is a :class:`ConfigError` of one line that names the setting and where it came
    from: the file and line, or the ``--set`` override.
    """
    where = "defaults" if path is None else printable_path(path)
    try:
        data = read_yaml_tree(resolve_config_path(path), seen=()) if path is not None else Sourced()
        for item in overrides or []:
            apply_override(data, item)
        owned = apply_depth(data, where)
        cfg = from_dict(cls, data, where=where)
        if isinstance(cfg, Config):
            cfg.dial_owned = owned  # for with_depth (model.depth: auto); not a setting
        return cfg
    except RecursionError:  # a YAML alias that contains itself
        raise ConfigError(f"{where}: a value is nested too deeply (or contains itself)") from None


def apply_depth(data: dict, where: str = "config") -> frozenset[str]:
    """``model.depth: N`` → the settings its rules derive (causette/model/depth.py), written into
    ``data`` wherever no setting of equal or higher rank was given: one in the depth's own file, a
    file extending it, or an override, wins; one inherited from a file the depth's file extends
    gives way (see :attr:`causette.config_files.Sourced.ranks`).

    Returns the settings the dial owns (``"train.lr"``...). With ``depth: auto`` nothing is written
    yet: training chooses the depth (causette/train/sizing.py), then :func:`with_depth` sets those."""
    model = data.get("model")
    if not isinstance(model, dict) or plain(model.get("depth")) is None:
        return frozenset()
    depth, origin = _read_depth(model, where)
    rank = rank_of(model, "depth")
    heads, kv = plain(model.get("n_head", 4)), plain(model.get("n_kv_head"))
    group = heads // kv if isinstance(heads, int) and isinstance(kv, int) and kv > 0 and heads % kv == 0 else 1
    train = data.get("train")
    lr = plain(train.get("lr")) if isinstance(train, dict) and rank_of(train, "lr") >= rank else None
    try:  # a number, or text such as "1e-3" (YAML reads an exponent without a dot as text)
        lr = float(lr) if lr is not None and not isinstance(lr, bool) else None
    except (TypeError, ValueError):
        lr = None  # not a number: the conversion below says so, naming train.lr
    lr = lr if lr is not None and math.isfinite(lr) and lr > 0 else None
    owned = set()
    for section_name, values in derived(4 if depth == "auto" else depth, group, lr).items():
        section = data.setdefault(section_name, Sourced(file=where))
        if not isinstance(section, Sourced):  # a whole section given at once (--set train={...}): it wins
            continue
        for key, value in values.items():
            if rank_of(section, key) < rank:
                owned.add(f"{section_name}.{key}")
                if depth != "auto":
                    section[key] = value
                    section.origins[key] = f"{origin} (model.depth {depth} → {section_name}.{key})"
                    section.ranks[key] = rank
    return frozenset(owned)


def _read_depth(model: dict, where: str) -> tuple[int | str, str]:
    """``model.depth`` checked (an integer in range, or "auto") and where it was given."""
    item = model["depth"]
    depth = plain(item)
    origin = item.origin if isinstance(item, Override) else getattr(model, "origins", {}).get("depth", where)
    if depth == "auto":
        return depth, origin
    if isinstance(depth, float) and depth.is_integer():
        depth = int(depth)
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise ConfigError(f"{origin}: 'model.depth' must be an integer or auto, got {show_value(depth)}")
    problem = ModelConfig.RANGES["depth"].problem(depth)
    if problem:
        raise ConfigError(f"{origin}: model.depth {problem}, got {show_number(depth)}")
    return depth, origin


def with_depth(cfg: Config, depth: int) -> Config:
    """``cfg`` whose ``model.depth: auto`` became ``depth``: the settings the dial owns
    (``cfg.dial_owned``, recorded by :func:`load_config`) follow the rules, the others stay."""
    owned = getattr(cfg, "dial_owned", None)
    model, train = cfg.model, cfg.train
    group = model.n_head // model.kv_heads if model.n_head % model.kv_heads == 0 else 1
    lr = None if owned is None or "train.lr" in owned else train.lr
    sections = {"model": dataclasses.replace(model, depth=depth), "train": dataclasses.replace(train)}
    for name, values in derived(depth, group, lr).items():
        for key, value in values.items():
            if owned is None or f"{name}.{key}" in owned:
                setattr(sections[name], key, value)
    out = dataclasses.replace(cfg, **sections)
    out.dial_owned = owned
    try:
        out.model.validate()
        out.train.validate()
    except ValueError as e:
        raise ConfigError(f"model.depth {depth} (chosen for model.depth: auto): {e}") from None
    return out


# ----------------------------------------------------------------------------- conversion


def from_dict(cls: type[T], data: dict | None, where: str = "config", prefix: str = "") -> T:
    """Build dataclass ``cls`` from nested dict ``data``, checking keys, types and ranges."""
    section = prefix.rstrip(".") or "config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: '{section}' must be a mapping, got {show_value(data)}")
    where = getattr(data, "file", "") or where
    origins = getattr(data, "origins", {})
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    ranges = getattr(cls, "RANGES", {})
    kwargs = {}
    origin_of = {}  # where each given setting came from: "--set ...", or "file: line N"
    overrides = []  # the overrides among them
    for key, raw in data.items():
        origin = origins.get(key, where)
        if isinstance(raw, Override):
            origin, raw = raw.origin, raw.value
            overrides.append(origin)
        origin_of[key] = origin
        dotted = f"{prefix}{override_label(str(key), 60)}"
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else f" (known: {', '.join(fields)})"
            raise ConfigError(f"{origin}: unknown key '{dotted}'{hint}")
        value = _convert(hints[key], raw, origin, dotted)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # Every number is finite and within its setting's range (a range-less one: finite,
            # and an integer that fits 64 bits).
            problem = ranges.get(key, Range()).problem(value)
            if problem:
                raise ConfigError(f"{origin}: {dotted} {problem}, got {show_number(value)}")
        kwargs[key] = value
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {section}: {e}") from None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as e:
            raise ConfigError(f"{_blame(str(e), origin_of, overrides, where)}: {prefix}{e}") from None
    return obj


def _blame(message: str, origin_of: dict, overrides: list[str], where: str) -> str:
    """Where a broken rule between settings comes from: an override among the settings its
    message names ("min_lr (0.5) must be <= lr (0.1)"), else the overrides of this section (most
    likely what broke it), else the line of a named setting in this section's file, else
    the file."""
    named = [origin_of[w] for w in re.findall(r"\w+", message) if w in origin_of]
    named_overrides = [o for o in named if o in overrides]
    if named_overrides or overrides:
        return named_overrides[0] if named_overrides else ", ".join(dict.fromkeys(overrides))
    in_file = [o for o in named if o.startswith(f"{where}: line ")]
    return in_file[0] if in_file else where


def _convert(tp: Any, value: Any, where: str, key: str) -> Any:
    origin = get_origin(tp)
    args = get_args(tp)
    if tp is Any:
        return plain(value)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(a, value, where, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: '{key}': unexpected {show_value(value)}")
    if origin is Literal:
        if value in args:
            return value
        allowed = ", ".join(repr(a) for a in args)
        raise ConfigError(f"{where}: '{key}' must be one of {allowed}, got {show_value(value)}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, dict):
            return from_dict(tp, value, where=where, prefix=f"{key}.")
        if isinstance(value, str) and _has_field(tp, "path"):
            return from_dict(tp, {"path": value}, where=where, prefix=f"{key}.")
        raise ConfigError(f"{where}: '{key}' must be a mapping, got {show_value(value)}")
    if origin in (list, tuple):
        if value is None:
            return [] if origin is list else ()
        if not isinstance(value, (list, tuple)):
            value = [value]
        item_tp = args[0] if args else Any
        items = [_convert(item_tp, v, where, f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: '{key}' must be a mapping, got {show_value(value)}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _convert(vt, v, where, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: '{key}' must be true or false, got {show_value(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: '{key}' must be an integer, got {show_value(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads "3e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: '{key}' must be a number, got {show_value(value)}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: '{key}' must be a string, got {show_value(value)}")
    return value


def _has_field(cls: type, name: str) -> bool:
    return any(f.name == name for f in dataclasses.fields(cls))


# ----------------------------------------------------------------------------- output


def to_dict(cfg: Any) -> dict:
    """Plain nested dict of a config dataclass (for manifests, checkpoints, hashes)."""
    return dataclasses.asdict(cfg)


def config_hash(cfg: Any) -> str:
    """Stable short hash of a config section: same settings → same hash."""
    blob = json.dumps(to_dict(cfg), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
