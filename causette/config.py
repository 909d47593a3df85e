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
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from causette.corpus.config import CorpusConfig
from causette.errors import ConfigError
from causette.model.config import ModelConfig
from causette.tokenizer.config import TokenizerConfig
from causette.train.config import SFTConfig, TrainConfig
from causette.utils.paths import CONFIG_DIR  # the shipped configs, inside the package
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
            raise ValueError(f"name {problem}" + (f", got {_show(self.name)}" if self.name.strip() else ""))
        if not self.dir.strip():
            raise ValueError("dir must not be empty (it is the folder that holds the runs, e.g. runs)")
        if _has_control(self.dir):
            raise ValueError(f"dir must not hold control characters, got {_show(self.dir)}")
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


@dataclass
class Setting:
    """An override whose value is taken as is, not read as YAML: ``--name 007`` names the run
    "007" (``--set run.name=007`` would give 7). ``label`` is what an error message blames."""

    key: str
    value: Any
    label: str


def load_config(path: str | Path | None = None, overrides: list[str | Setting] | None = None,
                cls: type[T] = Config) -> T:
    """Read ``path`` (or the defaults when None), apply ``--set`` overrides, validate.

    ``path`` may be a file path or the name of a shipped config (``demo`` → configs/demo.yaml).
    Any mistake is a :class:`ConfigError` of one line that names the setting and where it came
    from: the file and line, or the ``--set`` override.
    """
    where = "defaults" if path is None else printable_path(path)
    try:
        data = _read_yaml_tree(resolve_config_path(path), seen=()) if path is not None else _Sourced()
        for item in overrides or []:
            _apply_override(data, item)
        return from_dict(cls, data, where=where)
    except RecursionError:  # a YAML alias that contains itself
        raise ConfigError(f"{where}: a value is nested too deeply (or contains itself)") from None


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


class _Sourced(dict):
    """A mapping that remembers where it came from, and where each of its keys came from
    (``mine.yaml: line 12``, ``--set train.lr=1``), for the error messages."""

    def __init__(self, *args, file: str = "", origins: dict | None = None):
        super().__init__(*args)
        self.file = file
        self.origins = dict(origins or {})
        self.lines: dict = {}  # line of each key in the YAML text it was read from


@dataclass
class _Override:
    value: Any
    origin: str  # ``--set train.lr=3e-4``, or the label of a Setting


# A YAML integer longer than this is out of every setting's range: refused while reading,
# before Python turns it into a number (it refuses beyond 4,300 digits, with a traceback).
MAX_INT_DIGITS = 100


class _TooLong(yaml.constructor.ConstructorError):
    pass


class _Loader(yaml.SafeLoader):
    """``yaml.safe_load`` that records the line of every mapping key and refuses huge integers."""


def _construct_mapping(loader: _Loader, node):
    data = _Sourced()
    yield data
    data.update(loader.construct_mapping(node))
    data.lines = {loader.construct_object(k): k.start_mark.line + 1 for k, _ in node.value}


def _construct_int(loader: _Loader, node):
    digits = sum(c.isdigit() for c in str(node.value))
    if digits > MAX_INT_DIGITS:
        raise _TooLong(None, None, f"an integer of {digits} digits, too large for any setting", node.start_mark)
    return yaml.SafeLoader.construct_yaml_int(loader, node)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _read_yaml_tree(file: Path, seen: tuple[Path, ...]) -> dict:
    file = file.resolve()
    shown = _shown_path(file)
    if file in seen:
        raise ConfigError(f"{shown}: 'extends' loops back to itself")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{shown}: cannot read config ({e})") from None
    try:
        data = yaml.load(text, Loader=_Loader)
    except _TooLong as e:
        raise ConfigError(f"{shown}: line {e.problem_mark.line + 1}: {e.problem}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}:" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{shown}:{line} invalid YAML ({problem})") from None
    except RecursionError:
        raise ConfigError(f"{shown}: invalid YAML (nested too deeply)") from None
    if data is None:
        data = _Sourced()
    if not isinstance(data, dict):
        raise ConfigError(f"{shown}: a config must be a mapping of sections, got {_show(data)}")
    parents = data.pop("extends", None)
    if parents is None:
        return _tag(data, shown)
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list) or not all(isinstance(p, str) and p.strip() for p in parents):
        raise ConfigError(f"{shown}: line {data.lines.get('extends', '?')}: 'extends' must name a config "
                          f"(a file or a shipped name such as demo) or a list of them, got {_show(parents)}")
    merged: dict = _Sourced()
    for parent in parents:
        try:
            parent_file = resolve_config_path(parent, relative_to=file.parent)
        except ConfigError as e:
            raise ConfigError(f"{shown}: extends {e}") from None
        base = _read_yaml_tree(parent_file, seen + (file,))
        merged = _deep_merge(merged, base)
    return _deep_merge(merged, _tag(data, shown))


