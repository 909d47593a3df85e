"""Weight-only int8 quantisation (causette/model/quantize.py): the rounding of one matrix,
the Int8Linear layer on both its paths (the int8 kernel and the dequantising fallback), a whole
quantised model against its float original, the options of ``load_checkpoint`` and
``causette generate``, and the refusals."""

from __future__ import annotations

import argparse
import copy
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from causette.checkpoint.load import load_checkpoint
from causette.config import load_config
from causette.errors import CausetteError
from causette.inference.cli import register
from causette.inference.engine import Engine
from causette.inference.sampling import SamplingParams
from causette.model import Transformer
from causette.model.config import LoRAConfig
from causette.model.lora import apply_lora
from causette.model.quantize import Int8Linear, is_quantized, quantize_model, quantize_weight_int8


def tiny_model(init_std: float = 0.1, extra: tuple[str, ...] = (), seed: int = 0) -> Transformer:
    cfg = load_config(
        "model/llama",
        ["model.n_layer=2", "model.n_embd=64", "model.n_head=4", "model.n_kv_head=2",
         "model.vocab_size=400", "model.block_size=64", f"model.init_std={init_std}", *extra],
    ).model
    torch.manual_seed(seed)
    return Transformer(cfg).eval()


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


class NoText:
    """The little of a tokenizer the engine needs when nobody reads the text."""

    special_ids: list[int] = []

    def incremental_decoder(self):
        return SimpleNamespace(push=lambda token: "")


# ============================================================================== one matrix


def test_quantize_weight_rounds_each_row_with_its_own_scale():
    w = torch.tensor([[0.5, -1.27, 0.01], [0.0, 0.0, 0.0], [1e-3, 2e-3, -4e-3]])
    q, scale = quantize_weight_int8(w)
    assert q.dtype == torch.int8 and scale.dtype == torch.bfloat16 and scale.shape == (3,)
    assert q[0].tolist() == [50, -127, 1]  # scale ≈ 1.27 / 127 = 0.01
    assert q[1].tolist() == [0, 0, 0]  # an all-zero row stays zero
    assert q[2].tolist()[2] in (-127, -126)  # a small row uses the whole range too (bf16 scale: ±1 level)
    # every weight within half a step of its integer, and no integer beyond ±127
    err = (w - q.float() * scale.float()[:, None]).abs()
    assert (err <= scale.float()[:, None] / 2 + 1e-9).all()
    assert q.abs().max() <= 127


def test_scales_are_rounded_up_to_bf16_so_the_largest_weight_stays_in_range():
    torch.manual_seed(0)
    w = torch.randn(256, 64)
    q, scale = quantize_weight_int8(w)
    assert (scale.float() * 127 >= w.abs().amax(1)).all()
    assert (q.abs().amax(1) >= 126).all()  # yet the range is used: at most one level lost


# ============================================================================== Int8Linear


@pytest.mark.parametrize("in_features", [64, 40])  # 64: the int8 kernel; 40 (not a multiple of 16): fallback
@pytest.mark.parametrize("bias", [False, True])
def test_int8_linear_matches_the_dequantised_product(in_features, bias):
    torch.manual_seed(0)
    linear = nn.Linear(in_features, 48, bias=bias)
    layer = Int8Linear.from_linear(linear)
    assert layer.uses_kernel(torch.zeros(1)) == (in_features % 16 == 0)
    x = torch.randn(2, 5, in_features)
    y = layer(x)
    assert y.shape == (2, 5, 48) and y.dtype == torch.float32
    exact = F.linear(x, layer.dequantized(), linear.bias)
    assert rel_error(y, exact) < 1e-2  # bf16 input and output of the kernel: a few 1e-3
    assert rel_error(y, linear(x)) < 2e-2  # and the int8 weights themselves: close to the float layer


def test_int8_linear_on_a_sliced_input_and_on_no_rows():
    torch.manual_seed(0)
    layer = Int8Linear.from_linear(nn.Linear(64, 32, bias=False))
    x = torch.randn(3, 7, 64)
    last = x[:, -1:]  # what the model feeds the output layer: rows that are not back to back
    assert torch.allclose(layer(last), layer(last.contiguous()))
    assert layer(torch.zeros(0, 64)).shape == (0, 32)
    assert layer(torch.randn(4, 64).bfloat16()).dtype == torch.bfloat16


# ============================================================================== a whole model


