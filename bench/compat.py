"""The same model everywhere? Causette against transformers, llama.cpp and Ollama's template.

    .venv/bin/python bench/compat.py runs/demo          # the run of `make demo` (base + sft)
    .venv/bin/python bench/compat.py runs/demo --lines 5000   # quicker

Needs transformers (installed with `.[dev]`), llama.cpp (`make llamacpp`) and, for the Ollama
column, a Go toolchain (`apt-get install golang-go`); a missing one gives "n/a" in its cells.
It exports the run's base and SFT checkpoints (HF folder, GGUF f32 and f16, Ollama folder) into
a temporary folder and prints one markdown table (docs/export.md keeps the last one):

* tokenisation: the demo-corpus lines (as shipped, not normalised) that get exactly Causette's
  ids, text typed by a user (no BOS, special tokens not parsed);
* logits: max |Δ| against Causette fp32 on 256 tokens of the val split (llama.cpp with an f32
  KV cache, one thread), and whether the argmax agrees everywhere;
* greedy: text prompts (elisions included) continued greedily by the base model for 48 tokens
  (the runtime adds <|bos|> itself), texts identical to `causette generate --temperature 0`;
* chat: the conversations rendered by the runtime's own chat path, turned into ids as the runtime
  does, identical to Causette's; then the greedy replies of the SFT model, identical or not.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import causette  # noqa: E402,F401  (first: OpenMP's thread settings before torch starts)
import torch  # noqa: E402

from causette.checkpoint.load import load_checkpoint  # noqa: E402
from causette.data.chat_template import render_chat, render_text  # noqa: E402
from causette.export.gguf import export_gguf  # noqa: E402
from causette.export.hf import export_hf  # noqa: E402
from causette.export.ollama import TEMPLATES  # noqa: E402
from causette.inference.config import SamplingParams  # noqa: E402
from causette.inference.engine import Engine  # noqa: E402
from causette.utils.paths import DEMO_CORPUS  # noqa: E402

PROMPTS = ["Le roi", "L'homme qu'il aimait", "Jusqu'à l'aube, elle n'avait", "« Qu'est-ce que c'est ? » dit-il",
           "Il était une fois", "C'est aujourd'hui que"]
CHATS = [
    [{"role": "user", "content": "Bonjour, qu'est-ce que l'amour ?"}],
    [{"role": "user", "content": "Quelle est la capitale de la France ?"}],
    [{"role": "system", "content": "Tu es un assistant concis."},
     {"role": "user", "content": "Donne-moi l'antonyme de « chaud »."}],
    [{"role": "user", "content": "Bonjour !"}, {"role": "assistant", "content": "Bonjour ! Que puis-je faire pour vous ?"},
     {"role": "user", "content": "Raconte-moi l'histoire d'un roi."}],
]
NEW = 48


def ours_greedy(loaded, ids, stop):
    engine = Engine(loaded.model, loaded.tokenizer)
    params = SamplingParams(temperature=0, max_new_tokens=NEW, stop_token_ids=tuple(stop))
    return engine.generate([ids], params)[0].token_ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a run folder with a base model and its sft/ (runs/demo)")
    ap.add_argument("--lines", type=int, default=0, help="compare only the first N demo lines (0: all)")
    args = ap.parse_args()
    run = Path(args.run)
    base = load_checkpoint(run, device="cpu", precision="fp32")
    sft = load_checkpoint(run / "sft", device="cpu", precision="fp32")
    tok = base.tokenizer
    lines = [x for x in gzip.decompress(DEMO_CORPUS.read_bytes()).decode("utf-8").splitlines() if x.strip()]
    lines = lines[: args.lines] if args.lines else lines
    ours_ids = tok.encode_batch(lines)
    tmp = Path(tempfile.mkdtemp(prefix="compat-"))
    rows: dict[str, dict[str, str]] = {}
    print(f"run {run}: {len(lines):,} demo lines, tokenizer pattern {tok.pattern[:20]!r}…, exports in {tmp}",
          file=sys.stderr)

    val_ids = [tok.bos_id] + tok.encode(" ".join(lines[-400:]))[:255]
    with torch.no_grad():
        ref_logits = base.model.logits(torch.tensor([val_ids]))[0]
    greedy_ref = {p: ours_greedy(base, Engine(base.model, tok).encode_prompt(p), [tok.bos_id]) for p in PROMPTS}
    chat_ref = {}
    for i, messages in enumerate(CHATS):
        ids, _ = render_chat(tok, messages, add_generation_prompt=True)
        chat_ref[i] = (ids, ours_greedy(sft, ids, sorted(tok.special_ids)))

    def logits_cell(theirs: torch.Tensor) -> str:
        d = (ref_logits - theirs).abs().max().item()
        same = bool(torch.equal(ref_logits.argmax(-1), theirs.argmax(-1)))
        return f"{d:.1e}" + ("" if same else " (argmax differs)")

    # ---------------------------------------------------------------- transformers
    try:
        import transformers

        export_hf(run, tmp / "hf-base")
        export_hf(run / "sft", tmp / "hf-sft")
        hft = transformers.AutoTokenizer.from_pretrained(tmp / "hf-sft")
        same = sum(hft(x, add_special_tokens=False, split_special_tokens=True)["input_ids"] == o
                   for x, o in zip(lines, ours_ids))
        hb = transformers.AutoModelForCausalLM.from_pretrained(tmp / "hf-base").eval()
        hs = transformers.AutoModelForCausalLM.from_pretrained(tmp / "hf-sft").eval()
        with torch.no_grad():
            lg = hb(torch.tensor([val_ids])).logits[0]
        g_same = 0
        for p in PROMPTS:
            ids = hft(p)["input_ids"]  # adds <|bos|> (add_bos_token)
            with torch.no_grad():
                out = hb.generate(torch.tensor([ids]), max_new_tokens=NEW, do_sample=False,
                                  eos_token_id=tok.bos_id, pad_token_id=tok.pad_id)[0, len(ids):].tolist()
            out = out[:-1] if out and out[-1] == tok.bos_id else out
            g_same += tok.decode(out) == tok.decode(greedy_ref[p])
        c_ids = c_greedy = 0
        for i, messages in enumerate(CHATS):
            ids = list(hft.apply_chat_template(messages, add_generation_prompt=True, return_dict=False))
            c_ids += ids == chat_ref[i][0]
            with torch.no_grad():
                out = hs.generate(torch.tensor([ids]), max_new_tokens=NEW, do_sample=False)[0, len(ids):].tolist()
            stops = tok.special_ids
            cut = next((k for k, t in enumerate(out) if t in stops), len(out))
            c_greedy += tok.decode(out[:cut]) == tok.decode(chat_ref[i][1])
        rows["transformers " + transformers.__version__ + " (export hf)"] = {
            "tok": f"{same}/{len(lines)}", "logits": logits_cell(lg), "greedy": f"{g_same}/{len(PROMPTS)}",
            "chat": f"ids {c_ids}/{len(CHATS)} (apply_chat_template), replies {c_greedy}/{len(CHATS)}",
        }
    except ImportError:
        rows["transformers"] = {"tok": "n/a", "logits": "n/a", "greedy": "n/a", "chat": "n/a"}

    # ---------------------------------------------------------------- llama.cpp
    try:
        import llama_cpp

        render = Path(llama_cpp.__file__).parent / "lib" / "causette-chat-render"
        for dtype in ("float32", "float16"):
            export_gguf(run, tmp / f"base-{dtype}.gguf", dtype=dtype)
            export_gguf(run / "sft", tmp / f"sft-{dtype}.gguf", dtype=dtype)
            kw = dict(n_ctx=base.model.cfg.block_size, n_threads=1, type_k=0, type_v=0, verbose=False, seed=0)
            lb = llama_cpp.Llama(str(tmp / f"base-{dtype}.gguf"), logits_all=True, **kw)
            ls = llama_cpp.Llama(str(tmp / f"sft-{dtype}.gguf"), **kw)
            same = sum(lb.tokenize(x.encode(), add_bos=False, special=False) == o for x, o in zip(lines, ours_ids))
            lb.reset()
            lb.eval(val_ids)
            lg = torch.tensor(lb.scores[: len(val_ids)])
            g_same = 0
            for p in PROMPTS:
                c = lb.create_completion(p, max_tokens=NEW, temperature=0.0, repeat_penalty=1.0)
                g_same += c["choices"][0]["text"] == tok.decode(greedy_ref[p])
            paths = {"jinja": 0, "legacy": 0}
            c_greedy = 0
            for i, messages in enumerate(CHATS):
                req = tmp / "chat.json"
                req.write_text(json.dumps({"messages": messages, "add_generation_prompt": True}))
                done = subprocess.run([str(render), str(tmp / f"sft-{dtype}.gguf"), str(req)],
                                      capture_output=True, text=True, check=True)
                rendered = json.loads(done.stdout)
                for path in paths:
                    ids = ls.tokenize(rendered[path].encode(), add_bos=True, special=True)
                    paths[path] += ids == chat_ref[i][0]
                c = ls.create_completion(rendered["jinja"], max_tokens=NEW, temperature=0.0, repeat_penalty=1.0)
                c_greedy += c["choices"][0]["text"] == tok.decode(chat_ref[i][1])
            name = f"llama.cpp {llama_cpp.__version__} binding, GGUF {'f32' if dtype == 'float32' else 'f16'}"
            rows[name] = {
                "tok": f"{same}/{len(lines)}", "logits": logits_cell(lg), "greedy": f"{g_same}/{len(PROMPTS)}",
                "chat": f"ids {paths['jinja']}/{len(CHATS)} (Jinja), {paths['legacy']}/{len(CHATS)} (built-in "
                        f"chatml), replies {c_greedy}/{len(CHATS)}",
            }
    except ImportError:
        rows["llama.cpp"] = {"tok": "n/a", "logits": "n/a", "greedy": "n/a", "chat": "n/a"}

    # ---------------------------------------------------------------- Ollama's template (Go)
    go = shutil.which("go")
    if go:
        ok = 0
        for messages in CHATS:
            (tmp / "t.txt").write_text(TEMPLATES["chatml"])
            (tmp / "c.json").write_text(json.dumps({"messages": messages}))
            env = dict(os.environ, GO111MODULE="off", GOCACHE=str(tmp / "gocache"))
            out = subprocess.run([go, "run", str(ROOT / "tools/ollama/render_template.go"), str(tmp / "t.txt"),
                                  str(tmp / "c.json")], capture_output=True, text=True, env=env, check=True).stdout
            ok += "<|bos|>" + out == render_text(messages, add_generation_prompt=True)
        rows["Ollama Modelfile TEMPLATE (Go text/template; Ollama not run)"] = {
            "tok": "(llama.cpp's or GPT-4 regex)", "logits": "—", "greedy": "—", "chat": f"text {ok}/{len(CHATS)}"}

    print("| runtime | tokenisation (demo lines, same ids) | logits max abs Δ (256 tokens) | greedy text (base) | chat |")
    print("|---|---:|---:|---:|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['tok']} | {r['logits']} | {r['greedy']} | {r['chat']} |")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
