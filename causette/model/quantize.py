"""Weight-only int8 quantisation of the linear layers, for faster decoding on a CPU.

At batch 1, a decoding step multiplies one vector by every weight matrix of the model: 33
matrix-vector products for seed16m, 64 MB of fp32 weights, each used for one multiply-add.
Storing the weights as 8-bit integers makes them four times smaller, and PyTorch has a CPU
kernel that multiplies by them directly (``aten._weight_int8pack_mm``), without ever building
the float matrix. Only the *weights* are quantised; activations, norms, attention, the KV cache
and the sampling stay in floating point.

**Per-output-channel symmetric scales.** Row ``n`` of a weight matrix (the weights of output
``n``) gets its own scale ``s[n] = max|W[n, :]| / 127``, and is stored as
``q[n, k] = round(W[n, k] / s[n])``, an integer in ``[-127, 127]``. The product becomes::

    y[n] = Σ_k x[k] · W[n, k]  ≈  s[n] · Σ_k x[k] · q[n, k]

Symmetric (no zero point) because trained weights are centred on 0; one scale per row because
rows differ a lot in size, and a single scale for the whole matrix would waste the 8 bits of the
small rows. The rounding error of a weight is at most ``s[n] / 2``: about 0.4 % of the largest
weight of its row.

**The kernel's terms.** ``_weight_int8pack_mm(x, q, s)`` wants ``x`` ``(M, K)`` in bfloat16
(it accepts float32 too, but is then ~10× slower than plain fp32), ``q`` ``(N, K)`` int8,
``s`` ``(N,)`` in ``x``'s dtype, and returns ``(M, N)`` in that dtype. So the input of a
quantised layer is rounded to bf16 and its output comes back as bf16 (8 significant bits, a
relative error of at most 0.4 %) before it is cast back to the model's dtype. The scales are
rounded *up* to a bf16 number before quantising, so that giving them to the kernel in bf16
changes nothing. In torch 2.13 the kernel crashes the process (segmentation fault) when ``K``
is not a multiple of 16, and it only exists on the CPU: in those two cases :class:`Int8Linear`
computes the same product by dequantising the weights on the fly (correct, but slow).

**The tied output layer.** With ``tie_embeddings`` the output layer and the embedding share one
matrix. Quantising replaces the output layer by an :class:`Int8Linear` made from a copy of
that matrix, while the embedding keeps the float original: looking up one row per token costs
nothing, and the embedding vectors stay exact.

What it costs and what it brings (bench/generate.py, bench/LOG.md): the logits move by about
1 %, so greedy decoding may take another path after a near tie; the linear layers take 4× less
memory; at batch 1 their products run ~2× faster than in fp32. With ``torch.compile``
(``Engine(..., compile=True)``) this makes decoding ~3.5× faster than ``transformers``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from causette.errors import CausetteError

QUANTIZE_MODES = ("none", "int8")

KERNEL_K_MULTIPLE = 16  # _weight_int8pack_mm needs in_features to be a multiple of this
KEEP_FLOAT = ("router",)  # a MoE router picks experts: a rounding error there flips a choice


def quantize_weight_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(q, scale)`` for a float ``weight`` ``(N, K)``: int8 ``(N, K)`` and bf16 ``(N,)``, with
    ``weight ≈ q * scale[:, None]`` (each row rounded to 255 levels of its own size).

    Example: the row ``[0.5, -1.27, 0.01]`` gets the scale 0.01, i.e. ``[50, -127, 1]``.
    """
    w = weight.detach().float()
    row_max = w.abs().amax(dim=1)
    scale = (row_max / 127).clamp(min=1e-12)  # an all-zero row still gets a usable scale
    # Rounded up to a bf16 number: the kernel reads bf16 scales, and rounding up keeps every
    # |W / scale| ≤ 127 (rounding down could push the largest weight to 128).
    scale_bf16 = scale.to(torch.bfloat16)
    too_small = scale_bf16.float() < scale
    scale_bf16 = torch.where(
        too_small, torch.nextafter(scale_bf16, torch.full_like(scale_bf16, float("inf"))), scale_bf16
    )
    q = torch.round(w / scale_bf16.float()[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale_bf16


class Int8Linear(nn.Module):
    """A bias-optional linear layer whose weight is stored as int8 with one scale per output.

    ``weight`` (int8 ``(out, in)``) and ``scale`` (bf16 ``(out,)``) are buffers, not parameters:
    nothing here is meant to be trained. The output has the dtype of the input.
    """

    def __init__(self, weight_int8: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        self.out_features, self.in_features = weight_int8.shape
        self.register_buffer("weight", weight_int8)
        self.register_buffer("scale", scale)
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "Int8Linear":
        q, scale = quantize_weight_int8(linear.weight)
        return cls(q, scale, linear.bias)

    def uses_kernel(self, x: torch.Tensor) -> bool:
        """Whether ``x`` goes through ``_weight_int8pack_mm`` (else: dequantise on the fly)."""
        return x.device.type == "cpu" and self.in_features % KERNEL_K_MULTIPLE == 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        rows = x.reshape(-1, self.in_features)
        if rows.shape[0] == 0:  # e.g. a MoE expert that received no token
            y = rows.new_zeros(0, self.out_features)
        elif self.uses_kernel(x):
            # contiguous(): a slice such as x[:, -1:] reshapes to rows that are not back to back
            x16 = rows.to(torch.bfloat16).contiguous()
            y = torch.ops.aten._weight_int8pack_mm(x16, self.weight, self.scale)
            y = y.to(x.dtype)
        else:
            y = F.linear(rows, self.weight.to(x.dtype)) * self.scale.to(x.dtype)
        if self.bias is not None:
            y = y + self.bias.to(y.dtype)
        return y.reshape(*shape[:-1], self.out_features)

    def dequantized(self) -> torch.Tensor:
        """The float32 weight this layer stands for (``q * scale``), e.g. to measure the error."""
        return self.weight.float() * self.scale.float()[:, None]

    def extra_repr(self) -> str:
        bias = self.bias is not None
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={bias}, int8"


def quantize_model(model: nn.Module, mode: str = "int8") -> nn.Module:
    """Replace every ``nn.Linear`` of ``model`` by an :class:`Int8Linear`, in place; returns it.

    For inference only (the model is put in eval mode and nothing quantised can be trained).
    ``mode``: ``"none"`` (nothing happens) or ``"int8"``. MoE routers stay in float. Raises a
    :class:`CausetteError` for an unknown mode, a model that is not on the CPU, a model with
    unmerged LoRA adapters, or one without any linear layer.
    """
    if mode not in QUANTIZE_MODES:
        raise CausetteError(f"unknown quantisation {mode!r}: choose one of {', '.join(QUANTIZE_MODES)}")
    if mode == "none":
        return model
    devices = {p.device.type for p in model.parameters()}
    if devices != {"cpu"}:
        raise CausetteError(
            f"int8 quantisation speeds up decoding on a CPU only (the model is on "
            f"{', '.join(sorted(devices))}): use --precision bf16 on a GPU instead"
        )
    targets = []
    for parent_name, parent in model.named_modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Linear) and type(child) is not nn.Linear:
                raise CausetteError(
                    f"{parent_name}.{name} is a {type(child).__name__}: merge the LoRA adapters into the "
                    "weights before quantising (causette.model.lora.merge_lora)"
                )
            if type(child) is nn.Linear and name not in KEEP_FLOAT:
                targets.append((parent, name, child))
    if not targets:
        raise CausetteError("this model has no linear layer to quantise")
    model.eval()
    with torch.no_grad():
        for parent, name, child in targets:
            setattr(parent, name, Int8Linear.from_linear(child))
    return model


def is_quantized(model: nn.Module) -> bool:
    return any(isinstance(m, Int8Linear) for m in model.modules())


__all__ = ["QUANTIZE_MODES", "Int8Linear", "quantize_weight_int8", "quantize_model", "is_quantized"]
