"""CSV and TSV files (``format: csv``): one document per row, its text taken from one column.

A spreadsheet saved as CSV is a table, not running text: its header row, its separators and
its quotes (a doubled quote inside a quoted cell) must not reach the model. The standard ``csv`` module undoes
them; this module only decides four things, from the first rows:

- the separator: a tab for ``.tsv`` and ``.tab`` files, else the one among tab, ``;`` (the
  French spreadsheet default), ``,`` and ``|`` that splits the first rows into the same number
  of cells, the most cells winning (quotes are understood: a ``,`` inside a quoted text does
  not count), else ``,``;
- the encoding: UTF-8 (with or without a byte-order mark) when the start of the file is valid
  UTF-8, else CP1252, else Latin-1 (see :mod:`.encoding`);
- whether the first row is a header: yes when one of its cells is a known name (see below),
  or when all its cells are short and the one in the text column is much shorter than the
  texts under it; a file without header has columns ``1``, ``2``...;
- the text column: the source's ``text_field`` when the header has it, else a column named
  ``text``, ``texte``, ``content`` or ``contenu`` (any case), else the column holding the most
  letters. A file where no column holds letters is refused with one line.

Then each row is a record, read like a JSON line (:func:`.tabular.record_document`): the
``id_field`` and ``title_field`` columns, when present, give the id and the title; the other
columns are kept in ``Document.meta``. Rows stream: only the first ones are held to decide.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import itertools
import statistics
from typing import Iterator

from causette.corpus.document import Document
from causette.corpus.readers import context
from causette.corpus.readers.context import ReadContext
from causette.corpus.readers.encoding import UTF8_BOM
from causette.corpus.readers.inputs import Item
from causette.corpus.readers.tabular import record_document

TEXT_COLUMNS = ("text", "texte", "content", "contenu")
SAMPLE_ROWS = 1000  # rows looked at to choose the text column (or fewer, up to SAMPLE_CHARS)
SAMPLE_CHARS = 10_000_000
SNIFF_BYTES = 64 * 1024
DELIMITERS = "\t;,|"  # in order of preference when they split rows equally
MAX_HEADER_CELL = 40  # a header cell is a name, not a text
TAB_EXTENSIONS = (".tsv", ".tab")


def read_csv(item: Item, ctx: ReadContext) -> Iterator[Document]:
    """Yield one document per row of a CSV or TSV file (see the module docstring)."""
    csv.field_size_limit(max(csv.field_size_limit(), context.MAX_DOCUMENT_BYTES))  # a cell may hold a book
    head = item.head(SNIFF_BYTES)
    encoding = _encoding(head)
    label = ctx.recoded or encoding  # UTF-16 or UTF-32 is already UTF-8 here
    ctx.tally.add(head, label)
    where = 0  # the row being read (blank rows count), for problems
    with item.open() as f:
        reader = csv.reader(io.TextIOWrapper(f, encoding=encoding, newline=""), delimiter=_delimiter(item, head, encoding))
        try:
            rows = ((n, row) for n, row in enumerate(reader, 1) if any(cell.strip() for cell in row))
            sample: list[tuple[int, list[str]]] = []
            chars = 0
            for n, row in rows:
                where = n
                sample.append((n, row))
                chars += sum(len(cell) for cell in row)
                if len(sample) >= SAMPLE_ROWS or chars >= SAMPLE_CHARS:
                    break
            if not sample:
                ctx.problem(item.name, "empty file (no row)")
                return
            header, column = _choose([row for _, row in sample], ctx.src.text_field)
            if column is None:
                columns = ", ".join(header) if header else "none named"
                ctx.problem(item.name, f"no column of text (columns: {columns}); name the column to read "
                            "with --text-field (text_field in a config)")
                return
            src = dataclasses.replace(ctx.src, text_field=column)
            width = max(len(row) for _, row in sample)
            names = header if header is not None else [str(k) for k in range(1, width + 1)]
            for n, row in itertools.chain(sample[1:] if header is not None else sample, rows):
                where = n
                doc = record_document(
                    dict(zip(names, row)), src, f"{item.stem}#{n}", item.name,
                    lambda reason, n=n: ctx.problem(item.name, reason, line=n),
                )
                if doc is not None:
                    doc.meta["encoding"] = label
                    yield doc
        except UnicodeDecodeError:
            ctx.problem(item.name, f"not valid {encoding} after row {where}, the rest is skipped", line=where + 1)
        except csv.Error as e:
            ctx.problem(item.name, f"malformed CSV ({e}), the rest is skipped", line=where + 1)


def _encoding(head: bytes) -> str:
    if head.startswith(UTF8_BOM):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)  # the head may end mid-character
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def _delimiter(item: Item, head: bytes, encoding: str) -> str:
    """A tab for ``.tsv`` files; else the candidate that splits the first rows into the same
    number of cells (more than one), the most cells winning; else a comma."""
    if item.logical_name.lower().endswith(TAB_EXTENSIONS):
        return "\t"
    sample = head.decode(encoding, errors="replace")
    sample = sample[: sample.rfind("\n") + 1] or sample  # whole lines only
    best, best_width = ",", 1
    for delimiter in DELIMITERS:
        try:
            rows = [row for row in csv.reader(io.StringIO(sample), delimiter=delimiter) if row]
        except csv.Error:
            continue
        if len(head) >= SNIFF_BYTES and len(rows) > 2:
            rows = rows[:-1]  # the sample may end inside a quoted cell
        widths = {len(row) for row in rows}
        if len(widths) == 1 and (width := widths.pop()) > best_width:
            best, best_width = delimiter, width
    return best


def _choose(sample: list[list[str]], text_field: str) -> tuple[list[str] | None, str | None]:
    """``(header or None, name of the text column or None)`` from the first non-blank rows."""
    width = max(len(row) for row in sample)
    first = [cell.strip() for cell in sample[0]]
    first += [""] * (width - len(first))
    names = [cell or str(k + 1) for k, cell in enumerate(first)]  # a header cell left empty: its number
    lowered = [cell.lower() for cell in first]
    named = next((names[lowered.index(name)] for name in (text_field.lower(), *TEXT_COLUMNS) if name in lowered), None)
    if named is not None:
        return names, named

    def letters(k: int, rows: list[list[str]]) -> int:
        return sum(sum(ch.isalpha() for ch in row[k]) for row in rows if k < len(row))

    below = sample[1:]
    best = max(range(width), key=lambda k: letters(k, below))
    if below and letters(best, below) == 0 and any(letters(k, [first]) for k in range(width)):
        return names, None  # names in the first row, no letter under them: a table of numbers
    lengths = [len(row[best]) for row in below if best < len(row)]
    if (lengths and all(len(cell) <= MAX_HEADER_CELL for cell in first)
            and len(first[best]) * 4 <= statistics.median(lengths)):
        return names, names[best] if letters(best, below) else None
    best = max(range(width), key=lambda k: letters(k, sample))  # no header: every row is data
    return None, str(best + 1) if letters(best, sample) else None
