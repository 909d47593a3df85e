"""``model.depth: auto``: the biggest model that the time budget can train well.

For a fixed budget of minutes, a bigger model learns more from each token but sees fewer of them:
too big and it stops before it has learned much, too small and it soon learns nothing more. The
best trade-off is a number of training tokens per parameter, measured on this project's data and
CPU (bench/LOG.md, « Issue 28 », and `causette explain scaling`): :data:`TOKENS_PER_PARAM`.

At start-up we time a few training steps of each candidate depth (eager, bf16 where training
uses it: about a second each), predict how many tokens each would see in the budget, and choose
the one whose tokens per parameter come closest to the target. The prediction is the time's,
not the text's: on a small text that ``train.max_epochs`` stops early, the model that suits the
budget still learns most from the few tokens (measured: 1 MB of text, 2 epochs, depth 4 reached
1.79 bits/byte where depth 2, the size that "2 epochs per budget" would give, reached 2.10). The choice and the
table it came from are written to ``runs/<name>/sizing.json``: a resumed run reuses them (the
machine's load may differ by then), and a report can show them.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from causette.config import Config, with_depth
from causette.errors import CausetteError
from causette.model.counting import count_params
from causette.model.transformer import Transformer
from causette.utils.io import read_json, write_json

# Training tokens per parameter (all parameters, embeddings included) of the depth that gave the
# lowest validation loss for a fixed wall-clock budget in our grid (bench/scaling.py, bench/LOG.md
# « Issue 28 », 2 CPU cores): 1.0 at 2 minutes (depth 3), 2.5 at 5 (depth 3), 2.2 at 12 (depth 4);
# their geometric mean. Far below Chinchilla's ~20: at these budgets a model is still learning fast
# when time runs out, and a bigger one learns more from each token (and runs its wider products
# more efficiently on a CPU).
TOKENS_PER_PARAM = 1.8
# Depths tried, smallest first (depth 1 is mostly its embedding table); a big GPU may go deep,
# a CPU stops long before (see measure).
CANDIDATES = tuple(range(2, 33))
# Compiled training runs faster than the eager steps we time (×1.4 at depth 6 to ×2.2 at depth 2
# on our CPU, bench/LOG.md). In the grid's runs, the tokens actually seen were 1.6–1.8 × the eager
# speed × the budget at depths 3–4 (compilation and the final evaluation included): 1.9 × USABLE.
COMPILE_GAIN = 1.9
# Share of the budget spent on training steps (the rest: compilation, evaluations, checkpoints).
USABLE = 0.9
SIZING_FILE = "sizing.json"


@dataclass(frozen=True)
class Candidate:
    depth: int
    params: int
    tokens_per_s: float  # measured (eager), times COMPILE_GAIN when training compiles
    tokens: float  # predicted for the budget (capped by the epochs allowed)

    @property
    def ratio(self) -> float:
        return self.tokens / self.params


@dataclass(frozen=True)
class Choice:
    depth: int
    candidates: list[Candidate]
    budget_s: float
    target: float
    reason: str

    def line(self) -> str:
        return f"model.depth auto → {self.depth}: {self.reason}"


def choose(candidates: list[Candidate], target: float | None = None, budget_s: float = 0.0) -> Choice:
    """The candidate whose tokens per parameter are closest to ``target`` (by ratio: 2× too many
    counts as much as 2× too few)."""
    target = TOKENS_PER_PARAM if target is None else target
    if not candidates:
        raise ValueError("no candidate depth to choose from")
    ordered = sorted(candidates, key=lambda c: c.depth)
    best = min(ordered, key=lambda c: (abs(math.log(c.ratio / target)), c.depth) if c.ratio > 0 else (math.inf, 0))
    why = (f"{best.params / 1e6:.1f}M parameters, ~{best.tokens / 1e6:.1f}M tokens in the budget at "
           f"~{best.tokens_per_s:,.0f} tokens/s = {best.ratio:.1f} tokens per parameter (target ~{target:g}")
    i = ordered.index(best)
    others = [f"depth {c.depth} would see {c.ratio:.1f}" for c in (ordered[i - 1] if i else None,
                                                                   ordered[i + 1] if i + 1 < len(ordered) else None) if c]
    if best is ordered[-1] and best.ratio > target:
        others.append(f"depth {best.depth} is the largest tried")
    if best is ordered[0] and best.ratio < target:
        others.append("even the smallest model sees fewer: a longer budget would help")
    return Choice(best.depth, ordered, budget_s, target, why + "".join(f"; {o}" for o in others) + ")")


def time_steps(cfg: Config, device: torch.device, dtype: torch.dtype, steps: int = 2) -> float:
    """Tokens per second of eager training steps (forward, backward, AdamW) of ``cfg``'s model
    on random tokens: one step to warm up, then the best of ``steps``."""
    torch.manual_seed(0)
    m, tc = cfg.model, cfg.train
    model = Transformer(m).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(0, m.vocab_size, (tc.batch_size, m.block_size + 1), device=device)
    best = math.inf
    for i in range(steps + 1):
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = model(x[:, :-1], x[:, 1:])[1]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:
            best = min(best, time.perf_counter() - t)
    return tc.batch_size * m.block_size / best


def measure(cfg: Config, budget_s: float, device: torch.device, dtype: torch.dtype, compiled: bool,
            target: float | None = None, timer: Callable[[Config], float] | None = None) -> list[Candidate]:
    """The candidates, smallest first, until one falls well under the target (deeper ones only see fewer)."""
    target = TOKENS_PER_PARAM if target is None else target
    timer = timer or (lambda c: time_steps(c, device, dtype))  # (looked up now: tests replace it)
    out = []
    for depth in CANDIDATES:
        c = with_depth(cfg, depth)
        try:
            speed = timer(c) * (COMPILE_GAIN if compiled else 1.0)
        except torch.OutOfMemoryError:  # this depth does not fit the device: nor do deeper ones
            if device.type == "cuda":
                torch.cuda.empty_cache()
            break
        tokens = speed * budget_s * USABLE
        out.append(Candidate(depth, count_params(c.model).total, speed, tokens))
        if out[-1].ratio < target / 4:
            break
    return out


def size_model(cfg: Config, run: Path, resume: bool, budget_s: float, device: torch.device, dtype: torch.dtype,
               compiled: bool, echo: Callable[[str], None] = print) -> Config:
    """``cfg`` with ``model.depth: auto`` resolved: measured now, or read back when resuming."""
    saved = run / SIZING_FILE
    if resume and saved.is_file():
        depth = int(read_json(saved)["depth"])
        echo(f"model.depth auto → {depth} (chosen when this run started: {saved})")
        return with_depth(cfg, depth)
    if budget_s <= 0:
        raise CausetteError("model.depth: auto chooses the model from the time budget: set train.max_minutes "
                            "(or give a depth, e.g. --depth 4)")
    t = time.perf_counter()
    candidates = measure(cfg, budget_s, device, dtype, compiled)
    if not candidates:
        raise CausetteError(f"model.depth: auto: even depth {CANDIDATES[0]} does not fit in {device}'s memory "
                            f"(train.batch_size {cfg.train.batch_size}); lower the batch or model.block_size")
    choice = choose(candidates, budget_s=budget_s)
    write_json(saved, {"depth": choice.depth, "budget_s": budget_s, "target_tokens_per_param": choice.target,
                       "measured_in_s": round(time.perf_counter() - t, 1), "reason": choice.reason,
                       "candidates": [asdict(c) for c in choice.candidates]})
    echo(choice.line())
    return with_depth(cfg, choice.depth)
