"""LoRA: fine-tune a frozen model through small low-rank corrections of its matrices.

A linear layer computes ``y = x Wᵀ``. LoRA freezes ``W`` (d_out × d_in) and learns a correction
of rank ``r``: ``W' = W + (alpha / r) · B A`` with ``A`` (r × d_in) and ``B`` (d_out × r). With
``r`` = 8 and d = 256 that is 4,096 parameters instead of 65,536 per matrix, and the optimiser
state shrinks likewise. ``B`` starts at zero, so a fresh adapter changes nothing: fine-tuning
starts exactly from the base model. ``A`` starts random (Kaiming-uniform, as nn.Linear does),
so the first gradient on ``B`` is not zero.

After training, ``B A`` can be added into ``W`` once (:func:`merge_lora`): the merged model is
an ordinary model, as fast as the base, with the same outputs as base + adapter.

The adapted layers keep their names (``blocks.0.attn.qkv.weight`` stays the base weight); the
adapter adds ``….lora_A`` and ``….lora_B``, which are all that :func:`adapter_state` saves.
"""

from __future__ import annotations

import math
import torch
import torch.nn as nn
import torch.nn.functional as F

from causette.errors import CausetteError
from causette.model.config import LoRAConfig


class LoRALinear(nn.Linear):
    """An ``nn.Linear`` whose frozen weight is corrected by a trainable low-rank ``B A``."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__(base.in_features, base.out_features, bias=base.bias is not None,
                         device=base.weight.device, dtype=base.weight.dtype)
        self.weight = base.weight
        self.bias = base.bias
        self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)
        self.r, self.scale = r, alpha / r
        self.lora_A = nn.Parameter(torch.empty(r, self.in_features, device=self.weight.device, dtype=self.weight.dtype))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, r, device=self.weight.device, dtype=self.weight.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.lora_dropout = nn.Dropout(dropout)

    def reset_parameters(self) -> None:  # called by nn.Linear.__init__: keep the base weights
        pass

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight, self.bias)
        # x Aᵀ Bᵀ: through the r-wide bottleneck, never forming the d_out × d_in product B A.
        return y + self.scale * F.linear(F.linear(self.lora_dropout(x), self.lora_A), self.lora_B)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, r={self.r}, scale={self.scale:g}"

    def merge(self) -> nn.Linear:
        """A plain ``nn.Linear`` with ``W + scale · B A`` (the adapter baked in)."""
        # skip_init: no random initialisation (it would be overwritten, and would draw from the RNG)
        out = nn.utils.skip_init(nn.Linear, self.in_features, self.out_features, bias=self.bias is not None,
                                 device=self.weight.device, dtype=self.weight.dtype)
        with torch.no_grad():
            delta = (self.lora_B.float() @ self.lora_A.float()) * self.scale
            out.weight.copy_((self.weight.float() + delta).to(self.weight.dtype))
            if self.bias is not None:
                out.bias.copy_(self.bias)
        return out


def apply_lora(model: nn.Module, cfg: LoRAConfig) -> list[str]:
    """Freeze ``model`` and wrap its target linear layers; returns the wrapped layers' names."""
    if cfg.r < 1:
        raise CausetteError(f"LoRA needs a rank r >= 1, got {cfg.r}")
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if child_name in cfg.targets and type(child) is nn.Linear:
                setattr(module, child_name, LoRALinear(child, cfg.r, cfg.alpha, cfg.dropout))
                wrapped.append(f"{name}.{child_name}" if name else child_name)
    if not wrapped:
        raise CausetteError(f"LoRA: no layer named {cfg.targets} in this model")
    return wrapped


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every :class:`LoRALinear` by its merged ``nn.Linear``; the model is then plain."""
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, LoRALinear):
                setattr(module, child_name, child.merge())
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter tensors (``….lora_A``, ``….lora_B``), detached, on the CPU."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if ".lora_" in k}


def load_adapter_state(model: nn.Module, state: dict[str, torch.Tensor], where: str = "adapter") -> None:
    """Load adapter tensors into a model wrapped by :func:`apply_lora`, checking names and shapes."""
    expected = {k: v for k, v in model.state_dict().items() if ".lora_" in k}
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CausetteError(f"{where}: adapter does not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})")
    for k, v in state.items():
        if v.shape != expected[k].shape:
            raise CausetteError(f"{where}: {k} has shape {tuple(v.shape)}, the model expects {tuple(expected[k].shape)}")
    model.load_state_dict(state, strict=False)
