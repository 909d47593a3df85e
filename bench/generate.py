"""Generation speed: our engine (with and without KV cache) against Hugging Face ``generate()``.

    .venv/bin/python bench/generate.py                 # seed16m-sized Llama, ~4 minutes on 2 cores
    .venv/bin/python bench/generate.py --new-tokens 64 --repeat 2   # quicker

Model: the ``configs/model/seed16m.yaml`` Llama (8 layers, 384 wide, GQA 8/4, context 256) with
random weights (the speed does not depend on what the weights learned), its vocabulary set to a
BPE tokenizer trained here on the start of the demo corpus. Hugging Face runs
``LlamaForCausalLM`` with the very same weights (causette/model/hf_reference.py).

Every configuration decodes ``--new-tokens`` tokens greedily after a French prompt (batch 8:
eight different prompts of equal length, so that no one needs padding), with no stop token.
Tokens/s counts generated tokens of all rows. Ours includes turning tokens into text through
the incremental decoder; HF's does not. The machine is shared and its speed drifts: the
configurations are interleaved, each is timed ``--repeat`` times and the best is kept; read the
ratios, which come from the same run.

Our rows: ``--exact`` (fp32, eager), without cache, bf16 weights, int8 weights
(``--quantize int8``, causette/model/quantize.py), the default decoding step (the native C++
one, causette/inference/backends/native.py), the AOTInductor step it replaced (backends/aoti.py; ``--no-aoti``
skips it) and the AOTInductor step with int8 weights. The last column checks that
ours and HF's produce the same greedy tokens; where a row differs it also gives the share of
tokens generated before the first difference. Compiled rows compile during the warm-up call;
the time this costs is printed under the table. By default Inductor gets an empty cache
directory, so that this is the cold compilation a first run pays (``--warm-compile-cache``
keeps its usual on-disk cache, where a later run finds its work).

Threads: 1 by default. At batch 1 a step is ~30 small matrix-vector products; on this
2-core machine shared with other jobs, two OpenMP threads waiting on each other made every
configuration several times slower and the timings meaningless. ``--threads 2`` on a quiet
machine.
"""

from __future__ import annotations

