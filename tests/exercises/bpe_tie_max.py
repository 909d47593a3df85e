"""Typical mistake: on a tie, the largest pair wins instead of the smallest."""

import bpe_ok

bpe_ok.TIE_BREAK = max
train = bpe_ok.train
