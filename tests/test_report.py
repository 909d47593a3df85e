"""The report's plots and SFT table in the learner's language (the whole report: test_pipeline.py)."""

from __future__ import annotations

import json

import pytest

from causette.eval.report import curves_figure, sft_table
from causette.utils.lang import NBSP, NNBSP, using


@pytest.fixture
def run(tmp_path):
    rows = [{"step": s, "kind": "train", "train/loss": 7 - s / 100, "train/lr": 1e-3, "train/tokens_seen": s * 4096}
            for s in range(10, 400, 10)]
    rows += [{"step": s, "kind": "val", "val/loss": 6 - s / 100, "val/bits_per_byte": 2.5 - s / 1000}
             for s in (100, 200, 390)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return tmp_path


def labels(fig) -> tuple[list[str], list[str]]:
    fig.canvas.draw()
    ax = fig.axes[1]
    return [t.get_text() for t in ax.get_xticklabels()], [t.get_text() for t in ax.get_yticklabels()]


def test_plots_in_french_with_short_ticks(run):
    fig = curves_figure(run, "pré-entraînement")
    assert [ax.get_title() for ax in fig.axes] == [f"pré-entraînement{NBSP}: perte",
                                                   f"pré-entraînement{NBSP}: bits par octet"]
    assert fig.axes[0].get_xlabel() == "tokens vus" and fig.axes[0].get_ylabel() == "perte (nats / token)"
    x, y = labels(fig)
    assert any(t.endswith(f"{NBSP}M") for t in x) and all(len(t) <= 7 for t in x)  # "1,2 M", never "1200000"
    assert any("," in t for t in y) and not any("." in t for t in y)


def test_plots_in_english(run):
    with using("en"):
        fig = curves_figure(run, "pretraining")
        x, y = labels(fig)
    assert fig.axes[1].get_title() == "pretraining: bits per byte" and fig.axes[1].get_xlabel() == "tokens seen"
    assert any(t.endswith("M") for t in x) and any("." in t for t in y)


def test_sft_table_in_both_languages():
    ev = {"before": {"loss": 5.304, "perplexity": 201.2, "exact": 0.0}, "after": {"loss": 1.56, "perplexity": 4.8,
                                                                                   "exact": 0.22}}
    assert sft_table(ev) == ["| | avant le SFT | après le SFT |", "|---|---:|---:|",
                             "| perte SFT sur les exemples réservés | 5,304 | 1,560 |",
                             "| perplexité | 201,2 | 4,8 |", f"| réponses exactes | 0{NBSP}% | 22{NBSP}% |"]
    with using("en"):
        assert sft_table(ev)[2:] == ["| held-out SFT loss | 5.304 | 1.560 |", "| perplexity | 201.2 | 4.8 |",
                                     "| exact answers | 0% | 22% |"]
    assert sft_table({}) == []


def test_mfu_against_the_peak_the_run_recorded(tmp_path):
    """The report recomputes MFU from tokens/s against the peak in the checkpoint's state (the one a
    resumed run may have changed), and says which peak; older runs keep their logged MFU."""
    from causette.eval.report import _peak_note, _throughput

    rows = [{"step": s, "kind": "train", "train/tokens_per_s": 1000.0, "train/mfu": 0.9} for s in range(1, 9)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert _throughput(tmp_path, 2e8, 8e11) == (1000.0, 0.25)
    assert _throughput(tmp_path) == (1000.0, 0.9)  # no recorded peak: the log's figure
    peak = {"flops": 8.8e11, "kind": "cached", "source": "cached quiet measurement, ~/.cache/causette/peaks.json"}
    assert _peak_note(peak) == " (pic 880 GFLOP/s, mesuré au calme sur cette machine)"
    busy = {"flops": 1.2345e12, "kind": "busy", "source": "measured on a busy machine, not cached: ..."}
    assert _peak_note(busy) == f" (pic 1{NNBSP}234 GFLOP/s, mesuré sur une machine occupée{NBSP}: MFU sans doute surestimé)"
    with using("en"):
        assert _peak_note(peak) == " (peak 880 GFLOP/s, measured on this machine while quiet)"
    assert _peak_note(None) == "" and _peak_note({"flops": 0}) == ""
