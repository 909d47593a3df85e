"""``python -m causette.explain TOPIC --png FILE``: every topic with a picture writes a real PNG,
the same bytes twice, and a topic without one is a one-line error."""

from __future__ import annotations

import pytest

from causette.explain.cli import main, run
from causette.explain.pictures import PICTURES

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ARGS = {
    "attention": ["attention", "Le chat dort."],
    "positions": ["positions"],
    "schedule": ["schedule", "--steps", "300", "--warmup", "20"],
    "moe": ["moe", "Le chat dort."],
}


def test_every_picture_has_a_test_case():
    assert set(PICTURES) == set(ARGS)


@pytest.mark.parametrize("topic", sorted(ARGS))
def test_picture_is_a_reproducible_png(topic, tmp_path):
    first, second = tmp_path / "a" / f"{topic}.png", tmp_path / f"{topic}-again.png"
    out = run(ARGS[topic] + ["--png", str(first)])  # a missing folder is created
    assert out.rstrip().endswith(str(first))
    run(ARGS[topic] + ["--png", str(second)])
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
    assert main(["tokens", "Le chat.", "--png", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("erreur\u00a0: ") and "n'a pas d'image" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()
