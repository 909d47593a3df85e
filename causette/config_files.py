"""Reading configuration files and ``--set`` overrides, remembering where every value came from.

:func:`causette.config.load_config` reads a YAML file (and the files it ``extends``) into nested
mappings that know their file and the line of each key (:class:`Sourced`), then applies the
command line's overrides on top (each value an :class:`Override` that knows its ``--set``). The
conversion to the stages' dataclasses (causette/config.py) then blames the right place in one line:
``mine.yaml: line 4: …`` or ``--set train.lr=abc: …``.

Reading refuses what YAML would accept but no setting can hold: integers of hundreds of digits
(Python itself refuses beyond 4,300, with a traceback), ``extends`` that loops, nesting too deep.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from causette.errors import ConfigError
from causette.utils.paths import CONFIG_DIR  # the shipped configs, inside the package
from causette.utils.ranges import show_number
from causette.utils.text import printable_path


@dataclass
class Setting:
    """An override whose value is taken as is, not read as YAML: ``--name 007`` names the run
    "007" (``--set run.name=007`` would give 7). ``label`` is what an error message blames."""

    key: str
    value: Any
    label: str


def shipped_configs() -> list[str]:
    """Names of the configs shipped in configs/ (``demo``, ``model/llama``...)."""
    return sorted(str(f.relative_to(CONFIG_DIR).with_suffix("")) for f in CONFIG_DIR.rglob("*.yaml"))


def shipped_config(name: str | Path) -> Path | None:
    """The shipped config file of ``name`` (``demo``, ``model/llama``), or None."""
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
    shipped = shipped_config(path)
    if shipped is not None:
        return shipped
    where = f"{p}" if relative_to is None else f"{p} (relative to {relative_to})"
    raise ConfigError(f"{path}: config not found: neither a file {where} nor a shipped config "
                      f"(shipped: {', '.join(shipped_configs())})")


class Sourced(dict):
    """A mapping that remembers where it came from, and where each of its keys came from
    (``mine.yaml: line 12``, ``--set train.lr=1``), for the error messages."""

    def __init__(self, *args, file: str = "", origins: dict | None = None):
        super().__init__(*args)
        self.file = file
        self.origins = dict(origins or {})
        self.lines: dict = {}  # line of each key in the YAML text it was read from
        # When each key was given, as a number that grows in the order the settings apply: a file
        # read later (one that extends another) outranks it, an override outranks every file.
        # The depth dial (causette/config.py) derives only the settings ranked below its own.
        self.ranks: dict = {}


@dataclass
class Override:
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
    data = Sourced()
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


def read_yaml_tree(file: Path, seen: tuple[Path, ...]) -> dict:
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
        data = Sourced()
    if not isinstance(data, dict):
        raise ConfigError(f"{shown}: a config must be a mapping of sections, got {show_value(data)}")
    parents = data.pop("extends", None)
    if parents is None:
        return _tag(data, shown)
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list) or not all(isinstance(p, str) and p.strip() for p in parents):
        raise ConfigError(f"{shown}: line {data.lines.get('extends', '?')}: 'extends' must name a config "
                          f"(a file or a shipped name such as demo) or a list of them, got {show_value(parents)}")
    merged: dict = Sourced()
    for parent in parents:
        try:
            parent_file = resolve_config_path(parent, relative_to=file.parent)
        except ConfigError as e:
            raise ConfigError(f"{shown}: extends {e}") from None
        base = read_yaml_tree(parent_file, seen + (file,))
        merged = _deep_merge(merged, base)
    return _deep_merge(merged, _tag(data, shown))


def _shown_path(file: Path) -> str:
    """``file`` as a message shows it: relative to the current folder when inside it."""
    try:
        file = file.relative_to(Path.cwd())
    except ValueError:
        pass
    return printable_path(file)


# Rank of the settings of each file read, in reading order: a file's parents are read before it.
_file_rank = itertools.count(1)
# Rank of every ``--set`` override: above every file's.
OVERRIDE_RANK = 2**62


def _tag(value: Any, file: str, rank: int | None = None) -> Any:
    """The mappings inside ``value`` (read from ``file``) know their file, their keys' lines and
    their keys' rank (one number for the whole file: see :attr:`Sourced.ranks`)."""
    rank = next(_file_rank) if rank is None else rank
    if isinstance(value, list):
        return [_tag(v, file, rank) for v in value]
    if not isinstance(value, dict):
        return value
    lines = getattr(value, "lines", {})
    origins = {k: f"{file}: line {lines[k]}" for k in value if k in lines}
    out = Sourced({k: _tag(v, file, rank) for k, v in value.items()}, file=file, origins=origins)
    out.ranks = dict.fromkeys(value, rank)
    return out


