"""The progression from a bigram to a Transformer (issue 19, docs/progression.md): the model
switches it needs (n_layer 0, mixer window, mlp none), its presets, and what runs them."""

from __future__ import annotations

import argparse
import asyncio
import json
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from causette.config import load_config
from causette.errors import CausetteError
from causette.explain.progression import MEASURED, STEPS, TOLERANCE
from causette.inference.engine import Engine
from causette.inference.sampling import SamplingParams
from causette.model import ModelConfig, Transformer
from causette.model.counting import count_params, numel
from helpers import REPO, TINY_TRAIN, LetterTokenizer, make_tiny_run

PRESETS = [preset for preset, _fr, _en in STEPS]


def tiny(**kw) -> ModelConfig:
    base = dict(vocab_size=50, block_size=24, n_embd=16, n_head=2, n_layer=1, mlp_hidden=32)
    return ModelConfig(**{**base, **kw})


# ------------------------------------------------------------------ the switches


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_count_what_they_hold(preset):
    cfg = load_config(preset)
    model = Transformer(cfg.model)
    assert count_params(cfg.model).total == numel(model)
    assert cfg.train.max_steps == 500 and cfg.train.max_minutes == 0 and cfg.run.skip == ["sft"]
    assert cfg.run.name.startswith("etape") and preset.split("/")[1].split("-")[1] in cfg.run.name


def test_presets_take_out_what_they_say():
    cfgs = [load_config(p).model for p in PRESETS]
    assert not any(c.tie_embeddings for c in cfgs)  # each step has its own output layer
    assert cfgs[0].n_layer == 0
    assert cfgs[1].n_layer == 1 and cfgs[1].mixer == "window" and cfgs[1].mixer_window == 8
    assert (cfgs[2].n_layer, cfgs[2].n_head, cfgs[2].mlp) == (1, 1, "none")
    assert (cfgs[3].n_layer, cfgs[3].n_head, cfgs[3].mlp) == (1, 4, "swiglu")
    demo = load_config("demo").model
    demo.tie_embeddings = False
    assert cfgs[4] == demo  # the last step is the demo model, untied like the others
    bigram = Transformer(cfgs[0])
    assert len(bigram.blocks) == 0 and bigram.lm_head.weight is not bigram.wte.weight
    head = Transformer(cfgs[2]).blocks[0]
    assert head.mlp is None and head.norm2 is None and head.attn.n_head == 1 and head.mix is None


def test_window_concatenates_the_previous_tokens_oldest_first():
    model = Transformer(tiny(mixer="window", mixer_window=3))
    mix = model.blocks[0].mix
    x = torch.randn(2, 5, 16)
    win = mix.windows(x)
    assert win.shape == (2, 5, 48)
    zero = torch.zeros(2, 16)
    for t in range(5):
        parts = [x[:, t - j] if t - j >= 0 else zero for j in (2, 1, 0)]  # t-2, t-1, t
        assert torch.equal(win[:, t], torch.cat(parts, dim=-1))
    assert torch.allclose(mix(x), mix.proj(win))


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(["bigram", "window", "head"]), cut=st.integers(1, 11), seed=st.integers(0, 2**16))
def test_no_step_reads_the_future(kind, cut, seed):
    """Changing the tokens after position ``cut`` changes no logit before it."""
    kw = {"bigram": dict(n_layer=0), "window": dict(mixer="window", mixer_window=4),
          "head": dict(n_head=1, mlp="none")}[kind]
    torch.manual_seed(0)
    model = Transformer(tiny(**kw)).eval()
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, 50, (1, 12), generator=g)
    b = a.clone()
    b[:, cut:] = torch.randint(0, 50, (1, 12 - cut), generator=g)
    with torch.no_grad():
        assert torch.equal(model.logits(a)[:, :cut], model.logits(b)[:, :cut])


def test_bigram_depends_on_the_current_token_only():
    torch.manual_seed(0)
    model = Transformer(tiny(n_layer=0, tie_embeddings=False)).eval()
    ids = torch.tensor([[3, 7, 3, 9, 7]])
    with torch.no_grad():
        logits = model.logits(ids)[0]
        alone = model.logits(torch.tensor([[7]]))[0, 0]
    assert torch.equal(logits[0], logits[2]) and torch.equal(logits[1], logits[4])
    assert torch.allclose(logits[1], alone)


def test_switches_are_checked():
    with pytest.raises(ValueError, match=r"n_layer must be >= 0 \(0 = a bigram model, no blocks\), got -1"):
        tiny(n_layer=-1).validate()
    with pytest.raises(ValueError, match="mixer_window must be >= 1, got 0"):
        tiny(mixer="window", mixer_window=0).validate()
    with pytest.raises(ValueError, match="mlp=none leaves no MLP"):
        tiny(mlp="none", n_experts=4).validate()


