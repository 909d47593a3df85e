"""What a run records: ``metrics.jsonl`` (always) and TensorBoard (``tb/``, optional).

``metrics.jsonl`` is one JSON object a line — ``{"step", "kind": "train"|"val", "time", ...}`` —
the source of the report's plots and of the resume tests. TensorBoard shows the same scalars
live (``tensorboard --logdir runs/``) plus weight histograms and generated samples.
Only rank 0 of a distributed run writes anything.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch


class RunLogger:
    def __init__(self, run_dir: str | Path, tensorboard: bool = True, enabled: bool = True):
        self.enabled = enabled
        self.run_dir = Path(run_dir)
        self.writer = None
        self._file = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._file = open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard not installed: metrics.jsonl still has everything
                SummaryWriter = None
            if SummaryWriter is not None:
                self.writer = SummaryWriter(log_dir=str(self.run_dir / "tb"))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled or not values:
            return
        kind = "val" if all(k.startswith("val/") for k in values) else "train"
        row = {"step": step, "kind": kind, "time": round(time.time(), 3)}
        row.update({k: (float(v) if v == v else None) for k, v in values.items()})  # NaN → null
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(k, v, step)

    def text(self, step: int, tag: str, texts: list[str]) -> None:
        if self.enabled and self.writer is not None and texts:
            # TensorBoard renders markdown: indent to keep line breaks, one block per sample
            body = "\n\n".join("    " + t.replace("\n", "\n    ") for t in texts)
            self.writer.add_text(tag, body, step)

    def histogram(self, step: int, tag: str, values: torch.Tensor) -> None:
        if self.enabled and self.writer is not None:
            self.writer.add_histogram(tag, values.detach().float().cpu(), step)

    def histograms(self, step: int, model: torch.nn.Module) -> None:
        if self.enabled and self.writer is not None:
            for name, p in model.named_parameters():
                self.writer.add_histogram(f"weights/{name}", p.detach().float().cpu(), step)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
