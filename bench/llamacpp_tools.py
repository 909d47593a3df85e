"""llama.cpp writes and reads tool calls with an exported assistant: for a few requests, the
exported GGUF generates greedily in llama.cpp (prompt rendered by llama.cpp's own Jinja engine,
tools offered), llama-server's parser (common_chat_parse, built from our template) reads the
reply, and both are compared with Causette's own greedy reply (unconstrained, as llama.cpp).

    # needs llama-cpp-python and causette-chat-render (bash tools/llamacpp/build.sh, as CI does)
    .venv/bin/causette export gguf runs/assistant/sft /tmp/assistant.gguf
    .venv/bin/python bench/llamacpp_tools.py runs/assistant/sft /tmp/assistant.gguf
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import causette  # noqa: E402,F401  (first: it sets the CPU threads before torch loads)
import llama_cpp  # noqa: E402
import torch  # noqa: E402

from causette.checkpoint.load import load_checkpoint  # noqa: E402
from causette.data.chat_template import render_chat  # noqa: E402
from causette.inference.engine import Engine  # noqa: E402
from causette.inference.sampling import SamplingParams  # noqa: E402
from causette.inference.tool_use import parse_tool_calls  # noqa: E402
from causette.tools import openai_tools  # noqa: E402

RENDER = Path(llama_cpp.__file__).parent / "lib" / "causette-chat-render"
ASKS = ["Combien font 17 fois 23 ?", "Quelle heure est-il ?", "Note : acheter du pain.", "Quelles sont mes notes ?",
        "Convertis 5 km en miles.", "Cherche « étoiles filantes » dans mes textes.", "Bonjour, qui es-tu ?",
        "Peux-tu réserver un train pour Lyon ?"]


def render(gguf: str, body: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        request = Path(tmp) / "request.json"
        request.write_text(json.dumps(body), encoding="utf-8")
        done = subprocess.run([str(RENDER), gguf, str(request)], capture_output=True, text=True, timeout=60)
    if done.returncode:
        sys.exit(done.stderr)
    return json.loads(done.stdout)


def theirs(llm, gguf: str, messages: list[dict], tools: list[dict], most: int = 80) -> tuple[str, dict]:
    prompt = render(gguf, {"messages": messages, "tools": tools, "add_generation_prompt": True})["jinja"]
    out = []
    for token in llm.generate(llm.tokenize(prompt.encode(), add_bos=True, special=True), temp=0.0, top_k=1,
                              repeat_penalty=1.0):
        if llama_cpp.llama_vocab_is_eog(llama_cpp.llama_model_get_vocab(llm.model), token) or len(out) >= most:
            break
        out.append(token)
    text = llm.detokenize(out, special=True).decode("utf-8", "replace")
    parsed = render(gguf, {"messages": messages, "tools": tools, "add_generation_prompt": True, "parse": text})
    return text, parsed["parsed"]


def main() -> None:
    checkpoint, gguf = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    loaded = load_checkpoint(checkpoint, device="cpu", precision="fp32")
    engine = Engine(loaded.model, loaded.tokenizer, decode="exact")
    llm = llama_cpp.Llama(gguf, n_ctx=loaded.model.cfg.block_size, verbose=False, n_threads=1)
    tools = openai_tools()
    print(f"# bench/llamacpp_tools.py — {checkpoint} exported as {gguf}")
    print("| request | llama.cpp's parser reads | same text as Causette | same calls as Causette's parser |")
    print("|---|---|:-:|:-:|")
    for ask in ASKS:
        messages = [{"role": "user", "content": ask}]
        text, parsed = theirs(llm, gguf, messages, tools)
        ids = render_chat(loaded.tokenizer, messages, add_generation_prompt=True, tools=tools)[0]
        params = SamplingParams(temperature=0, max_new_tokens=80, stop_token_ids=engine.special_ids)
        [ours] = engine.generate([ids], params)
        _, calls = parse_tool_calls(ours.text)
        read = [(c["name"], json.loads(c["arguments"])) for c in parsed["tool_calls"]]
        shown = "; ".join(f"{n}({json.dumps(a, ensure_ascii=False)})" for n, a in read) or f"text: {parsed['content'][:40]}…"
        print(f"| {ask} | {shown} | {'yes' if ours.text == text else 'NO'} | "
              f"{'yes' if read == [(c.name, c.arguments) for c in calls] else 'NO'} |")


if __name__ == "__main__":
    main()
