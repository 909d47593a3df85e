"""Serving under load: ``causette serve`` on loopback, hit by a bounded number of concurrent clients.

    .venv/bin/python bench/serve.py               # 200 requests, 8 at a time (~1 minute on 2 cores)
    .venv/bin/python bench/serve.py --checkpoint runs/demo/sft --requests 50

The server runs as its own process (``python -m causette serve``), exactly as a user starts it,
so that its peak memory (``VmHWM`` from /proc, Linux) is the server's alone. By default it
serves a demo-sized model (4 layers, 256 wide, context 256: configs/demo.yaml's) with random
weights, marked as a chat (SFT) checkpoint, its vocabulary a BPE tokenizer of 1,024 tokens
trained here on the start of the demo corpus; speed does not depend on what the weights
learned. ``--checkpoint`` serves a real one instead.

Clients: ``--concurrency`` asyncio tasks share ``--requests`` chat requests (a French question,
``max_tokens`` 32, temperature 0.8, seed = request number); every other request streams. A
request that does not end in a 200 with a ``finish_reason`` counts as an error. Reported:
latency p50/p95 (whole request), time to first token p50 (streamed requests), generated
tokens per second over the whole run (``usage.completion_tokens``; a random model sometimes
ends a reply early at a special token), errors, and the server's peak RSS.

The server decodes up to ``--max-batch`` (8) requests together (continuous batching) and reuses
the cached start of a prompt that a free row already holds (the five questions repeat, so most
prompts are read once per row); ``--server-arg=--no-prefix-reuse`` measures without it.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

QUESTIONS = [
    "Bonjour ! Comment vas-tu aujourd'hui ?",
    "Raconte-moi une courte histoire de chat.",
    "Qu'est-ce qu'un alexandrin ?",
    "Donne trois conseils pour bien dormir.",
    "Qui était Molière ?",
]


def make_checkpoint(root: Path) -> Path:
    import torch

    from causette.checkpoint.steps import save_checkpoint
    from causette.config import load_config
    from causette.model import Transformer
    from causette.tokenizer import train_tokenizer
    from causette.tokenizer.config import TokenizerConfig

    text = gzip.decompress((ROOT / "data" / "demo_fr_pd.txt.gz").read_bytes()).decode("utf-8")[:200_000]
    tok = train_tokenizer(TokenizerConfig(vocab_size=1024, workers=1), [text], out_dir=root / "tokenizer")
    cfg = load_config("demo", [f"model.vocab_size={tok.vocab_size}"]).model
    torch.manual_seed(0)
    model = Transformer(cfg)
    save_checkpoint(root / "sft" / "checkpoints", 1, model, None, state={"stage": "sft"},
                    tokenizer_file=root / "tokenizer" / "tokenizer.json")
    return root / "sft"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


async def one_request(client: httpx.AsyncClient, i: int, max_tokens: int) -> dict:
    stream = i % 2 == 0
    body = {"model": "causette", "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}],
            "max_tokens": max_tokens, "temperature": 0.8, "seed": i, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    t0 = time.perf_counter()
    first = None
    tokens, finish = 0, None
    try:
        if stream:
            async with client.stream("POST", "/v1/chat/completions", json=body) as r:
                if r.status_code != 200:
                    return {"ok": False, "why": f"HTTP {r.status_code}"}
                async for line in r.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    event = json.loads(line[6:])
                    if "error" in event:
                        return {"ok": False, "why": event["error"]["message"]}
                    if event.get("usage"):
                        tokens = event["usage"]["completion_tokens"]
                    for choice in event["choices"]:
                        if choice["delta"].get("content") and first is None:
                            first = time.perf_counter() - t0
                        finish = choice["finish_reason"] or finish
        else:
            r = await client.post("/v1/chat/completions", json=body)
            if r.status_code != 200:
                return {"ok": False, "why": f"HTTP {r.status_code}"}
            data = r.json()
            tokens, finish = data["usage"]["completion_tokens"], data["choices"][0]["finish_reason"]
    except httpx.HTTPError as e:
        return {"ok": False, "why": type(e).__name__}
    return {"ok": finish is not None, "why": "no finish_reason", "latency": time.perf_counter() - t0,
            "ttft": first, "tokens": tokens}


async def load(url: str, requests: int, concurrency: int, max_tokens: int) -> tuple[list[dict], float]:
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        async def bounded(i: int) -> dict:
            async with sem:
                return await one_request(client, i, max_tokens)

        t0 = time.perf_counter()
        results = await asyncio.gather(*(bounded(i) for i in range(requests)))
        return results, time.perf_counter() - t0


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", help="serve this checkpoint (default: a demo-sized random model)")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads of the server (default 1: the machine is shared)")
    ap.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                    help="one more argument for causette serve, e.g. --server-arg=--no-prefix-reuse (repeatable)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="causette-bench-serve-") as tmp:
        ckpt = Path(args.checkpoint) if args.checkpoint else make_checkpoint(Path(tmp))
        port = free_port()
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
        server = subprocess.Popen(
            [sys.executable, "-m", "causette", "serve", "--checkpoint", str(ckpt), "--device", "cpu",
             "--port", str(port), "--max-queue", str(max(16, args.concurrency * 2)), *args.server_arg],
            cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    card = httpx.get(url + "/v1/models", timeout=5).json()["data"][0]
                    break
                except httpx.TransportError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        print(server.communicate()[0])
                        raise SystemExit("the server did not start")
                    time.sleep(0.2)
            rss_idle = peak_rss_mb(server.pid)
            warm_up = (min(8, args.requests), min(2, args.concurrency), args.max_tokens)
            asyncio.run(load(url, *warm_up))
            results, wall = asyncio.run(load(url, args.requests, args.concurrency, args.max_tokens))
            rss = peak_rss_mb(server.pid)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()

    ok = [r for r in results if r["ok"]]
    errors = len(results) - len(ok)
    lat = [r["latency"] for r in ok]
    ttft = [r["ttft"] for r in ok if r.get("ttft") is not None]
    tokens = sum(r["tokens"] for r in ok)
    c = card["causette"]
    print(f"# bench/serve.py — {platform.machine()}, {os.cpu_count()} CPUs, torch threads {args.threads}")
    print(f"model: {ckpt if args.checkpoint else 'random demo-sized model (4 layers, 256 wide)'}, "
          f"context {c['context']}, mode {c['mode']}")
    print(f"{args.requests} requests, {args.concurrency} concurrent, max_tokens {args.max_tokens}, "
          f"half streamed{', server ' + ' '.join(args.server_arg) if args.server_arg else ''}\n")
    print("| requests | concurrency | latency p50 | latency p95 | first token p50 (stream) | tokens/s | "
          "requests/s | errors | server peak RSS |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    if lat and ttft:
        print(f"| {len(results)} | {args.concurrency} | {pct(lat, 50):.2f} s | {pct(lat, 95):.2f} s | "
              f"{pct(ttft, 50):.2f} s | {tokens / wall:,.0f} | {len(results) / wall:.1f} | {errors} | "
              f"{rss:.0f} MB (idle {rss_idle:.0f} MB) |")
    else:
        print(f"| {len(results)} | {args.concurrency} | – | – | – | – | – | {errors} | – |")
    print(f"\nwall {wall:.1f} s, {tokens} tokens generated, {tokens / max(1, len(ok)):.1f} per reply")
    for r in results:
        if not r["ok"]:
            print(f"error: {r['why']}")
            break
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
