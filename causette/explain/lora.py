"""Topic ``lora`` (docs/sft.md): LoRA on the demo model, trainable parameters, merging."""

from __future__ import annotations

import torch

from causette.explain.common import Setup, encode, topic


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
