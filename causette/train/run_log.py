"""What a run records: ``metrics.jsonl`` (always) and TensorBoard (``tb/``, optional).

``metrics.jsonl`` is one JSON object a line — ``{"step", "kind": "train"|"val", "time", ...}`` —
the source of the report's plots and of the resume tests. TensorBoard shows the same scalars
live (``tensorboard --logdir runs/``) plus weight histograms and generated samples.
Only rank 0 of a distributed run writes anything.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import torch

from causette.utils.io import full_disk_as, is_disk_full
from causette.utils.paths import RunLayout


class RunLogger:
    def __init__(self, run_dir: str | Path, tensorboard: bool = True, enabled: bool = True):
        self.enabled = enabled
        self.run_dir = Path(run_dir)
        self.writer = None
        self._file = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = RunLayout(self.run_dir).metrics
        _end_torn_line(self.path)
        self._file = open(self.path, "a", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard not installed: metrics.jsonl still has everything
                SummaryWriter = None
            if SummaryWriter is not None:
                _quiet_full_disk_in_threads()
                self.writer = SummaryWriter(log_dir=str(RunLayout(self.run_dir).tensorboard))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled or not values:
            return
        kind = "val" if all(k.startswith("val/") for k in values) else "train"
        row = {"step": step, "kind": kind, "time": round(time.time(), 3)}
        row.update({k: (float(v) if v == v else None) for k, v in values.items()})  # NaN → null
        with full_disk_as(self.path, "the training log"):
            self._file.write(json.dumps(row) + "\n")
            self._file.flush()
        if self.writer is not None:
            with self._tensorboard():
                for k, v in values.items():
                    self.writer.add_scalar(k, v, step)

    def text(self, step: int, tag: str, texts: list[str]) -> None:
        if self.enabled and self.writer is not None and texts:
            # TensorBoard renders markdown: indent to keep line breaks, one block per sample
            body = "\n\n".join("    " + t.replace("\n", "\n    ") for t in texts)
            with self._tensorboard():
                self.writer.add_text(tag, body, step)

    def histogram(self, step: int, tag: str, values: torch.Tensor) -> None:
        if self.enabled and self.writer is not None:
            with self._tensorboard():
                self.writer.add_histogram(tag, values.detach().float().cpu(), step)

    def histograms(self, step: int, model: torch.nn.Module) -> None:
        if self.enabled and self.writer is not None:
            with self._tensorboard():
                for name, p in model.named_parameters():
                    self.writer.add_histogram(f"weights/{name}", p.detach().float().cpu(), step)

    def _tensorboard(self):
        """TensorBoard writes from a thread of its own, which fails first on a full disk; the next
        call here raises that error, which becomes the one line of a full disk."""
        return full_disk_as(RunLayout(self.run_dir).tensorboard, "the TensorBoard log")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.writer is not None:
            writer, self.writer = self.writer, None
            with full_disk_as(RunLayout(self.run_dir).tensorboard, "the TensorBoard log"):
                writer.close()


def weight_norms(model: torch.nn.Module, before: list[torch.Tensor] | None = None) -> dict[str, float]:
    """Global weight norm, and with ``before`` (the weights one step earlier) the update's norm and ratio."""
    params = [p.detach() for p in model.parameters()]
    out = {"weights/norm": float(torch.linalg.vector_norm(torch.stack([p.float().norm() for p in params])))}
    if before is not None:
        deltas = torch.stack([(p.float() - s.float()).norm() for p, s in zip(params, before)])
        out["weights/update_norm"] = float(torch.linalg.vector_norm(deltas))
        out["weights/update_ratio"] = out["weights/update_norm"] / max(out["weights/norm"], 1e-12)
    return out


def moe_scalars(stats: dict) -> dict[str, float]:
    """The router's losses and the busiest / idlest expert's share, from a MoE model's ``last_stats``."""
    out = {}
    if "moe_aux" in stats:
        out["moe/aux_loss"] = float(stats["moe_aux"])
        out["moe/z_loss"] = float(stats["moe_z"])
        load = stats["expert_load"].float()
        out["moe/max_expert_load"] = float(load.max())
        out["moe/min_expert_load"] = float(load.min())
    return out


def _quiet_full_disk_in_threads() -> None:
    """A full disk in TensorBoard's writer thread prints no traceback: the training thread
    reports it, in one line, at its next write (:meth:`RunLogger._tensorboard`)."""
    if getattr(threading.excepthook, "causette", False):
        return
    previous = threading.excepthook

    def hook(args):
        if not is_disk_full(args.exc_value):
            previous(args)

    hook.causette = True
    threading.excepthook = hook


def _end_torn_line(path: Path) -> None:
    """A log whose last line was cut (a crash or a full disk in the middle of a write) gets a line
    break, so that the next row starts a line of its own; the torn line is skipped on reading."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            if f.tell() == 0:
                return
            f.seek(-1, 2)
            torn = f.read(1) != b"\n"
    except FileNotFoundError:
        return
    if torn:
        with open(path, "a", encoding="utf-8") as f:
            f.write("\n")


_WARNED: set[tuple] = set()


def _is_row(row) -> bool:
    """A row as :meth:`RunLogger.scalars` writes it: a whole step, a known kind, numbers (or null)."""
    if not isinstance(row, dict) or row.get("kind", "train") not in ("train", "val"):
        return False
    if isinstance(row.get("step"), bool) or not isinstance(row.get("step"), int):
        return False
    return all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
               for k, v in row.items() if k != "kind")


def read_metrics(run_dir: str | Path, warn=lambda s: print(f"warning: {s}", file=sys.stderr)) -> list[dict]:
    """The rows of ``metrics.jsonl``; for a step logged twice (a resumed run), the last one wins.

    A line that is not a whole row (cut by a crash or a full disk, edited by hand: not JSON, no
    ``step``, an unknown ``kind``) is skipped, and one warning says how many and where the first is.
    """
    path = RunLayout(run_dir).metrics
    if not path.is_file():
        return []
    rows: dict[tuple, dict] = {}
    skipped: list[int] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):
                row = None
            if not _is_row(row):
                skipped.append(n)
                continue
            row.setdefault("kind", "train")
            rows[(row["kind"], row["step"])] = row
    said = (str(path), path.stat().st_mtime_ns, len(skipped))
    if skipped and said not in _WARNED:  # once per process, however many readers read the file
        _WARNED.add(said)
        warn(f"{path}:{skipped[0]}: {len(skipped)} damaged line(s) skipped (cut by a crash or a full disk?)")
    return sorted(rows.values(), key=lambda r: (r["step"], r["kind"]))
