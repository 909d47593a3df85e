"""A time budget (train.max_minutes) spent exactly: the run ends on time, at min_lr, whatever the
machine's speed does. Every test drives an injected clock, so they run in a second or two."""

from __future__ import annotations

import signal

import pytest
import torch

from causette.train.schedule import TimeBudget

BUDGET = 600.0  # seconds
MIN = 0.1  # min_lr / lr


def simulate(budget: TimeBudget, seconds_per_step, *, pauses=(), final_eval=0.0, max_steps=10**7, now=None):
    """Run ``budget``'s plan as the loop does, with a fake clock; returns (end, steps, [(elapsed, scale)])."""
    start = budget.origin  # when the budget began (earlier sessions included)
    now = start if now is None else now
    pauses = list(pauses)  # (at elapsed, seconds)
    plan = []
    step = 0
    while step < max_steps:
        scale, last = budget.plan(step, now)
        plan.append((now - start, scale))
        d = seconds_per_step(now - start)
        now += d
        budget.record_step(d)
        step += 1
        while pauses and now - start >= pauses[0][0]:
            now += pauses.pop(0)[1]
        if last:
            break
    return now + final_eval - start, step, plan


def check_spent_exactly(end, plan, budget_s=BUDGET):
    assert abs(end - budget_s) <= 0.03 * budget_s, f"ended at {end:.1f}s of {budget_s}s"
    assert plan[-1][1] == pytest.approx(MIN)  # the last step runs at min_lr
    after_warmup = [s for _, s in plan[20:]]
    assert all(b <= a + 1e-12 for a, b in zip(after_warmup, after_warmup[1:]))  # never warms back up
    assert max(s for _, s in plan) == pytest.approx(1.0, abs=0.02)  # it did reach the peak


def scale_at(plan, t):
    return next(s for e, s in plan if e >= t)


def fast_then_slow(t):
    return 0.1 if t < 300 else 1.0


def slow_then_fast(t):
    return 1.0 if t < 300 else 0.1


@pytest.mark.parametrize("speed", [fast_then_slow, slow_then_fast, lambda t: 0.3], ids=["fast-slow", "slow-fast", "steady"])
def test_wsd_decays_over_the_last_fifth_of_the_clock(speed):
    budget = TimeBudget(BUDGET, 1000.0, schedule="wsd", decay_frac=0.2, min_scale=MIN, warmup_steps=20)
    end, steps, plan = simulate(budget, speed)
    check_spent_exactly(end, plan)
    # the decay starts when the time left equals its length (120 s), whatever the speed did before
    assert scale_at(plan, 470.0) == 1.0
    assert scale_at(plan, 540.0) == pytest.approx(MIN + (1 - MIN) * 0.5, abs=0.03)


@pytest.mark.parametrize("speed", [fast_then_slow, slow_then_fast], ids=["fast-slow", "slow-fast"])
def test_cosine_follows_the_clock(speed):
    budget = TimeBudget(BUDGET, 1000.0, schedule="cosine", min_scale=MIN, warmup_steps=20)
    end, steps, plan = simulate(budget, speed)
    check_spent_exactly(end, plan)
    assert scale_at(plan, 300.0) == pytest.approx(0.55, abs=0.03)  # half-way on the clock, half-way down


def test_a_run_that_speeds_up_uses_its_whole_budget():
    """The defect of the step horizon frozen at 30 %: slow early steps (compilation, another
    program) made it stop a third early. On the clock, the faster second half is used to the end."""
    budget = TimeBudget(BUDGET, 1000.0, schedule="cosine", min_scale=MIN, warmup_steps=20)
    end, steps, _ = simulate(budget, lambda t: 2.0 if t < 200 else 0.2)
    assert end >= 0.99 * BUDGET and steps > 2000


@pytest.mark.parametrize("schedule", ["wsd", "cosine"])
@pytest.mark.parametrize("pause_at", [100.0, 500.0])
def test_a_pause_shifts_the_decay_and_still_ends_on_time(schedule, pause_at):
    budget = TimeBudget(BUDGET, 1000.0, schedule=schedule, min_scale=MIN, warmup_steps=20)
    end, steps, plan = simulate(budget, lambda t: 0.25, pauses=[(pause_at, 60.0)])  # laptop lid closed a minute
    check_spent_exactly(end, plan)
    assert not any(pause_at + 1 < e < pause_at + 60 for e, _ in plan)  # no step during the pause


