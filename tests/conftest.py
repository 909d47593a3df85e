"""Shared test set-up.

Test models are tiny: one thread is faster than two for them (no synchronisation), and it
keeps timings steady when the machine is busy.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/helpers.py