import argparse
import atexit
import gzip
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if "--warm-compile-cache" not in sys.argv:  # must be set before torch looks at it
    _cold_cache = tempfile.mkdtemp(prefix="causette-bench-inductor-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = _cold_cache
    os.environ["CAUSETTE_CACHE_DIR"] = _cold_cache  # our compiled steps too
    atexit.register(shutil.rmtree, _cold_cache, ignore_errors=True)

import causette  # noqa: E402,F401  (first: OpenMP's thread settings before torch starts)
import torch  # noqa: E402

from causette.config import load_config  # noqa: E402
from causette.inference.engine import Engine  # noqa: E402
from causette.inference.sampling import SamplingParams  # noqa: E402
from causette.model import (
    Transformer,  # noqa: E402
    hf_reference,  # noqa: E402
)
from causette.model.quantize import quantize_model  # noqa: E402
from causette.tokenizer import train_tokenizer  # noqa: E402
from causette.tokenizer.config import TokenizerConfig  # noqa: E402


def demo_text(chars: int) -> str:
    for p in (ROOT / "data" / "demo_fr_pd.txt.gz", ROOT.parent / "shared" / "data" / "demo" / "demo_fr_pd.txt.gz"):
        if p.is_file():
            return gzip.decompress(p.read_bytes()).decode("utf-8")[:chars]
    sys.exit("error: data/demo_fr_pd.txt.gz not found")


def prompts(tok, text: str, batch: int, length: int) -> list[list[int]]:
    """``batch`` different prompts of exactly ``length`` tokens: <|bos|> + a slice of French."""
    lines = [line for line in text.splitlines() if len(line) > 400]
    out = []
    for line in lines[:batch]:
        out.append([tok.bos_id, *tok.encode(line)[: length - 1]])
    assert len(out) == batch and all(len(p) == length for p in out)
    return out


def timed(fn, repeat_log: list[float]):
    start = time.perf_counter()
    result = fn()
    repeat_log.append(time.perf_counter() - start)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--prompt-tokens", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batches", default="1,8", help="batch sizes to run, comma-separated (default 1,8)")
    ap.add_argument("--no-bf16", action="store_true", help="skip the rows with bf16 weights")
    ap.add_argument("--no-compile", action="store_true", help="skip the rows with a compiled step")
    ap.add_argument("--no-aoti", action="store_true",
                    help="skip the fp32 AOTInductor row (the default is now the native step; native.py)")
    ap.add_argument(
        "--warm-compile-cache", action="store_true", help="let torch.compile reuse its on-disk cache (default: cold)"
    )
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: on a shared machine, more threads fight)"
    )
    ap.add_argument("--model", default="seed16m", choices=["seed16m", "demo"],
                    help="model shape: configs/model/seed16m.yaml (default) or demo.yaml's (4.0M)")
    ap.add_argument("--vocab", type=int, default=8192, help="tokenizer size (default 8192; the demo run uses 4096)")
    ap.add_argument("--no-hf", action="store_true", help="skip Hugging Face generate()")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    t0 = time.perf_counter()
    text = demo_text(1_500_000)
    tok = train_tokenizer(TokenizerConfig(vocab_size=args.vocab), [text])
    cfg = load_config("model/seed16m" if args.model == "seed16m" else "demo", [f"model.vocab_size={tok.vocab_size}"]).model
    model = Transformer(cfg).eval()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"setup (tokenizer {tok.vocab_size} tokens, model {n_params / 1e6:.1f}M): {time.perf_counter() - t0:.1f} s")

    import transformers

    hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(**hf_reference.llama_config(cfg))).eval()
    hf.load_state_dict(hf_reference.llama_state_dict(model), strict=True)
    hf.generation_config.pad_token_id = tok.pad_id
    hf.generation_config.eos_token_id = None

    model_bf16 = None
    if not args.no_bf16:
        model_bf16 = Transformer(cfg).eval()
        model_bf16.load_state_dict(model.state_dict())
        model_bf16 = model_bf16.to(torch.bfloat16)
    model_int8 = Transformer(cfg).eval()
    model_int8.load_state_dict(model.state_dict())
    quantize_model(model_int8, "int8")

    N = args.new_tokens
    greedy = SamplingParams(temperature=0, max_new_tokens=N)  # no stop token: always N tokens
    sizes = [int(b) for b in args.batches.split(",")]
    batches = {b: prompts(tok, text, b, args.prompt_tokens) for b in sizes}

    def ours(m, batch, use_cache, decode="exact", native=True):
        engine = Engine(m, tok, decode=decode, native=native)
        return lambda: [g.token_ids for g in engine.generate(batches[batch], greedy, use_cache=use_cache)]

    llama = llama_cpp_runners(model, tok, N, args.threads)

    def theirs(batch):
        idx = torch.tensor(batches[batch])

        def run():
            with torch.inference_mode():
                out = hf.generate(idx, max_new_tokens=N, min_new_tokens=N, do_sample=False, use_cache=True)
            return out[:, idx.shape[1] :].tolist()

        return run

    configs = {}
    for b in sizes:
        if not args.no_hf:
            configs[("HF transformers generate()", b)] = theirs(b)
        if b == 1:
            for name, run in llama.items():
                configs[(name, b)] = run(batches[b][0])
        configs[("ours, --exact (eager, KV cache)", b)] = ours(model, b, True)
        configs[("ours, no cache (full recompute)", b)] = ours(model, b, False)
        if model_bf16 is not None:
            configs[("ours, --exact, bf16 weights", b)] = ours(model_bf16, b, True)
        configs[("ours, --exact, int8 weights", b)] = ours(model_int8, b, True)
        if not args.no_compile:
            configs[("ours, default (native C++ step)", b)] = ours(model, b, True, decode="fast")
            if not args.no_aoti:
                configs[("ours, AOTInductor compiled step", b)] = ours(model, b, True, decode="fast", native=False)
            configs[("ours, compiled step, int8 weights", b)] = ours(model_int8, b, True, decode="fast")

    # warm-up (first calls allocate, pick kernels, compile), then interleaved timed rounds
    outputs, first_call = {}, {}
    for key, fn in configs.items():
        start = time.perf_counter()
        outputs[key] = fn()
        first_call[key] = time.perf_counter() - start
    times: dict = {key: [] for key in configs}
    for _ in range(args.repeat):
        for key, fn in configs.items():
            timed(fn, times[key])

    threads = torch.get_num_threads()
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({threads} threads), transformers {transformers.__version__}"
    )
    print(
        f"model: {args.model} Llama, {n_params / 1e6:.1f}M parameters, random weights, fp32 unless noted; "
        f"prompt {args.prompt_tokens} tokens, {N} new tokens per row, greedy; best of {args.repeat}\n"
    )
    if llama:
        print(f"llama.cpp: llama-cpp-python {llama_version()} ({LLAMA_BUILD}), same weights exported with "
              "`causette export gguf`, greedy sampler chain, same prompt ids\n")
    else:
        print("llama.cpp: not installed (`import llama_cpp` failed): its rows are skipped\n")
    print("| mode | batch | tokens/s | vs exact (same batch) | vs llama.cpp f32 | same tokens as exact |")
    print("|---|---:|---:|---:|---:|---:|")
    for b in sizes:
        ref_key = ("ours, --exact (eager, KV cache)", b)
        ref_speed = b * N / min(times[ref_key])
        llama_key = (LLAMA_F32, b)
        llama_speed = b * N / min(times[llama_key]) if llama_key in times else None
        for (name, batch), t in times.items():
            if batch != b:
                continue
            speed = b * N / min(t)
            vs_llama = f"{speed / llama_speed:.2f}×" if llama_speed else "–"
            same = _agreement(outputs[(name, batch)], outputs[ref_key])
            print(f"| {name} | {b} | {speed:,.0f} | {speed / ref_speed:.2f}× | {vs_llama} | {same} |")
    compiled = [key for key in configs if "compiled" in key[0] or "native" in key[0]]
    if compiled:
        cache = "warm on-disk cache" if args.warm_compile_cache else "cold: empty Inductor cache at start"
        print(f"\ncompilation, first call minus a timed call ({cache}; in this order):")
        for key in compiled:
            print(f"- {key[0]}, batch {key[1]}: {first_call[key] - min(times[key]):.1f} s")


