"""Hugging Face datasets (``format: hf``), streamed record by record.

``path`` is a dataset name on the Hub (``"wikimedia/wikipedia"``) or a local folder of data
files; ``hf_config`` and ``split`` choose the part. ``streaming=True`` means nothing is
downloaded or converted up front: records arrive one at a time, so memory stays flat even
for a dump bigger than the disk. The ``datasets`` library is optional and only imported here.
"""

from __future__ import annotations

from typing import Iterator

from causette.corpus.config import SourceConfig
from causette.corpus.document import Document, InputFile, Report
from causette.corpus.readers.tabular import record_document
from causette.errors import CausetteError


def _one_line(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


def read_hf(src: SourceConfig, report: Report) -> Iterator[Document]:
    """Open a Hugging Face dataset split and return an iterator of its records as documents.

    Opening happens now, not at the first ``next()``: a dataset that cannot be opened (the
    library is missing, unknown name, no network, bad config or split) is a
    :class:`CausetteError` right away. A failure in the middle of the stream is a problem,
    and reading stops there (the documents read so far are kept).
    """
    try:
        import datasets
    except ImportError:
        raise CausetteError(
            f"{src.path}: reading Hugging Face datasets needs the `datasets` library: pip install datasets"
        ) from None
    try:
        dataset = datasets.load_dataset(src.path, src.hf_config or None, split=src.split, streaming=True)
    except Exception as e:  # the library raises many types; all mean "cannot open this dataset"
        raise CausetteError(f"{src.path}: cannot open the Hugging Face dataset ({_one_line(e)})") from None
    return _records(dataset, src, report)


def _records(dataset, src: SourceConfig, report: Report) -> Iterator[Document]:
    entry = report.file(InputFile(path=src.path, format="hf", encoding="utf-8"))
    name = src.path.rstrip("/").rsplit("/", 1)[-1] or src.path
    records = iter(dataset)
    number = 0
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except Exception as e:  # a broken shard, a lost connection: stop this source, keep the rest
            report.problem(src.path, f"reading stopped after record {number} ({_one_line(e)})")
            return
        number += 1
        if not isinstance(record, dict):
            report.problem(src.path, "record is not a mapping", line=number)
            continue
        doc = record_document(
            record, src, f"{name}#{number}", src.path,
            lambda reason, n=number: report.problem(src.path, reason, line=n),
        )
        if doc is not None:
            doc.meta["encoding"] = "utf-8"
            entry.documents += 1
            yield doc
