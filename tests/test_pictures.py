"""``python -m causette.explain TOPIC --png FILE``: every topic with a picture writes a real PNG,
the same bytes twice, and a topic without one is a one-line error."""

from __future__ import annotations

import pytest
import torch

from causette.explain.cli import main, run
from causette.explain.pictures import PICTURES

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ARGS = {
    "attention": ["attention", "Le chat dort."],
    "positions": ["positions"],
    "schedule": ["schedule", "--steps", "300", "--warmup", "20"],
    "moe": ["moe", "Le chat dort."],
    "curves": ["curves", "--checkpoint", "{run}"],
    "tokens": ["tokens", "Qu'aujourd'hui les chevaux s'éloignaient."],
    "mask": ["mask", "Le chat dort sur le lit.", "--window", "3"],
    "cache": ["cache", "Le chat dort sur le lit.", "--prefill", "4"],
    "progression": ["progression", "--runs", "{runs}"],
    "scaling": ["scaling"],
}


def write_step_runs(root) -> str:
    """Two runs of the progression's steps with their validation curves (no checkpoint: the
    picture's panel by place in the context stays empty; tests/test_progression.py draws it)."""
    import json

    for name, curve in (("etape1-bigramme", [(100, 2.2), (200, 2.1)]), ("etape5-transformer", [(100, 2.3), (200, 1.9)])):
        (root / name).mkdir(parents=True, exist_ok=True)
        rows = [{"step": s, "kind": "val", "val/bits_per_byte": v} for s, v in curve]
        (root / name / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return str(root)


def write_run(root, val, train) -> str:
    """A run folder whose metrics.jsonl holds these (step, loss) pairs."""
    import json

    root.mkdir(parents=True, exist_ok=True)
    rows = [{"step": s, "kind": "train", "train/loss": v} for s, v in train]
    rows += [{"step": s, "kind": "val", "val/loss": v} for s, v in val]
    (root / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return str(root)


OVERFIT = dict(val=[(50, 1.48), (100, 1.43), (150, 1.45)], train=[(s, 3.0 - s / 60) for s in range(10, 160, 10)])


def test_every_picture_has_a_test_case():
    assert set(PICTURES) == set(ARGS)


@pytest.mark.parametrize("topic", sorted(ARGS))
def test_picture_is_a_reproducible_png(topic, tmp_path):
    first, second = tmp_path / "a" / f"{topic}.png", tmp_path / f"{topic}-again.png"
    args = [a.replace("{run}", write_run(tmp_path / "run", **OVERFIT)).replace("{runs}", write_step_runs(tmp_path / "runs"))
            for a in ARGS[topic]]
    out = run(args + ["--png", str(first)])  # a missing folder is created
    assert out.rstrip().endswith(str(first))
    run(args + ["--png", str(second)])
    data = first.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5_000
    assert data == second.read_bytes()  # reproducible: no date, no version in the file
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 400 and height >= 300
    assert not list(first.parent.glob(".*.tmp"))  # written atomically, nothing left over


def test_attention_picture_has_one_map_per_layer_and_head(tmp_path):
    """More heads and layers, a bigger grid: the picture follows the model."""
    small, big = tmp_path / "small.png", tmp_path / "big.png"
    run(["attention", "Le chat dort.", "--set", "model.n_layer=1", "--png", str(small)])
    run(["attention", "Le chat dort.", "--set", "model.n_layer=3", "--png", str(big)])
    height = lambda p: int.from_bytes(p.read_bytes()[20:24], "big")  # noqa: E731
    assert height(big) > 2 * height(small)


def test_a_topic_without_picture_says_so(tmp_path, capsys):
    assert main(["mlp", "Le chat.", "--png", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("erreur\u00a0: ") and "n'a pas d'image" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


# ------------------------------------------------------------------------------ curves: the diagnosis

STEPS = list(range(10, 1010, 10))


@pytest.mark.parametrize(
    "val, train, kind",
    [
        (OVERFIT["val"], OVERFIT["train"], "surapprentissage"),
        ([(200, 4.9), (400, 4.4), (600, 4.2)], [(s, 6 - s / 300) for s in STEPS], "baissait encore"),
        ([(200, 4.9), (400, 4.11), (600, 4.115)], [(s, 6 - s / 300) for s in STEPS], "plateau"),
        ([(200, 4.9), (400, 4.11), (600, 4.104)], [(s, 6 - s / 300) for s in STEPS], "plateau"),
        ([(200, 4.9), (400, 4.5), (600, 5.5)], [(s, 3.0 if s < 500 else 6.0) for s in STEPS], "diverge"),
    ],
)
def test_curves_diagnosis(val, train, kind, tmp_path):
    out = run(["curves", "--checkpoint", write_run(tmp_path / "r", val, train)])
    assert kind in out.splitlines()[-1]
    best = min(val, key=lambda sv: sv[1])
    assert f"au pas {best[0]}" in out


def test_curves_of_a_checkpoint_inside_the_run_and_errors(tmp_path, capsys):
    root = write_run(tmp_path / "r", **OVERFIT)
    (tmp_path / "r" / "checkpoints" / "step_0000150").mkdir(parents=True)
    (tmp_path / "r" / "data").mkdir()
    (tmp_path / "r" / "data" / "meta.json").write_text("{}")
    assert "surapprentissage" in run(["curves", "--checkpoint", str(tmp_path / "r" / "checkpoints" / "step_0000150")])
    assert main(["curves"]) == 1 and "--checkpoint runs/demo" in capsys.readouterr().err
    assert main(["curves", "--checkpoint", str(tmp_path)]) == 1 and "pas de metrics.jsonl" in capsys.readouterr().err
    (tmp_path / "r" / "metrics.jsonl").write_text('{"step": 1, "kind": "train", "train/loss": 2}\nnot json\n')
    assert main(["curves", "--checkpoint", root]) == 1
    assert "metrics.jsonl:2:" in capsys.readouterr().err


def test_curves_accepts_a_sentence_and_says_it_is_unused(tmp_path):
    root = write_run(tmp_path / "r", **OVERFIT)
    out = run(["curves", "Le roi dort.", "--checkpoint", root])
    assert out.startswith("note\u00a0: ") and "la phrase" in out.splitlines()[0]
    assert out.split("\n\n", 1)[1] == run(["curves", "--checkpoint", root])


# ------------------------------------------------------------------------- mask and cache: the data


def test_mask_is_measured_on_the_model_and_matches_the_rule():
    from causette.explain.cache import mask_rule

    out = run(["mask", "Le chat dort sur le lit.", "--window", "3"])
    assert "oui" in out.splitlines()[-1]
    assert mask_rule(4).int().tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]
    assert mask_rule(4, 2).int().tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]


def test_mask_measured_cells():
    from argparse import Namespace

    from causette.explain.cache import mask_rule, measured_mask
    from causette.explain.common import build, encode

    s = build(Namespace(checkpoint=None, tokenizer=None, config=None, set=["model.n_layer=1"], seed=0))
    ids = encode(s.tok, "Le chat dort sur le lit.")
    T = len(ids)
    causal, band = measured_mask(s, ids), measured_mask(s, ids, window=3)
    assert torch.equal(causal, mask_rule(T)) and int(causal.sum()) == T * (T + 1) // 2
    assert torch.equal(band, mask_rule(T, 3)) and int(band.sum()) == 1 + 2 + 3 * (T - 2)
    assert s.model.blocks[0].attn.window is None  # the switch is put back


def test_cache_steps_count_what_each_pass_computes():
    from argparse import Namespace

    from causette.explain.cache import cache_steps
    from causette.explain.common import build, encode

    s = build(Namespace(checkpoint=None, tokenizer=None, config=None, set=[], seed=0))
    ids = encode(s.tok, "Le chat dort sur le lit.")
    T = len(ids)
    steps, diff = cache_steps(s, ids, 4)
    assert diff < 1e-4  # the cache gives the logits of one pass without it
    assert len(steps) == 1 + T - 4
    assert steps[0].queries == [0, 1, 2, 3] and steps[0].keys == 4 and steps[0].cells == 10
    for k, st in enumerate(steps[1:], start=1):
        p = 3 + k
        assert st.queries == [p] and st.written == [p] and st.keys == p + 1 and st.cells == p + 1
        assert st.cells_without_cache == (p + 1) * (p + 2) // 2
    # a sliding window of 3: each decoding step reads 3 keys
    s.model.blocks[0].attn.window = 3
    windowed, _ = cache_steps(s, ids, 4)
    assert [st.keys for st in windowed[1:]] == [3] * (T - 4)
    out = run(["cache", "Le chat dort sur le lit.", "--prefill", "4"])
    assert f"{sum(st.cells for st in steps)} avec le cache" in out
    with pytest.raises(SystemExit) as e:  # refused while the options are read (one line, exit 2)
        main(["cache", "Le chat.", "--prefill", "0"])
    assert e.value.code == 2
    assert main(["cache", "Le chat.", "--prefill", "50"]) == 1  # beyond the sentence: the topic says so


# ----------------------------------------------------------------------------- curves --examples


def test_curves_examples_are_real_trainings_with_the_expected_diagnoses(tmp_path):
    """Three real tiny trainings (~15 s on 2 cores): each panel gets the diagnosis it illustrates."""
    from argparse import Namespace

    from causette.explain.curves import example_curves
    from causette.explain.pictures import curves_examples_picture

    args = Namespace(examples=True, example_steps=300)
    runs = example_curves(args)
    assert [ex.curves.diagnosis()[0] for ex in runs] == [ex.expected for ex in runs]
    assert [ex.expected for ex in runs] == ["still-learning", "diverging", "overfitting"]
    path = curves_examples_picture(args, tmp_path / "examples.png")  # the same runs, not trained again
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and int.from_bytes(data[16:20], "big") >= 1200
    with pytest.raises(Exception, match="--examples"):
        run(["curves", "--examples", "--checkpoint", str(tmp_path)])