def test_final_evaluation_is_kept_inside_the_budget():
    budget = TimeBudget(BUDGET, 1000.0, schedule="wsd", min_scale=MIN, warmup_steps=20)
    budget.record_eval(25.0)  # measured at a periodic evaluation
    end, _, plan = simulate(budget, lambda t: 0.5, final_eval=25.0)
    check_spent_exactly(end, plan)
    assert abs(end - BUDGET) < 1.0


def test_max_steps_first_ends_the_schedule_at_max_steps():
    budget = TimeBudget(BUDGET, 1000.0, schedule="cosine", min_scale=MIN, warmup_steps=10, max_steps=500)
    end, steps, plan = simulate(budget, lambda t: 0.1)  # 500 steps take 50 s of the 600
    assert steps == 500 and end == pytest.approx(50.0)
    assert plan[-1][1] == pytest.approx(MIN)
    assert scale_at(plan, 25.0) == pytest.approx(0.55, abs=0.03)


def test_resumed_budget_keeps_what_was_spent():
    budget = TimeBudget(BUDGET, 5000.0, spent=450.0, schedule="wsd", min_scale=MIN, recent=[0.5])
    assert budget.spent(5000.0) == 450.0
    scale, last = budget.plan(900, 5000.0)  # 150 s left: 30 s into the 120 s decay
    assert scale == pytest.approx(1.0) and not last
    end, _, plan = simulate(budget, lambda t: 0.5, now=5000.0)
    assert abs(end - BUDGET) <= 0.03 * BUDGET and plan[-1][1] == pytest.approx(MIN)


def test_budget_already_spent_or_tiny_runs_one_step_at_min_lr():
    budget = TimeBudget(BUDGET, 0.0, spent=BUDGET + 5, schedule="cosine", min_scale=MIN)
    assert budget.plan(10, 0.0) == (MIN, True)