# ------------------------------------------------------------------ generation without a KV cache


@pytest.mark.parametrize("kw", [dict(n_layer=0), dict(mixer="window", mixer_window=4)])
def test_models_without_attention_generate_without_a_cache(kw):
    from causette.inference.backends import aoti

    torch.manual_seed(0)
    model = Transformer(tiny(**kw)).eval()
    assert not model.supports_cache and not aoti.supports(model)
    with pytest.raises(CausetteError, match="keeps no KV cache"):
        model.new_cache(1)
    tok = LetterTokenizer(50)
    prompts = [[1, 5, 9], [2, 4]]
    gens = Engine(model, tok).generate(prompts, SamplingParams(temperature=0, max_new_tokens=6))
    for prompt, gen in zip(prompts, gens):  # greedy by hand, the whole context each time
        ids = list(prompt)
        with torch.no_grad():
            for _ in range(6):
                ids.append(int(model.logits(torch.tensor([ids]))[0, -1].argmax()))
        assert gen.token_ids == ids[len(prompt):]


def test_the_server_worker_decodes_a_window_model(tmp_path):
    from causette.inference.server_worker import Job, Worker

    torch.manual_seed(0)
    model = Transformer(tiny(mixer="window", mixer_window=4)).eval()
    engine = Engine(model, LetterTokenizer(50))
    params = SamplingParams(temperature=0, max_new_tokens=5)
    prompts = [[1, 5, 9], [2, 4], [7]]
    expected = [g.token_ids for g in engine.generate(prompts, params)]

    async def serve():
        worker = Worker(engine, max_queue=8, max_batch=2)
        loop = asyncio.get_running_loop()
        jobs = [Job(p, params, loop) for p in prompts]
        for job in jobs:
            worker.submit(job)
        results = []
        for job in jobs:
            while True:
                kind, value = await asyncio.wait_for(job.events.get(), timeout=30)
                if kind == "error":
                    raise value
                if kind == "done":
                    results.append(value.token_ids)
                    break
        worker.close()
        return results

    assert asyncio.run(serve()) == expected


# ------------------------------------------------------------------ exports refuse them


def test_exports_refuse_the_progression_switches():
    from causette.export.source import check_llama, gpt2_blockers

    with pytest.raises(CausetteError, match=r"n_layer=0 \(a bigram model"):
        check_llama(tiny(n_layer=0), "GGUF")
    with pytest.raises(CausetteError, match=r"mixer=window \(the formats know attention only\)"):
        check_llama(tiny(mixer="window"), "GGUF")
    with pytest.raises(CausetteError, match=r"mlp=none \(Llama uses swiglu\)"):
        check_llama(tiny(mlp="none"), "GGUF")
    assert any(b.startswith("mixer=window") for b in gpt2_blockers(tiny(mixer="window")))


# ------------------------------------------------------------------ the pipeline: reuse, skip, until


@pytest.mark.slow
def test_steps_reuse_the_data_skip_sft_and_train(tmp_path, capsys):
    """Two progression steps at a tiny size: the second reuses the first's corpus, tokenizer and
    data (hard links), neither trains a chat model, each ends with an eval and a report."""
    from causette.cli import main

    base = make_tiny_run(tmp_path / "runs", "base")
    (tmp_path / "runs" / "base" / "stages.json").unlink(missing_ok=True)
    src = base.corpus.sources[0].path
    sets = ["model.n_embd=32", "model.block_size=32", "model.vocab_size=400", "tokenizer.vocab_size=400",
            "corpus.min_chars=100", "corpus.val_fraction=0.2", *TINY_TRAIN, "train.max_steps=6",
            f"run.dir={tmp_path / 'runs'}"]
    argv = [a for s in sets for a in ("--set", s)]
    cfg = tmp_path / "steps.yaml"
    cfg.write_text(f"corpus: {{sources: [{{path: {src}}}]}}\n", encoding="utf-8")

    def run(preset, *extra):
        text = f"extends: [{REPO / 'configs' / (preset + '.yaml')}, {cfg}]\n"
        path = tmp_path / (preset.split("/")[1] + ".yaml")
        path.write_text(text, encoding="utf-8")
        assert main(["run", str(path), "--no-progress", *argv, *extra]) == 0
        return capsys.readouterr().out

    out = run("progression/1-bigramme")
    assert "== corpus\n" in out and "== sft: skipped (run.skip)" in out and "== eval\n" in out
    assert "causette chat" not in out and "causette generate --checkpoint" in out
    first = tmp_path / "runs" / "etape1-bigramme"
    assert not (first / "sft").exists()
    ev = json.loads((first / "eval.json").read_text())
    assert ev["base"]["text"]["bits_per_byte"] > 0 and ev["chat"] == {}

    out = run("progression/2-fenetre", "--until", "train")
    second = tmp_path / "runs" / "etape2-fenetre"
    for stage in ("corpus", "tokenizer", "prepare"):
        assert f"== {stage}: same settings as {first}, its outputs reused" in out
    assert (second / "data" / "train.bin").stat().st_ino == (first / "data" / "train.bin").stat().st_ino
    assert "== train\n" in out and "== eval" not in out and "done up to train" in out
    assert (second / "checkpoints" / "latest").exists() and not (second / "eval.json").exists()
    record = json.loads((second / "stages.json").read_text())
    assert record["corpus"]["reused_from"] == str(first) and "eval" not in record

    # explain progression reads the runs it finds
    from causette.explain.cli import run as explain

    text = explain(["progression", "--runs", str(tmp_path / "runs"), "--lang", "en"])
    bpb = ev["base"]["text"]["bits_per_byte"]
    assert re.search(rf"1-bigramme .* {bpb:.3f}", text)
    # ... and draws the validation curves of both runs
    from causette.explain.progression import step_runs, val_curve

    curves = {name: val_curve(run) for name, run in step_runs(argparse.Namespace(runs=tmp_path / "runs"))}
    assert [s for s, _ in curves["1-bigramme"]] == [6] and [s for s, _ in curves["2-fenetre"]] == [6]
    assert not curves["3-une-tete"]
    png = tmp_path / "progression.png"
    text = explain(["progression", "--runs", str(tmp_path / "runs"), "--png", str(png)])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(png) in text


