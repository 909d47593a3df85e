"""See the concepts of docs/ at work on a real model: python -m causette.explain TOPIC [TEXT].

    python -m causette.explain tokens "Qu'est-ce que c'est ?"       # BPE, byte by byte
    python -m causette.explain attention "Le chat dort."             # scores, causal mask, softmax
    python -m causette.explain attention "Le chat dort." --checkpoint runs/demo   # a trained model
    python -m causette.explain --help                                # every topic

Without ``--checkpoint`` the model is the demo architecture (configs/model/demo.yaml) with random
weights (``--seed``), and the tokenizer a 2,048-token BPE trained in half a second on the first
400,000 characters of the shipped corpus: everything is deterministic, offline, and takes a few
seconds on a CPU. Each topic is one short function that computes what the page explains with the
package's own code, and returns the text it prints (the tests read it).
"""

from __future__ import annotations

import argparse
import functools
import gzip
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from causette.errors import CausetteError

REPO = Path(__file__).resolve().parents[1]
DEMO_TEXT = REPO / "data" / "demo_fr_pd.txt.gz"
DEMO_CHARS = 400_000  # characters of the demo corpus the in-memory tokenizer learns from
DEMO_VOCAB = 2048

# ============================================================================== set-up


@dataclass
class Setup:
    model: torch.nn.Module
    tok: object
    about: str  # one line saying which model and tokenizer these are


def demo_text(chars: int = DEMO_CHARS) -> str:
    with gzip.open(DEMO_TEXT, "rt", encoding="utf-8") as f:
        return f.read(chars)


@functools.lru_cache(maxsize=2)
def demo_tokenizer(vocab_size: int = DEMO_VOCAB):
    """A small French BPE learned from the start of the demo corpus, in memory (~0.5 s)."""
    from causette.tokenizer.config import TokenizerConfig
    from causette.tokenizer.train import train_tokenizer

    return train_tokenizer(TokenizerConfig(vocab_size=vocab_size, workers=1), [demo_text()])


def load_tokenizer_for(args):
    if getattr(args, "tokenizer", None):
        from causette.tokenizer.io import load_tokenizer

        return load_tokenizer(args.tokenizer), f"tokenizer {args.tokenizer}"
    return demo_tokenizer(), f"BPE of {DEMO_VOCAB} tokens learned from {DEMO_CHARS:,} characters of {DEMO_TEXT.name}"


def build(args, config: str = "model/demo") -> Setup:
    """The model and tokenizer a topic works on: a checkpoint, or a seeded random demo model."""
    from causette.config import load_config
    from causette.model.transformer import Transformer

    if args.checkpoint:
        from causette.inference.loading import load_checkpoint

        if args.set or args.config or args.tokenizer:
            raise CausetteError("--set, --config and --tokenizer describe the random model: not with --checkpoint")

        ck = load_checkpoint(args.checkpoint, device="cpu", precision="fp32")
        return Setup(ck.model.eval(), ck.tokenizer, f"model: {ck.describe()}")
    tok, tok_about = load_tokenizer_for(args)
    cfg = load_config(args.config or config, list(args.set)).model
    cfg.vocab_size = tok.vocab_size
    torch.manual_seed(args.seed)
    model = Transformer(cfg).eval()
    n = sum(p.numel() for p in model.parameters())
    about = (
        f"model: {args.config or config}, random weights (seed {args.seed}, untrained), {n / 1e6:.1f}M parameters, "
        f"{cfg.n_layer} layers × {cfg.n_embd}, pos={cfg.pos}, norm={cfg.norm}, mlp={cfg.mlp}\n{tok_about}"
    )
    return Setup(model, tok, about)


# ============================================================================== formatting


SHOWN = {" ": "␣", "\n": "↵", "\t": "→"}


def visible(s: str) -> str:
    """Spaces, line breaks and invisible characters made visible: ``" le\\n"`` → ``"␣le↵"``."""
    return "".join(SHOWN.get(c, c if c.isprintable() else f"\\u{ord(c):04x}") for c in s)


def label(tok, token_id: int) -> str:
    from causette.tokenizer.stats import show_token

    return visible(show_token(tok, token_id))


def encode(tok, text: str, bos: bool = True) -> list[int]:
    """Ids of ``text`` as training sees a document: ``<|bos|>`` first."""
    return ([tok.bos_id] if bos else []) + tok.encode(text)