def rank_of(section: dict, key: str) -> int:
    """The rank of ``section[key]`` (0 when absent): an override's is :data:`OVERRIDE_RANK`."""
    if key not in section:
        return 0
    if isinstance(section[key], Override):
        return OVERRIDE_RANK
    return getattr(section, "ranks", {}).get(key, 0)


def _deep_merge(base: dict, top: dict) -> dict:
    out = Sourced(base, file=getattr(top, "file", "") or getattr(base, "file", ""),
                   origins={**getattr(base, "origins", {}), **getattr(top, "origins", {})})
    out.ranks = {**getattr(base, "ranks", {}), **getattr(top, "ranks", {})}
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def apply_override(data: Sourced, item: str | Setting) -> None:
    """Apply ``a.b.c=value`` (the value read as YAML) or a :class:`Setting` to the nested ``data``."""
    if isinstance(item, Setting):
        label, key, value = override_label(item.label), item.key, item.value
    else:
        label = override_label(f"--set {item}")
        if "=" not in item:
            raise ConfigError(f"{label}: expected KEY=VALUE, e.g. --set corpus.min_chars=200")
        key, _, raw = item.partition("=")
        value = _read_value(raw, label)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"{label}: empty key component in '{shorten(key.strip())}'")
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if isinstance(child, Override) and isinstance(child.value, dict):  # an earlier --set gave the section
            child = Sourced({k: Override(v, child.origin) for k, v in child.value.items()}, file=child.origin)
        elif child is None:
            child = Sourced(file=label)
        elif not isinstance(child, dict):
            dotted = ".".join(parts[: depth + 1])
            shown = show_value(child.value if isinstance(child, Override) else child)
            raise ConfigError(f"{label}: '{dotted}' is one value ({shown}), not a section of settings: "
                              f"set it whole, --set {dotted}=VALUE")
        if child is not node.get(part):
            node[part] = child
            if isinstance(node, Sourced):
                node.origins[part] = label
        node = child
    node[parts[-1]] = Override(value, label)


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


def plain(value: Any) -> Any:
    """``value`` without our bookkeeping: plain dicts and lists, overrides replaced by their values."""
    if isinstance(value, Override):
        return plain(value.value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def override_label(text: str, limit: int = 66) -> str:
    """An override (or a key) as an error message names it: one printable line (a newline or a
    NUL typed in ``--set`` shows as ``\\n``, ``\\x00``), at most ``limit`` characters."""
    return shorten(text if text.isprintable() else repr(text)[1:-1], limit)


def shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def show_value(value: Any) -> str:
    """A value as the user wrote it, short: ``'abc'``, ``nan``, ``true``, ``a list [1, 2]``."""
    value = plain(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return show_number(value)
    if isinstance(value, str):
        return repr(shorten(value)) if value else "an empty value"
    if isinstance(value, (list, dict)):
        kind = "a list" if isinstance(value, list) else "a mapping"
        try:
            text = yaml.safe_dump(value, default_flow_style=True, width=10**9).strip()
        except (yaml.YAMLError, ValueError, RecursionError):
            return kind
        return f"{kind} {shorten(text)}"
    return f"a {type(value).__name__}"
