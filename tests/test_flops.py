"""The stable matmul peak MFU is measured against (causette/utils/flops.py): GPU datasheets, the
per-machine cache of quiet measurements, busy machines, the CLI, and training's intro line.

No real multi-second measurement here: the measuring functions and the load average are faked."""

from __future__ import annotations

import json
import os

import pytest
import torch

from causette.utils import flops
from causette.utils.flops import Peak, busy_reason, cache_file, machine_key, spec_peak, stable_peak

BF16, FP32 = torch.bfloat16, torch.float32


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A cache in tmp_path and a fake machine: ``machine.load`` is its 1-minute load, ``machine.rounds``
    what the measurement sees (FLOP/s by size, one per round); ``machine.calls`` counts measurements."""

    class Machine:
        load = 0.1
        rounds = {2048: [800e9, 810e9, 805e9], 3072: [850e9, 880e9, 870e9], 4096: [840e9, 845e9, 842e9]}
        calls = 0
        short = 0

    m = Machine()

    def round_bests(device, dtype, *a, **k):
        m.calls += 1
        return {n: list(v) for n, v in m.rounds.items()}

    def short(device, dtype, *a, **k):
        m.short += 1
        return 500e9

    monkeypatch.setenv("CAUSETTE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(flops, "_round_bests", round_bests)
    monkeypatch.setattr(flops, "matmul_peak", short)
    monkeypatch.setattr(os, "getloadavg", lambda: (m.load, 0.0, 0.0), raising=False)
    monkeypatch.setattr(flops, "own_load", lambda: 0.0)
    return m


def cached(path=None) -> dict:
    return json.loads((path or cache_file()).read_text(encoding="utf-8"))["peaks"]


def test_a_quiet_measurement_is_cached_then_read_back(machine, tmp_path):
    first = stable_peak("cpu", BF16)
    assert first == Peak(880e9, f"quiet measurement, now cached in {flops.shown(cache_file())}", "measured")
    assert cache_file() == tmp_path / "cache" / "peaks.json"  # $CAUSETTE_CACHE_DIR
    entry = cached()[machine_key("cpu", BF16)]
    assert entry["flops"] == 880e9 and entry["size"] == 3072 and entry["load"] == 0.1
    machine.load, machine.rounds = 3.0, {2048: [1.0] * 3}  # busy now: the cache does not care
    flops_, source = stable_peak("cpu", BF16)
    assert (flops_, source) == (880e9, f"cached quiet measurement, {flops.shown(cache_file())}")
    assert stable_peak("cpu", BF16).kind == "cached" and machine.calls == 1 and machine.short == 0


def test_the_key_holds_threads_and_precision(machine):
    key = machine_key("cpu", BF16)
    assert key.startswith("cpu | ") and "| 1 threads |" in key and "bfloat16" in key and torch.__version__ in key
    stable_peak("cpu", BF16)
    assert stable_peak("cpu", FP32).kind == "measured"  # another precision: another entry
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)
        assert stable_peak("cpu", BF16).kind == "measured"  # other threads: another entry
        assert machine_key("cpu", BF16) != key
    finally:
        torch.set_num_threads(threads)
    assert machine.calls == 3 and len(cached()) == 3
    assert stable_peak("cpu", BF16).kind == "cached" and machine.calls == 3


def test_a_busy_machine_is_not_cached(machine):
    machine.load = 1.8
    peak = stable_peak("cpu", BF16)
    assert peak.kind == "busy" and peak.flops == 500e9  # known busy before: the short measurement
    assert peak.source == "measured on a busy machine, not cached: 1-minute load 1.80, 0.00 of it ours"
    assert not cache_file().exists() and machine.calls == 0
    machine.load = 0.2  # the next quiet start caches one
    assert stable_peak("cpu", BF16).kind == "measured" and cache_file().exists()


def test_repeats_that_disagree_are_not_cached(machine):
    machine.rounds = {2048: [800e9, 600e9, 810e9], 3072: [700e9] * 3, 4096: [700e9] * 3}
    peak = stable_peak("cpu", BF16)
    assert peak.kind == "busy" and peak.flops == 810e9 and "repeats 26% apart" in peak.source
    assert not cache_file().exists()


def test_the_quiet_rule():
    assert busy_reason(0.4, 0.0, 0.05) == ""
    assert busy_reason(0.9, 0.6, 0.0) == ""  # 0.3 beyond our own process's share
    assert busy_reason(0.5, 0.0, 0.0) == "1-minute load 0.50, 0.00 of it ours"
    assert busy_reason(None, 0.0, 0.10) == ""  # unknown load (Windows, GPUs): the repeats decide
    assert busy_reason(None, 0.0, 0.11) == "repeats 11% apart"


@pytest.mark.parametrize("text", ["{not json", '{"peaks": [1, 2]}', '{"peaks": {"k": {"flops": -1}}}', '{"other": 1}'])
def test_a_corrupt_cache_is_ignored_with_a_warning_and_rewritten(machine, text):
    cache_file().parent.mkdir(parents=True)
    cache_file().write_text(text, encoding="utf-8")
    warnings: list[str] = []
    peak = stable_peak("cpu", BF16, warn=warnings.append)
    assert peak.kind == "measured" and peak.flops == 880e9
    assert len(warnings) == 1 and warnings[0].startswith(f"{cache_file()}: not a peaks cache (")
    assert "rewritten" in warnings[0] and "\n" not in warnings[0]
    assert list(cached()) == [machine_key("cpu", BF16)]
    assert stable_peak("cpu", BF16, warn=warnings.append).kind == "cached" and len(warnings) == 1


def test_where_the_cache_lives(monkeypatch, tmp_path):
    monkeypatch.setenv("CAUSETTE_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_file() == tmp_path / "mine" / "peaks.json"
    monkeypatch.delenv("CAUSETTE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_file() == tmp_path / "xdg" / "causette" / "peaks.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_file() == tmp_path / ".cache" / "causette" / "peaks.json"
    assert flops.shown(cache_file()) == "~/.cache/causette/peaks.json"


@pytest.mark.parametrize("name, bf16, fp32", [
    ("NVIDIA H100 80GB HBM3", 989, 67), ("NVIDIA H100 PCIe", 756, 51), ("NVIDIA H100 NVL", 835, 60),
    ("NVIDIA H200", 989, 67), ("NVIDIA H200 NVL", 835, 60), ("NVIDIA A100-SXM4-80GB", 312, 19.5),
    ("NVIDIA A100 80GB PCIe", 312, 19.5), ("NVIDIA A10", 125, 31.2), ("NVIDIA L4", 121, 30.3),
    ("NVIDIA L40S", 362, 91.6), ("NVIDIA L40", 181, 90.5), ("NVIDIA GeForce RTX 4090", 165.2, 82.6),
    ("NVIDIA GeForce RTX 3090", 71, 35.6),
])
def test_gpu_spec_sheets(name, bf16, fp32):
    assert spec_peak(name, BF16).flops == pytest.approx(bf16 * 1e12)
    assert spec_peak(name, FP32).flops == pytest.approx(fp32 * 1e12)
    assert spec_peak(name, BF16).kind == "spec" and "spec sheet, dense bf16" in spec_peak(name, BF16).source


@pytest.mark.parametrize("name", ["NVIDIA A10G", "NVIDIA GH200 480GB", "NVIDIA GeForce RTX 4090 Laptop GPU",
                                  "NVIDIA GeForce RTX 3090 Ti", "NVIDIA H100", "Tesla T4"])
def test_unknown_gpus_are_measured(name):
    assert spec_peak(name, BF16) is None  # a variant we cannot tell apart, or not in the table
    assert spec_peak("NVIDIA H100 80GB HBM3", torch.float16) is None


def test_cli_prints_the_peak_its_source_and_the_cache(machine, capsys):
    assert flops.main(["--device", "cpu", "--precision", "bf16"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"device: {machine_key('cpu', BF16)}", f"peak 880 GFLOP/s (quiet measurement, now cached in {flops.shown(cache_file())})",
                   f"cache: {cache_file()}"]
    flops.main(["--device", "cpu", "--precision", "bf16"])
    assert capsys.readouterr().out.splitlines()[1] == f"peak 880 GFLOP/s (cached quiet measurement, {flops.shown(cache_file())})"


def test_cli_remeasure(machine, capsys):
    stable_peak("cpu", BF16)  # 880 cached
    machine.load, machine.rounds = 2.5, {2048: [900e9] * 3}
    assert flops.main(["--device", "cpu", "--precision", "bf16", "--remeasure"]) == 0  # busy: the figure anyway
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "measured 900 GFLOP/s at 2048², best of 2048/3072/4096 × 3 rounds 0.0% apart, 1-minute load 2.50 (0.00 of it ours)"
    assert out[2].startswith("not cached: the machine looks busy (1-minute load 2.50, 0.00 of it ours; quiet is a load")
    assert "the cached 880 GFLOP/s stays" in out[2] and len(out) == 3
    assert cached()[machine_key("cpu", BF16)]["flops"] == 880e9
    machine.load = 0.1
    flops.main(["--device", "cpu", "--precision", "bf16", "--remeasure"])
    assert capsys.readouterr().out.splitlines()[2] == f"cached in {cache_file()}"
    assert cached()[machine_key("cpu", BF16)]["flops"] == 900e9 and machine.calls == 3


def test_cli_bad_device(capsys):
    assert flops.main(["--device", "tpu"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown device 'tpu'")


def test_training_names_its_peak(machine):
    from causette.model.config import ModelConfig
    from causette.train.config import TrainConfig
    from causette.train.pretrain import intro_lines, run_peak
    from causette.train.trainer import Runtime

    stable_peak("cpu", BF16)
    peak = run_peak(0.0, torch.device("cpu"), BF16, True, print)
    assert peak.kind == "cached"
    cfg = ModelConfig(n_layer=1, n_head=2, n_embd=8, block_size=4, vocab_size=16, mlp_hidden=16)
    lines = intro_lines(TrainConfig(max_steps=10), cfg, Runtime(torch.device("cpu"), BF16), 64, peak, 1000, None)
    assert lines[1].endswith(f"peak 880 GFLOP/s (cached quiet measurement, {flops.shown(cache_file())})")
    given = run_peak(2e12, torch.device("cpu"), BF16, True, print)  # train.peak_flops wins over everything
    assert given == Peak(2e12, "train.peak_flops", "config") and machine.calls == 1
    other_rank = run_peak(0.0, torch.device("cpu"), BF16, False, print)  # measures nothing: only rank 0 logs MFU
    assert other_rank.flops == 0 and machine.calls == 1 and machine.short == 0
