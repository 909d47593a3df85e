"""Topic ``lora`` (docs/sft.md): LoRA on the demo model, trainable parameters, merging."""

from __future__ import annotations

import torch

from causette.explain.common import Setup, encode, num, topic, tr
from causette.model.config import LoRAConfig
from causette.model.lora import LoRALinear, apply_lora, merge_lora


@topic("lora", ("LoRA sur le modèle de démo : paramètres entraînables, un adaptateur neuf, la fusion",
                "LoRA on the demo model: trainable parameters, a fresh adapter, merging"), text=False,
       trained=("les mêmes comptes (LoRA ne dépend que des formes des matrices), mais des logits de base qui ont "
                "du sens",
                "the same counts (LoRA depends on the shapes of the matrices only), but base logits that make sense"))
def explain_lora(s: Setup, text: str = "", args=None) -> str:
    model = s.model
    ids = torch.tensor([encode(s.tok, text or "Qui a écrit Phèdre ?")])  # the logits compared below are on this
    with torch.no_grad():
        base = model(ids)[0]
    total = sum(p.numel() for p in model.parameters())
    wrapped = apply_lora(model, LoRAConfig(r=8))
    layers = [m for m in model.modules() if isinstance(m, LoRALinear)]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    first = layers[0]
    out = [tr(f"{len(wrapped)} couches linéaires adaptées ({', '.join(wrapped[:4])}, ...), "
              f"rang r = 8, échelle alpha/r = {num(first.scale, 'g')}",
              f"{len(wrapped)} linear layers adapted ({', '.join(wrapped[:4])}, ...), "
              f"rank r = 8, scale alpha/r = {first.scale:g}")]
    n_adapter = first.lora_A.numel() + first.lora_B.numel()
    W = f"W {first.out_features} × {first.in_features}"
    AB = f"A {tuple(first.lora_A.shape)} + B {tuple(first.lora_B.shape)}"
    out.append(tr(f"  p. ex. {wrapped[0]} : {W} = {num(first.weight.numel(), ',')} gelés, "
                  f"{AB} = {num(n_adapter, ',')} entraînables",
                  f"  e.g. {wrapped[0]}: {W} = {first.weight.numel():,} frozen, {AB} = {n_adapter:,} trainable"))
    out.append(tr(f"entraînables : {num(trainable, ',')} paramètres sur {num(total, ',')} ({num(trainable / total, '.1%')})",
                  f"trainable: {trainable:,} of {total:,} parameters ({trainable / total:.1%})"))
    per_r = sum(m.in_features + m.out_features for m in layers)
    out.append(tr("  autres rangs : " + " ; ".join(f"r={r} : {num(r * per_r, ',')}" for r in (1, 4, 16, 64)),
                  "  other ranks: " + ", ".join(f"r={r}: {r * per_r:,}" for r in (1, 4, 16, 64))))
    with torch.no_grad():
        fresh = model(ids)[0]
        g = torch.Generator().manual_seed(0)
        for m in layers:  # pretend training moved B away from zero
            m.lora_B.copy_(torch.randn(m.lora_B.shape, generator=g) * 0.02)
        adapted = model(ids)[0]
        merged = merge_lora(model)(ids)[0]
    d_fresh, d_adapted = float((fresh - base).abs().max()), float((adapted - base).abs().max())
    d_merged = float((merged - adapted).abs().max())
    out += [
        tr(f"adaptateur neuf (B = 0) : max |logits - base| = {num(d_fresh, '.1e')}",
           f"fresh adapter (B = 0): max |logits - base| = {d_fresh:.1e}"),
        tr(f"après une mise à jour de B : max |logits - base| = {num(d_adapted, '.3f')}, "
           f"W + (alpha/r)·B·A fusionné contre l'adaptateur : {num(d_merged, '.1e')}",
           f"after an update of B: max |logits - base| = {d_adapted:.3f}, "
           f"merged W + (alpha/r)·B·A vs adapter: {d_merged:.1e}"),
    ]
    return "\n".join(out)
