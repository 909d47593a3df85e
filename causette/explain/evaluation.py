"""Topics ``loss`` and ``bleu`` (docs/evaluation.md): cross-entropy, bits per byte, BLEU, chrF."""

from __future__ import annotations

import math

import torch

from causette.explain.common import Setup, demo_text, encode, label, table, topic


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
