"""Tool use on held-out phrasings: does a chat model call the right tool, with the right arguments,
and answer directly when no tool is needed?

    .venv/bin/python bench/tools.py runs/assistant/sft            # 300 eval conversations, ~1 min
    .venv/bin/python bench/tools.py runs/assistant/sft --n 600 --unconstrained

The conversations come from ``causette sft tool-data --split eval`` (phrasing templates never
used in training, causette/sft/tool_data.py). For each one the model gets the conversation up
to the request (with the built-in tools offered, as ``causette chat --tools`` does) and
answers greedily, its calls constrained (causette/inference/constrain.py) unless
``--unconstrained``. Scored on the first message of the reply:

* right tool: the expected tool was called (requests that need one);
* exact arguments: ... with exactly the expected arguments (numbers compared as numbers);
* no-tool decision right: no call where none was expected (no tool needed, or a tool that does
  not exist);
* parsed: calls that parse as JSON with a name and an object of arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import causette  # noqa: E402,F401
import torch  # noqa: E402

from causette.checkpoint.load import load_checkpoint  # noqa: E402
from causette.data.chat_template import render_chat  # noqa: E402
from causette.inference.constrain import TokenTrie, ToolCallProcessor  # noqa: E402
from causette.inference.engine import Engine  # noqa: E402
from causette.inference.sampling import SamplingParams  # noqa: E402
from causette.inference.tool_use import parse_tool_calls  # noqa: E402
from causette.sft.tool_data import generate_dialogues  # noqa: E402


def same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) <= 1e-9 * max(1.0, abs(b))
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().lower() == b.strip().lower()
    return a == b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--unconstrained", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    loaded = load_checkpoint(args.checkpoint, device="cpu", precision="fp32")
    tok = loaded.tokenizer
    engine = Engine(loaded.model, tok, decode="fast")
    trie = TokenTrie(tok)
    block = loaded.model.cfg.block_size
    counts: Counter = Counter()
    by_tool: dict[str, Counter] = {}
    start = time.perf_counter()
    for item in generate_dialogues(args.n, args.seed, split="eval"):
        messages = item["messages"]
        first_answer = next(i for i, m in enumerate(messages) if m["role"] == "assistant" and i > 0
                            and messages[i - 1]["role"] == "user" and i == len(messages) - 1
                            or (m["role"] == "assistant" and m.get("tool_calls")))
        prompt_msgs = messages[:first_answer]
        ids = render_chat(tok, prompt_msgs, add_generation_prompt=True, tools=item["tools"])[0]
        room = block - len(ids) - 1
        if room < 24:
            counts["too long"] += 1
            continue
        processor = None if args.unconstrained else ToolCallProcessor(tok, item["tools"], trie)
        params = SamplingParams(temperature=0, max_new_tokens=min(96, room), stop_token_ids=engine.special_ids)
        [g] = engine.generate([ids], params, processor=processor)
        _, calls = parse_tool_calls(g.text)
        expected = item.get("expected")
        kind = item["kind"]
        counts[kind] += 1
        if expected is None:
            counts["no-tool right"] += not calls
            continue
        tool = expected["name"]
        c = by_tool.setdefault(tool, Counter())
        c["asked"] += 1
        counts["asked"] += 1
        good = [call for call in calls if call.error is None]
        counts["parsed"] += bool(calls) and len(good) == len(calls)
        counts["any call"] += bool(calls)
        if good and good[0].name == tool:
            counts["right tool"] += 1
            c["right tool"] += 1
            args_ok = set(good[0].arguments) == set(expected["arguments"]) and all(
                same(good[0].arguments[k], v) for k, v in expected["arguments"].items())
            counts["exact args"] += args_ok
            c["exact args"] += args_ok
    seconds = time.perf_counter() - start
    no_tool = counts["no_tool"] + counts["unknown_tool"]
    asked = max(1, counts["asked"])
    print(f"# bench/tools.py — {args.checkpoint}, {args.n} eval conversations (seed {args.seed}), "
          f"{'unconstrained' if args.unconstrained else 'constrained'} calls, {seconds:.0f} s")
    print("| measure | share | count |")
    print("|---|---:|---:|")
    print(f"| right tool | {counts['right tool'] / asked:.1%} | {counts['right tool']} / {counts['asked']} |")
    print(f"| exact arguments | {counts['exact args'] / asked:.1%} | {counts['exact args']} / {counts['asked']} |")
    print(f"| calls that parse | {counts['parsed'] / max(1, counts['any call']):.1%} | {counts['parsed']} / {counts['any call']} |")
    print(f"| no-tool decision right | {counts['no-tool right'] / max(1, no_tool):.1%} | {counts['no-tool right']} / {no_tool} |")
    if counts["too long"]:
        print(f"(skipped, longer than the context: {counts['too long']})")
    print("\n| tool | asked | right tool | exact arguments |")
    print("|---|---:|---:|---:|")
    for tool, c in sorted(by_tool.items()):
        print(f"| {tool} | {c['asked']} | {c['right tool'] / c['asked']:.0%} | {c['exact args'] / c['asked']:.0%} |")


if __name__ == "__main__":
    main()
