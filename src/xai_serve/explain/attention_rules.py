"""The rules of LRP for attention models in their gradient form (AttnLRP, Achtibat et al., ICML 2024;
CP-LRP, Ali et al., ICML 2022).

In the gradient form (Arras et al. 2025, "Explaining Transformers with input times modified gradient")
relevance is implicit: at every tensor ``t`` it is ``t * g_t`` where ``g`` is a *modified* gradient, seeded
with 1 at the explained logit; the input's relevance is ``x * g_x``. Each rule is then a change of a local
Jacobian, and one forward plus one backward pass computes the whole explanation:

* linear layers, convolutions, residual sums, concatenation, indexing: the plain gradient (the epsilon rule
  with epsilon -> 0);
* elementwise nonlinearities (GELU, SiLU, ...): the identity rule, ``sigma'(x) -> sigma(x) / x``
  (:class:`IdentityRule`);
* LayerNorm / RMSNorm: the normaliser (1/std, 1/rms) held constant (:class:`RulesConstant` on it);
* a product of two input-dependent tensors (``A @ B``, ``a * b``): the uniform rule, each operand gets half
  the gradient (:class:`GradientScale`);
* softmax: its own gradient (AttnLRP's softmax rule in the gradient form); CP-LRP instead holds the
  attention probabilities constant.

Every Function here reads the pass's :class:`~xai_serve.explain.passes.ModeSwitch`: its backward is the
rule in the ``RULES`` mode and the true gradient otherwise, so the gradient methods share the forward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from xai_serve.explain.passes import ModeSwitch, ReluMode

IDENTITY_EPS = 1e-10  # the stabiliser of sigma(x) / (x + eps) (as the authors' implementation)


class GradientScale(torch.autograd.Function):
    """Identity forward; the backward multiplies the gradient by ``factor`` in the rules mode."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, factor: float, switch: ModeSwitch) -> torch.Tensor:
        ctx.factor, ctx.switch = factor, switch
        with torch._C.DisableTorchFunction():
            return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        if ctx.switch.mode is ReluMode.RULES:
            return grad * ctx.factor, None, None
        return grad, None, None


class RulesConstant(torch.autograd.Function):
    """Identity forward; in the rules mode the tensor is a constant (zero gradient), otherwise its gradient
    passes."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, switch: ModeSwitch) -> torch.Tensor:
        ctx.switch = switch
        with torch._C.DisableTorchFunction():
            return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        if ctx.switch.mode is ReluMode.RULES:
            return torch.zeros_like(grad), None
        return grad, None


class IdentityRule(torch.autograd.Function):
    """``fn(x)`` (elementwise); backward ``g * fn(x) / (x + eps)`` in the rules mode (AttnLRP's identity
    rule), ``fn``'s own gradient (recomputed from ``x``) otherwise."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor], switch: ModeSwitch
    ) -> Any:
        with torch._C.DisableTorchFunction():
            out = fn(x)
        ctx.fn, ctx.switch = fn, switch
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        x, out = ctx.saved_tensors
        if ctx.switch.mode is ReluMode.RULES:
            return grad * (out / (x + IDENTITY_EPS)), None, None
        with torch.enable_grad(), torch._C.DisableTorchFunction():
            xd = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(ctx.fn(xd), xd, grad)
        return g, None, None


def scaled(t: torch.Tensor, factor: float, switch: ModeSwitch) -> torch.Tensor:
    """``t`` whose gradient the rules multiply by ``factor``."""
    return GradientScale.apply(t, factor, switch)


def half(t: torch.Tensor, switch: ModeSwitch) -> torch.Tensor:
    """``t`` as one operand of a product of two input-dependent tensors (the uniform rule's half)."""
    return GradientScale.apply(t, 0.5, switch)


def constant(t: torch.Tensor, switch: ModeSwitch) -> torch.Tensor:
    """``t`` held constant by the rules."""
    return RulesConstant.apply(t, switch)


