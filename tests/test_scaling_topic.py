"""`explain scaling`: the grid of depths × budgets read, its best cells and doublings computed right."""

from __future__ import annotations

import json

import pytest

from causette.errors import CausetteError
from causette.explain.cli import run
from causette.explain.scaling import SHIPPED, best_by_budget, doubling_lines, read_grid
from causette.train.sizing import TOKENS_PER_PARAM

NBSP = "\u00a0"


def _cell(depth, minutes, bpb, tokens=1e6, params=1e6):
    return {"depth": depth, "minutes": minutes, "val_bpb": bpb, "tokens": tokens, "params": params,
            "tokens_per_param": tokens / params, "flops": 6 * params * tokens, "grammar": 0.7, "extra": []}


GRID = {"machine": {"threads": 2, "cpu": "test CPU"},
        "cells": [_cell(2, 2, 2.0, 4e6, 1e6), _cell(4, 2, 2.1, 1e6, 4e6),
                  _cell(2, 4, 1.9, 8e6, 1e6), _cell(4, 4, 1.8, 2e6, 4e6),
                  _cell(4, 8, 1.6, 4e6, 4e6, ), {**_cell(6, 8, 1.0), "extra": ["train.lr=1"]}]}


def test_best_cells_and_doublings(tmp_path):
    cells = read_grid(_write(tmp_path, GRID))["cells"]
    assert len(cells) == 5  # the cell run with extra settings is not part of the picture
    assert [(c["minutes"], c["depth"]) for c in best_by_budget(cells)] == [(2, 2), (4, 4), (8, 4)]
    lines = doubling_lines(cells)
    assert f"× 2,0 de temps (2 → 4 min, chacun à sa meilleure profondeur){NBSP}: 2,000 → 1,800 bits par octet " \
           f"(10,0{NBSP}% de mieux)" in lines
    assert f"2 min{NBSP}: profondeur 2 → 4 (× 4,0 paramètres, × 0,25 tokens vus){NBSP}: 2,000 → 2,100 (moins bien)" in lines
    assert f"4 min{NBSP}: profondeur 2 → 4 (× 4,0 paramètres, × 0,25 tokens vus){NBSP}: 1,900 → 1,800 (mieux)" in lines


def test_topic_text_and_target(tmp_path):
    out = run(["scaling", "--file", str(_write(tmp_path, GRID))])
    assert f"2 min{NBSP}: la meilleure profondeur est 2 (4,0 tokens par paramètre)" in out
    # geometric mean of the best cells' tokens per parameter: (4 · 0.5 · 1)^(1/3) = 1.26
    assert "Cette grille désigne ~1,3 tokens par paramètre" in out
    assert f"est le plus proche de {str(TOKENS_PER_PARAM).removesuffix('.0').replace('.', ',')} (causette" in out


def test_unreadable_grids_say_so(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(CausetteError, match="grille illisible"):
        read_grid(bad)
    with pytest.raises(CausetteError, match="aucune mesure"):
        read_grid(_write(tmp_path, {"cells": []}))


def test_shipped_grid_is_complete():
    cells = read_grid(SHIPPED)["cells"]
    assert len({c["depth"] for c in cells}) >= 4 and len({c["minutes"] for c in cells}) >= 3
    assert all(c["tokens"] > 0 and 0 < c["val_bpb"] < 8 for c in cells)


def _write(tmp_path, grid):
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(grid), encoding="utf-8")
    return path
