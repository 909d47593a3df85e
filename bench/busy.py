"""Speed on a busy machine: training and batch-1 generation, quiet and beside 1 or 2 CPU-bound processes.

    python bench/busy.py                       # ~4 min on 2 cores; appends its table to bench/LOG.md
    python bench/busy.py --train-steps 6 --gen-tokens 64 --no-log   # quicker, prints only

A laptop is never idle. This runs the same two workloads in three conditions: quiet, beside one
competing CPU-bound process (``python -c "while True: pass"``), beside two; and with two thread
set-ups:

    before    PyTorch imported before Causette's thread settings: libgomp's default waiting
              (spin a while, then sleep), all cores — what every entry point did before issue 14
    causette  the default now (causette/utils/threads.py): OMP_WAIT_POLICY=PASSIVE, all cores
    1 thread  CAUSETTE_THREADS=1 (one thread, passive), for reference       (``--modes`` adds these)
    spin 1k … spin 30k  passive, but spinning 1,000 to 30,000 iterations before sleeping
              (GOMP_SPINCOUNT): tried to win back quiet batch-1 generation speed, not kept (bench/LOG.md)

Workloads, one fresh process per workload and thread set-up (OpenMP reads its settings when it
starts), which times the three conditions in turn:

    train     the demo model (4 layers × 256, context 256, vocabulary 8,192), batch 16, as
              ``causette train`` runs it (bf16 autocast and torch.compile where they pay), the real
              Trainer step on random tokens; tokens/s = median of ``--train-steps`` steps per
              condition, after ``--train-warmup`` untimed steps (compilation happens there)
    generate  the same model, fp32 eager as ``causette generate`` on CPU, batch 1, KV cache, greedy,
              ``--gen-tokens`` new tokens after a 32-token prompt; the median of ``--gen-repeat`` per condition

The conditions take turns (quiet, 1, 2, quiet, 1, 2) so that a slow minute of the shared machine
hits all of them; read the ratios to the same set-up's quiet speed, measured minutes apart.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MODES = {
    "before": {"torch_first": True, "env": {}},
    "causette": {"torch_first": False, "env": {}},
    "1 thread": {"torch_first": False, "env": {"CAUSETTE_THREADS": "1"}},
    **{f"spin {k}k": {"torch_first": False, "env": {"GOMP_SPINCOUNT": str(k * 1000)}} for k in (1, 3, 10, 30)},
}
SPIN = "while True: pass"


# ---------------------------------------------------------------------- the workloads (child process)
def worker(kind: str, args: argparse.Namespace) -> dict:
    import torch

    from causette.config import load_config
    from causette.model.transformer import Transformer

    cfg = load_config("model/demo").model
    torch.manual_seed(0)
    model = Transformer(cfg)
    if kind == "train":
        return train_speed(model, cfg, args)
    return generate_speed(model, cfg, args)


def train_speed(model, cfg, args) -> dict:
    import tempfile

    import torch

    from causette.train.config import TrainConfig
    from causette.train.pretrain import decide_compile
    from causette.train.trainer import Runtime, Trainer
    from causette.utils.device import resolve_dtype

    device = torch.device("cpu")
    batch = 16
    tc = TrainConfig(batch_size=batch, max_steps=10_000, warmup_steps=10, tensorboard=False)
    gen = torch.Generator().manual_seed(0)

    def batch_fn(step, micro, rank, world):
        x = torch.randint(0, cfg.vocab_size, (batch, cfg.block_size + 1), generator=gen)
        return x[:, :-1], x[:, 1:]

    dtype, compile = resolve_dtype("auto", device), decide_compile(None, device)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model, tc, tmp, batch_fn, Runtime(device, dtype, compile), progress=False)
        for _ in range(args.train_warmup):
            trainer.train_step()

        def one() -> float:
            t = time.perf_counter()
            trainer.train_step()
            return batch * cfg.block_size / (time.perf_counter() - t)

        speeds = by_condition(one, args.train_steps, args.competitors)
    return {"tokens_per_s": speeds, "threads": torch.get_num_threads(),
            "setup": f"{str(dtype).removeprefix('torch.')}{' + compile' if compile else ''}"}


def generate_speed(model, cfg, args) -> dict:
    import torch

    model.eval()
    prompt = torch.randint(0, cfg.vocab_size, (1, 32), generator=torch.Generator().manual_seed(1))
    n = args.gen_tokens

    @torch.inference_mode()
    def one() -> float:
        cache = model.new_cache(1, max_len=prompt.shape[1] + n)
        t = time.perf_counter()
        logits = model.logits(prompt, cache=cache, last_only=True)
        for _ in range(n):
            nxt = logits[:, -1].argmax(-1, keepdim=True)
            logits = model.logits(nxt, cache=cache, last_only=True)
        return n / (time.perf_counter() - t)

    one()  # warm-up
    speeds = by_condition(one, args.gen_repeat, args.competitors)
    return {"tokens_per_s": speeds, "threads": torch.get_num_threads(), "setup": "fp32 eager"}


def by_condition(one, count: int, competitors: list[int], rounds: int = 2) -> dict[int, float]:
    """Median of ``count`` measurements per number of competing processes, conditions taking
    turns over ``rounds`` rounds (a slow minute of the shared machine hits all of them)."""
    seen: dict[int, list[float]] = {n: [] for n in competitors}
    for r in range(rounds):
        for n in competitors:
            with Competitors(n):
                share = count // rounds + (1 if r < count % rounds else 0)
                seen[n] += [one() for _ in range(max(share, 1))]
    return {n: statistics.median(v) for n, v in seen.items()}


# ---------------------------------------------------------------------- the driver
def measure(kind: str, mode: str, args: argparse.Namespace) -> dict:
    """One fresh process for ``kind`` in ``mode``, which times every condition."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "CAUSETTE_THREADS",
                                                             "CAUSETTE_AUTO_THREADS", "GOMP_SPINCOUNT")}
    env.update(MODES[mode]["env"])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [sys.executable, __file__, "--worker", kind, "--train-steps", str(args.train_steps),
           "--train-warmup", str(args.train_warmup), "--gen-tokens", str(args.gen_tokens),
           "--gen-repeat", str(args.gen_repeat), "--competitors", *map(str, args.competitors)]
    cmd += ["--torch-first"] if MODES[mode]["torch_first"] else []
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    if out.returncode != 0:
        raise SystemExit(f"error: {kind} / {mode} failed:\n{out.stderr[-2000:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["tokens_per_s"] = {int(k): v for k, v in r["tokens_per_s"].items()}
    return r


class Competitors:
    """``n`` CPU-bound Python processes for the duration of a ``with`` block."""

    def __init__(self, n: int):
        self.n, self.procs = n, []

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(self.n)]
        time.sleep(0.5 if self.n else 0)
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
            p.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", nargs="+", default=["train", "generate"], choices=["train", "generate"])
    ap.add_argument("--modes", nargs="+", default=["before", "causette"], choices=list(MODES))
    ap.add_argument("--competitors", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--train-steps", type=int, default=12, help="timed steps per condition")
    ap.add_argument("--train-warmup", type=int, default=4, help="untimed steps first (compilation)")
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--gen-repeat", type=int, default=4, help="timed generations per condition")
    ap.add_argument("--timeout", type=float, default=600, help="seconds allowed to one measurement")
    ap.add_argument("--no-log", action="store_true", help="print the table, do not append it to bench/LOG.md")
    ap.add_argument("--worker", choices=["train", "generate"], help=argparse.SUPPRESS)
    ap.add_argument("--torch-first", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        sys.path.insert(0, str(ROOT))
        if args.torch_first:
            import torch  # noqa: F401  (before causette: OpenMP starts with its defaults)
        import causette  # noqa: F401  (else first: OpenMP's thread settings before torch starts)
        print(json.dumps(worker(args.worker, args)))
        return

    t_start = time.time()
    results: dict = {}
    for kind in args.workloads:
        for mode in args.modes:
            r = measure(kind, mode, args)
            for n in args.competitors:
                results[kind, mode, n] = {**r, "tokens_per_s": r["tokens_per_s"][n]}
            speeds = ", ".join(f"{n} competing {v:,.0f}" for n, v in r["tokens_per_s"].items())
            print(f"{kind:<8} {mode:<9} tokens/s: {speeds} ({r['threads']} threads, {r['setup']})", flush=True)

    lines = ["| workload | threads | " + " | ".join(
        f"{'quiet' if n == 0 else f'{n} competing'} tokens/s" + ("" if n == 0 else " | × quiet") for n in args.competitors) + " |"]
    lines.append("|---|---|" + "|".join("---:" if n == 0 else "---:|---:" for n in args.competitors) + "|")
    for kind in args.workloads:
        for mode in args.modes:
            quiet = results.get((kind, mode, 0), {}).get("tokens_per_s")
            cells = []
            for n in args.competitors:
                tps = results[kind, mode, n]["tokens_per_s"]
                cells.append(f"{tps:,.0f}")
                if n:
                    cells.append(f"{tps / quiet:.2f}" if quiet else "-")
            r = results[kind, mode, args.competitors[0]]
            lines.append(f"| {kind} ({r['setup']}) | {mode} ({r['threads']}) | " + " | ".join(cells) + " |")
    notes = []
    if "before" in args.modes and "causette" in args.modes and 0 in args.competitors:
        for kind in args.workloads:
            a, b = results[kind, "causette", 0]["tokens_per_s"], results[kind, "before", 0]["tokens_per_s"]
            notes.append(f"quiet {kind}: causette / before = {b and a / b:.2f}")
    table = "\n".join(lines)
    print()
    print(table)
    for note in notes:
        print(note)
    minutes = (time.time() - t_start) / 60
    print(f"({minutes:.1f} min, {os.cpu_count()} cores)")
    if args.no_log:
        return
    command = "python bench/busy.py"
    for k in ("workloads", "modes", "competitors", "train_steps", "train_warmup", "gen_tokens", "gen_repeat"):
        v = getattr(args, k)
        if v != ap.get_default(k):
            values = v if isinstance(v, list) else [v]
            command += f" --{k.replace('_', '-')} " + " ".join(f'"{x}"' if " " in str(x) else str(x) for x in values)
    stamp = time.strftime("%Y-%m-%d %H:%M")
    log = ROOT / "bench" / "LOG.md"
    text = log.read_text(encoding="utf-8")
    text += (f"\n### `bench/busy.py` run of {stamp} ({os.cpu_count()} cores, {minutes:.1f} min)\n\n"
             f"Command: `{command}`\n\n{table}\n\n" + "".join(f"- {n}\n" for n in notes))
    log.write_text(text, encoding="utf-8")
    print(f"appended to {log}")


if __name__ == "__main__":
    main()
