"""``python -m causette.explain``: each topic prints what docs/ says it shows, and the numbers hold.

The topics run in-process on the random demo model (the tokenizer is learned once and cached);
one test goes through a saved checkpoint, one through the command line.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pytest
import torch

from causette import explain
from causette.explain.cli import build_parser
from causette.explain.cli import run as run_in
from causette.tokenizer.io import save_tokenizer


def run(argv: list[str]) -> str:
    """The topic's text in English: the numbers below are read in English format (French: test_explain_fr.py)."""
    return run_in([*argv, "--lang", "en"])


def numbers(line: str) -> list[float]:
    return [float(x) for x in re.findall(r"[-+]?\d+(?:\.\d+)?(?:e[-+]\d+)?", line.replace(",", ""))]


def line_with(text: str, start: str) -> str:
    found = [ln for ln in text.splitlines() if ln.lstrip().startswith(start)]
    assert found, f"no line starting with {start!r} in:\n{text}"
    return found[0]


def test_topics():
    assert set(explain.TOPICS) == {
        "tokens", "embeddings", "attention", "heads", "mask", "cache", "positions", "mlp", "model", "moe",
        "schedule", "muon", "curves", "sampling", "lora", "loss", "bleu", "progression", "scaling",
    }


def test_tokens_round_trip_and_merges_replayed():
    out = run(["tokens", "Qu'est-ce que l'été ?"])
    assert "decode(encode(text)) == text: True" in out
    # the default pattern is GPT-4's: the apostrophe starts the next chunk
    assert "pre-tokenisation chunks: Qu | 'est | -ce | ␣que | ␣l | 'été | ␣?" in out
    # "'été" starts as 6 bytes (é is two) and ends as the token(s) the encoder gives
    steps = out.split("BPE on the longest chunk")[1].splitlines()
    assert steps[1].split() == ["bytes", "'", "\\xc3", "\\xa9", "t", "\\xc3", "\\xa9"]
    assert steps[2:] and all(ln.startswith("  rank") for ln in steps[2:])


def test_bpe_steps_end_where_the_encoder_ends():
    tok = explain.demo_tokenizer()
    for word in ("aujourd", "maintenant", "élève", "xyzw"):
        last = explain.bpe_steps(tok, word.encode())[-1].split()
        pieces = last[2:] if last[0] == "rang" else last[1:]  # French by default: "rang", "octets"
        assert [explain.label(tok, i) for i in tok.encode(word)] == pieces


def test_attention_rows_sum_to_one_and_match_the_fused_kernel():
    out = run(["attention", "Le chat dort.", "--layer", "1", "--head", "3"])
    assert "layer 1, head 3 (of 4)" in out
    assert set(numbers(line_with(out, "row sums:"))) == {1.0}
    assert numbers(line_with(out, "all heads recomputed"))[-1] < 1e-5
    mask = out.split("causal mask")[1].split("scores")[0].strip().splitlines()[2:]
    for i, row in enumerate(mask):
        cells = row.split()[2:]
        assert cells == ["1"] * (i + 1) + ["0"] * (len(cells) - i - 1)


def test_attention_by_hand_equals_the_model_for_every_family():
    for overrides in ([], ["model.pos=learned", "model.norm=layernorm", "model.mlp=gelu", "model.bias=true"],
                      ["model.qk_norm=true", "model.n_kv_head=1"]):
        args = build_parser().parse_args(["attention", *sum((["--set", o] for o in overrides), [])])
        s = explain.build(args)
        ids = explain.encode(s.tok, "Il était une fois un roi.")
        attn = s.model.blocks[2].attn
        (x, rope, _), out = explain.capture(attn, s.model, ids)
        with torch.no_grad():
            _, weights, y = explain.attention_by_hand(attn, x, rope)
        assert torch.allclose(y, out, atol=1e-6)
        assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:2]))
        assert (weights.triu(1) == 0).all()


def test_heads_show_the_grouping_and_cache_sizes():
    out = run(["heads", "Le chat dort."])
    assert "query head → key/value head: 0→0, 1→0, 2→1, 3→1" in out
    assert "multi-head (4 kv heads) 4,096 bytes, this model (2) 2,048 bytes, multi-query (1) 1,024 bytes" in out


def test_positions_relative_property():
    out = run(["positions"])
    dots = numbers(line_with(out, "pe[p]·pe[p+3]").split(":")[1])
    assert dots[0] == dots[1] == dots[2]
    scores: dict[int, set[float]] = {}
    table = out.split("score q·k")[1].splitlines()[2:9]
    for row in table:
        m, n, gap, score = numbers(row)
        scores.setdefault(int(gap), set()).add(score)
    assert all(len(v) == 1 for v in scores.values()) and len(scores) == 3


def test_mlp_norms_and_residual_stream():
    out = run(["mlp"])
    assert "LayerNorm (x - mean)/std = [0.447, -1.342, -0.447, 1.342]" in out
    assert "RMSNorm   x/rms          = [0.956, -0.478, 0.239, 1.673]" in out
    assert "swiglu, 256 → 704 → 256" in out
    for i in range(4):
        entering, normed = numbers(line_with(out, f"block {i} "))[1:]
        assert abs(normed - 1) < 0.02 and entering < 0.5


