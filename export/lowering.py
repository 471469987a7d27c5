"""Lowering strategies for DynamicConv2d: module transformations applied to a loaded model.

Every strategy computes the same function as the training formulation (conv is linear in its
weight); they differ in which ONNX ops they produce and so in what runtimes accept and how fast
those run. ``lower(model, strategy)`` returns a deep copy of the model whose DynamicConv2d layers
have their ``forward`` replaced by the lowered form; the network itself is never re-written.

A lowered layer also accepts precomputed *pooled statistics* (the global mean of its input, as
the tiling split feeds them) through ``layer.pooled_override``; the attention MLP then runs on
those instead of on the layer's own input.
"""
from __future__ import annotations

import copy
import types
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from runtime.errors import UserError
from train.models import DynamicConv2d, dynamic_convs


@dataclass(frozen=True)
class Strategy:
    name: str
    description: str
    dynamic_batch: bool  # False: the graph is exported for one fixed batch size
    constant_conv_weights: bool  # True: every Conv weight is an initializer (TensorRT < 8.5, INT8 safe)


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("branches", "one static Conv with K*Cout outputs, weighted by the attention and summed over K",
                 dynamic_batch=True, constant_conv_weights=True),
        Strategy("stacked", "the input scaled by each attention weight, stacked on channels, through one static "
                 "Conv with the K kernels side by side: branches' MACs without its K*Cout output and sum",
                 dynamic_batch=True, constant_conv_weights=True),
        Strategy("aggregate", "attention @ kernel bank -> one computed kernel (grouped over a fixed batch)",
                 dynamic_batch=False, constant_conv_weights=False),
    )
}
# "auto" is resolved by export.autoselect to one of the concrete strategies above.
STRATEGY_CHOICES = (*STRATEGIES, "auto")


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise UserError(f"unknown lowering strategy {name!r}; allowed: {', '.join(STRATEGIES)}") from None


def attention_from(layer: DynamicConv2d, x: torch.Tensor) -> torch.Tensor:
    """The layer's attention (B, K): from ``layer.pooled_override`` (B, C) when set, else from x."""
    pooled = getattr(layer, "pooled_override", None)
    if pooled is None:
        pooled = x.mean(dim=(2, 3), keepdim=True)
    else:
        pooled = pooled[:, :, None, None]
    return torch.softmax(layer.attention.logits(pooled) / layer.attention.temperature, dim=1)


def _branches(layer: DynamicConv2d, x: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    return layer._forward_branches(x, attention)


def _stacked(layer: DynamicConv2d, x: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    # sum_k a_k conv(x, W_k) = conv(concat_k(a_k x), concat_k(W_k) on the input axis): conv is
    # linear in its input, so the attention moves to the (smaller) input side and the K-way sum
    # happens inside the Conv's accumulation.
    stacked = (x.unsqueeze(1) * attention[:, :, None, None, None]).flatten(1, 2)
    out = F.conv2d(stacked, layer.stacked_weight, None, padding=layer.padding)
    if layer.bias is not None:
        out = out + (attention @ layer.bias)[:, :, None, None]
    return out


def _aggregate(layer: DynamicConv2d, x: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    # Shapes come from the layer and from ``layer.fixed_batch`` (Python ints), never from x, so
    # the exported Conv has static channel and group counts while H and W stay dynamic.
    batch, cout, cin, k = layer.fixed_batch, layer.out_channels, layer.in_channels, layer.kernel_size
    weight = (attention @ layer.weight.flatten(1)).reshape(batch * cout, cin, k, k)
    bias = (attention @ layer.bias).reshape(batch * cout) if layer.bias is not None else None
    if batch == 1:
        return F.conv2d(x, weight, bias, padding=layer.padding)
    folded = x.reshape(1, batch * cin, x.shape[-2], x.shape[-1])
    out = F.conv2d(folded, weight, bias, padding=layer.padding, groups=batch)
    return out.reshape(batch, cout, out.shape[-2], out.shape[-1])


_CONV: dict[str, Callable[[DynamicConv2d, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "branches": _branches,
    "stacked": _stacked,
    "aggregate": _aggregate,
}


def _lowered_forward(conv: Callable[[DynamicConv2d, torch.Tensor, torch.Tensor], torch.Tensor]):
    def forward(self: DynamicConv2d, x: torch.Tensor, attention: torch.Tensor | None = None) -> torch.Tensor:
        if getattr(self, "capture", None) is not None:
            self.capture.append(x)
        if attention is None:
            attention = attention_from(self, x)
        return conv(self, x, attention)

    return forward


def lower(model: nn.Module, strategy: str, batch: int = 1) -> nn.Module:
    """A copy of ``model`` (eval mode) with every DynamicConv2d lowered to ``strategy``.

    ``batch`` is the fixed batch size baked into strategies without a dynamic batch; ignored by
    the others. Static models come back as a plain eval-mode copy.
    """
    spec = get_strategy(strategy)
    if batch < 1:
        raise UserError(f"batch must be >= 1 for strategy {strategy!r}; got {batch}")
    lowered = copy.deepcopy(model).eval()
    for layer in dynamic_convs(lowered):
        layer.fixed_batch = None if spec.dynamic_batch else int(batch)
        layer.pooled_override = None
        layer.capture = None
        if strategy == "stacked":
            # (K, Cout, Cin, k, k) -> (Cout, K*Cin, k, k), input channel index = k*Cin + c.
            stacked = layer.weight.detach().permute(1, 0, 2, 3, 4).flatten(1, 2).contiguous()
            layer.register_buffer("stacked_weight", stacked, persistent=False)
        layer.forward = types.MethodType(_lowered_forward(_CONV[strategy]), layer)
    lowered.lowering = strategy
    return lowered


def is_dynamic(model: nn.Module) -> bool:
    return bool(dynamic_convs(model))
