"""The recipes by time budget (configs/heure.yaml, nuit.yaml, heure-gpu.yaml): they load, their depth
is chosen from their budget, and the GPU one says clearly where no GPU is."""

from __future__ import annotations

import pytest
import torch

from causette.config import load_config, with_depth
from causette.errors import CausetteError
from causette.model.counting import count_params
from causette.pipeline import run_pipeline
from causette.train.sizing import Candidate, choose

RECIPES = {"heure": 40, "nuit": 450, "heure-gpu": 50}


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_loads_with_depth_auto_and_its_budget(name):
    cfg = load_config(name)
    assert cfg.model.depth == "auto" and cfg.train.max_minutes == RECIPES[name]
    assert cfg.model.vocab_size == cfg.tokenizer.vocab_size == 8192
    assert len(cfg.corpus.sources) == 3 and cfg.sft.tool_data == 10000
    assert {"model.n_layer", "model.n_embd", "train.lr"} <= cfg.dial_owned
    six = with_depth(cfg, 6)
    assert (six.model.n_layer, six.model.n_embd) == (6, 384)
    assert six.train.batch_size == (64 if name == "heure-gpu" else 16)  # the GPU recipe's own batch wins


def test_longer_budget_chooses_a_deeper_model():
    """The same measured speeds (tokens/s of each depth on this CPU, bench/LOG.md) chosen for an hour and a night."""
    speeds = {2: 36_000, 3: 22_000, 4: 14_000, 5: 8_500, 6: 6_300, 8: 3_300}
    cfg = load_config("heure")
    params = {d: count_params(with_depth(cfg, d).model).total for d in speeds}

    def depth_for(minutes):
        cands = [Candidate(d, params[d], s, s * minutes * 60 * 0.9) for d, s in speeds.items()]
        return choose(cands).depth

    assert depth_for(40) < depth_for(450)
    assert depth_for(8) < depth_for(40)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the recipe would run")
def test_gpu_recipe_stops_at_once_without_a_gpu(tmp_path):
    cfg = load_config("heure-gpu", [f"run.dir={tmp_path}"])
    with pytest.raises(CausetteError, match=r"device 'cuda' is not available on this machine"):
        run_pipeline(cfg, progress=False, echo=lambda s: None)
    assert not (tmp_path / "heure-gpu" / "corpus").exists()  # nothing was built before the check
