"""Batches of token windows for pretraining, as a pure function of the step.

The token file is cut into non-overlapping windows of ``block_size + 1`` tokens (inputs and
the targets shifted by one). Each epoch visits every window once, in an order drawn from
``(seed, epoch)``, starting at a random shift so that window boundaries move between epochs.

Sample number ``g`` of the whole run is therefore known without any state:
``g = ((step · accum + micro) · world + rank) · batch + j``. That gives us

* **exact resume**: the batch of step 1000 is the same whether or not the run was restarted;
* **distributed training for free**: rank ``r`` of ``world`` takes its own slice, and the union
  over ranks of one step is exactly the batch a single process would have used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from causette.errors import CausetteError


def open_tokens(path: str | Path, dtype: str) -> np.ndarray:
    """Memory-map a ``.bin`` token file; a clear error when it is missing, empty or truncated."""
    path = Path(path)
    if not path.is_file():
        raise CausetteError(f"{path}: token file not found (run `causette prepare`)")
    size, width = path.stat().st_size, np.dtype(dtype).itemsize
    if size == 0:
        raise CausetteError(
            f"{path}: empty token file (its corpus split has no text; an older Causette could write one from "
            f"a corpus of few documents): run `causette corpus build` and `causette prepare` again"
        )
    if size % width:
        raise CausetteError(f"{path}: {size} bytes is not a whole number of {dtype} tokens (truncated file?)")
    return np.memmap(path, dtype=np.dtype(dtype), mode="r")


class TokenWindows:
    """Random-order, epoch-based windows over one ``.bin`` token file (memory-mapped)."""

    def __init__(self, path: str | Path, dtype: str, block_size: int, seed: int = 0):
        self.path = Path(path)
        self.tokens = open_tokens(self.path, dtype)
        self.block_size = block_size
        self.seed = seed
        if len(self.tokens) < 2 * (block_size + 1):
            raise CausetteError(
                f"{self.path}: only {len(self.tokens):,} tokens, fewer than two windows of block_size+1 = "
                f"{block_size + 1}: lower model.block_size or add text"
            )
        # windows that fit whatever the shift (0..block_size) of the epoch
        self.windows_per_epoch = (len(self.tokens) - block_size) // (block_size + 1)
        self._epoch = -1
        self._order = np.zeros(0, dtype=np.int64)
        self._shift = 0

    def _epoch_plan(self, epoch: int) -> tuple[np.ndarray, int]:
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._shift = int(rng.integers(0, self.block_size + 1)) if epoch > 0 else 0
            self._order = rng.permutation(self.windows_per_epoch)
            self._epoch = epoch
        return self._order, self._shift

    def window(self, g: int) -> np.ndarray:
        """Tokens of global sample ``g`` (``block_size + 1`` of them)."""
        epoch, k = divmod(g, self.windows_per_epoch)
        order, shift = self._epoch_plan(epoch)
        start = shift + int(order[k]) * (self.block_size + 1)
        return np.asarray(self.tokens[start : start + self.block_size + 1], dtype=np.int64)

    def batch(
        self, step: int, batch_size: int, micro: int = 0, accum: int = 1, rank: int = 0, world: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets ``(batch_size, block_size)`` of one micro-batch of one rank."""
        first = ((step * accum + micro) * world + rank) * batch_size
        rows = np.stack([self.window(first + j) for j in range(batch_size)])
        data = torch.from_numpy(rows)
        return data[:, :-1], data[:, 1:]


def eval_windows(path: str | Path, dtype: str, block_size: int, max_tokens: int) -> torch.Tensor:
    """A fixed validation set: consecutive windows from the start of the file, ``(n, block_size+1)``.

    Always the same windows, so validation losses are comparable between steps and runs.
    """
    tokens = open_tokens(path, dtype)
    n = min(max(max_tokens // block_size, 1), len(tokens) // (block_size + 1))
    if n == 0:
        raise CausetteError(
            f"{path}: the val split has {len(tokens):,} tokens, fewer than one window of model.block_size+1 = "
            f"{block_size + 1}: lower model.block_size, or raise corpus.val_fraction and rebuild the corpus"
        )
    rows = np.asarray(tokens[: n * (block_size + 1)], dtype=np.int64).reshape(n, block_size + 1)
    return torch.from_numpy(rows)
