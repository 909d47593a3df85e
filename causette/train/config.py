"""Settings of pretraining (``train:`` section of a config file); SFT's (causette/sft/config.py)
start from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal, Optional

from causette.utils.ranges import SEED, Range, check_fields

DEFAULT_PROMPTS = [
    "Il était une fois",
    "Le petit prince regarda",
    "ALCESTE : ",
    "La ville de Paris est",
]


@dataclass
class TrainConfig:
    """``causette train``: runs/<name>/data → runs/<name>/checkpoints (+ tb/ for TensorBoard)."""

    # --- hardware
    device: str = "auto"  # auto (cuda > xpu > mps > cpu), cpu, cuda, cuda:1, mps, xpu
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 autocast where it is fast
    compile: Optional[bool] = None  # torch.compile; None = on where it pays (CUDA, Linux CPU)
    seed: int = 1337

    # --- batch and length
    batch_size: int = 16  # sequences per micro-batch and per process
    grad_accum: int = 1  # micro-batches per optimizer step
    max_steps: int = 1000  # optimizer steps
    # At most this many passes over the train tokens (0 = no cap): on a small text, max_steps is
    # lowered so that the model does not learn the text by heart (`causette run SOURCES` sets 2).
    max_epochs: float = 0.0
    max_minutes: float = 0.0  # wall-clock budget of the run (resumes included); 0 = no limit
    # With max_minutes, the LR schedule follows the clock: the run ends on time (±3 %) with its
    # learning rate at min_lr, whatever the speed does (docs/entrainement.md). false: the step
    # schedule, cut short by the budget.
    fit_schedule_to_time: bool = True

    # --- optimisation
    optimizer: Literal["adamw", "muon"] = "adamw"  # muon: Muon for 2-D hidden weights, AdamW for the rest
    lr: float = 1e-3  # peak AdamW learning rate
    min_lr: float = 1e-4  # the schedule ends here, not at zero
    warmup_steps: int = 100
    schedule: Literal["cosine", "wsd", "constant"] = "cosine"
    decay_frac: float = 0.2  # wsd: share of the steps spent decaying
    weight_decay: float = 0.1  # on 2-D weights only (not on norms, biases, embeddings' positions)
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # max global gradient norm; 0 = no clipping
    muon_lr: float = 0.02  # Muon's peak learning rate (its updates are orthogonalised: larger lr)
    muon_momentum: float = 0.95

    # --- evaluation, logging, checkpoints
    eval_every: int = 100  # steps between evaluations (0 = only at the end)
    eval_tokens: int = 32768  # size of the fixed validation set, in tokens (0: no validation at all)
    log_every: int = 10
    sample_tokens: int = 40  # tokens generated from each prompt at every evaluation (0 = none)
    # Minimal pairs of the built-in French grammar suite scored at every evaluation (0 = none):
    # logged as val/grammaire, the share the model gets right (eval/sentence_scores.py).
    grammar_pairs: int = 330
    prompts: list[str] = field(default_factory=lambda: list(DEFAULT_PROMPTS))
    histogram_every: int = 500  # weight histograms in TensorBoard (0 = never)
    tensorboard: bool = True
    ckpt_every: int = 200  # steps between checkpoints (one is always written at the end)
    keep_last: int = 3  # checkpoints kept (the best by val loss is kept too)
    peak_flops: float = 0.0  # for MFU; 0 = measure a bf16 (or fp32) matmul peak at start

    RANGES: ClassVar[dict[str, Range]] = {
        "seed": SEED,
        "batch_size": Range(min=1),
        "grad_accum": Range(min=1),
        "max_steps": Range(min=1),
        "max_epochs": Range(min=0, note="0 = no cap"),
        # A budget in minutes; a billion of them (1,900 years) is already no limit.
        "max_minutes": Range(0, 1e9, note="0 = no limit"),
        "lr": Range(min=0, min_open=True),
        "min_lr": Range(min=0),
        "warmup_steps": Range(min=0),
        "decay_frac": Range(0, 1, min_open=True),
        "weight_decay": Range(min=0, note="0 = none"),
        "beta1": Range(0, 1, max_open=True),
        "beta2": Range(0, 1, max_open=True),
        "grad_clip": Range(min=0, note="0 = no clipping"),
        "muon_lr": Range(min=0, min_open=True),
        "muon_momentum": Range(0, 1, max_open=True),
        "eval_every": Range(min=0, note="0 = only at the end"),
        "eval_tokens": Range(min=0, note="0 = no validation"),
        "log_every": Range(min=1),
        "sample_tokens": Range(min=0, note="0 = none"),
        "grammar_pairs": Range(0, 100_000, note="0 = none"),
        "histogram_every": Range(min=0, note="0 = never"),
        "ckpt_every": Range(min=1),
        "keep_last": Range(min=1),
        "peak_flops": Range(min=0, note="0 = measure it"),
    }

    def validate(self) -> None:
        check_fields(self)
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr ({self.min_lr:g}) must be <= lr ({self.lr:g}): the schedule decays from lr to min_lr")
