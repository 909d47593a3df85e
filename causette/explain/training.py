"""Topics ``schedule`` and ``muon`` (docs/entrainement.md): the learning rate, what Muon does."""

from __future__ import annotations

import torch

from causette.explain.common import Setup, localize, num, table, topic, tr
from causette.train.schedule import lr_at


@topic("schedule", ("taux d'apprentissage : préchauffage puis décroissance cosinus ou WSD, pas à pas",
                    "learning-rate warmup then cosine or WSD decay, step by step"), text=False)
def explain_schedule(s: Setup | None = None, text: str = "", args=None) -> str:
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
        rows.append([st, num(c, ".2e"), bar(c), num(w, ".2e"), bar(w)])
    head = tr(f"lr {num(lr, 'g')} → min_lr {num(min_lr, 'g')}, préchauffage {warmup} pas, {total} pas, "
              f"WSD décroît sur les derniers 20 %",
              f"lr {lr:g} → min_lr {min_lr:g}, warmup {warmup} steps, {total} steps, WSD decays over the last 20%")
    return head + "\n" + table([tr("pas", "step"), tr("cosinus", "cosine"), "", "wsd", ""], rows, left=(2, 4))


@topic("muon", ("ce que Muon fait d'une mise à jour : les valeurs singulières avant et après",
                "what Muon does to an update: singular values before and after"), text=False)
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
        tr("gradient (SGD)", "gradient (SGD)"): grad,
        tr("AdamW, 1er pas", "AdamW, 1st step"): first_update(torch.optim.AdamW),
        "Muon": first_update(torch.optim.Muon, momentum=0.0, nesterov=False, adjust_lr_fn=None),
    }
    rows = []
    for name, m in updates.items():
        s_ = torch.linalg.svdvals(m.float())
        rows.append([name] + [num(x, ".3f") for x in s_[[0, 1, 2, 15, 29, 30, 31]].tolist()]
                    + [num(float(s_[0] / s_[-1]), ".0f")])
    ranks = tr("1re 2e 3e 16e 30e 31e 32e", "1st 2nd 3rd 16th 30th 31st 32nd").split()
    return "\n".join(
        [
            tr(f"un gradient {rows_} × {cols} aux valeurs singulières de 10 à {localize('0.01')} ; la mise à jour que "
               f"fait chaque optimiseur :",
               f"a {rows_} × {cols} gradient with singular values from 10 down to 0.01; the update each optimiser makes:"),
            table([tr("valeurs singulières", "singular values"), *ranks, "max/min"], rows),
            tr("Muon (Newton–Schulz, en bf16) ramène chaque direction à peu près à la même taille ;",
               "Muon (Newton–Schulz, in bf16) brings every direction to about the same size;"),
            tr("le premier pas d'AdamW est sign(gradient) : égalisé composante par composante, pas direction par "
               "direction.",
               "AdamW's first step is sign(gradient): evened out entry by entry, not direction by direction."),
        ]
    )