def _shown_path(file: Path) -> str:
    """``file`` as a message shows it: relative to the current folder when inside it."""
    try:
        file = file.relative_to(Path.cwd())
    except ValueError:
        pass
    return printable_path(file)


def _tag(value: Any, file: str) -> Any:
    """The mappings inside ``value`` (read from ``file``) know their file and their keys' lines."""
    if isinstance(value, list):
        return [_tag(v, file) for v in value]
    if not isinstance(value, dict):
        return value
    lines = getattr(value, "lines", {})
    origins = {k: f"{file}: line {lines[k]}" for k in value if k in lines}
    return _Sourced({k: _tag(v, file) for k, v in value.items()}, file=file, origins=origins)


def _deep_merge(base: dict, top: dict) -> dict:
    out = _Sourced(base, file=getattr(top, "file", "") or getattr(base, "file", ""),
                   origins={**getattr(base, "origins", {}), **getattr(top, "origins", {})})
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _apply_override(data: _Sourced, item: str | Setting) -> None:
    """Apply ``a.b.c=value`` (the value read as YAML) or a :class:`Setting` to the nested ``data``."""
    if isinstance(item, Setting):
        label, key, value = _label(item.label), item.key, item.value
    else:
        label = _label(f"--set {item}")
        if "=" not in item:
            raise ConfigError(f"{label}: expected KEY=VALUE, e.g. --set corpus.min_chars=200")
        key, _, raw = item.partition("=")
        value = _read_value(raw, label)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"{label}: empty key component in '{_shorten(key.strip())}'")
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if isinstance(child, _Override) and isinstance(child.value, dict):  # an earlier --set gave the section
            child = _Sourced({k: _Override(v, child.origin) for k, v in child.value.items()}, file=child.origin)
        elif child is None:
            child = _Sourced(file=label)
        elif not isinstance(child, dict):
            dotted = ".".join(parts[: depth + 1])
            shown = _show(child.value if isinstance(child, _Override) else child)
            raise ConfigError(f"{label}: '{dotted}' is one value ({shown}), not a section of settings: "
                              f"set it whole, --set {dotted}=VALUE")
        if child is not node.get(part):
            node[part] = child
            if isinstance(node, _Sourced):
                node.origins[part] = label
        node = child
    node[parts[-1]] = _Override(value, label)


def _read_value(raw: str, label: str) -> Any:
    """The value of ``--set KEY=VALUE`` read as YAML (``3e-4``, ``true``, ``[a, b]``); text that is
    not valid YAML stays text."""
    if not raw.strip():
        return ""
    try:
        return yaml.load(raw, Loader=_Loader)
    except _TooLong as e:
        raise ConfigError(f"{label}: {e.problem}") from None
    except RecursionError:
        raise ConfigError(f"{label}: the value is nested too deeply") from None
    except yaml.YAMLError:
        return raw


# ----------------------------------------------------------------------------- conversion


def from_dict(cls: type[T], data: dict | None, where: str = "config", prefix: str = "") -> T:
    """Build dataclass ``cls`` from nested dict ``data``, checking keys, types and ranges."""
    section = prefix.rstrip(".") or "config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: '{section}' must be a mapping, got {_show(data)}")
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
        if isinstance(raw, _Override):
            origin, raw = raw.origin, raw.value
            overrides.append(origin)
        origin_of[key] = origin
        dotted = f"{prefix}{_label(str(key), 60)}"
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
    """``value`` without our bookkeeping: plain dicts and lists, overrides replaced by their values."""
    if isinstance(value, _Override):
        return _plain(value.value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _label(text: str, limit: int = 66) -> str:
    """An override (or a key) as an error message names it: one printable line (a newline or a
    NUL typed in ``--set`` shows as ``\\n``, ``\\x00``), at most ``limit`` characters."""
    return _shorten(text if text.isprintable() else repr(text)[1:-1], limit)


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(value: Any) -> str:
    """A value as the user wrote it, short: ``'abc'``, ``nan``, ``true``, ``a list [1, 2]``."""
    value = _plain(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return show_number(value)
    if isinstance(value, str):
        return repr(_shorten(value)) if value else "an empty value"
    if isinstance(value, (list, dict)):
        kind = "a list" if isinstance(value, list) else "a mapping"
        try:
            text = yaml.safe_dump(value, default_flow_style=True, width=10**9).strip()
        except (yaml.YAMLError, ValueError, RecursionError):
            return kind
        return f"{kind} {_shorten(text)}"
    return f"a {type(value).__name__}"


# ----------------------------------------------------------------------------- output


def to_dict(cfg: Any) -> dict:
    """Plain nested dict of a config dataclass (for manifests, checkpoints, hashes)."""
    return dataclasses.asdict(cfg)


def config_hash(cfg: Any) -> str:
    """Stable short hash of a config section: same settings → same hash."""
    blob = json.dumps(to_dict(cfg), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