class LayerNormRule(torch.autograd.Function):
    """``F.layer_norm`` (the fused kernel); in the rules mode the backward holds the standard deviation
    constant (AttnLRP's LayerNorm rule: ``g_x = (g w - mean(g w)) / std``), otherwise LayerNorm's own
    gradient (recomputed from ``x``)."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        shape: tuple[int, ...],
        weight: Any,
        bias: Any,
        eps: float,
        switch: ModeSwitch,
    ) -> Any:
        with torch._C.DisableTorchFunction():
            out = F.layer_norm(x, shape, weight, bias, eps)
        ctx.shape, ctx.eps, ctx.switch, ctx.weight, ctx.bias = shape, eps, switch, weight, bias
        ctx.save_for_backward(x)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        (x,) = ctx.saved_tensors
        dims = tuple(range(-len(ctx.shape), 0))
        if ctx.switch.mode is ReluMode.RULES:
            gw = grad if ctx.weight is None else grad * ctx.weight.detach()
            std = (x.var(dim=dims, unbiased=False, keepdim=True) + ctx.eps).sqrt()
            return (gw - gw.mean(dim=dims, keepdim=True)) / std, None, None, None, None, None
        with torch.enable_grad(), torch._C.DisableTorchFunction():
            xd = x.detach().requires_grad_(True)
            w = None if ctx.weight is None else ctx.weight.detach()
            b = None if ctx.bias is None else ctx.bias.detach()
            (g,) = torch.autograd.grad(F.layer_norm(xd, ctx.shape, w, b, ctx.eps), xd, grad)
        return g, None, None, None, None, None


def layer_norm(
    x: torch.Tensor,
    shape: tuple[int, ...],
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    eps: float,
    switch: ModeSwitch,
) -> torch.Tensor:
    """LayerNorm with the standard deviation constant under the rules (AttnLRP's LayerNorm rule: then
    the layer is linear in ``x``); forward by the fused kernel."""
    return LayerNormRule.apply(x, tuple(shape), weight, bias, eps, switch)


def rms_norm(
    x: torch.Tensor,
    shape: tuple[int, ...],
    weight: torch.Tensor | None,
    eps: float | None,
    switch: ModeSwitch,
) -> torch.Tensor:
    """RMSNorm with the root mean square constant under the rules."""
    dims = tuple(range(-len(shape), 0))
    eps_value = torch.finfo(x.dtype).eps if eps is None else eps
    scale = torch.rsqrt(x.pow(2).mean(dim=dims, keepdim=True) + eps_value)
    y = x * constant(scale, switch)
    return y if weight is None else y * weight


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    switch: ModeSwitch,
    conservative: bool,
    mask: torch.Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
    need_probs: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``softmax(q k^T * scale + mask) v`` over the last two dimensions with the rules of AttnLRP or,
    ``conservative``, of CP-LRP; returns the output and (``need_probs``) the probabilities.

    AttnLRP: both products under the uniform rule and the softmax under its own gradient, which is the
    same as q and k getting a quarter of their gradient and v a half (every step between is linear in
    the gradient); CP-LRP: q and k constant, so the output is linear in v. The product itself is PyTorch's
    fused ``scaled_dot_product_attention``. ``mask``: boolean (True = attend) or additive."""
    if conservative:
        q, k = constant(q, switch), constant(k, switch)
    else:
        q, k, v = scaled(q, 0.25, switch), scaled(k, 0.25, switch), scaled(v, 0.5, switch)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal, scale=scale)
    if not need_probs:
        return out, None
    with torch.no_grad():
        scores = (q * (q.shape[-1] ** -0.5 if scale is None else scale)) @ k.transpose(-2, -1)
        if is_causal:
            n, m = scores.shape[-2:]
            keep = torch.ones(n, m, dtype=torch.bool, device=scores.device).tril()
            scores = scores.masked_fill(~keep, float("-inf"))
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
        return out, torch.softmax(scores, dim=-1)