def test_model_counts_agree():
    out = run(["model", "Le chat dort."])
    total = numbers(line_with(out, "total "))
    assert total[0] == total[1] == 3_475_712  # demo preset with the 2,048-token tokenizer
    assert "lm_head         (1, 6, 2048)" in out or "(1, 7, 2048)" in out
    assert "output layer: tied" in out


def test_moe_routing():
    out = run(["moe", "Le chat dort sur le lit."])
    assert "8 experts, each token goes to its best 2 + the shared expert" in out
    load = numbers(line_with(out, "load (share").split(":")[1])
    assert abs(sum(load[1::2]) - 1) < 0.05  # "E0 0.14, E1 0.29, ...": every other number
    for row in out.split("output =")[1].split("load")[0].strip().splitlines():
        weights = [float(w) for w in re.findall(r"(\d\.\d\d)·E", row)]
        assert len(weights) == 2 and abs(sum(weights) - 1) < 0.011
    with pytest.raises(Exception, match="no experts"):
        run(["moe", "--config", "model/demo"])


def test_schedule_and_muon():
    out = run(["schedule", "--steps", "100", "--warmup", "10"])
    assert line_with(out, "0 ").split()[1] == "2.00e-04"  # step 0: lr/warmup
    assert line_with(out, "100 ").split()[1] == "2.00e-04"  # the end: min_lr, never 0
    out = run(["muon"])
    grad_ratio = numbers(line_with(out, "gradient (SGD)"))[-1]
    muon_ratio = numbers(line_with(out, "Muon "))[-1]
    assert grad_ratio > 900 and muon_ratio < 10


def test_sampling_filters_on_toy_logits():
    out = run(["sampling", "--logits", "3", "2.5", "1", "0.5", "0", "-1", "--temperature", "0.8",
               "--top-k", "4", "--top-p", "0.9"])
    rows = {ln.split()[0]: ln.split()[1:] for ln in out.splitlines() if re.match(r"t\d ", ln)}
    assert rows["t4"][3] == "0.000" and rows["t2"][4] == "0.000" and rows["t1"][4] != "0.000"
    assert sum(int(r[-1]) for r in rows.values()) == 1000
    assert "greedy (temperature 0) always takes 't0'" in out
    p = torch.tensor([3.0, 2.5, 1, 0.5, 0, -1]).softmax(0)
    assert rows["t0"][1] == f"{p[0]:.3f}"


def test_lora_fresh_adapter_changes_nothing_and_merges():
    out = run(["lora"])
    assert "fresh adapter (B = 0): max |logits - base| = 0.0e+00" in out
    assert numbers(line_with(out, "after an update of B"))[-1] < 1e-4
    assert "A (8, 256) + B (512, 8) = 6,144 trainable" in out


def test_loss_baselines():
    out = run(["loss", "Il était une fois un roi."])
    assert f"loss ln 2048 = {math.log(2048):.3f}" in out
    loss = numbers(line_with(out, "loss = mean"))[0]
    assert abs(loss - math.log(2048)) < 0.3  # an untrained model is about uniform
    unigram = numbers(line_with(out, "unigram model").split("bits per byte")[1])[0]
    uniform = numbers(line_with(out, "uniform guess").split("bits per byte")[1])[0]
    assert unigram < uniform


def test_bleu_and_chrf():
    out = run(["bleu", "Le chat dort.", "Le chat dort."])
    assert line_with(out, "BLEU").startswith("BLEU 100.0") and "chrF 100.0" in out
    assert "exact answer: True" in out
    out = run(["bleu", "C'est un roman de George Sand.", "C'est un roman, écrit par George Sand."])
    bleu, chrf = numbers(line_with(out, "BLEU"))[0], numbers(line_with(out, "chrF"))[0]
    assert 0 < bleu < chrf < 100


def test_deterministic():
    assert run(["attention", "Le chat dort."]) == run(["attention", "Le chat dort."])
    assert run(["embeddings", "roi"]) != run(["embeddings", "roi", "--seed", "1"])


def test_checkpoint_is_used(tmp_path):
    from causette.checkpoint.weights import save_model
    from causette.model.config import ModelConfig
    from causette.model.transformer import Transformer

    tok = explain.demo_tokenizer()
    torch.manual_seed(3)
    model = Transformer(ModelConfig(vocab_size=tok.vocab_size, n_layer=2, n_head=2, n_embd=32, block_size=32,
                                    pos="learned", norm="layernorm", mlp="gelu"))
    ckpt = tmp_path / "step_0000001"
    save_model(model, ckpt)
    save_tokenizer(tok, ckpt)
    (ckpt / "state.json").write_text(json.dumps({"stage": "pretrain", "step": 1}))
    out = run(["attention", "Le chat dort.", "--checkpoint", str(ckpt), "--head", "1"])
    assert str(ckpt) in out and "head 1 (of 2), head size 16" in out
    assert numbers(line_with(out, "all heads recomputed"))[-1] < 1e-5


def test_command_line_errors_are_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "causette.explain", "attention", "Le chat.", "--layer", "9", "--lang", "en"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert r.stderr.strip() == "error: --layer must be between 0 and 3"
