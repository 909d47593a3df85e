"""Saving and loading: round trip, and a clear error for every kind of mismatch."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from causette.config import load_config
from causette.errors import CausetteError
from causette.checkpoint.weights import load_model, save_model
from causette.model import Transformer

SIZE = ["model.n_layer=2", "model.n_embd=32", "model.n_head=4", "model.vocab_size=64", "model.block_size=16"]


def build(*overrides: str, preset: str = "llama") -> Transformer:
    torch.manual_seed(0)
    return Transformer(load_config(f"model/{preset}", [*SIZE, *overrides]).model).eval()


@pytest.mark.parametrize(
    "preset,extra", [("llama", []), ("gpt2", ["model.tie_embeddings=false"]), ("moe", [])]
)
def test_round_trip_gives_the_same_logits(tmp_path, preset, extra):
    model = build(*extra, preset=preset)
    save_model(model, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]  # no temp
    loaded = load_model(tmp_path / "m", expected_vocab=64)
    assert loaded.cfg == model.cfg and not loaded.training
    idx = torch.randint(0, 64, (2, 10))
    assert torch.equal(loaded(idx)[0], model(idx)[0])
    assert (loaded.lm_head.weight is loaded.wte.weight) == model.cfg.tie_embeddings


def test_files_are_plain_safetensors_and_json(tmp_path):
    model = build()
    save_model(model, tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["format"] == "causette-model" and meta["dtype"] == "float32" and meta["model"]["n_layer"] == 2
    tensors = load_file(tmp_path / "model.safetensors")
    assert "lm_head.weight" not in tensors  # tied: stored once, as wte.weight
    assert torch.equal(tensors["wte.weight"], model.wte.weight)


def test_bf16_model_round_trip(tmp_path):
    model = build().to(torch.bfloat16)
    save_model(model, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["dtype"] == "bfloat16"
    loaded = load_model(tmp_path, dtype=torch.bfloat16)
    assert torch.equal(loaded.wte.weight, model.wte.weight)


def test_vocab_different_from_the_tokenizer(tmp_path):
    save_model(build(), tmp_path)
    with pytest.raises(
        CausetteError, match=r"config\.json: the model's vocab_size is 64 but the tokenizer has 80"
    ):
        load_model(tmp_path, expected_vocab=80)


def _edit_config(path, **changes):
    meta = json.loads((path / "config.json").read_text())
    meta["model"].update(changes)
    (path / "config.json").write_text(json.dumps(meta))


def test_shape_mismatch_names_the_tensor(tmp_path):
    save_model(build(), tmp_path)
    _edit_config(tmp_path, vocab_size=80)
    with pytest.raises(
        CausetteError,
        match=r"model\.safetensors: tensor 'wte\.weight' has shape \(64, 32\) but the "
        r"config expects \(80, 32\)",
    ):
        load_model(tmp_path)


def test_missing_and_unexpected_tensors(tmp_path):
    save_model(build(), tmp_path)
    _edit_config(tmp_path, tie_embeddings=False)
    with pytest.raises(CausetteError, match="missing 'lm_head.weight'"):
        load_model(tmp_path)
    _edit_config(tmp_path, tie_embeddings=True, n_layer=1)
    with pytest.raises(CausetteError, match=r"unexpected 'blocks\.1\..*and \d+ more"):
        load_model(tmp_path)


def test_bad_config_json(tmp_path):
    save_model(build(), tmp_path)
    _edit_config(tmp_path, n_layers=3)
    with pytest.raises(CausetteError, match=r"config\.json: unknown key 'model\.n_layers'"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CausetteError, match="not a readable JSON file"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text('{"vocab_size": 64}')
    with pytest.raises(CausetteError, match="not a Causette model config"):
        load_model(tmp_path)
    with pytest.raises(CausetteError, match="no such file"):
        load_model(tmp_path / "nowhere")


def test_bad_weights_file(tmp_path):
    save_model(build(), tmp_path)
    weights = tmp_path / "model.safetensors"
    tensors = load_file(weights)
    save_file(
        {k: v.to(torch.bfloat16) for k, v in tensors.items()}, weights
    )  # config.json still says float32
    with pytest.raises(CausetteError, match="is BF16, expected F32"):
        load_model(tmp_path)
    save_file({**tensors, "wte.weight": tensors["wte.weight"].long()}, weights)
    with pytest.raises(CausetteError, match="'wte.weight' is I64"):
        load_model(tmp_path)
    weights.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00garbage!garbage!")
    with pytest.raises(CausetteError, match="not a valid safetensors file"):
        load_model(tmp_path)
    weights.unlink()
    with pytest.raises(CausetteError, match=r"model\.safetensors: no such file"):
        load_model(tmp_path)