LLAMA_F32 = "llama.cpp, f32 GGUF"
LLAMA_BUILD = "CPU build, GGML_NATIVE=OFF: AVX2/FMA/F16C, no AVX-512"


def llama_version() -> str:
    import llama_cpp

    return llama_cpp.__version__


def llama_cpp_runners(model, tok, n_new: int, threads: int) -> dict:
    """``{row name: make_run(prompt_ids)}`` for llama.cpp on the same weights (f32 and f16
    GGUF), or ``{}`` when the binding is not installed. Each run decodes ``n_new`` tokens
    greedily after the prompt, as ours do."""
    try:
        import llama_cpp
    except ImportError:
        return {}
    from causette.checkpoint.steps import save_checkpoint
    from causette.export.gguf import export_gguf

    tmp = Path(tempfile.mkdtemp(prefix="causette-bench-gguf-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    from causette.tokenizer.io import save_tokenizer

    tok_file = save_tokenizer(tok, tmp / "tokenizer")
    save_checkpoint(tmp / "run" / "checkpoints", 1, model, None, state={"stage": "pretrain"}, tokenizer_file=tok_file)
    runners = {}
    for name, dtype in ((LLAMA_F32, "float32"), ("llama.cpp, f16 GGUF", "float16")):
        path = export_gguf(tmp / "run", tmp / f"model-{dtype}.gguf", dtype=dtype)
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=model.cfg.block_size, n_threads=threads,
                              n_threads_batch=threads, n_batch=model.cfg.block_size, verbose=False)

        def make(prompt, llm=llm):
            def run():
                out = []
                for t in llm.generate(prompt, temp=0.0, top_k=1, reset=True):
                    out.append(t)
                    if len(out) == n_new:
                        break
                return [out]

            return run

        runners[name] = make
    return runners


def _agreement(a: list[list[int]], b: list[list[int]]) -> str:
    """Share of rows identical to HF's; if some differ, also the share of tokens generated
    before the first difference (over all rows)."""
    same = sum(x == y for x, y in zip(a, b))
    if same == len(a):
        return "all"
    before = sum(next((i for i, (s, t) in enumerate(zip(x, y)) if s != t), len(x)) for x, y in zip(a, b))
    share = 100 * before / sum(len(x) for x in a)
    return f"{same}/{len(a)} rows ({share:.0f} % of tokens before a difference)"


if __name__ == "__main__":
    main()
