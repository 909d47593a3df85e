"""``causette sft convert``: instruction data in other shapes → our ``messages`` JSONL.

Accepted records, one JSON object a line (gzip or xz allowed):

* ``{"messages": [...]}`` — kept as is (OASST1-fr as extracted by Vigogne has this shape);
* Alpaca ``{"instruction", "input", "output"}`` — one user turn, one assistant turn;
* self-instruct seed tasks ``{"instruction", "instances": [{"input", "output"}, ...]}`` (the
  Vigogne seed tasks) — one conversation per instance.

Every written line is ``{"id", "source", "messages"}``; a record that cannot be converted is
skipped and reported with its file and line. The output is checked again with
:func:`causette.sft.data.check_file` before the command reports success.

The two French sets in the data repository (``../shared/data/sft``) are CC BY-NC 4.0
(non-commercial): :data:`SHARED_SOURCES` says so, and the command prints it.
"""

from __future__ import annotations

import gzip
import json
import lzma
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from causette.errors import CausetteError
from causette.sft.data import Issue, conversations_of, read_jsonl
from causette.utils.paths import SHARED_DATA

SHARED_SFT = SHARED_DATA / "sft"
SHARED_SOURCES = {
    "oasst": "oasst1_fr_top1_vigogne.jsonl.gz",  # 256 conversations, human-written (OASST1)
    "vigogne": "vigogne_seed_tasks_fr.jsonl.gz",  # 175 French self-instruct seed tasks
}
NON_COMMERCIAL = (
    "licence: the OASST1-fr extraction and the Vigogne seed tasks are distributed by the Vigogne "
    "project under CC BY-NC 4.0 (non-commercial use only, attribution required): keep the "
    "converted file for yourself, do not ship it with a commercial product"
)


@dataclass
class ConvertReport:
    written: int = 0
    skipped: list[str] = field(default_factory=list)  # "file:line: why"
    by_source: dict[str, int] = field(default_factory=dict)


def write_jsonl(path: str | Path, records: Iterable[dict]) -> int:
    """Write records as UTF-8 JSONL (accents as is); ``.gz``: gzip with no timestamp, so the
    same records always give the same bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in records]
    data = "".join(lines).encode("utf-8")
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix == ".gz":
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as z:
            z.write(data)
    else:
        tmp.write_bytes(data)
    tmp.replace(path)
    return len(lines)


def convert(inputs: list[str | Path], out: str | Path) -> ConvertReport:
    """Convert every input file into one ``messages`` JSONL at ``out``."""
    report = ConvertReport()
    records = []
    for p in map(Path, inputs):
        if not p.is_file():
            raise CausetteError(f"{p}: no such file")
        source = p.name.split(".")[0]
        try:
            for n, record in read_jsonl(p):
                if isinstance(record, Issue):  # not UTF-8, not JSON: report, go on
                    report.skipped.append(f"{record.where(p)}: {record.message}")
                    continue
                try:
                    rid = str(record.get("id", f"{source}-{n}")) if isinstance(record, dict) else ""
                    found = conversations_of(record, rid)
                except ValueError as e:
                    report.skipped.append(f"{p}:{n}: {e}")
                    continue
                records += [{"id": i, "source": source, "messages": m} for i, m in found]
                report.by_source[source] = report.by_source.get(source, 0) + len(found)
        except (OSError, EOFError, lzma.LZMAError) as e:
            raise CausetteError(f"{p}: unreadable ({e})") from None
    if not records:
        raise CausetteError("nothing to write: no convertible record in the inputs")
    report.written = write_jsonl(out, records)
    return report


def shared_inputs(shared: str | Path = SHARED_SFT) -> list[Path]:
    """The French instruction files of the data repository, checked to exist."""
    paths = [Path(shared) / name for name in SHARED_SOURCES.values()]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise CausetteError(f"not found: {', '.join(missing)} (give the data folder with --shared DIR)")
    return paths
