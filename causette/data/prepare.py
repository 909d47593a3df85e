"""``causette prepare``: a built corpus → token files the trainer reads.

    runs/<name>/data/train.bin   every train document as ``<|bos|> tokens...``, one after another
    runs/<name>/data/val.bin     the same for the val documents
    runs/<name>/data/meta.json   dtype, vocabulary, token / byte / document counts, tokenizer hash

The ``.bin`` files are flat arrays of little-endian ``uint16`` (``uint32`` when the vocabulary
does not fit in 16 bits): the layout nanoGPT reads, so other tools can train on the same bytes.
``<|bos|>`` starts every document, so the model learns where documents begin and never
mistakes the end of one book for the start of the next.

The byte count of the text (UTF-8) is recorded per split: bits per byte, the one loss unit that
compares across tokenizers, needs it. Documents are tokenised by a pool of worker processes
(one per core) and written as they come back, in corpus order, so memory stays flat however
large the corpus.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from tqdm import tqdm

from causette.corpus.store import iter_documents, read_manifest
from causette.errors import CausetteError
from causette.tokenizer.io import FILENAME as TOKENIZER_FILENAME
from causette.tokenizer.io import load_tokenizer
from causette.utils.io import atomic_dir, sha256_file
from causette.utils.workers import OrderedPool, WorkerDied

META_VERSION = 1
SPLITS = ("train", "val")


@dataclass
class SplitStats:
    documents: int = 0
    tokens: int = 0
    bytes: int = 0


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


# ----------------------------------------------------------------------------- workers

_TOKENIZER = None


def _init_worker(tokenizer_path: str) -> None:
    global _TOKENIZER
    _TOKENIZER = load_tokenizer(tokenizer_path)


def _encode(text: str) -> tuple[np.ndarray, int]:
    ids = _TOKENIZER.encode(text)  # corpus text is ordinary text: specials are never read from it
    return np.asarray([_TOKENIZER.bos_id, *ids], dtype=np.uint32), len(text.encode("utf-8"))


@contextlib.contextmanager
def _encoder(tokenizer_path: str, workers: int) -> Iterator[Callable[[Iterable[str]], Iterator[tuple[np.ndarray, int]]]]:
    """A function turning texts into ``(ids, UTF-8 bytes)`` in corpus order: in this process, or
    in ``workers`` processes (spawned, not forked: safe with threads of torch or tokenizers in this
    process) that die with it and leave Ctrl-C to it (causette/utils/workers.py)."""
    if workers <= 1:
        _init_worker(tokenizer_path)
        yield lambda texts: map(_encode, texts)
        return
    # one document at a time: documents are large (books) and few
    with OrderedPool(workers, _encode, _init_worker, (tokenizer_path,), method="spawn") as pool:
        try:
            yield pool.imap
        except WorkerDied as e:
            raise CausetteError(f"prepare: {e}; retry with --workers 1") from None


# ----------------------------------------------------------------------------- prepare


def prepare(
    corpus_dir: str | Path,
    tokenizer_path: str | Path,
    out_dir: str | Path,
    workers: int | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    force: bool = False,
) -> dict:
    """Tokenise the train and val splits of ``corpus_dir``; return the ``meta.json`` written.

    ``out_dir`` is replaced only if it is token data Causette wrote (or ``force``; see
    :func:`causette.utils.artefact.check_output`)."""
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    manifest = read_manifest(corpus_dir)
    tok = load_tokenizer(tokenizer_path)
    tokenizer_file = Path(tokenizer_path)
    if tokenizer_file.is_dir():
        tokenizer_file = tokenizer_file / TOKENIZER_FILENAME
    dtype = token_dtype(tok.vocab_size)
    workers = workers or min(os.cpu_count() or 1, 8)
    stats = {s: SplitStats() for s in SPLITS}
    start = time.time()
    n_docs = {s: len(manifest["split"][s]) for s in SPLITS}
    with (atomic_dir(out_dir, "data", force=force, protect=[corpus_dir, tokenizer_file]) as tmp,
          _encoder(str(tokenizer_file), workers) as encoded):
        for split in SPLITS:
            bar = tqdm(total=n_docs[split], desc=f"prepare {split}", unit=" doc", disable=not progress, dynamic_ncols=True)
            texts = (d["text"] for d in iter_documents(corpus_dir, split))
            with open(tmp / f"{split}.bin", "wb") as f:
                for ids, n_bytes in encoded(texts):
                    f.write(ids.astype(dtype).tobytes())
                    st = stats[split]
                    st.documents += 1
                    st.tokens += len(ids)
                    st.bytes += n_bytes
                    bar.update(1)
                    bar.set_postfix(tokens=f"{st.tokens:,}", refresh=False)
            bar.close()
        if stats["train"].tokens == 0:
            raise CausetteError(f"{corpus_dir}: the train split is empty, nothing to prepare")
        meta = {
            "format": "causette-tokens",
            "version": META_VERSION,
            "dtype": dtype.name,
            "vocab_size": tok.vocab_size,
            "bos_id": tok.bos_id,
            "tokenizer_hash": tok.hash,
            "tokenizer_sha256": sha256_file(tokenizer_file),
            "corpus_manifest_sha256": sha256_file(corpus_dir / "manifest.json"),
            "splits": {s: vars(stats[s]) for s in SPLITS},
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    tr, va = stats["train"], stats["val"]
    echo(
        f"prepare: train {tr.tokens:,} tokens ({tr.bytes / max(tr.tokens, 1):.2f} bytes/token), "
        f"val {va.tokens:,} tokens → {out_dir} in {time.time() - start:.1f}s"
    )
    return meta


def read_meta(data_dir: str | Path) -> dict:
    path = Path(data_dir) / "meta.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CausetteError(f"{path}: no token data here (run `causette prepare` first)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CausetteError(f"{path}: unreadable token metadata ({e})") from None
    if meta.get("format") != "causette-tokens" or meta.get("version") != META_VERSION:
        raise CausetteError(f"{path}: not Causette token data of version {META_VERSION}")
    return meta