def test_run_skip_accepts_sft_only():
    from causette.config import ConfigError

    with pytest.raises(ConfigError, match="only the stage sft can be skipped, got 'train'"):
        load_config("demo", ["run.skip=[train]"])


# ------------------------------------------------------------------ explain and the docs


def test_explain_progression_lists_the_presets_and_judges_your_runs(tmp_path):
    from causette.explain.cli import run as explain

    run = tmp_path / "etape1-bigramme"
    run.mkdir()
    mine = (MEASURED[0] or 2.0) + 0.2
    (run / "eval.json").write_text(json.dumps({"base": {"text": {"bits_per_byte": mine}}}), encoding="utf-8")
    text = explain(["progression", "--runs", str(tmp_path), "--lang", "en"])
    for preset in PRESETS:
        params = count_params(load_config(preset).model).total
        assert re.search(rf"{preset.split('/')[1]}\s+{params:,}", text)
    assert f"{mine:.3f} (off by +0.200)" in text
    assert "500 steps × 4,096 tokens = 2,048,000 tokens" in text
    text = explain(["progression", "--runs", str(tmp_path)])
    assert "écart +0,200" in text


def test_progression_picture_needs_runs(tmp_path):
    from causette.explain.cli import run as explain

    with pytest.raises(CausetteError, match="no run of the progression's steps in .*: run make progression"):
        explain(["progression", "--runs", str(tmp_path), "--png", str(tmp_path / "p.png"), "--lang", "en"])


def test_docs_table_says_what_was_measured():
    """docs/progression.md's table: the presets' parameters, and the figures of MEASURED."""
    page = (REPO / "docs" / "progression.md").read_text(encoding="utf-8")
    rows = [r for r in page.splitlines() if re.match(r"\| [1-5] \|", r)]
    assert len(rows) == 5
    for row, preset, measured in zip(rows, PRESETS, MEASURED):
        cells = [c.strip() for c in row.strip("|").split("|")]
        params = count_params(load_config(preset).model).total
        assert cells[2] == f"{params:,}".replace(",", "\u202f"), row
        assert measured is not None and cells[4] == f"{measured:.3f}".replace(".", ","), row
    assert TOLERANCE == 0.05 and "±\u00a00,05" in page


@pytest.mark.parametrize("topic", ["attention", "heads", "mask", "cache"])
def test_attention_topics_refuse_a_model_without_attention(topic):
    from causette.explain.cli import run as explain

    with pytest.raises(CausetteError, match=r"this model has no attention \(n_layer=4, mixer=window\)"):
        explain([topic, "Le chat dort.", "--set", "model.mixer=window", "--lang", "en"])


def test_one_head_without_mlp_decodes_with_the_static_step():
    """Step 3's model (attention, no MLP) keeps a KV cache: the static decoding step (server,
    compiled path) gives the logits of the eager model."""
    from causette.inference.backends import aoti

    torch.manual_seed(0)
    model = Transformer(tiny(n_head=1, mlp="none")).eval()
    assert model.supports_cache and aoti.supports(model)
    ids = torch.tensor([[3, 7, 1, 9]])
    cache = model.new_cache(1)
    step = model.step_kv
    with torch.no_grad():
        for t in range(ids.shape[1]):
            got = step(ids[:, t], torch.tensor([t]), cache.k, cache.v)
        want = model.logits(ids)[:, -1]
    assert torch.allclose(got, want, atol=1e-5)