def test_quantized_model_logits_are_close_to_float():
    model = tiny_model(init_std=0.1)
    q = quantize_model(copy.deepcopy(model))
    linears = [m for m in q.modules() if type(m) is nn.Linear]
    assert linears == [] and is_quantized(q)
    assert sum(isinstance(m, Int8Linear) for m in q.modules()) == 2 * 4 + 1  # 4 per block + output layer
    # the tied embedding keeps its float matrix; the output layer got an int8 copy
    assert q.wte.weight.dtype == torch.float32 and torch.equal(q.wte.weight, model.wte.weight)
    assert isinstance(q.lm_head, Int8Linear)
    idx = torch.randint(0, 400, (3, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        exact, _ = model(idx)
        approx, _ = q(idx)
    # tolerance: 2 % relative (L2) on the logits; measured 0.7 % at init_std 0.02 and ~1 % here
    assert rel_error(approx, exact) < 0.02
    assert (approx.argmax(-1) == exact.argmax(-1)).float().mean() > 0.95


def test_greedy_tokens_of_a_quantized_model_mostly_equal_the_float_ones():
    model = tiny_model(init_std=0.1)
    q = quantize_model(copy.deepcopy(model))
    prompts = torch.randint(0, 400, (8, 8), generator=torch.Generator().manual_seed(1)).tolist()
    params = SamplingParams(temperature=0, max_new_tokens=24)
    exact = Engine(model, NoText()).generate(prompts, params)
    approx = Engine(q, NoText()).generate(prompts, params)
    same = sum(a.token_ids == b.token_ids for a, b in zip(exact, approx))
    assert same >= 6  # 8/8 when measured; a near tie may legitimately flip a row


def test_moe_router_stays_float():
    model = tiny_model(extra=("model.n_experts=4", "model.experts_per_token=2"))
    q = quantize_model(copy.deepcopy(model))
    router = q.blocks[0].mlp.router
    assert type(router) is nn.Linear
    assert isinstance(q.blocks[0].mlp.experts[0].up, Int8Linear)
    idx = torch.randint(0, 400, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert rel_error(q(idx)[0], model(idx)[0]) < 0.02


def test_refusals():
    with pytest.raises(CausetteError, match="unknown quantisation"):
        quantize_model(tiny_model(), "int4")
    model = tiny_model()
    assert quantize_model(model, "none") is model and not is_quantized(model)
    lora = tiny_model()
    apply_lora(lora, LoRAConfig(r=2, alpha=4, targets=("qkv",)))
    with pytest.raises(CausetteError, match="merge the LoRA adapters"):
        quantize_model(lora)
    with pytest.raises(CausetteError, match="no linear layer"):
        quantize_model(nn.Sequential(nn.ReLU(), nn.Embedding(4, 4)))


# ============================================================================== loading and the CLI


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from causette.checkpoint.steps import save_checkpoint
    from causette.tokenizer import train_tokenizer
    from causette.tokenizer.config import TokenizerConfig

    root = tmp_path_factory.mktemp("run")
    tok = train_tokenizer(
        TokenizerConfig(vocab_size=300, workers=1), ["Le petit chat dort près de la fenêtre. " * 200],
        out_dir=root / "tokenizer",
    )
    model = tiny_model(extra=(f"model.vocab_size={tok.vocab_size}",))
    save_checkpoint(root / "checkpoints", 1, model, None, state={"stage": "pretrain"},
                    tokenizer_file=root / "tokenizer" / "tokenizer.json")
    return root


def test_load_checkpoint_quantizes_on_request(checkpoint):
    plain = load_checkpoint(checkpoint, device="cpu")
    q = load_checkpoint(checkpoint, device="cpu", quantize="int8")
    assert not is_quantized(plain.model) and is_quantized(q.model)
    assert "int8" in q.describe() and "int8" not in plain.describe()
    count = plain.describe().split("(")[1].split(" ")[0]  # e.g. "0.1M": counted before quantising
    assert q.describe().split("(")[1].startswith(count)
    with pytest.raises(CausetteError, match="unknown quantisation"):
        load_checkpoint(checkpoint, device="cpu", quantize="int4")


def test_generate_command_with_quantize(checkpoint, capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    base = ["generate", "--checkpoint", str(checkpoint), "--prompt", "Le petit", "--max-new-tokens", "8",
            "--temperature", "0"]
    for extra in ([], ["--quantize", "int8"]):
        args = parser.parse_args(base + extra)
        assert args.func(args) == 0
        assert capsys.readouterr().out.startswith("Le petit")
    with pytest.raises(SystemExit):
        parser.parse_args(base + ["--quantize", "int4"])
