"""The training loop, shared by pretraining and SFT.

What the loop needs from its caller is small: a model, a ``batch_fn(step, micro, rank, world)``
returning ``(inputs, targets)``, and optionally an ``eval_fn(model)`` returning metrics and a
``sample_fn(model)`` returning generated texts. Everything else lives here:

* the learning rate of every step comes from the schedule: a function of the step, or, under a
  time budget (``train.max_minutes``), of the time left (schedule.TimeBudget), so that the run
  ends on time with its learning rate at ``min_lr`` whatever the machine's speed does;
* ``grad_accum`` micro-batches are summed into one update, gradients clipped, then the
  optimiser(s) step;
* a non-finite loss stops training at once, before the broken update reaches a checkpoint;
* Ctrl-C (SIGINT) or SIGTERM asks the loop to stop at the end of the current step: it saves a
  checkpoint and returns cleanly (a second Ctrl-C aborts immediately);
* checkpoints every ``ckpt_every`` steps, at each new best val loss, and at the end;
* ``metrics.jsonl`` (one line per logged step) and TensorBoard on rank 0.

Because batches and learning rates are functions of the step, and a checkpoint holds the
weights, the optimiser state and the RNG state, resuming from step ``k`` replays exactly what
an uninterrupted run would have done (bit for bit on CPU in fp32; see tests/test_train.py).
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from causette.checkpoint import steps as ckpt
from causette.checkpoint.files import weights_path
from causette.checkpoint.weights import load_weights as load_weights_file
from causette.checkpoint.weights import recorded_sha256
from causette.errors import CausetteError
from causette.model.layers import IGNORE_INDEX
from causette.train.config import TrainConfig
from causette.train.distributed import all_mean, all_mean_many
from causette.train.interface import BatchFn, CheckpointFiles, Hooks, Runtime, Throughput, TrainResult  # noqa: F401  (re-exported)
from causette.train.optim import build_optimizers, set_lr
from causette.train.run_log import RunLogger, moe_scalars, weight_norms
from causette.train.schedule import TimeBudget, lr_at
from causette.train.stop import StopRequest
from causette.utils.paths import RunLayout


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        run_dir: str | Path,
        batch_fn: BatchFn,
        runtime: Runtime,
        *,
        hooks: Hooks | None = None,
        files: CheckpointFiles | None = None,
        speed: Throughput | None = None,
        progress: bool = True,
        echo: Callable[[str], None] = print,
        clock: Callable[[], float] = time.monotonic,
    ):
        hooks, files, speed = hooks or Hooks(), files or CheckpointFiles(), speed or Throughput()
        self.cfg = cfg
        self.clock = clock  # seconds; the tests inject a fake one to play slow, fast and paused machines
        # How weights go into and out of a checkpoint directory (LoRA saves its adapter only).
        self.save_weights_fn = files.save_weights
        self.load_weights_fn = files.load_weights or (
            lambda m, d: load_weights_file(m, weights_path(d), sha256=recorded_sha256(d)))
        self.run_dir = Path(run_dir)
        self.ckpt_root = RunLayout(self.run_dir).checkpoints
        self.batch_fn = batch_fn
        self.device, self.dtype, self.dist = runtime.device, runtime.dtype, runtime.dist
        device, compile = runtime.device, runtime.compile
        self.eval_fn, self.sample_fn, self.after_step = hooks.eval_fn, hooks.sample_fn, list(hooks.after_step)
        self.state_extra = files.state_extra
        self.tokenizer_file = files.tokenizer_file
        self.flops_per_token, self.peak_flops = speed.flops_per_token, speed.peak_flops
        self.peak_source, self.tokens_per_step = speed.peak_source, speed.tokens_per_step
        self.peak_exceeded = False  # MFU went over 100 % once (warned)
        self.progress = progress and self.dist.is_main
        self.echo = echo

        self.raw_model = model.to(device)
        # fused AdamW: one kernel for all parameters (~25% faster steps on CPU, bench/LOG.md)
        self.optimizers = build_optimizers(self.raw_model, cfg, fused=device.type in ("cpu", "cuda"))
        self.model: nn.Module = self.raw_model
        if compile:
            self.model = torch.compile(self.model)
        if self.dist.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.model = DDP(self.model, device_ids=ids)
        self.step = 0
        self.tokens_seen = 0
        self.best_val = math.inf
        self.budget_spent = 0.0  # seconds of train.max_minutes used by earlier sessions (resume)
        self.recent_step_seconds: list[float] = []  # the speed a resumed run starts from
        self.budget: TimeBudget | None = None

    # ------------------------------------------------------------------ state
    def autocast(self):
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def resume(self, path: str | Path) -> Path:
        """Load weights, optimiser state, RNG and counters from a checkpoint (or a run dir)."""
        found = ckpt.find_checkpoint(path, warn=lambda s: self.echo(f"warning: {s}"))
        state = ckpt.read_state(found)
        self.load_weights_fn(self.raw_model, found)
        self.raw_model.to(self.device)
        saved_opt = state.get("optimizer_names")
        if saved_opt is not None and saved_opt != self._optimizer_names():
            raise CausetteError(
                f"{found}: saved with optimizer {saved_opt}, this run uses {self._optimizer_names()}: "
                "resume with the same train.optimizer"
            )
        try:
            opt_states = torch.load(found / ckpt.OPTIMIZER_FILE, map_location="cpu", weights_only=True)
        except Exception as e:  # missing, truncated or not a tensor-only pickle
            raise CausetteError(f"{found / ckpt.OPTIMIZER_FILE}: cannot load optimizer state ({type(e).__name__})") from None
        if len(opt_states) != len(self.optimizers):
            raise CausetteError(f"{found / ckpt.OPTIMIZER_FILE}: optimizer state does not match this run")
        for opt, st in zip(self.optimizers, opt_states):
            try:
                opt.load_state_dict(st)
            except (ValueError, KeyError, RuntimeError) as e:
                raise CausetteError(f"{found / ckpt.OPTIMIZER_FILE}: optimizer state does not match this model ({e})") from None
        progress = ckpt.read_progress(found, state)  # checked: a damaged state.json is one line
        self.step, self.tokens_seen, self.best_val = progress.step, progress.tokens_seen, progress.best_val
        self.budget_spent, self.recent_step_seconds = progress.budget_spent, progress.step_seconds
        return found

    def _optimizer_names(self) -> list[str]:
        return [type(o).__name__ for o in self.optimizers]

    def save(self, is_best: bool = False, val: dict | None = None) -> Path | None:
        if not self.dist.is_main:
            return None
        state = {
            **self.state_extra,
            "tokens_seen": self.tokens_seen,
            **({"time_budget": self._budget_state()} if self.budget is not None else {}),
            "best_val_loss": self.best_val if math.isfinite(self.best_val) else None,
            "val": val or {},
            "optimizer_names": self._optimizer_names(),
        }
        return ckpt.save_checkpoint(
            self.ckpt_root,
            self.step,
            self.raw_model,
            _MultiOptimizer(self.optimizers),
            state,
            tokenizer_file=self.tokenizer_file,
            keep_last=self.cfg.keep_last,
            is_best=is_best,
            save_weights=self.save_weights_fn,
        )

    def _budget_state(self) -> dict:
        """What a resumed run needs to go on spending the same budget: the time used and the speed."""
        return {
            "seconds": self.budget.seconds,
            "spent_seconds": round(self.budget.spent(self.clock()), 3),
            "step_seconds": [round(x, 4) for x in self.budget.recent],
        }

    # ------------------------------------------------------------------ one step
    def train_step(self, scale: float | None = None) -> tuple[float, float, dict]:
        """One optimiser step (``grad_accum`` micro-batches); returns (loss, grad norm, stats).

        ``scale`` multiplies the peak learning rates; by default, the step schedule's value."""
        cfg = self.cfg
        if scale is None:
            scale = lr_at(
                self.step,
                lr=1.0,
                min_lr=cfg.min_lr / cfg.lr,
                warmup_steps=cfg.warmup_steps,
                total_steps=cfg.max_steps,
                schedule=cfg.schedule,
                decay_frac=cfg.decay_frac,
            )
        set_lr(self.optimizers, scale)
        total = torch.zeros((), device=self.device)
        batches = [self.batch_fn(self.step, micro, self.dist.rank, self.dist.world) for micro in range(cfg.grad_accum)]
        # Each micro-batch's loss is a mean over its counted targets. Weighting it by its share of
        # the step's counted targets makes the step's loss (and gradient) the mean over all of
        # them, as one big batch would give — not a mean of means, which would over-weight the
        # tokens of a micro-batch with few trained targets (SFT masks prompts). In pretraining
        # every micro-batch counts the same, and the weight is 1 / grad_accum.
        counts = [int((y != IGNORE_INDEX).sum()) for _, y in batches]
        per_rank = all_mean(float(sum(counts)), self.dist, self.device)  # DDP then averages over ranks
        for micro, (x, y) in enumerate(batches):
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            weight = counts[micro] / per_rank if per_rank > 0 else 0.0
            last = micro == cfg.grad_accum - 1
            sync = contextlib.nullcontext() if (last or not self.dist.enabled) else self.model.no_sync()
            with sync:
                with self.autocast():
                    _, loss = self.model(x, y)  # through the wrappers (compile, DDP)
                (loss * weight).backward()
            total += loss.detach() * weight
            self.tokens_seen += x.numel() * self.dist.world
        stats = dict(getattr(self.raw_model, "last_stats", {}) or {})
        loss_value = float(total)
        params = [p for p in self.raw_model.parameters() if p.grad is not None]
        if cfg.grad_clip > 0:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip))
        else:
            grad_norm = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))
        if not (math.isfinite(loss_value) and math.isfinite(grad_norm)):
            last_good = ckpt.list_checkpoints(self.ckpt_root)
            where = f"the last good checkpoint is {last_good[-1]}" if last_good else "no checkpoint was written yet"
            raise CausetteError(
                f"non-finite loss ({loss_value}) or gradient norm ({grad_norm}) at step {self.step + 1}: "
                f"training stopped; {where} (try a lower train.lr or train.precision=fp32)"
            )
        for opt in self.optimizers:
            opt.step()
            opt.zero_grad(set_to_none=True)
        self.step += 1
        stats["lr_scale"] = scale
        return loss_value, grad_norm, stats

    def _mfu(self, tokens_per_s: float) -> float:
        """Model FLOPs utilisation against the run's fixed peak.

        Above 100 %, the peak is too low: a cached measurement made before an upgrade or on a
        throttled machine, one measured on a busy machine, or a ``train.peak_flops`` too small.
        We warn once and log MFU uncapped: a capped or silently re-measured figure would hide the
        problem and make the rows of one run incomparable (they must share one denominator, and
        the report recomputes MFU against that same peak); the user fixes the peak, not the log."""
        if not self.peak_flops:
            return 0.0
        mfu = self.flops_per_token * tokens_per_s / self.peak_flops
        if mfu > 1.0 and not self.peak_exceeded:
            self.peak_exceeded = True
            self.echo(f"warning: MFU {mfu:.0%} exceeds 100 %: the peak {self.peak_flops / 1e9:,.0f} GFLOP/s "
                      f"({self.peak_source or 'given'}) is stale or too low; MFU is logged uncapped "
                      f"(re-measure it on a quiet machine: python -m causette.utils.flops --remeasure, "
                      f"or set train.peak_flops)")
        return mfu

    # ------------------------------------------------------------------ the loop
    def fit(self) -> TrainResult:
        cfg = self.cfg
        clock = self.clock
        logger = RunLogger(self.run_dir, tensorboard=cfg.tensorboard, enabled=self.dist.is_main)
        t_start = clock()
        budget_s = cfg.max_minutes * 60 if cfg.max_minutes > 0 else 0.0
        self.budget = budget = self._time_budget(budget_s, t_start)
        deadline = t_start - self.budget_spent + budget_s if budget_s else math.inf
        bar_total = budget.steps_left(self.step, t_start) + self.step if budget is not None else cfg.max_steps
        bar = tqdm(total=bar_total, initial=self.step, desc="train", unit=" step", disable=not self.progress, dynamic_ncols=True)
        result = TrainResult(steps=self.step, tokens=self.tokens_seen, seconds=0.0, last_loss=math.nan, budget_seconds=budget_s)
        loop = _Loop(logger, bar, result, budget, budget_s, window_start=clock())
        finished = self.step >= cfg.max_steps or (budget is not None and budget.spent(t_start) >= budget_s)
        if finished and budget is not None and self.step < cfg.max_steps:
            self.echo(f"time budget of {cfg.max_minutes:g} min already spent: nothing to train (raise train.max_minutes to go on)")
        self.raw_model.train()
        try:
            with StopRequest() as stop:
                while not finished:
                    is_last = self._step_and_log(loop)
                    if stop.reason is None and budget is None and clock() > deadline:
                        stop.reason = "time limit"
                    self._evaluate_and_save(loop, is_last, stop)
                    if stop.reason:
                        result.stopped = stop.reason
                        break
                    finished = is_last
        finally:
            bar.close()
            logger.close()
        result.steps, result.tokens = self.step, self.tokens_seen
        result.seconds = clock() - t_start
        result.budget_used = budget.spent(clock()) if budget is not None else self.budget_spent + result.seconds
        result.val, result.best_val_loss = loop.last_val, self.best_val
        return result

    def _time_budget(self, budget_s: float, t_start: float) -> TimeBudget | None:
        """Under a time budget, the schedule follows the clock (schedule.TimeBudget); without
        train.fit_schedule_to_time, the step schedule runs and the budget only cuts it (None)."""
        cfg = self.cfg
        if not (budget_s and cfg.fit_schedule_to_time):
            return None
        return TimeBudget(
            budget_s,
            t_start,
            spent=self.budget_spent,
            schedule=cfg.schedule,
            decay_frac=cfg.decay_frac,
            min_scale=cfg.min_lr / cfg.lr,
            warmup_steps=cfg.warmup_steps,
            max_steps=cfg.max_steps,
            eval_in_steps=self._eval_in_steps(),
            recent=self.recent_step_seconds,
        )

    def _step_and_log(self, loop: _Loop) -> bool:
        """One training step and what follows it at once: its learning rate planned (under a time
        budget), the after-step callbacks, the metrics line, histograms, the budget's timing and the
        progress bar. Returns whether it was the last step."""
        cfg, clock, budget = self.cfg, self.clock, loop.budget
        t0 = clock()
        is_last = self.step + 1 >= cfg.max_steps
        scale = None
        if budget is not None:
            scale, planned_last = budget.plan(self.step, t0)
            # every rank takes the same learning rate and stops at the same step
            scale, planned_last = all_mean_many([scale, float(planned_last)], self.dist, self.device)
            is_last = is_last or planned_last > 0
        snapshot = self._snapshot() if self._is_log_step(self.step + 1, is_last) else None
        loss, grad_norm, stats = self.train_step(scale)
        for callback in self.after_step:
            callback(self)
        loop.window_tokens += self.tokens_per_step
        loop.result.last_loss = loss
        if self._is_log_step(self.step, is_last):
            tps = loop.window_tokens / max(clock() - loop.window_start, 1e-9)
            budget_used = budget.spent(clock()) / loop.budget_s if budget is not None else None
            logged_loss = self._log_step(loop.logger, loss, grad_norm, stats, tps, snapshot, budget_used)
            loop.bar.set_postfix(loss=f"{logged_loss:.3f}", tok_s=f"{tps:,.0f}", refresh=False)
            loop.window_tokens, loop.window_start = 0, clock()
        if cfg.histogram_every and self.step % cfg.histogram_every == 0:
            loop.logger.histograms(self.step, self.raw_model)
        dt = clock() - t0
        if budget is not None:
            budget.record_step(dt)
            if self.step % 10 == 0:
                loop.bar.total = self.step + (0 if is_last else budget.steps_left(self.step, clock()))
        loop.bar.update(1)
        return is_last

    def _evaluate_and_save(self, loop: _Loop, is_last: bool, stop: StopRequest) -> None:
        """After a step: evaluate every ``eval_every`` steps, at the last and when asked to stop
        (a new best val loss is saved as the best checkpoint); otherwise save every ``ckpt_every``
        steps, at the last and when asked to stop."""
        cfg, result = self.cfg, loop.result
        saved = False
        if self.eval_fn is not None and ((cfg.eval_every and self.step % cfg.eval_every == 0) or is_last or stop.reason):
            t_eval = self.clock()
            loop.last_val = self._evaluate(loop.logger)
            if loop.budget is not None:
                loop.budget.record_eval(self.clock() - t_eval)
            if loop.last_val.get("loss", math.inf) < self.best_val:
                self.best_val = loop.last_val["loss"]
                result.checkpoint = self._timed_save(is_best=True, val=loop.last_val) or result.checkpoint
                saved = True
        if not saved and (self.step % cfg.ckpt_every == 0 or is_last or stop.reason):
            result.checkpoint = self._timed_save(val=loop.last_val) or result.checkpoint

    def _log_step(self, logger: RunLogger, loss: float, grad_norm: float, stats: dict, tokens_per_s: float,
                  snapshot, budget_used: float | None) -> float:
        """One line of metrics.jsonl (and TensorBoard); returns the loss averaged over ranks."""
        logged_loss = all_mean(loss, self.dist, self.device)
        logger.scalars(
            self.step,
            {
                "train/loss": logged_loss,
                "train/lm_loss": float(stats.get("lm_loss", loss)),
                "train/lr": self.cfg.lr * stats["lr_scale"],
                "train/grad_norm": grad_norm,
                "train/tokens_per_s": tokens_per_s,
                "train/mfu": self._mfu(tokens_per_s),
                "train/tokens_seen": float(self.tokens_seen),
                **({"train/budget_used": budget_used} if budget_used is not None else {}),
                **weight_norms(self.raw_model, snapshot),
                **moe_scalars(stats),
            },
        )
        if "expert_load" in stats:
            logger.histogram(self.step, "moe/expert_load", stats["expert_load"].float().flatten())
        return logged_loss

    def _timed_save(self, **kw) -> Path | None:
        t = self.clock()
        path = self.save(**kw)
        if self.budget is not None and path is not None:
            self.budget.record_save(self.clock() - t)
        return path

    def _eval_in_steps(self) -> float:
        """Until an evaluation has been timed, how many steps the final one is guessed to cost: a
        forward pass over ``eval_tokens`` (about a third of a training step's work per token, eager,
        so counted as half) plus the samples, or one step when the size is unknown (SFT)."""
        if self.eval_fn is None:
            return 0.0
        per_step = self.tokens_per_step / max(self.dist.world, 1)
        if self.cfg.eval_tokens > 0 and per_step > 0:
            return 0.5 * self.cfg.eval_tokens / per_step + (1.0 if self.sample_fn is not None else 0.0)
        return 1.0

    def _is_log_step(self, step: int, last: bool = False) -> bool:
        return step % self.cfg.log_every == 0 or last

    def _evaluate(self, logger: RunLogger) -> dict:
        metrics = self.eval_fn(self.raw_model) if self.eval_fn else {}
        logger.scalars(self.step, {f"val/{k}": v for k, v in metrics.items() if isinstance(v, (int, float))})
        if self.sample_fn is not None and self.dist.is_main:
            samples = self.sample_fn(self.raw_model)
            logger.text(self.step, "samples", samples)
        self.raw_model.train()
        if self.dist.is_main and metrics:
            parts = [f"val loss {metrics['loss']:.4f}"] if "loss" in metrics else []
            if "perplexity" in metrics:
                parts.append(f"perplexity {metrics['perplexity']:.1f}")
            if "bits_per_byte" in metrics:
                parts.append(f"bits/byte {metrics['bits_per_byte']:.4f}")
            if "grammaire" in metrics:
                parts.append(f"grammar {metrics['grammaire']:.1%} of minimal pairs")
            tqdm.write(f"step {self.step}: " + ", ".join(parts))
        return metrics

    def _snapshot(self) -> list[torch.Tensor] | None:
        if not self.dist.is_main:
            return None
        return [p.detach().clone() for p in self.raw_model.parameters()]


class _MultiOptimizer:
    """Saves several optimisers' states as one list (Muon + AdamW)."""

    def __init__(self, optimizers: list[torch.optim.Optimizer]):
        self.optimizers = optimizers

    def state_dict(self) -> list[dict]:
        return [o.state_dict() for o in self.optimizers]


class _Loop:
    """What :meth:`Trainer.fit` carries from one step to the next."""

    def __init__(self, logger: RunLogger, bar: tqdm, result: TrainResult, budget: TimeBudget | None,
                 budget_s: float, window_start: float):
        self.logger, self.bar, self.result = logger, bar, result
        self.budget, self.budget_s = budget, budget_s  # the budget the schedule follows, if any; its seconds
        self.window_tokens, self.window_start = 0, window_start  # tokens since the last logged step, and since when
        self.last_val: dict = {}  # the latest evaluation's metrics
