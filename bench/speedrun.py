"""CPU speedrun (issue 28): the most model per laptop hour, measured against a nanoGPT yardstick.

    python bench/speedrun.py                                # 15 min: our recipe, nanoGPT 4×256 and 6×384
    python bench/speedrun.py --minutes 15 60                # both budgets, one after the other
    python bench/speedrun.py --recipe ours --recipe muon6 model.n_layer=6 model.n_embd=384 train.optimizer=muon
    python bench/speedrun.py --minutes 0.5 --eval-tokens 8192 --grammar-pairs 330 --yardstick 4x256 --no-compile

**Data** (prepared once, cached in ``<runs>/base``; a step is skipped when its outputs exist and the
settings recorded in ``base/steps.json`` match). The French pretraining sources of ../shared/data
(``--data``), as configs/corpus-shared.yaml lists them: theatre, ELTeC novels, Code civil; not the
UD sentences, which the grammar suite is made of. :data:`HELD_OUT` whole ELTeC novels, chosen by
:func:`pick_held_out` (ids sorted by a seeded hash: fixed, whatever else the file holds), are kept
out of training: the corpus reads a copy of the ELTeC file without them (``base/eltec_train.jsonl.gz``),
and their text, cleaned as the corpus cleans the training text, is ``base/heldout/texts.jsonl.gz``.
Our BPE (``--vocab``, default 8,192) is trained on the corpus's train split only (its first 40 M
characters, as configs/seed16m.yaml), and the token data prepared, per vocabulary size
(``base/vocab<V>/``). ``base/manifest.json`` records the held-out novels and the sizes.

**Recipes** (ours). A recipe is the config ``causette run SOURCE`` would use for your own texts
(``--config``, default demo: its model, optimiser and schedule) plus ``--set`` overrides for every
recipe, plus the recipe's own: ``--recipe NAME [KEY=VALUE ...]``, repeatable (none given: one
recipe ``ours``). It is trained by the real trainer (causette/train/pretrain.py, what
``causette train`` runs) on the cached token data (linked into ``<runs>/<budget>min-<name>``) with
``train.max_minutes`` = the budget: the learning-rate schedule follows the clock and ends on time.
Fixed for every recipe, before your overrides: ``train.max_epochs=0`` (``causette run SOURCE``
caps at 2 epochs, which only protects small texts: here ~38 M train tokens, and a fast 60-minute
recipe could pass 2 epochs: the budget, not the epochs, must end the run), no step limit, no
validation, samples nor TensorBoard during the run (``train.eval_tokens=0``: the held-out
evaluation below happens after the budget, the same for every model; set ``train.eval_tokens``
yourself to have the trainer's own evaluation, inside the budget), one checkpoint, at the end.

**Yardstick** (bench/nanogpt.py): nanoGPT's model and loop, re-implemented, on the same tokenizer
and token files (so the comparison isolates the model and the training loop), one run per shape
of ``--yardstick`` (layers × width, a head per 64 channels), batch 16 × context 256, lr 1e-3
(nanoGPT's small-model value; ``--yardstick-lr``), warmup 100 steps; its schedule follows the
clock like ours, its budget starts where ours does (compilation inside). Its best shape is the
reference of the ``vs nanoGPT`` column: ``(bpb_nanogpt - bpb) / bpb_nanogpt``.

**Evaluation**, the same for every model, after its budget, in fp32: bits per byte over the first
``--eval-tokens`` tokens of the held-out novels (each novel ``<|bos|>`` + its tokens, in id
order), every token after the first scored once, in consecutive windows of the model's context;
bits per byte = total nats / ln 2 / the UTF-8 bytes those scored tokens spell (:func:`heldout_bpb`).
Grammar: the accuracy on the built-in minimal pairs (causette/eval/sentence_scores.py; all of
them, or a fixed subset with ``--grammar-pairs``), sentences cleaned like the corpus. With the
defaults, ~1.5 min per model of the demo's size on 2 threads (262,144 tokens and 16,477 pairs).

**Output**: one markdown table (printed) and ``<runs>/results-<time>.json``; the machine's state
(load, threads, torch, CPU) at the start and the end. Runs go one after another, on ``--threads``
threads (default 2): compare figures from a quiet machine only.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import os
import platform
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import causette  # noqa: E402,F401  (thread settings before torch starts)
from causette.config import Config, load_config, to_dict  # noqa: E402
from causette.errors import CausetteError  # noqa: E402
from causette.utils.io import atomic_write, read_json, sha256_file, write_json  # noqa: E402

HELD_OUT = 6  # whole ELTeC novels kept out of training
HELD_OUT_SEED = 28  # issue 28
ELTEC = "eltec_fra_novels.jsonl.gz"
SOURCES = ("fredracor_tei.tar.xz", ELTEC, "code_civil_fr_2015.jsonl.gz")  # configs/corpus-shared.yaml
TOKENIZER_CHARS = 40_000_000  # tokenizer.max_train_chars, as configs/seed16m.yaml


def pick_held_out(ids: list[str], k: int = HELD_OUT, seed: int = HELD_OUT_SEED) -> list[str]:
    """``k`` of ``ids``, sorted: those with the smallest SHA-256 of ``"<seed>:<id>"``. A function of
    each id alone, so the same on any machine and Python, and unchanged by other ids coming or going."""
    pool = sorted(set(ids))
    if not 0 < k < len(pool):
        raise CausetteError(f"held-out novels: cannot keep {k} of {len(pool)} novels out of training")
    rank = sorted(pool, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())
    return sorted(rank[:k])


# ----------------------------------------------------------------------------- data, once


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _fingerprint(path: Path) -> list:
    """A source file by name and content (a rewritten file with the same bytes is the same source)."""
    return [path.name, sha256_file(path)]


class Steps:
    """``base/steps.json``: the key (settings hash) each finished preparation step was made with."""

    def __init__(self, base: Path):
        self.path = base / "steps.json"
        self.keys = read_json(self.path) if self.path.is_file() else {}

    def done(self, step: str, key: str, outputs: list[Path]) -> bool:
        return self.keys.get(step) == key and all(p.exists() for p in outputs)

    def finish(self, step: str, key: str) -> None:
        self.keys[step] = key
        write_json(self.path, self.keys)


@dataclass
class Prepared:
    base: Path
    vocab_dir: Path  # tokenizer/ and data/ of this vocabulary size
    cfg: Config  # the corpus settings the data was made with (cleaning: cfg.corpus.normalize)
    manifest: dict


def base_config(data: Path, base: Path, vocab: int) -> Config:
    """configs/corpus-shared.yaml's corpus, its sources in ``data``, ELTeC without the held-out novels."""
    cfg = load_config(ROOT / "configs" / "corpus-shared.yaml", [
        f"run.dir={base.parent}", f"run.name={base.name}", f"tokenizer.vocab_size={vocab}",
        f"model.vocab_size={vocab}", f"tokenizer.max_train_chars={TOKENIZER_CHARS}"])
    names = [Path(s.path).name for s in cfg.corpus.sources]
    if sorted(names) != sorted(SOURCES):
        raise CausetteError(f"configs/corpus-shared.yaml: expected the sources {', '.join(SOURCES)}, found {', '.join(names)}")
    for src in cfg.corpus.sources:
        name = Path(src.path).name
        src.path = str(base / "eltec_train.jsonl.gz" if name == ELTEC else data / "pretrain" / name)
    return cfg


