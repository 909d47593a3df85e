"""Topics ``loss`` and ``bleu`` (docs/evaluation.md): cross-entropy, bits per byte, BLEU, chrF."""

from __future__ import annotations

import math

import torch

from causette.eval.metrics import bits_per_byte, token_byte_lengths, unigram_bits_per_byte
from causette.explain.common import Setup, demo_text, encode, label, num, table, topic, tr


@topic("loss", ("entropie croisée par token, perplexité, bits par octet, références uniforme et unigramme",
                "per-token cross-entropy, perplexity, bits per byte, uniform and unigram baselines"),
       trained=("une perte bien sous ln V et des bits par octet sous ceux du modèle unigramme",
                "a loss far below ln V and bits per byte below the unigram model's"))
def explain_loss(s: Setup, text: str, args=None) -> str:
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
        rows.append([label(tok, t), num(math.exp(lp), ".5f"), num(-lp, ".3f"), num(-lp / math.log(2), ".2f"),
                     int(lengths[t]), num(float(-uni[t]), ".3f")])
    nats = float(-logp.sum())
    n_bytes = float(lengths[targets].sum())
    loss = nats / len(targets)
    V = tok.vocab_size
    bpb, bpb_uniform = bits_per_byte(nats, n_bytes), bits_per_byte(len(targets) * math.log(V), n_bytes)
    bpb_unigram = unigram_bits_per_byte(torch.tensor(train).numpy(), targets.numpy(), lengths)
    out = [
        table([tr("token prédit", "predicted token"), "p(token)", "-ln p", "bits", tr("octets", "bytes"),
               tr("unigramme -ln p", "unigram -ln p")], rows),
        "",
        tr(f"perte = moyenne de -ln p = {num(loss, '.3f')} nats par token ; perplexité = exp(perte) = "
           f"{num(math.exp(loss), '.1f')}",
           f"loss = mean -ln p = {loss:.3f} nats per token; perplexity = exp(loss) = {math.exp(loss):.1f}"),
        tr(f"bits par octet = {num(nats, '.2f')} nats / (ln 2 × {num(n_bytes, '.0f')} octets) = {num(bpb, '.3f')}",
           f"bits per byte = {nats:.2f} nats / (ln 2 × {n_bytes:.0f} bytes) = {bpb:.3f}"),
        tr(f"choix uniforme parmi {V} tokens : perte ln {V} = {num(math.log(V), '.3f')}, "
           f"bits par octet {num(bpb_uniform, '.3f')}",
           f"uniform guess over {V} tokens: loss ln {V} = {math.log(V):.3f}, bits per byte {bpb_uniform:.3f}"),
        tr(f"modèle unigramme (fréquences des tokens sur {num(len(train), ',')} tokens d'entraînement, sans contexte) : "
           f"bits par octet {num(bpb_unigram, '.3f')}",
           f"unigram model (token frequencies of {len(train):,} training tokens, no context): "
           f"bits per byte {bpb_unigram:.3f}"),
    ]
    return "\n".join(out)


@topic("bleu", ("BLEU et chrF d'une réponse comparée à une référence (sacrebleu)",
                "BLEU and chrF of an answer against a reference (sacrebleu)"), text=False)
def explain_bleu(s: Setup | None, text: str = "", args=None) -> str:
    import sacrebleu

    hyp, ref = args.hypothesis, args.reference
    bleu = sacrebleu.corpus_bleu([hyp], [[ref]])
    chrf = sacrebleu.corpus_chrf([hyp], [[ref]])
    pairs = list(enumerate(zip(bleu.counts, bleu.totals), 1))
    sep = tr(" ; ", ", ")
    matched = sep.join(tr(f"{n}-grammes {c}/{t}", f"{n}-grams {c}/{t}") for n, (c, t) in pairs)
    precisions = sep.join(num(p / 100, ".1%") for p in bleu.precisions)
    exact = hyp.strip() == ref.strip()
    return "\n".join(
        [
            tr(f"réponse :  {hyp}", f"answer:    {hyp}"),
            tr(f"référence : {ref}", f"reference: {ref}"),
            tr(f"n-grammes de mots de la réponse trouvés dans la référence : {matched}",
               f"word n-grams of the answer found in the reference: {matched}"),
            tr(f"précisions (un 0 est lissé en 1/(2^k·total), sinon BLEU vaudrait 0) : {precisions}",
               f"precisions (a 0 is smoothed to 1/(2^k·total), else BLEU would be 0): {precisions}"),
            tr(f"pénalité de brièveté {num(bleu.bp, '.3f')} ({bleu.sys_len} mots contre {bleu.ref_len} dans la "
               f"référence)",
               f"brevity penalty {bleu.bp:.3f} ({bleu.sys_len} words vs {bleu.ref_len} in the reference)"),
            tr(f"BLEU {num(bleu.score, '.1f')} = pénalité de brièveté × moyenne géométrique des 4 précisions",
               f"BLEU {bleu.score:.1f} = brevity penalty × geometric mean of the 4 precisions"),
            tr(f"chrF {num(chrf.score, '.1f')} : F-mesure des n-grammes de caractères (1 à 6), plus indulgente "
               f"pour les fins de mots",
               f"chrF {chrf.score:.1f}: F-score of character n-grams (1 to 6), kinder to word endings"),
            tr(f"réponse exacte : {'oui' if exact else 'non'}", f"exact answer: {exact}"),
        ]
    )