def table(headers: list, rows: list[list], left: tuple[int, ...] = (0,)) -> str:
    """Columns padded to their widest cell; columns in ``left`` left-aligned, others right."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for r in cells:
        parts = [c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def matrix(m: torch.Tensor, row_labels: list[str], masked: torch.Tensor | None = None, fmt: str = "{:.2f}") -> str:
    """A small 2-D tensor as a table; cells where ``masked`` is True print as ``·``."""
    rows = []
    for i, lab in enumerate(row_labels):
        vals = ["·" if masked is not None and masked[i, j] else fmt.format(float(m[i, j])) for j in range(m.shape[1])]
        rows.append([f"{i} {lab}"] + vals)
    return table(["query \\ key"] + list(range(m.shape[1])), rows)


def capture(module: torch.nn.Module, model: torch.nn.Module, ids: list[int]) -> tuple[tuple, torch.Tensor]:
    """Run ``model`` on ``ids`` and return the positional inputs and the output of ``module``."""
    seen = {}
    handle = module.register_forward_hook(lambda m, args, out: seen.update(args=args, out=out))
    try:
        with torch.no_grad():
            model(torch.tensor([ids]))
    finally:
        handle.remove()
    return seen["args"], seen["out"]


# ============================================================================== topics

TOPICS: dict[str, tuple] = {}


def topic(name: str, help: str, text: bool = True):
    """Register a topic; ``text``: it takes the sentence to look at."""

    def register(fn):
        TOPICS[name] = (fn, help, text)
        return fn

    return register


# ------------------------------------------------------------------------------ tokens


def bpe_steps(tok, chunk: bytes) -> list[str]:
    """Replay the merges on one chunk: start from bytes, join the lowest-rank pair, repeat."""

    def show(parts):
        return " ".join(visible(p.decode("utf-8", errors="backslashreplace")) for p in parts)

    parts = [chunk[i : i + 1] for i in range(len(chunk))]
    lines = [f"  bytes      {show(parts)}"]
    while len(parts) > 1:
        ranks = [tok.ranks.get(parts[i] + parts[i + 1]) for i in range(len(parts) - 1)]
        candidates = [(r, i) for i, r in enumerate(ranks) if r is not None]
        if not candidates:
            break
        rank, i = min(candidates)  # lowest rank = learned first; leftmost on a tie
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
        lines.append(f"  rank {rank:>5} {show(parts)}")
    return lines


@topic("tokens", "how the tokenizer cuts a text: chunks, tokens, bytes, BPE merges replayed")
def explain_tokens(s: Setup, text: str, args=None) -> str:
    from causette.tokenizer.pattern import split_chunks

    tok = s.tok
    n_bytes = len(text.encode("utf-8"))
    out = [f"text: {len(text)} characters, {n_bytes} UTF-8 bytes"]
    chunks = split_chunks(text, tok.pattern) if tok.kind == "bpe" else []
    if chunks:
        out.append("pre-tokenisation chunks: " + " | ".join(visible(c) for c in chunks))
    ids = tok.encode(text)
    rows = [[k, i, label(tok, i), len(tok.token_bytes(i))] for k, i in enumerate(ids)]
    out += ["", table(["#", "id", "token", "bytes"], rows, left=(2,))]
    out.append(f"{len(ids)} tokens for {n_bytes} bytes: {n_bytes / max(len(ids), 1):.2f} bytes per token")
    out.append(f"decode(encode(text)) == text: {tok.decode(ids) == text}")
    if chunks:
        longest = max(chunks, key=lambda c: len(c.encode("utf-8")))
        out += ["", f"BPE on the longest chunk '{visible(longest)}' (merge rank = order of learning):"]
        out += bpe_steps(tok, longest.encode("utf-8"))
    return "\n".join(out)


# ------------------------------------------------------------------------------ embeddings


@topic("embeddings", "each token's vector, its nearest neighbours (cosine), the matrix's size")
def explain_embeddings(s: Setup, text: str, args=None) -> str:
    tok, model = s.tok, s.model
    W = model.wte.weight.detach().float()
    V, d = W.shape
    n = sum(p.numel() for p in model.parameters())
    tied = model.lm_head.weight is model.wte.weight
    out = [
        f"wte: a {V} × {d} table, {V * d:,} parameters = {V * d / n:.0%} of the model; "
        f"output layer tied to it: {tied}",
    ]
    unit = F.normalize(W, dim=-1)
    ordinary = torch.tensor([not tok.is_special(i) for i in range(V)])
    top = getattr(args, "top", 6) if args is not None else 6
    for i in tok.encode(text)[:4]:
        sims = unit @ unit[i]
        sims[~ordinary] = -2.0
        sims[i] = -2.0  # not itself
        best = sims.topk(top)
        vec = ", ".join(f"{v:+.3f}" for v in W[i, :6].tolist())
        out += [
            "",
            f"token {i} '{label(tok, i)}': [{vec}, ...]  norm {W[i].norm():.3f}",
            "  nearest: "
            + ", ".join(f"'{label(tok, j)}' {c:.2f}" for c, j in zip(best.values.tolist(), best.indices.tolist())),
        ]
    g = torch.Generator().manual_seed(0)
    a, b = torch.randint(0, V, (2, 2000), generator=g)
    cos = (unit[a] * unit[b]).sum(-1).abs().mean()
    out += [
        "",
        f"mean |cosine| of 2,000 random pairs of tokens: {cos:.3f} "
        f"(random vectors in {d} dimensions: √(2/(π·{d})) = {math.sqrt(2 / (math.pi * d)):.3f})",
    ]
    return "\n".join(out)


# ------------------------------------------------------------------------------ attention


def attention_by_hand(attn, x: torch.Tensor, rope) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The attention of one layer written out: scores, weights ``(H, T, T)`` and output ``(1, T, d)``.

    The same computation as :class:`CausalSelfAttention` without the fused kernel, so that the
    ``T × T`` matrices exist and can be printed.
    """
    from causette.model.positions import apply_rope

    H, K, hd = attn.n_head, attn.n_kv_head, attn.head_dim
    T = x.shape[1]
    q, k, v = attn.qkv(x).split([H * hd, K * hd, K * hd], dim=-1)
    q = q.view(1, T, H, hd).transpose(1, 2)
    k = k.view(1, T, K, hd).transpose(1, 2)
    v = v.view(1, T, K, hd).transpose(1, 2)
    if attn.q_norm is not None:
        q, k = attn.q_norm(q), attn.k_norm(k)
    if rope is not None:
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
    k = k.repeat_interleave(H // K, dim=1)  # query head h reads key/value head h // (H/K)
    v = v.repeat_interleave(H // K, dim=1)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)  # (1, H, T, T)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)  # key j > query i: not visible
    weights = scores.masked_fill(future, float("-inf")).softmax(dim=-1)
    y = (weights @ v).transpose(1, 2).reshape(1, T, H * hd)
    return scores[0], weights[0], attn.proj(y)


def _layer_head(s: Setup, args) -> tuple[int, int]:
    layer = getattr(args, "layer", 0) if args is not None else 0
    head = getattr(args, "head", 0) if args is not None else 0
    cfg = s.model.cfg
    if not 0 <= layer < cfg.n_layer:
        raise CausetteError(f"--layer must be between 0 and {cfg.n_layer - 1}")
    if not 0 <= head < cfg.n_head:
        raise CausetteError(f"--head must be between 0 and {cfg.n_head - 1}")
    return layer, head


@topic("attention", "one head's scores q·k/√d, the causal mask and the softmax weights")
def explain_attention(s: Setup, text: str, args=None) -> str:
    layer, head = _layer_head(s, args)
    ids = encode(s.tok, text)
    attn = s.model.blocks[layer].attn
    (x, rope, _cache), out = capture(attn, s.model, ids)
    with torch.no_grad():
        scores, weights, y = attention_by_hand(attn, x, rope)
    T = len(ids)
    labels = [label(s.tok, i) for i in ids]
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    hd = attn.head_dim
    return "\n".join(
        [
            f"layer {layer}, head {head} (of {attn.n_head}), head size {hd}, {T} tokens",
            "",
            "causal mask (1: query i may look at key j, that is j <= i):",
            matrix((~future).int(), labels, fmt="{:.0f}"),
            "",
            f"scores q·k/√{hd} (· = masked, becomes -inf):",
            matrix(scores[head], labels, future),
            "",
            "weights = softmax of each row (each row sums to 1):",
            matrix(weights[head], labels, future),
            "",
            f"row sums: {', '.join(f'{v:.3f}' for v in weights[head].sum(-1).tolist())}",
            f"all heads recomputed by hand vs the model's fused attention: max |difference| "
            f"{(y - out).abs().max():.1e}",
        ]
    )


@topic("heads", "every head of a layer, grouped-query attention, KV cache size")
def explain_heads(s: Setup, text: str, args=None) -> str:
    layer, _ = _layer_head(s, args)
    cfg = s.model.cfg
    ids = encode(s.tok, text)
    attn = s.model.blocks[layer].attn
    (x, rope, _cache), _ = capture(attn, s.model, ids)
    with torch.no_grad():
        _, weights, _ = attention_by_hand(attn, x, rope)
    H, K, hd, T = attn.n_head, attn.n_kv_head, attn.head_dim, len(ids)
    group = H // K
    out = [
        f"layer {layer}: n_embd {cfg.n_embd} = {H} heads × {hd}; "
        f"{K} key/value heads, each shared by {group} query heads",
        f"  x {tuple(x.shape)} → qkv {(1, T, (H + 2 * K) * hd)} → q {(1, H, T, hd)}, k and v {(1, K, T, hd)}",
        "  query head → key/value head: " + ", ".join(f"{h}→{h // group}" for h in range(H)),
        "",
        f"what the last token '{label(s.tok, ids[-1])}' looks at, head by head (entropy in bits; "
        f"uniform over {T} tokens = {math.log2(T):.2f}):",
    ]
    rows = []
    for h in range(H):
        w = weights[h, -1]
        entropy = -(w * w.clamp_min(1e-12).log2()).sum()
        rows.append([f"head {h}"] + [f"{v:.2f}" for v in w.tolist()] + [f"{entropy:.2f}"])
    out.append(table(["", *[f"{j}:{label(s.tok, i)[:6]}" for j, i in enumerate(ids)], "entropy"], rows))
    per_kv = 2 * cfg.n_layer * hd * 2  # keys + values, all layers, bf16 bytes, per key/value head
    out += [
        "",
        f"KV cache per token (bf16, {cfg.n_layer} layers): multi-head ({H} kv heads) {per_kv * H:,} bytes, "
        f"this model ({K}) {per_kv * K:,} bytes, multi-query (1) {per_kv:,} bytes",
    ]
    return "\n".join(out)


# ------------------------------------------------------------------------------ positions


@topic("positions", "sinusoidal table, RoPE frequencies and rotation, relative positions", text=False)
def explain_positions(s: Setup | None = None, text: str = "", args=None) -> str:
    from causette.model.positions import apply_rope, rope_tables, sinusoidal_table

    dim = getattr(args, "dim", 8) if args is not None else 8
    pe = sinusoidal_table(64, dim)
    out = [f"sinusoidal table (d = {dim}): pe[p, 2i] = sin(p·ω_i), pe[p, 2i+1] = cos(p·ω_i), ω_i = 10000^(-2i/d)"]
    cols = min(dim, 8)  # a wide table would not fit a terminal: the first 8 features
    rows = [[p] + [f"{v:+.3f}" for v in pe[p, :cols].tolist()] for p in range(6)]
    out.append(table(["p"] + [f"d{j}" for j in range(cols)], rows))
    dots = [float(pe[p] @ pe[p + 3]) for p in (0, 7, 40)]
    out.append("pe[p]·pe[p+3] for p = 0, 7, 40: " + ", ".join(f"{v:.4f}" for v in dots)
               + "  (depends on the gap only)")

    cos, sin = rope_tables(64, dim)
    angle = torch.atan2(sin[1], cos[1])  # rotation per position of each pair
    out += ["", f"RoPE, head size {dim}: pair i = features (i, i+{dim // 2}) turns by θ_i radians per position"]
    out.append(
        table(
            ["pair", "θ_i (rad/position)", "period (positions)"],
            [[i, f"{a:.4f}", f"{2 * math.pi / a:.1f}"] for i, a in enumerate(angle.tolist())],
        )
    )
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 1, 1, 1, dim, generator=g)
    rot = lambda x, p: apply_rope(x, cos[p : p + 1], sin[p : p + 1])  # noqa: E731
    out += ["", "the same query vector at positions 0, 1, 2 (first pair shown; the length never changes):"]
    for p in range(3):
        r = rot(q, p).flatten()
        out.append(f"  p={p}: ({r[0]:+.3f}, {r[dim // 2]:+.3f})  norm {r.norm():.4f}")
    out += ["", "score q·k with q at position m and k at position n:"]
    rows = []
    for m, n in [(2, 0), (9, 7), (50, 48), (5, 5), (40, 40), (7, 2), (60, 55)]:
        score = float((rot(q, m) * rot(k, n)).sum())
        rows.append([m, n, m - n, f"{score:+.5f}"])
    out.append(table(["m", "n", "m-n", "score"], rows))
    out.append("same m-n, same score: attention sees relative positions")
    return "\n".join(out)


# ------------------------------------------------------------------------------ MLP and norms


@topic("mlp", "activations (GELU, SiLU, ReLU²), LayerNorm vs RMSNorm, the residual stream")
def explain_mlp(s: Setup, text: str, args=None) -> str:
    from causette.model.counting import mlp_params
    from causette.model.norms import LayerNorm, RMSNorm

    xs = torch.tensor([-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0])
    acts = {
        "relu": F.relu(xs),
        "relu²": F.relu(xs).square(),
        "gelu": F.gelu(xs, approximate="tanh"),
        "silu": F.silu(xs),
    }
    out = ["activations:", table(["x"] + [f"{v:g}" for v in xs.tolist()],
                                 [[n] + [f"{v:.2f}" for v in a.tolist()] for n, a in acts.items()])]
    gate, up = torch.tensor([3.0, 0.5, -3.0]), torch.tensor([2.0, 2.0, 2.0])
    out.append(f"SwiGLU: silu(gate)·up with gate {gate.tolist()}, up {up.tolist()} → "
               f"{[round(v, 3) for v in (F.silu(gate) * up).tolist()]}: open, ajar, almost shut")

    v = torch.tensor([[2.0, -1.0, 0.5, 3.5]])
    mean, var = v.mean(), v.var(unbiased=False)
    rms = v.pow(2).mean().sqrt()
    with torch.no_grad():
        ln, rn = LayerNorm(4, bias=False)(v), RMSNorm(4)(v)
    out += [
        "",
        f"x = {v[0].tolist()}: mean {mean:.3f}, standard deviation {var.sqrt():.3f}, root mean square {rms:.3f}",
        f"  LayerNorm (x - mean)/std = {[round(t, 3) for t in ln[0].tolist()]}",
        f"  RMSNorm   x/rms          = {[round(t, 3) for t in rn[0].tolist()]}",
    ]

    cfg = s.model.cfg
    out += ["", f"MLP of this model: {cfg.mlp}, {cfg.n_embd} → {cfg.hidden_size} → {cfg.n_embd}, "
                f"{mlp_params(cfg):,} parameters per block"]
    for kind in ("gelu", "swiglu", "relu2"):
        other = type(cfg)(**{**cfg.__dict__, "mlp": kind, "mlp_hidden": None})
        out.append(f"  {kind:<7} hidden {other.hidden_size:>5}, {mlp_params(other):>9,} parameters")

    ids = encode(s.tok, text)
    rows, hooks = [], []
    for i, block in enumerate(s.model.blocks):
        hooks.append(block.norm1.register_forward_hook(
            lambda m, a, o, i=i: rows.append([f"block {i}", f"{a[0].pow(2).mean().sqrt():.4f}",
                                              f"{o.pow(2).mean().sqrt():.4f}"])))
    try:
        with torch.no_grad():
            s.model(torch.tensor([ids]))
    finally:
        for h in hooks:
            h.remove()
    out += ["", "pre-norm residual stream x = x + f(norm(x)): root mean square over all tokens and features",
            table(["", "x entering", "norm(x)"], rows)]
    return "\n".join(out)


# ------------------------------------------------------------------------------ the whole model


@topic("model", "shapes through the network, parameters by part, FLOPs, next-token guesses")
def explain_model(s: Setup, text: str, args=None) -> str:
    from causette.model.counting import count_params, flops_per_token

    model, cfg = s.model, s.model.cfg
    ids = encode(s.tok, text)
    watched = [("wte", model.wte)]
    for i, b in enumerate(model.blocks):
        watched += [(f"blocks.{i}.norm1", b.norm1), (f"blocks.{i}.attn", b.attn),
                    (f"blocks.{i}.norm2", b.norm2), (f"blocks.{i}.mlp", b.mlp)]
    watched += [("norm_f", model.norm_f), ("lm_head", model.lm_head)]
    rows, hooks = [], []
    for name, m in watched:
        hooks.append(m.register_forward_hook(
            lambda mod, a, o, name=name: rows.append([name, str(tuple((o[0] if isinstance(o, tuple) else o).shape))])
        ))
    try:
        with torch.no_grad():
            logits, _ = model(torch.tensor([ids]))
    finally:
        for h in hooks:
            h.remove()
    out = [f"{len(ids)} tokens: " + " ".join(label(s.tok, i) for i in ids), "", table(["module", "output shape"], rows)]

    parts: dict[str, int] = {}
    for name, p in model.named_parameters():  # a tied matrix appears once, as wte
        part = ("embeddings" if name.startswith(("wte", "positions")) else "attention" if ".attn." in name
                else "MLP" if ".mlp." in name else "output layer" if name.startswith("lm_head") else "norms")
        parts[part] = parts.get(part, 0) + p.numel()
    c = count_params(cfg)
    total = sum(parts.values())
    out += ["", table(["part", "parameters", "share"], [[k, f"{v:,}", f"{v / total:.1%}"] for k, v in parts.items()]),
            f"total {total:,} (count_params: {c.total:,}), active per token {c.active:,}"]
    if model.lm_head.weight is model.wte.weight:
        out.append("output layer: tied, it is the embedding table read backwards (no parameters of its own)")
    attention = 12 * cfg.n_layer * cfg.n_head * cfg.head_dim * cfg.block_size
    f = flops_per_token(cfg)
    out.append(f"training FLOPs per token at context {cfg.block_size}: {f / 1e6:.1f} M "
               f"= 6 × {(f - attention) / 6e6:.2f} M matmul weights + {attention / 1e6:.1f} M attention")
    probs = logits[0, -1].softmax(-1)
    best = probs.topk(5)
    out.append("next token after the last one: " + ", ".join(
        f"'{label(s.tok, j)}' {p:.4f}" for p, j in zip(best.values.tolist(), best.indices.tolist())))
    return "\n".join(out)


# ------------------------------------------------------------------------------ MoE


@topic("moe", "the router: which experts each token goes to, the load, the auxiliary losses")
def explain_moe(s: Setup, text: str, args=None) -> str:
    from causette.model.counting import count_params

    model, cfg = s.model, s.model.cfg
    if not cfg.n_experts:
        raise CausetteError("this model has no experts (n_experts = 0): use the default model/moe or a MoE checkpoint")
    layer, _ = _layer_head(s, args)
    ids = encode(s.tok, text)
    moe = model.blocks[layer].mlp
    (x,), _ = capture(moe, model, ids)
    with torch.no_grad():
        logits, experts, weights = moe.route(x.reshape(-1, x.shape[-1]))
    probs = logits.softmax(-1)
    k = cfg.experts_per_token
    out = [f"layer {layer}: {cfg.n_experts} experts, each token goes to its best {k}"
           + (" + the shared expert" if cfg.moe_shared_expert else ""), ""]
    rows = [[f"{t} {label(s.tok, i)}"] + [f"{p:.2f}" for p in probs[t].tolist()]
            + [" + ".join(f"{w:.2f}·E{e}" for e, w in zip(experts[t].tolist(), weights[t].tolist()))]
            for t, i in enumerate(ids)]
    headers = ["token"] + [f"E{e}" for e in range(cfg.n_experts)] + ["output ="]
    out.append(table(headers, rows, left=(0, cfg.n_experts + 1)))
    st = model.last_stats
    load = st["expert_load"][layer]
    c = count_params(cfg)
    out += [
        "",
        "load (share of assignments): " + ", ".join(f"E{e} {v:.2f}" for e, v in enumerate(load.tolist())),
        f"balancing loss n_experts·Σ f_e·P_e = {float(st['moe_aux']):.3f} "
        f"(1 = balanced, {cfg.n_experts} = one expert takes all); z-loss {float(st['moe_z']):.4f}",
        f"parameters: {c.total:,} in all, {c.active:,} used per token ({c.active / c.total:.0%})",
    ]
    return "\n".join(out)


# ------------------------------------------------------------------------------ training


@topic("schedule", "learning-rate warmup then cosine or WSD decay, step by step", text=False)
def explain_schedule(s: Setup | None = None, text: str = "", args=None) -> str:
    from causette.train.schedule import lr_at

    total = getattr(args, "steps", 1200) if args is not None else 1200
    warmup = getattr(args, "warmup", 60) if args is not None else 60
    lr, min_lr = 2e-3, 2e-4
    kw = dict(lr=lr, min_lr=min_lr, warmup_steps=warmup, total_steps=total)
    steps = sorted({0, warmup // 2, warmup - 1, warmup, total // 4, total // 2, 3 * total // 4, int(total * 0.8),
                    int(total * 0.9), total - 1, total})

    def bar(v):
        return "█" * round(20 * v / lr)

    rows = []
    for st in steps:
        c, w = lr_at(st, schedule="cosine", **kw), lr_at(st, schedule="wsd", **kw)
        rows.append([st, f"{c:.2e}", bar(c), f"{w:.2e}", bar(w)])
    head = f"lr {lr:g} → min_lr {min_lr:g}, warmup {warmup} steps, {total} steps, WSD decays over the last 20%"
    return head + "\n" + table(["step", "cosine", "", "wsd", ""], rows, left=(2, 4))


@topic("muon", "what Muon does to an update: singular values before and after", text=False)
def explain_muon(s: Setup | None = None, text: str = "", args=None) -> str:
    g = torch.Generator().manual_seed(0)
    rows_, cols = 64, 32
    u, _ = torch.linalg.qr(torch.randn(rows_, cols, generator=g))
    v, _ = torch.linalg.qr(torch.randn(cols, cols, generator=g))
    sv = torch.logspace(1, -2, cols)  # a gradient dominated by a few directions: 10 … 0.01
    grad = u @ torch.diag(sv) @ v.T

    def first_update(opt_cls, **kw):
        w = torch.nn.Parameter(torch.zeros(rows_, cols))
        opt = opt_cls([w], lr=1.0, weight_decay=0.0, **kw)
        w.grad = grad.clone()
        opt.step()
        return -w.detach()

    updates = {
        "gradient (SGD)": grad,
        "AdamW, 1st step": first_update(torch.optim.AdamW),
        "Muon": first_update(torch.optim.Muon, momentum=0.0, nesterov=False, adjust_lr_fn=None),
    }
    rows = []
    for name, m in updates.items():
        s_ = torch.linalg.svdvals(m.float())
        rows.append([name] + [f"{x:.3f}" for x in s_[[0, 1, 2, 15, 29, 30, 31]].tolist()] + [f"{s_[0] / s_[-1]:.0f}"])
    return "\n".join(
        [
            f"a {rows_} × {cols} gradient with singular values from 10 down to 0.01; the update each optimiser makes:",
            table(["singular values", "1st", "2nd", "3rd", "16th", "30th", "31st", "32nd", "max/min"], rows),
            "Muon (Newton–Schulz, in bf16) brings every direction to about the same size;",
            "AdamW's first step is sign(gradient): evened out entry by entry, not direction by direction.",
        ]
    )


# ------------------------------------------------------------------------------ generation


@topic("sampling", "temperature, top-k, top-p, min-p applied to next-token logits", text=False)
def explain_sampling(s: Setup | None, text: str = "", args=None) -> str:
    from causette.inference.sampling import apply_temperature, min_p_filter, top_k_filter, top_p_filter

    temperature = getattr(args, "temperature", 0.8)
    top_k, top_p, min_p = getattr(args, "top_k", 0), getattr(args, "top_p", 1.0), getattr(args, "min_p", 0.0)
    given = getattr(args, "logits", None)
    if given:
        logits = torch.tensor([given], dtype=torch.float32)
        names = [f"t{i}" for i in range(len(given))]
        shown = list(range(len(given)))
        head = f"logits {given}"
    else:
        ids = encode(s.tok, text)
        with torch.no_grad():
            logits = s.model(torch.tensor([ids]))[0][:, -1].float()
        names = [label(s.tok, i) for i in range(logits.shape[-1])]
        shown = logits[0].topk(getattr(args, "top", 8)).indices.tolist()
        head = f"next token after '{visible(text)}' ({logits.shape[-1]} candidates, the {len(shown)} best shown)"
    stages = [("p (T=1)", logits)]
    x = logits
    if temperature > 0:
        x = apply_temperature(x, temperature)
        stages.append((f"T={temperature:g}", x))
    if top_k:
        x = top_k_filter(x, top_k)
        stages.append((f"top-k {top_k}", x))
    if top_p < 1:
        x = top_p_filter(x, top_p)
        stages.append((f"top-p {top_p:g}", x))
    if min_p > 0:
        x = min_p_filter(x, min_p)
        stages.append((f"min-p {min_p:g}", x))
    probs = [st.softmax(-1)[0] for _, st in stages]
    draws = torch.multinomial(probs[-1], 1000, replacement=True, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(draws, minlength=logits.shape[-1])
    rows = [[names[j], f"{float(logits[0, j]):+.2f}"] + [f"{float(p[j]):.3f}" for p in probs] + [int(counts[j])]
            for j in shown]
    out = [head, table(["token", "logit"] + [n for n, _ in stages] + ["of 1000 draws"], rows)]
    out.append(f"greedy (temperature 0) always takes '{names[int(logits[0].argmax())]}'")
    return "\n".join(out)


# ------------------------------------------------------------------------------ fine-tuning


@topic("lora", "LoRA on the demo model: trainable parameters, a fresh adapter, merging", text=False)
def explain_lora(s: Setup, text: str = "", args=None) -> str:
    from causette.model.config import LoRAConfig
    from causette.model.lora import LoRALinear, apply_lora, merge_lora

    model = s.model
    ids = torch.tensor([encode(s.tok, "Qui a écrit Phèdre ?")])
    with torch.no_grad():
        base = model(ids)[0]
    total = sum(p.numel() for p in model.parameters())
    wrapped = apply_lora(model, LoRAConfig(r=8))
    layers = [m for m in model.modules() if isinstance(m, LoRALinear)]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    first = layers[0]
    out = [f"{len(wrapped)} linear layers adapted ({', '.join(wrapped[:4])}, ...), "
           f"rank r = 8, scale alpha/r = {first.scale:g}"]
    n_adapter = first.lora_A.numel() + first.lora_B.numel()
    out.append(f"  e.g. {wrapped[0]}: W {first.out_features} × {first.in_features} = {first.weight.numel():,} frozen, "
               f"A {tuple(first.lora_A.shape)} + B {tuple(first.lora_B.shape)} = {n_adapter:,} trainable")
    out.append(f"trainable: {trainable:,} of {total:,} parameters ({trainable / total:.1%})")
    per_r = sum(m.in_features + m.out_features for m in layers)
    out.append("  other ranks: " + ", ".join(f"r={r}: {r * per_r:,}" for r in (1, 4, 16, 64)))
    with torch.no_grad():
        fresh = model(ids)[0]
        g = torch.Generator().manual_seed(0)
        for m in layers:  # pretend training moved B away from zero
            m.lora_B.copy_(torch.randn(m.lora_B.shape, generator=g) * 0.02)
        adapted = model(ids)[0]
        merged = merge_lora(model)(ids)[0]
    out += [
        f"fresh adapter (B = 0): max |logits - base| = {(fresh - base).abs().max():.1e}",
        f"after an update of B: max |logits - base| = {(adapted - base).abs().max():.3f}, "
        f"merged W + (alpha/r)·B·A vs adapter: {(merged - adapted).abs().max():.1e}",
    ]
    return "\n".join(out)


# ------------------------------------------------------------------------------ evaluation


@topic("loss", "per-token cross-entropy, perplexity, bits per byte, uniform and unigram baselines")
def explain_loss(s: Setup, text: str, args=None) -> str:
    from causette.eval.metrics import bits_per_byte, token_byte_lengths, unigram_bits_per_byte

    tok = s.tok
    ids = encode(tok, text)
    with torch.no_grad():
        logits = s.model(torch.tensor([ids[:-1]]))[0][0].float()
    targets = torch.tensor(ids[1:])
    logp = logits.log_softmax(-1)[torch.arange(len(targets)), targets]
    lengths = token_byte_lengths(tok)
    counts = torch.ones(tok.vocab_size, dtype=torch.float64)  # add-one smoothed unigram frequencies
    train = tok.encode(demo_text())
    counts += torch.bincount(torch.tensor(train), minlength=tok.vocab_size)[: tok.vocab_size]
    uni = (counts / counts.sum()).log()
    rows = []
    for t, lp in zip(targets.tolist(), logp.tolist()):
        rows.append([label(tok, t), f"{math.exp(lp):.5f}", f"{-lp:.3f}", f"{-lp / math.log(2):.2f}",
                     int(lengths[t]), f"{-uni[t]:.3f}"])
    nats = float(-logp.sum())
    n_bytes = float(lengths[targets].sum())
    loss = nats / len(targets)
    V = tok.vocab_size
    out = [
        table(["predicted token", "p(token)", "-ln p", "bits", "bytes", "unigram -ln p"], rows),
        "",
        f"loss = mean -ln p = {loss:.3f} nats per token; perplexity = exp(loss) = {math.exp(loss):.1f}",
        f"bits per byte = {nats:.2f} nats / (ln 2 × {n_bytes:.0f} bytes) = {bits_per_byte(nats, n_bytes):.3f}",
        f"uniform guess over {V} tokens: loss ln {V} = {math.log(V):.3f}, "
        f"bits per byte {bits_per_byte(len(targets) * math.log(V), n_bytes):.3f}",
        f"unigram model (token frequencies of {len(train):,} training tokens, no context): "
        f"bits per byte {unigram_bits_per_byte(torch.tensor(train).numpy(), targets.numpy(), lengths):.3f}",
    ]
    return "\n".join(out)


@topic("bleu", "BLEU and chrF of an answer against a reference (sacrebleu)", text=False)
def explain_bleu(s: Setup | None, text: str = "", args=None) -> str:
    import sacrebleu

    hyp, ref = args.hypothesis, args.reference
    bleu = sacrebleu.corpus_bleu([hyp], [[ref]])
    chrf = sacrebleu.corpus_chrf([hyp], [[ref]])
    matched = ", ".join(f"{n}-grams {c}/{t}" for n, (c, t) in enumerate(zip(bleu.counts, bleu.totals), 1))
    precisions = ", ".join(f"{p:.1f}%" for p in bleu.precisions)
    return "\n".join(
        [
            f"answer:    {hyp}",
            f"reference: {ref}",
            f"word n-grams of the answer found in the reference: {matched}",
            f"precisions (a 0 is smoothed to 1/(2^k·total), else BLEU would be 0): {precisions}",
            f"brevity penalty {bleu.bp:.3f} ({bleu.sys_len} words vs {bleu.ref_len} in the reference)",
            f"BLEU {bleu.score:.1f} = brevity penalty × geometric mean of the 4 precisions",
            f"chrF {chrf.score:.1f}: F-score of character n-grams (1 to 6), kinder to word endings",
            f"exact answer: {hyp.strip() == ref.strip()}",
        ]
    )


# ============================================================================== command line


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--checkpoint", help="a run, checkpoints or step folder (default: a random demo model)")
    common.add_argument(
        "--tokenizer", help="tokenizer folder or file for the random model (default: learned in memory)"
    )
    common.add_argument("--config", help="model config of the random model (default: model/demo; model/moe for moe)")
    common.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. --set model.pos=learned")
    common.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    common.add_argument("--layer", type=int, default=0, help="which block (default 0)")
    common.add_argument("--head", type=int, default=0, help="which attention head (default 0)")
    common.add_argument("--top", type=int, default=6, help="how many neighbours or candidates to show")

    ap = argparse.ArgumentParser(prog="python -m causette.explain", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="topic", metavar="<topic>", required=True)
    for name, (_fn, help_, takes_text) in TOPICS.items():
        p = sub.add_parser(name, help=help_, description=help_, parents=[common])
        if takes_text:
            p.add_argument("text", nargs="?", default="Le chat dort sur le lit.", help="the sentence to look at")
    sub.choices["positions"].add_argument("--dim", type=int, default=8, help="vector size (even, default 8)")
    sch = sub.choices["schedule"]
    sch.add_argument("--steps", type=int, default=1200, help="total steps (default 1200, as configs/demo.yaml)")
    sch.add_argument("--warmup", type=int, default=60, help="warmup steps (default 60)")
    smp = sub.choices["sampling"]
    smp.add_argument("text", nargs="?", default="Il était une fois", help="text whose next token is sampled")
    smp.add_argument("--logits", type=float, nargs="+", help="toy logits instead of a model's")
    smp.add_argument("--temperature", type=float, default=0.8)
    smp.add_argument("--top-k", type=int, default=0)
    smp.add_argument("--top-p", type=float, default=1.0)
    smp.add_argument("--min-p", type=float, default=0.0)
    bl = sub.choices["bleu"]
    bl.add_argument("hypothesis", help="the model's answer")
    bl.add_argument("reference", help="the expected answer")
    return ap


NEEDS_NO_MODEL = {"positions", "schedule", "muon", "bleu"}


def run(argv: list[str] | None = None) -> str:
    """Parse ``argv`` and return the text of the topic (what ``main`` prints)."""
    args = build_parser().parse_args(argv)
    fn, _help, _ = TOPICS[args.topic]
    if args.topic in NEEDS_NO_MODEL or (args.topic == "sampling" and args.logits):
        return fn(None, "", args)
    if TOPICS[args.topic][2] and not args.text.strip():
        raise CausetteError("give a non-empty text to look at")
    if args.topic == "sampling" and args.temperature < 0:
        raise CausetteError("--temperature must be >= 0")
    setup = build(args, "model/moe" if args.topic == "moe" else "model/demo")
    body = fn(setup, getattr(args, "text", ""), args)
    return f"{setup.about}\n\n{body}"


def main(argv: list[str] | None = None) -> int:
    try:
        print(run(argv))
    except (CausetteError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