# ---------------------------------------------------------------------- the trainer, on a fake clock
class FakeClock:
    def __init__(self, t: float = 10_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_trainer(tmp_path, clock, seconds_per_step, **train):
    from causette.model.config import ModelConfig
    from causette.model.transformer import Transformer
    from causette.train.config import TrainConfig
    from causette.train.trainer import Hooks, Runtime, Trainer

    cfg = ModelConfig(n_layer=1, n_head=2, n_embd=8, block_size=4, vocab_size=16, mlp_hidden=16)
    tc = TrainConfig(**{**dict(batch_size=2, max_steps=100_000, max_minutes=1.0, warmup_steps=10, lr=1e-3, min_lr=1e-4,
                               schedule="wsd", log_every=50, eval_every=100, ckpt_every=10**6, tensorboard=False,
                               histogram_every=0), **train})
    trainer_ref = {}

    def batch_fn(step, micro, rank, world):
        clock.t += seconds_per_step(step, clock.t)
        x = torch.randint(0, 16, (2, 5), generator=torch.Generator().manual_seed(step))
        return x[:, :-1], x[:, 1:]

    def eval_fn(model):
        clock.t += 1.5  # an evaluation costs 1.5 s
        return {"loss": 2.0 - 1e-4 * trainer_ref["t"].step}

    torch.manual_seed(0)
    trainer = Trainer(Transformer(cfg), tc, tmp_path, batch_fn, Runtime(torch.device("cpu")), progress=False,
                      echo=lambda s: None, hooks=Hooks(eval_fn=eval_fn), clock=clock)
    trainer_ref["t"] = trainer
    return trainer


def logged_lrs(run_dir):
    from causette.train.run_log import read_metrics

    return [(r["step"], r["train/lr"]) for r in read_metrics(run_dir) if r["kind"] == "train"]


def test_trainer_spends_the_budget_exactly_through_slowdown_and_pause(tmp_path):
    clock = FakeClock()
    start = clock.t

    def speed(step, now):
        if step == 150:
            clock.t += 8.0  # paused 8 s
        return 0.05 if now - start < 25 else 0.2  # another program starts at 25 s

    trainer = make_trainer(tmp_path, clock, speed)
    result = trainer.fit()
    assert result.stopped == "done"
    assert result.budget_seconds == 60.0
    assert abs(result.seconds - 60.0) <= 0.03 * 60.0  # final evaluation and checkpoint included
    assert result.budget_used == pytest.approx(result.seconds)
    lrs = logged_lrs(tmp_path)
    assert lrs[-1] == (result.steps, pytest.approx(1e-4))  # the last step at min_lr
    assert max(lr for _, lr in lrs) == pytest.approx(1e-3)


def test_trainer_resume_keeps_the_budget_already_spent(tmp_path):
    import json

    from causette.checkpoint import steps as ckpt

    clock = FakeClock()

    def interrupt_at_step_120(step, now):
        if step == 120:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C during step 121
        return 0.1

    first = make_trainer(tmp_path, clock, interrupt_at_step_120).fit()
    assert first.stopped == "interrupted" and first.steps == 121
    state = json.loads((ckpt.list_checkpoints(tmp_path / ckpt.CHECKPOINTS)[-1] / "state.json").read_text())
    assert state["time_budget"]["spent_seconds"] == pytest.approx(first.seconds, abs=0.5)

    clock.t += 3600.0  # an hour later: the time between sessions is not charged
    again = make_trainer(tmp_path, clock, lambda step, now: 0.1)
    again.resume(tmp_path)
    second = again.fit()
    assert second.stopped == "done"
    assert abs(second.budget_used - 60.0) <= 0.03 * 60.0
    assert second.seconds == pytest.approx(second.budget_used - first.budget_used, abs=0.5)
    assert logged_lrs(tmp_path)[-1][1] == pytest.approx(1e-4)


def test_trainer_without_time_budget_keeps_the_step_schedule(tmp_path):
    clock = FakeClock()
    trainer = make_trainer(tmp_path, clock, lambda step, now: 0.1, max_minutes=0.0, max_steps=60, schedule="cosine",
                           log_every=1)
    result = trainer.fit()
    assert result.steps == 60 and result.budget_seconds == 0.0
    from causette.train.schedule import lr_at

    want = [lr_at(s - 1, lr=1e-3, min_lr=1e-4, warmup_steps=10, total_steps=60) for s in range(1, 61)]
    assert [lr for _, lr in logged_lrs(tmp_path)] == pytest.approx(want)


def test_step_schedule_while_max_steps_fits_then_the_clock_when_it_slows():
    """While max_steps fits in the budget, the learning rates are the step schedule's, exactly
    (resuming stays bit for bit); once the machine is too slow for it, the clock takes over."""
    from causette.train.schedule import lr_at

    budget = TimeBudget(BUDGET, 1000.0, schedule="cosine", min_scale=MIN, warmup_steps=10, max_steps=2000)
    end, steps, plan = simulate(budget, lambda t: 0.1 if t < 100 else 1.0)  # 2,000 steps fit at 0.1 s, not at 1 s
    want = [lr_at(k, lr=1.0, min_lr=MIN, warmup_steps=10, total_steps=2000) for k in range(900)]
    assert [s for _, s in plan[:900]] == want[:900]  # the first 100 s: 1,000 steps at 0.1 s
    assert steps < 2000
    check_spent_exactly(end, plan)


def test_a_slow_first_step_and_a_guessed_evaluation_do_not_end_the_run_early():
    """The first step of a session pays for compilation; until an evaluation is timed, its cost is
    a guess (here 78 steps' worth). Neither may stop a 30-second run after a couple of steps."""
    budget = TimeBudget(30.0, 1000.0, schedule="cosine", min_scale=MIN, warmup_steps=5, eval_in_steps=78)
    end, steps, plan = simulate(budget, lambda t: 0.4 if t == 0 else 0.01, final_eval=0.5)
    assert steps > 2000 and abs(end - 30.0) <= 0.03 * 30.0
    assert plan[-1][1] == pytest.approx(MIN)


def test_the_summary_line_gives_minutes_used_and_flags_under_95_percent():
    from causette.train.pretrain import budget_note
    from causette.train.trainer import TrainResult

    def note(used, allowed, stopped="done"):
        return budget_note(TrainResult(1, 1, used, 0.0, stopped=stopped, budget_seconds=allowed, budget_used=used))

    assert note(478.0, 480.0) == ", 8.0 of 8 min budget used"
    assert note(400.0, 480.0, "interrupted") == ", 6.7 of 8 min budget used (under 95 %: interrupted)"
    assert note(120.0, 480.0) == ", 2.0 of 8 min budget used (its steps done early)"
    assert note(10.0, 0.0) == ""  # no budget, nothing to say
