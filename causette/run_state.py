"""What a run folder has finished, proven by content: stage keys, output digests, ``stages.json``.

``causette run`` skips a stage that is already done, and borrows a stage's outputs from a sibling
run that did the same work. Both decisions rest on two fingerprints per stage:

* its **key**: a hash of what determines its output — its config section(s), the *content* of its
  input files (the corpus sources, the SFT conversations), the key of the stage before it, and the
  **digest** of that stage's outputs as they are on disk now;
* its **digest**: a hash of the content of its outputs (every file of ``corpus/``, ``tokenizer/``,
  ``data/``; for a checkpoint, its config, state and weights' SHA-256, which the loader checks too).

``stages.json`` records both when a stage finishes. A stage is up to date only if its key is the
same *and* its outputs still have the recorded digest: a tokenizer retrained by hand
(``causette tokenizer train --name demo --set tokenizer.vocab_size=512``) no longer matches its
record, so ``causette run`` trains it again, and because the next key chains the digest, the
token data and the model after it are redone too. Another run's outputs are borrowed on the same
proof: the lender's record and the lender's files as they are now, never its record alone.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from causette.checkpoint.files import ADAPTER_FILE, CONFIG_FILE, MODEL_FILE, STATE_FILE
from causette.config import Config, to_dict
from causette.utils.io import sha256_file, write_json
from causette.utils.paths import DEMO_CORPUS, DEMO_SFT, RunLayout


def _content_fingerprint(paths: list[str]) -> list:
    """``(path, sha256)`` of every file under ``paths`` (folders walked, hidden files skipped)."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and not _hidden(f.relative_to(p)))
        else:
            files = [p]
        out += [(str(f), sha256_file(f)) for f in files if f.is_file()]
    return out


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def stage_parts(cfg: Config) -> dict[str, list]:
    """What each stage's output depends on, besides the stage before it."""
    sources = [s.path for s in cfg.corpus.sources] or [str(DEMO_CORPUS)]
    return {
        "corpus": [to_dict(cfg.corpus), _content_fingerprint(sources)],
        "tokenizer": [to_dict(cfg.tokenizer)],
        "prepare": [],
        "train": [to_dict(cfg.model), {k: v for k, v in to_dict(cfg.train).items() if k not in ("device",)}],
        "sft": [to_dict(cfg.sft), _content_fingerprint(cfg.sft.data or [str(DEMO_SFT)])],
        "eval": [],
        "report": [],
    }


def chain_key(previous_key: str, parts: list, previous_digest: str | None) -> str:
    """A stage's key: its own parts, chained to the previous stage's key and output digest."""
    blob = json.dumps([previous_key, previous_digest, parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


# The folder each stage fills (the stages another run can lend: folders of plain files).
FOLDERS = {"corpus": "corpus", "tokenizer": "tokenizer", "prepare": "data"}


def outputs(run: RunLayout) -> dict[str, list[Path]]:
    """The files whose presence says a stage has finished."""
    return {
        "corpus": [run.corpus_manifest],
        "tokenizer": [run.tokenizer_file],
        "prepare": [run.data_meta],
        "train": [run.checkpoints],
        "sft": [run.sft.eval_json],
        "eval": [run.eval_json],
        "report": [run.report],
    }


def output_digest(run: RunLayout, stage: str) -> str | None:
    """The digest of ``stage``'s outputs in ``run`` as they are now (None: not all there)."""
    if not all(p.exists() for p in outputs(run)[stage]):
        return None
    if stage in FOLDERS:
        parts = _content_fingerprint([str(run.root / FOLDERS[stage])])
        parts = [(str(Path(p).relative_to(run.root)), h) for p, h in parts]
    elif stage in ("train", "sft"):
        parts = _checkpoint_fingerprint(run.checkpoints if stage == "train" else run.sft.checkpoints)
        if parts is None:
            return None
    elif stage == "eval":
        parts = [sha256_file(run.eval_json)]
    else:  # the report is always written again: nothing depends on it
        return "report"
    blob = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def _checkpoint_fingerprint(root: Path) -> list | None:
    """The newest checkpoint's name, config and state, and its weights' SHA-256 (the one recorded
    at save time, which loading verifies; computed for older checkpoints without it)."""
    # deferred: they import torch, and `causette run --help` reads this module without it
    from causette.checkpoint.steps import list_checkpoints
    from causette.checkpoint.weights import recorded_sha256

    found = list_checkpoints(root)
    if not found:
        return None
    last = found[-1]
    weights = last / MODEL_FILE if (last / MODEL_FILE).is_file() else last / ADAPTER_FILE
    if not weights.is_file() or not (last / CONFIG_FILE).is_file():
        return None
    digest = recorded_sha256(last) if weights.name == MODEL_FILE else None
    return [last.name, sha256_file(last / CONFIG_FILE), sha256_file(last / STATE_FILE),
            digest or sha256_file(weights)]


class RunRecord:
    """``runs/<name>/stages.json``: for each finished stage, its key, its outputs' digest, when."""

    def __init__(self, run: RunLayout):
        self.path = run.stages
        try:
            data = json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else {}
        except (OSError, ValueError):  # a damaged record proves nothing: every stage is redone
            data = {}
        self.data: dict = data if isinstance(data, dict) else {}

    def get(self, stage: str) -> dict:
        entry = self.data.get(stage)
        return entry if isinstance(entry, dict) else {}

    def is_done(self, stage: str, key: str, digest: str | None) -> bool:
        entry = self.get(stage)
        return digest is not None and entry.get("key") == key and entry.get("digest") == digest

    def finish(self, stage: str, key: str, digest: str | None, seconds: float, **extra) -> None:
        self.data[stage] = {"key": key, "digest": digest, "seconds": round(seconds, 1),
                            "finished": time.strftime("%Y-%m-%d %H:%M:%S"), **extra}
        self.save()

    def forget(self, stages) -> None:
        for stage in stages:
            self.data.pop(stage, None)
        self.save()

    def started(self, stage: str) -> str | None:
        """The key with which ``stage`` last started (a training stage that may resume)."""
        return self.data.get(f"{stage}_started")

    def start(self, stage: str, key: str) -> None:
        self.data[f"{stage}_started"] = key
        self.save()

    def save(self) -> None:
        write_json(self.path, self.data)


def borrow(run: RunLayout, stage: str, key: str, link) -> Path | None:
    """Link (or copy) ``stage``'s outputs from a sibling run that finished it with this ``key`` and
    whose outputs still have the digest it recorded; the sibling's folder, or None."""
    from causette.utils.lock import is_locked

    folder = FOLDERS.get(stage)
    if folder is None or not run.root.parent.is_dir():
        return None
    for other in sorted(run.root.parent.iterdir()):
        if other == run.root or not (other / "stages.json").is_file() or is_locked(other):
            continue  # a run at work may be rewriting what it would lend
        lender = RunLayout(other)
        entry = RunRecord(lender).get(stage)
        if entry.get("key") != key or not (other / folder).is_dir():
            continue
        if entry.get("digest") is None or output_digest(lender, stage) != entry["digest"]:
            continue  # changed since it was recorded (e.g. retrained by hand): not proven, not lent
        link(other / folder, run.root / folder)
        return other
    return None
