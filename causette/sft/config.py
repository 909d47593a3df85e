"""Settings of instruction tuning (``sft:`` section of a config file, ``causette sft``).

The training loop is pretraining's (causette/train/trainer.py): ``sft.train`` takes the settings of
``train:`` (causette/train/config.py) with defaults for fine-tuning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional

from causette.model.config import LoRAConfig
from causette.train.config import TrainConfig
from causette.utils.ranges import Range, check_fields


@dataclass
class SFTTrainConfig(TrainConfig):
    """The training loop's settings with defaults for fine-tuning: fewer steps, a gentler lr."""

    # Off by default: batches change length, and compiling (~30 s on 2 CPU cores, more when the
    # lengths vary) only pays over a long fine-tuning; configs/assistant.yaml turns it on
    # (thousands of steps: ~1.2× faster, bench/LOG.md).
    compile: Optional[bool] = False
    batch_size: int = 8
    max_steps: int = 300
    lr: float = 3e-4
    min_lr: float = 3e-5
    warmup_steps: int = 20
    weight_decay: float = 0.0
    eval_every: int = 50
    eval_tokens: int = 0  # unused: SFT evaluates on the held-out conversations
    ckpt_every: int = 100
    sample_tokens: int = 0
    grammar_pairs: int = 0  # unused: the grammar of the chat model is measured by the eval stage
    prompts: list[str] = field(default_factory=list)


@dataclass
class SFTConfig:
    """``causette sft``: a pretrained checkpoint + instruction data → runs/<name>/sft/checkpoints."""

    # JSONL files of conversations (``messages`` or Alpaca records); empty: the demo set in data/.
    data: list[str] = field(default_factory=list)
    # Checkpoint (or run directory) to start from; empty: this run's latest pretraining checkpoint.
    base: str = ""
    val_fraction: float = 0.1  # held-out conversations for the SFT loss and BLEU/chrF
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    train: SFTTrainConfig = field(default_factory=SFTTrainConfig)
    eval_answers: int = 32  # held-out conversations answered for BLEU/chrF (0 = none)
    eval_max_new_tokens: int = 48
    # Conversations in which the assistant uses its tools, generated (causette/sft/tool_data.py,
    # seed sft.train.seed) into runs/<name>/sft/tool_data.jsonl.gz and added to the data; 0 = none.
    tool_data: int = 0

    RANGES: ClassVar[dict[str, Range]] = {
        "val_fraction": Range(0, 1, max_open=True, note="0 = no held-out conversations"),
        "eval_answers": Range(min=0, note="0 = none"),
        "eval_max_new_tokens": Range(min=1),
        "tool_data": Range(min=0, note="0 = no generated tool-use conversations"),
    }

    def validate(self) -> None:
        check_fields(self)
