"""Records: JSON Lines and Parquet files (and, through :func:`record_document`, HF datasets).

A record is a flat mapping: one field holds the text (``text_field``), others the title
(``title_field``) and the id (``id_field``); a ``kind`` field, if present, labels the
document; the other scalar fields (author, year, url...) are kept in ``Document.meta``.
Both readers stream: one JSON line, or one Parquet batch of rows, at a time.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Iterator

from causette.corpus.config import SourceConfig
from causette.corpus.document import Document
from causette.corpus.readers.context import ReadContext
from causette.corpus.readers.inputs import Item
from causette.utils.text import valid_unicode

PARQUET_MAGIC = b"PAR1"
PARQUET_BATCH_ROWS = 64  # documents can be whole novels: keep batches small
_JSON_ARRAY_HINT = "a JSON array, not JSON Lines (one object per line): convert it, e.g. with `jq -c '.[]'`"


def _scalar(value: Any) -> bool:
    """Values worth keeping in ``meta``: strings, booleans and finite numbers."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, int, bool))


def record_document(
    record: dict, src: SourceConfig, default_id: str, source: str, problem: Callable[[str], None]
) -> Document | None:
    """A Document from one record, or ``None`` after calling ``problem(reason)``.

    The text field must be a non-empty string. The id is the record's ``id_field`` when it is a
    string or an integer, else ``default_id`` (``"file#line"``); the kind is the record's
    ``kind`` field, else the source's ``kind``, else ``"prose"``.
    """
    field = src.text_field
    if field not in record:
        problem(f'no "{field}" field')
        return None
    text = record[field]
    if not isinstance(text, str):
        problem(f'"{field}" field is not a string (it is {type(text).__name__})')
        return None
    if not text.strip():
        problem(f'"{field}" field is empty')
        return None
    raw_id = record.get(src.id_field)
    usable_id = isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) and str(raw_id) != ""
    doc_id = str(raw_id) if usable_id else default_id
    title = record.get(src.title_field)
    kind = record.get("kind")
    used = {field, src.id_field, src.title_field, "kind"}
    meta = {valid_unicode(k): _clean(v) for k, v in record.items() if k not in used and _scalar(v)}
    # JSON's "\ud800" escapes make lone surrogates, which no file can hold: repaired here, at reading
    return Document(
        id=valid_unicode(doc_id),
        text=valid_unicode(text),
        source=source,
        title=valid_unicode(title.strip()) if isinstance(title, str) else "",
        kind=valid_unicode(kind) if isinstance(kind, str) and kind else (src.kind or "prose"),
        meta=meta,
    )


def _clean(value: Any) -> Any:
    return valid_unicode(value) if isinstance(value, str) else value


def _json_array(item: Item, first_line: str) -> bool:
    """Is this ``.json`` file one big JSON array (which cannot be streamed line by line)?"""
    return item.logical_name.lower().endswith(".json") and first_line.lstrip().startswith("[")


def read_jsonl(item: Item, ctx: ReadContext) -> Iterator[Document]:
    """Yield one document per JSON line; a bad line is a problem with its line number."""
    with item.open() as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            line, encoding = ctx.decode(raw)
            if number == 1 and _json_array(item, line):
                ctx.problem(item.name, _JSON_ARRAY_HINT)
                return
            try:
                record = json.loads(line)
            except (ValueError, RecursionError) as e:  # RecursionError: absurdly nested arrays
                reason = e.msg if isinstance(e, json.JSONDecodeError) else "nested too deeply"
                ctx.problem(item.name, f"invalid JSON ({reason})", line=number)
                continue
            if not isinstance(record, dict):
                ctx.problem(item.name, f"not a JSON object (a {type(record).__name__})", line=number)
                continue
            doc = record_document(
                record, ctx.src, f"{item.stem}#{number}", item.name,
                lambda reason, n=number: ctx.problem(item.name, reason, line=n),
            )
            if doc is not None:
                doc.meta["encoding"] = encoding
                yield doc


def read_parquet(item: Item, ctx: ReadContext) -> Iterator[Document]:
    """Yield one document per Parquet row, reading a few rows at a time.

    Parquet keeps its table of contents at the end of the file, so it needs random access:
    a compressed file or an archive member is first copied to a temporary file. Only the
    text, title, id and kind columns and other scalar columns are read. Row numbers in
    problems start at 1.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    ctx.tally.add(b"", "utf-8")  # Parquet strings are UTF-8 by definition: nothing to guess
    with item.seekable() as target:
        try:
            parquet = pq.ParquetFile(target)
        except (pa.ArrowException, OSError) as e:
            ctx.problem(item.name, f"unreadable Parquet file ({e})")
            return
        schema = parquet.schema_arrow
        if ctx.src.text_field not in schema.names:
            ctx.problem(item.name, f'no "{ctx.src.text_field}" column (columns: {", ".join(schema.names)})')
            return
        wanted = {ctx.src.text_field, ctx.src.title_field, ctx.src.id_field, "kind"}
        columns = [
            f.name for f in schema
            if f.name in wanted or pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            or pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_boolean(f.type)
        ]
        row = 0
        try:
            for batch in parquet.iter_batches(columns=columns, batch_size=PARQUET_BATCH_ROWS):
                for record in batch.to_pylist():
                    row += 1
                    doc = record_document(
                        record, ctx.src, f"{item.stem}#{row}", item.name,
                        lambda reason, n=row: ctx.problem(item.name, reason, line=n),
                    )
                    if doc is not None:
                        doc.meta["encoding"] = "utf-8"
                        yield doc
        except (pa.ArrowException, OSError) as e:
            ctx.problem(item.name, f"unreadable Parquet data after row {row} ({e})")