def split_eltec(source: Path, base: Path, cfg: Config) -> list[dict]:
    """Write the training copy of ELTeC (without the held-out novels) and the held-out novels' raw
    records and cleaned texts; returns the held-out novels' descriptions."""
    from causette.corpus.config import SourceConfig
    from causette.corpus.document import Report
    from causette.corpus.normalize import normalize
    from causette.corpus.sources import read_source

    with gzip.open(source, "rt", encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    records = [json.loads(line) for line in lines]
    held = set(pick_held_out([str(r["id"]) for r in records]))
    (base / "heldout").mkdir(parents=True, exist_ok=True)
    for path, keep in ((base / "eltec_train.jsonl.gz", False), (base / "heldout" / "novels.jsonl.gz", True)):
        chosen = "".join(line for line, r in zip(lines, records) if (str(r["id"]) in held) == keep)
        with atomic_write(path, "wb") as f:
            f.write(gzip.compress(chosen.encode("utf-8"), mtime=0))
    eltec = next(s for s in cfg.corpus.sources if Path(s.path).name == "eltec_train.jsonl.gz")
    src = SourceConfig(path=str(base / "heldout" / "novels.jsonl.gz"), format="jsonl", kind=eltec.kind)
    docs = sorted(read_source(src, Report(strict=True)), key=lambda d: d.id)
    texts = [{"id": d.id, "title": d.title, "text": normalize(d.text, cfg.corpus.normalize, d.kind)} for d in docs]
    with atomic_write(base / "heldout" / "texts.jsonl.gz", "wb") as f:
        f.write(gzip.compress("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts).encode(), mtime=0))
    by_id = {str(r["id"]): r for r in records}
    return [{"id": t["id"], "title": t["title"], "author": by_id.get(t["id"], {}).get("author", ""),
             "year": by_id.get(t["id"], {}).get("year", ""), "characters": len(t["text"])} for t in texts]


def prepare_base(data: Path, base: Path, vocab: int, echo=print, progress: bool = True) -> Prepared:
    """split → corpus → tokenizer (per vocabulary) → token data (per vocabulary), each step once."""
    from causette.corpus.build import build_corpus
    from causette.corpus.store import iter_texts, read_manifest
    from causette.data.prepare import prepare, read_meta
    from causette.tokenizer.train import train_tokenizer

    missing = [data / "pretrain" / n for n in SOURCES if not (data / "pretrain" / n).is_file()]
    if missing:
        raise CausetteError(f"{missing[0]}: not found; the speedrun trains on ../shared/data (give its folder with --data)")
    base, data = base.resolve(), data.resolve()
    base.mkdir(parents=True, exist_ok=True)
    cfg = base_config(data, base, vocab)
    steps, vdir = Steps(base), base / f"vocab{vocab}"
    manifest = read_json(base / "manifest.json") if (base / "manifest.json").is_file() else {}
    key = _key("split", _fingerprint(data / "pretrain" / ELTEC), HELD_OUT, HELD_OUT_SEED, to_dict(cfg.corpus.normalize))
    split_outputs = [base / "eltec_train.jsonl.gz", base / "heldout" / "texts.jsonl.gz"]
    if not steps.done("split", key, split_outputs) or "held_out" not in manifest:
        echo(f"== split: {HELD_OUT} ELTeC novels held out")
        manifest = {"held_out": split_eltec(data / "pretrain" / ELTEC, base, cfg)}
        steps.finish("split", key)
    settings = to_dict(cfg.corpus)  # the sources by name and content: the key does not depend on where they are
    settings["sources"] = [{**s, "path": _fingerprint(Path(s["path"]))} for s in settings["sources"]]
    key = _key(key, "corpus", settings)
    if not steps.done("corpus", key, [base / "corpus" / "manifest.json"]):
        echo("== corpus")
        build_corpus(cfg.corpus, base / "corpus", progress=progress)
        steps.finish("corpus", key)
    key = _key(key, "tokenizer", to_dict(cfg.tokenizer))
    if not steps.done(f"tokenizer-{vocab}", key, [vdir / "tokenizer" / "tokenizer.json"]):
        echo(f"== tokenizer ({vocab:,} tokens, on the train split)")
        train_tokenizer(cfg.tokenizer, iter_texts(base / "corpus", "train"), out_dir=vdir / "tokenizer", progress=progress)
        steps.finish(f"tokenizer-{vocab}", key)
    key = _key(key, "data")
    if not steps.done(f"data-{vocab}", key, [vdir / "data" / "meta.json"]):
        echo("== token data")
        prepare(base / "corpus", vdir / "tokenizer", vdir / "data", progress=progress, echo=echo)
        steps.finish(f"data-{vocab}", key)
    corpus = read_manifest(base / "corpus")["split"]
    manifest["held_out_rule"] = f"{HELD_OUT} ELTeC ids with the smallest sha256('{HELD_OUT_SEED}:<id>')"
    manifest["corpus"] = {"characters": corpus.get("characters", {}), "sources": [s.path for s in cfg.corpus.sources]}
    manifest.setdefault("vocab", {})[str(vocab)] = read_meta(vdir / "data")["splits"]
    write_json(base / "manifest.json", manifest)
    return Prepared(base, vdir, cfg, manifest)


# ----------------------------------------------------------------------------- evaluation


def heldout_tokens(base: Path, tokenizer, n: int):
    """The first ``n + 1`` tokens of the held-out novels (each ``<|bos|>`` + its tokens, in id order)."""
    import numpy as np

    ids: list[int] = []
    with gzip.open(base / "heldout" / "texts.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            ids += [tokenizer.bos_id, *tokenizer.encode(json.loads(line)["text"])]
            if len(ids) > n:
                return np.asarray(ids[: n + 1], dtype=np.int64)
    raise CausetteError(f"the held-out novels hold {len(ids) - 1:,} tokens to score, fewer than --eval-tokens {n:,}")


def heldout_bpb(model, ids, byte_lengths, block_size: int, batch_size: int = 8) -> dict:
    """Bits per byte of ``model`` on the token array ``ids``: ``ids[1:]`` scored, each once, in
    consecutive windows of ``block_size`` targets (the last one shorter), each window's first input
    the token before its first target. The bytes: those the scored tokens spell (0 for specials)."""
    import torch

    from causette.eval.metrics import bits_per_byte, evaluate_windows

    t = torch.as_tensor(ids)
    n = len(t) - 1
    full = n // block_size
    parts = []
    if full:
        parts.append(t[: full * block_size + 1].unfold(0, block_size + 1, block_size))
    if n % block_size:
        parts.append(t[full * block_size :].unsqueeze(0))
    nats = 0.0
    for rows in parts:
        m = evaluate_windows(model, rows, byte_lengths, batch_size=batch_size, device="cpu")
        nats += m["loss"] * m["tokens"]
    scored_bytes = int(byte_lengths[t[1:]].sum())
    return {"bits_per_byte": bits_per_byte(nats, scored_bytes), "loss": nats / n, "tokens": n, "bytes": scored_bytes}


class Grammar:
    """The minimal pairs, encoded once per context size, scored for any model."""

    def __init__(self, tokenizer, normalize_cfg, n_pairs: int):
        from causette.eval.minimal_pairs import fixed_subset, read_pairs
        from causette.utils.paths import GRAMMAR_SUITE

        pairs = read_pairs(GRAMMAR_SUITE)
        self.pairs = fixed_subset(pairs, n_pairs) if n_pairs else pairs
        self.tokenizer, self.normalize_cfg = tokenizer, normalize_cfg
        self.encoded: dict[int, object] = {}

    def __call__(self, model) -> dict:
        from causette.eval.sentence_scores import encode_pairs, score_encoded

        block = model.cfg.block_size
        if block not in self.encoded:
            self.encoded[block] = encode_pairs(self.tokenizer, self.pairs, block, self.normalize_cfg)
        counts = score_encoded(model, self.encoded[block], self.tokenizer.bos_id, "cpu").counts()
        correct, total = sum(c for c, _ in counts.values()), sum(t for _, t in counts.values())
        return {"grammar": correct / total if total else math.nan, "grammar_pairs": total}


@dataclass
class Evaluation:
    ids: object  # the held-out token array
    byte_lengths: object
    grammar: Grammar

    def __call__(self, model) -> dict:
        t = time.time()
        scored = heldout_bpb(model, self.ids, self.byte_lengths, model.cfg.block_size)
        out = {"bits_per_byte": scored["bits_per_byte"], "eval_loss": scored["loss"], "eval_tokens": scored["tokens"],
               "eval_bytes": scored["bytes"], **self.grammar(model)}
        out["eval_seconds"] = round(time.time() - t, 1)
        return out


# ----------------------------------------------------------------------------- the runs


def recipe_config(args, name: str, sets: list[str], minutes: float) -> Config:
    """The config our recipe ``name`` trains with (see the module docstring for what is fixed)."""
    runs = args.runs.resolve()
    fixed = [f"run.dir={runs}", f"run.name={run_name(name, minutes)}", f"tokenizer.vocab_size={args.vocab}",
             f"model.vocab_size={args.vocab}", "train.max_epochs=0", "train.max_steps=1000000000",
             "train.eval_every=0", "train.eval_tokens=0", "train.sample_tokens=0", "train.tensorboard=false",
             "train.histogram_every=0", "train.ckpt_every=1000000000", "train.keep_last=1",
             *(["train.compile=false"] if args.no_compile else [])]
    return load_config(args.config, [*fixed, *args.set, *sets, f"train.max_minutes={minutes}",
                                     "train.fit_schedule_to_time=true"])


def run_name(name: str, minutes: float) -> str:
    return f"{minutes:g}min-{name}"


def run_ours(args, prep: Prepared, name: str, sets: list[str], minutes: float, evaluate: Evaluation) -> dict:
    from causette.checkpoint.load import load_checkpoint
    from causette.model.counting import count_params
    from causette.train.pretrain import train

    cfg = recipe_config(args, name, sets, minutes)
    run = cfg.run.path
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    for part in ("data", "tokenizer"):
        (run / part).symlink_to((prep.vocab_dir / part).resolve())
    load = os.getloadavg()[0]
    result = train(cfg, progress=not args.no_progress)
    model = load_checkpoint(result.checkpoint or run, device="cpu", precision="fp32").model
    counts = count_params(model.cfg)
    row = {"kind": "ours", "recipe": name, "overrides": [*args.set, *sets],
           "shape": f"{model.cfg.n_layer}×{model.cfg.n_embd}", "params_non_embedding": counts.non_embedding,
           "params_total": counts.total, "minutes_allowed": minutes, "minutes_used": result.budget_used / 60,
           "steps": result.steps, "tokens": result.tokens, "load_at_start": load, "run": str(run)}
    row.update(evaluate(model))
    return row


def run_yardstick(args, prep: Prepared, shape: tuple[int, int], lr: float, minutes: float, evaluate: Evaluation) -> dict:
    from bench import nanogpt
    from causette.data.loader import open_tokens
    from causette.data.prepare import read_meta

    meta = read_meta(prep.vocab_dir / "data")
    layers, width = shape
    cfg = nanogpt.GPTConfig(vocab_size=int(meta["vocab_size"]), block_size=args.yardstick_block, n_layer=layers,
                            n_embd=width)
    data = open_tokens(prep.vocab_dir / "data" / "train.bin", meta["dtype"])
    load = os.getloadavg()[0]
    print(f"== nanoGPT {layers}×{width}, {minutes:g} min, lr {lr:g}, batch {args.yardstick_batch} "
          f"× {args.yardstick_block}{'' if args.no_compile else ', compiled'}", flush=True)
    done = nanogpt.train(cfg, data, minutes * 60, lr=lr, batch_size=args.yardstick_batch, warmup=args.yardstick_warmup,
                         compile=not args.no_compile, log=print, log_every=100)
    counts = nanogpt.parameter_counts(cfg)
    row = {"kind": "nanogpt", "recipe": f"nanoGPT {layers}×{width}", "overrides": [], "shape": f"{layers}×{width}",
           "params_non_embedding": counts["non_embedding"], "params_total": counts["total"],
           "minutes_allowed": minutes, "minutes_used": done.seconds / 60, "steps": done.steps, "tokens": done.tokens,
           "load_at_start": load, "lr": lr}
    model = nanogpt.ForScoring(done.model).float()
    row.update(evaluate(model))
    return row


# ----------------------------------------------------------------------------- report


def machine_state() -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), platform.processor())
    return {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "load_average": [round(x, 2) for x in os.getloadavg()],
            "cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "")}


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def state_line(state: dict) -> str:
    load = " ".join(f"{x:.2f}" for x in state["load_average"])
    return (f"machine {state['time']}: load {load}, {state['torch_threads']} torch threads of {state['cores']} cores, "
            f"torch {state['torch']}, {state['cpu']}")


def with_ratios(rows: list[dict]) -> list[dict]:
    """``vs_nanogpt``: ``(bpb_best_nanogpt - bpb) / bpb_best_nanogpt`` against the same budget's best yardstick."""
    for r in rows:
        yard = [x["bits_per_byte"] for x in rows if x["kind"] == "nanogpt" and x["minutes_allowed"] == r["minutes_allowed"]]
        r["vs_nanogpt"] = (min(yard) - r["bits_per_byte"]) / min(yard) if yard else None
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| budget | recipe | shape | parameters (non-emb. / total) | minutes used / allowed | tokens seen "
             "| held-out bits/byte | grammar | vs best nanoGPT |",
             "|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ratio = "—" if r["vs_nanogpt"] is None else f"{100 * r['vs_nanogpt']:+.1f} %"
        lines.append(
            f"| {r['minutes_allowed']:g} min | {r['recipe']} | {r['shape']} "
            f"| {r['params_non_embedding'] / 1e6:.2f}M / {r['params_total'] / 1e6:.2f}M "
            f"| {r['minutes_used']:.2f} / {r['minutes_allowed']:g} | {r['tokens']:,} | {r['bits_per_byte']:.4f} "
            f"| {100 * r['grammar']:.1f} % | {ratio} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line


def parse_shape(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[x×]\s*(\d+)\s*", text)
    if not m or int(m[1]) < 1 or int(m[2]) < 64 or int(m[2]) % 64:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LAYERSxWIDTH, the width a multiple of 64 (e.g. 6x384)")
    return int(m[1]), int(m[2])


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[15.0], help="training budgets (default 15)")
    ap.add_argument("--recipe", nargs="+", action="append", metavar="NAME [KEY=VALUE ...]",
                    help="one of our recipes: a name and its overrides (repeatable; default: one recipe 'ours')")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for every recipe")
    ap.add_argument("--config", default="demo", help="the config our recipes start from (default demo)")
    ap.add_argument("--yardstick", type=parse_shape, nargs="*", default=[(4, 256), (6, 384)], metavar="LxW",
                    help="nanoGPT shapes, layers × width (default 4x256 6x384; none: no yardstick)")
    ap.add_argument("--yardstick-lr", type=float, nargs="+", default=[1e-3],
                    help="nanoGPT's peak lr: one for every shape, or one per shape (default 1e-3)")
    ap.add_argument("--yardstick-warmup", type=int, default=100, help="nanoGPT's warmup steps (default 100)")
    ap.add_argument("--yardstick-batch", type=int, default=16)
    ap.add_argument("--yardstick-block", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=8192, help="BPE vocabulary size (prepared once per size)")
    ap.add_argument("--eval-tokens", type=int, default=262_144, help="held-out tokens scored")
    ap.add_argument("--grammar-pairs", type=int, default=0, help="minimal pairs scored (0: all the suite)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-compile", action="store_true", help="no torch.compile, ours and nanoGPT (smoke tests)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="../shared/data")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "speedrun")
    args = ap.parse_args(argv)
    args.recipe = [(r[0], r[1:]) for r in args.recipe or [["ours"]]]
    for name, _ in args.recipe:
        if not re.fullmatch(r"[\w.-]+", name) or "=" in name:
            ap.error(f"--recipe {name!r}: a recipe starts with its name (letters, digits, . _ -), then its KEY=VALUE overrides")
    if len(args.yardstick_lr) == 1:
        args.yardstick_lr *= len(args.yardstick)
    if len(args.yardstick_lr) != len(args.yardstick) or min(args.yardstick_lr, default=1) <= 0:
        ap.error("--yardstick-lr: one positive value for every shape, or one per --yardstick shape")
    if len({n for n, _ in args.recipe}) < len(args.recipe):
        ap.error("--recipe: two recipes have the same name")
    for name, value in (("--minutes", min(args.minutes)), ("--eval-tokens", args.eval_tokens), ("--threads", args.threads),
                        ("--vocab", args.vocab - 300), ("--yardstick-batch", args.yardstick_batch)):
        if value <= 0:
            ap.error(f"{name}: too small")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    if not (args.data / "pretrain").is_dir():
        print(f"speedrun: {args.data}/pretrain: no such folder; the speedrun needs ../shared/data (--data DIR)")
        return 1
    try:
        for minutes in args.minutes:  # every recipe's config checked before any work
            for name, sets in args.recipe:
                recipe_config(args, name, sets, minutes)
        start = machine_state()
        print(state_line(start), flush=True)
        rows = run_all(args)
    except CausetteError as e:
        print(f"error: {e}")
        return 1
    end = machine_state()
    print(table(with_ratios(rows)))
    print(state_line(end))
    out = args.runs / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
    write_json(out, {"command": " ".join(sys.argv), "machine_start": start, "machine_end": end,
                     "data": read_json(args.runs / "base" / "manifest.json"), "rows": rows})
    print(f"results: {out}")
    return 0


def run_all(args) -> list[dict]:
    from causette.eval.metrics import token_byte_lengths
    from causette.tokenizer.io import load_tokenizer

    prep = prepare_base(args.data, args.runs / "base", args.vocab, progress=not args.no_progress)
    held = prep.manifest["held_out"]
    sizes = prep.manifest["vocab"][str(args.vocab)]
    print(f"data: {sizes['train']['tokens']:,} train tokens, {sizes['val']['tokens']:,} val tokens; held out: "
          f"{len(held)} novels, {sum(h['characters'] for h in held):,} characters ({', '.join(h['id'] for h in held)})",
          flush=True)
    tok = load_tokenizer(prep.vocab_dir / "tokenizer" / "tokenizer.json")
    evaluate = Evaluation(heldout_tokens(prep.base, tok, args.eval_tokens), token_byte_lengths(tok),
                          Grammar(tok, prep.cfg.corpus.normalize, args.grammar_pairs))
    rows = []
    for minutes in args.minutes:
        for name, sets in args.recipe:
            rows.append(run_ours(args, prep, name, sets, minutes, evaluate))
            print(row_line(rows[-1]), flush=True)
        for shape, lr in zip(args.yardstick, args.yardstick_lr):
            rows.append(run_yardstick(args, prep, shape, lr, minutes, evaluate))
            print(row_line(rows[-1]), flush=True)
    return rows


def row_line(r: dict) -> str:
    return (f"-> {r['recipe']} ({r['shape']}, {r['minutes_allowed']:g} min): {r['steps']:,} steps, {r['tokens']:,} tokens "
            f"in {r['minutes_used']:.2f} min; held-out {r['bits_per_byte']:.4f} bits/byte, grammar "
            f"{100 * r['grammar']:.1f} % of {r['grammar_pairs']:,} pairs (eval {r['eval_seconds']:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
