"""Topic ``sampling`` (docs/generation.md): temperature, top-k, top-p and min-p on next-token logits."""

from __future__ import annotations

import torch

from causette.explain.common import Setup, encode, label, num, table, topic, tr, visible
from causette.inference.sampling import apply_temperature, min_p_filter, top_k_filter, top_p_filter


@topic("sampling", ("température, top-k, top-p, min-p appliqués aux logits du token suivant",
                    "temperature, top-k, top-p, min-p applied to next-token logits"), text=False,
       trained=("quelques candidats qui se détachent nettement, au lieu d'une distribution presque plate",
                "a few candidates that stand out clearly, instead of a nearly flat distribution"))
def explain_sampling(s: Setup | None, text: str = "", args=None) -> str:
    temperature = getattr(args, "temperature", 0.8)
    top_k, top_p, min_p = getattr(args, "top_k", 0), getattr(args, "top_p", 1.0), getattr(args, "min_p", 0.0)
    given = getattr(args, "logits", None)
    if given:
        logits = torch.tensor([given], dtype=torch.float32)
        names = [f"t{i}" for i in range(len(given))]
        shown = list(range(len(given)))
        head = "logits " + tr("[" + " ; ".join(num(v, "g") for v in given) + "]", str(given))
    else:
        ids = encode(s.tok, text)
        with torch.no_grad():
            logits = s.model(torch.tensor([ids]))[0][:, -1].float()
        names = [label(s.tok, i) for i in range(logits.shape[-1])]
        shown = logits[0].topk(getattr(args, "top", 8)).indices.tolist()
        head = tr(f"token suivant après « {visible(text)} » ({logits.shape[-1]} candidats, les {len(shown)} meilleurs "
                  f"montrés)",
                  f"next token after '{visible(text)}' ({logits.shape[-1]} candidates, the {len(shown)} best shown)")
    stages = [("p (T=1)", logits)]
    x = logits
    if temperature > 0:
        x = apply_temperature(x, temperature)
        stages.append((f"T={num(temperature, 'g')}", x))
    if top_k:
        x = top_k_filter(x, top_k)
        stages.append((f"top-k {top_k}", x))
    if top_p < 1:
        x = top_p_filter(x, top_p)
        stages.append((f"top-p {num(top_p, 'g')}", x))
    if min_p > 0:
        x = min_p_filter(x, min_p)
        stages.append((f"min-p {num(min_p, 'g')}", x))
    probs = [st.softmax(-1)[0] for _, st in stages]
    draws = torch.multinomial(probs[-1], 1000, replacement=True, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(draws, minlength=logits.shape[-1])
    rows = [[names[j], num(float(logits[0, j]), "+.2f")] + [num(float(p[j]), ".3f") for p in probs] + [int(counts[j])]
            for j in shown]
    out = [head, table(["token", "logit"] + [n for n, _ in stages] + [tr("sur 1000 tirages", "of 1000 draws")], rows)]
    best = names[int(logits[0].argmax())]
    out.append(tr(f"le choix glouton (température 0) prend toujours « {best} »",
                  f"greedy (temperature 0) always takes '{best}'"))
    return "\n".join(out)
