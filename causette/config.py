"""Configuration: dataclasses per stage, YAML files, dotted ``--set`` overrides, validation.

A configuration file is YAML whose top-level keys are the stages (``run``, ``corpus``,
``tokenizer``, ``model``, ...). Every section is a dataclass defined next to the code that
uses it (``causette/corpus/config.py`` for the corpus, ...); this module only knows how to
turn nested dicts into those dataclasses, and complains clearly when it cannot:

    configs/demo.yaml: unknown key 'corpus.min_char' (did you mean 'corpus.min_chars'?)
    --set corpus.min_chars=abc: expected an integer, got 'abc'

A file may start from other files with ``extends: other.yaml`` (or a list of them): a path
relative to the file, or the name of a shipped config (``demo``, ``model/llama``), exactly as
``--config`` accepts; its own keys then override theirs, section by section.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from causette.corpus.config import CorpusConfig
from causette.model.config import ModelConfig
from causette.tokenizer.config import TokenizerConfig
from causette.train.config import SFTConfig, TrainConfig
from causette.errors import ConfigError
from causette.utils.paths import CONFIG_DIR  # the shipped configs, inside the package

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
        wrong = [s for s in self.skip if s != "sft"]
        if wrong:
            raise ValueError(f"skip: only the stage sft can be skipped, got {wrong[0]!r}")

    @property
    def path(self) -> Path:
        return Path(self.dir) / self.name


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


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, cls: type[T] = Config) -> T:
    """Read ``path`` (or the defaults when None), apply ``--set`` overrides, validate.

    ``path`` may be a file path or the name of a shipped config (``demo`` → configs/demo.yaml).
    """
    data: dict = {}
    where = "defaults"
    if path is not None:
        file = resolve_config_path(path)
        data = _read_yaml_tree(file, seen=())
        where = str(path)
    for item in overrides or []:
        _apply_override(data, item)
    return from_dict(cls, data, where=where)


def shipped_configs() -> list[str]:
    """Names of the configs shipped in configs/ (``demo``, ``model/llama``...)."""
    return sorted(str(f.relative_to(CONFIG_DIR).with_suffix("")) for f in CONFIG_DIR.rglob("*.yaml"))


def _shipped(name: str | Path) -> Path | None:
    for candidate in (CONFIG_DIR / f"{name}.yaml", CONFIG_DIR / f"{name}"):
        if candidate.is_file():
            return candidate
    return None


def resolve_config_path(path: str | Path, relative_to: Path | None = None) -> Path:
    """A config file: ``path`` itself (relative to ``relative_to`` when given), else a shipped name."""
    p = Path(path) if relative_to is None else relative_to / path
    for candidate in (p, p.with_name(p.name + ".yaml")):
        if candidate.is_file():
            return candidate
    shipped = _shipped(path)
    if shipped is not None:
        return shipped
    where = f"{p}" if relative_to is None else f"{p} (relative to {relative_to})"
    raise ConfigError(f"{path}: config not found: neither a file {where} nor a shipped config "
                      f"(shipped: {', '.join(shipped_configs())})")


def _read_yaml_tree(file: Path, seen: tuple[Path, ...]) -> dict:
    file = file.resolve()
    if file in seen:
        raise ConfigError(f"{file}: 'extends' loops back to itself")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{file}: cannot read config ({e})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{file}:{line}: invalid YAML ({problem})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: a config must be a mapping of sections, got {type(data).__name__}")
    parents = data.pop("extends", None)
    if parents is None:
        return _tag(data, file)
    if isinstance(parents, str):
        parents = [parents]
    merged: dict = {}
    for parent in parents:
        try:
            parent_file = resolve_config_path(str(parent), relative_to=file.parent)
        except ConfigError as e:
            raise ConfigError(f"{file}: extends {e}") from None
        base = _read_yaml_tree(parent_file, seen + (file,))
        merged = _deep_merge(merged, base)
    return _deep_merge(merged, _tag(data, file))


class _Sourced(dict):
    """A mapping that remembers which file it came from (for error messages)."""

    file: str = ""


def _tag(data: dict, file: Path) -> dict:
    out = _Sourced(data)
    out.file = str(file)
    for k, v in out.items():
        if isinstance(v, dict):
            out[k] = _tag(v, file)
    return out


def _deep_merge(base: dict, top: dict) -> dict:
    out = _Sourced(base)
    out.file = getattr(top, "file", "") or getattr(base, "file", "")
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _apply_override(data: dict, item: str) -> None:
    """Apply ``a.b.c=value`` to the nested dict ``data`` (value parsed as YAML)."""
    if "=" not in item:
        raise ConfigError(f"--set {item}: expected KEY=VALUE, e.g. --set corpus.min_chars=200")
    key, _, raw = item.partition("=")
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set {item}: empty key component in {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    node = data
    for p in parts[:-1]:
        child = node.get(p)
        if not isinstance(child, dict):
            child = _Sourced()
            child.file = f"--set {item}"
            node[p] = child
        node = child
    node[parts[-1]] = _Override(value, item)


@dataclass
class _Override:
    value: Any
    origin: str


# ----------------------------------------------------------------------------- conversion


def from_dict(cls: type[T], data: dict | None, where: str = "config", prefix: str = "") -> T:
    """Build dataclass ``cls`` from nested dict ``data``, checking keys, types and values."""
    data = data or {}
    where = getattr(data, "file", "") or where
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: '{prefix.rstrip('.') or 'config'}' must be a mapping, got {_show(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    overridden = []  # a failed validation names the --set that changed this section, if any
    for key, raw in data.items():
        origin = where
        if isinstance(raw, _Override):
            origin, raw = f"--set {raw.origin}", raw.value
            overridden.append(origin)
        dotted = f"{prefix}{key}"
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else f" (known: {', '.join(fields)})"
            raise ConfigError(f"{origin}: unknown key '{dotted}'{hint}")
        kwargs[key] = _convert(hints[key], raw, origin, dotted)
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {prefix.rstrip('.') or 'config'}: {e}") from None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as e:
            raise ConfigError(f"{', '.join(overridden) or where}: {prefix}{e}") from None
    return obj


def _convert(tp: Any, value: Any, where: str, key: str) -> Any:
    origin = get_origin(tp)
    args = get_args(tp)
    if tp is Any:
        return _plain(value)
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
        raise ConfigError(errors[0] if errors else f"{where}: '{key}': unexpected {_show(value)}")
    if origin is Literal:
        if value in args:
            return value
        allowed = ", ".join(repr(a) for a in args)
        raise ConfigError(f"{where}: '{key}' must be one of {allowed}, got {_show(value)}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, dict):
            return from_dict(tp, value, where=where, prefix=f"{key}.")
        if isinstance(value, str) and _has_field(tp, "path"):
            return from_dict(tp, {"path": value}, where=where, prefix=f"{key}.")
        raise ConfigError(f"{where}: '{key}' must be a mapping, got {_show(value)}")
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
            raise ConfigError(f"{where}: '{key}' must be a mapping, got {_show(value)}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _convert(vt, v, where, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: '{key}' must be true or false, got {_show(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: '{key}' must be an integer, got {_show(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads "3e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: '{key}' must be a number, got {_show(value)}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: '{key}' must be a string, got {_show(value)}")
    return value


def _has_field(cls: type, name: str) -> bool:
    return any(f.name == name for f in dataclasses.fields(cls))


def _plain(value: Any) -> Any:
    if isinstance(value, _Override):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    return f"{value!r} ({type(value).__name__})"


# ----------------------------------------------------------------------------- output


def to_dict(cfg: Any) -> dict:
    """Plain nested dict of a config dataclass (for manifests, checkpoints, hashes)."""
    return dataclasses.asdict(cfg)


def config_hash(cfg: Any) -> str:
    """Stable short hash of a config section: same settings → same hash."""
    blob = json.dumps(to_dict(cfg), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
