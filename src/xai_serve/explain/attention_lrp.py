"""LRP for attention models: the composites ``attnlrp`` (AttnLRP, Achtibat et al., ICML 2024) and
``cp_lrp`` (CP-LRP, Ali et al., ICML 2022), installed for one explanation pass.

The rules are those of :mod:`xai_serve.explain.attention_rules` in their gradient form (relevance is the
input times a modified gradient). :class:`AttentionLrpEngine` is a
:class:`~xai_serve.explain.backprop.PassExtension`: for the duration of the pass it replaces the forward of

* every ``nn.MultiheadAttention`` by an explicit one (``in_proj`` split into q/k/v, per-head fused
  ``scaled_dot_product_attention`` whose operands carry the composite's gradient factors, ``out_proj``):
  the module's native fast path would hide them, and no hook on ``out_proj`` ever fires;
* every ``nn.LayerNorm`` (the fused kernel forward, the rule in the backward) / ``nn.RMSNorm`` by one
  whose normaliser is constant under the rules;
* every elementwise nonlinearity module (GELU, SiLU, Tanh, ...) by the identity rule;

and leaves linear layers, convolutions, ReLU, pooling and dropout their gradient (the epsilon rule with
epsilon -> 0: a class-token head ``W LN(h_cls) + b`` is a linear layer). Operations outside modules are
watched (:mod:`xai_serve.explain.attention_watch`): sums, concatenation and indexing keep their gradient,
products of two input-dependent tensors and ``F.scaled_dot_product_attention`` get the rules, anything
else is refused by name. Leaf modules of any other kind are refused
(:class:`~xai_serve.errors.UnsupportedLayerError`): the map would silently differ.

Conservation: CP-LRP is conservative up to biases (a bias-free model with zero class token and position
embedding gives a pixel relevance summing to the logit); AttnLRP is not, each softmax absorbs
``sum_j R_j (1 - x_j + sum_i s_i x_i)`` (the method's ``bias_absorbed`` reports the total).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xai_serve.errors import UnsupportedLayerError
from xai_serve.explain.attention_rules import IdentityRule, attention, layer_norm, rms_norm
from xai_serve.explain.attention_watch import watch_attention_model
from xai_serve.explain.backprop import InstalledRules
from xai_serve.explain.canonizers import disable_inplace
from xai_serve.explain.passes import ModeSwitch
from xai_serve.explain.patching import ModelPatch
from xai_serve.explain.tokens import contains_attention

__all__ = ["ATTENTION_COMPOSITES", "AttentionLrpEngine", "contains_attention"]

ATTENTION_COMPOSITES = {"attnlrp": False, "cp_lrp": True}  # name -> attention probabilities constant

IDENTITY_RULE_TYPES: tuple[type[nn.Module], ...] = (
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.ELU,
    nn.Softplus,
    nn.Mish,
    nn.LeakyReLU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.ReLU6,
    nn.SELU,
    nn.CELU,
)
GRADIENT_RULE_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.ConvTranspose2d,
    nn.ReLU,  # relu(x) / x is its gradient: the identity rule
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Identity,
    nn.Flatten,
    nn.Unflatten,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.Embedding,
)
NORM_TYPES: tuple[type[nn.Module], ...] = (nn.LayerNorm, nn.RMSNorm)


def _refuse(name: str, module: nn.Module, composite: str, why: str = "has no rule") -> UnsupportedLayerError:
    return UnsupportedLayerError(
        f"layer {name!r} ({type(module).__name__}) {why} in LRP composite {composite!r}; "
        "LRP would silently give a different map, so it is refused"
    )


def mha_forward(
    mha: nn.MultiheadAttention, name: str, switch: ModeSwitch, conservative: bool
) -> Callable[..., Any]:
    """A forward for ``mha`` (``nn.MultiheadAttention``'s signature) with explicit attention under the
    rules (see :func:`~xai_serve.explain.attention_rules.attention`)."""
    if mha.bias_k is not None or mha.add_zero_attn:
        raise _refuse(name, mha, "attnlrp/cp_lrp", "uses bias_k/bias_v or add_zero_attn, which")

    def forward(
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if mha.training and mha.dropout > 0:
            raise UnsupportedLayerError(
                f"layer {name!r}: attention dropout in training mode; call model.eval()"
            )
        unbatched = query.dim() == 2
        if unbatched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif mha.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        # (L, B, E) from here
        if mha._qkv_same_embed_dim:
            w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
        else:
            w_q, w_k, w_v = mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight
        b_q = b_k = b_v = None
        if mha.in_proj_bias is not None:
            b_q, b_k, b_v = mha.in_proj_bias.chunk(3)
        heads, head_dim = mha.num_heads, mha.head_dim
        tgt, batch = query.shape[0], query.shape[1]
        src = key.shape[0]

        def split(t: torch.Tensor, length: int) -> torch.Tensor:  # (L, B, E) -> (B, H, L, d)
            return t.reshape(length, batch, heads, head_dim).permute(1, 2, 0, 3)

        q = split(F.linear(query, w_q, b_q), tgt)
        k = split(F.linear(key, w_k, b_k), src)
        v = split(F.linear(value, w_v, b_v), src)
        mask = _merge_masks(attn_mask, key_padding_mask, batch, heads, tgt, src, q.dtype)
        causal = is_causal and attn_mask is None
        out, probs = attention(
            q, k, v, switch, conservative, mask=mask, is_causal=causal, need_probs=need_weights
        )
        out = out.permute(2, 0, 1, 3).reshape(tgt, batch, heads * head_dim)
        out = F.linear(out, mha.out_proj.weight, mha.out_proj.bias)
        if unbatched:
            out = out.squeeze(1)
        elif mha.batch_first:
            out = out.transpose(0, 1)
        weights = None
        if probs is not None:
            weights = probs.mean(dim=1) if average_attn_weights else probs
            if unbatched:
                weights = weights.squeeze(0)
        return out, weights

    return forward


def _merge_masks(
    attn_mask: torch.Tensor | None,
    key_padding_mask: torch.Tensor | None,
    batch: int,
    heads: int,
    tgt: int,
    src: int,
    dtype: torch.dtype,
) -> torch.Tensor | None:
    """One additive mask (B, H, L, S) from MHA's ``attn_mask`` (True = masked out, or additive) and
    ``key_padding_mask`` (True = padding)."""
    if attn_mask is None and key_padding_mask is None:
        return None
    mask = torch.zeros(
        batch,
        heads,
        tgt,
        src,
        dtype=dtype,
        device=next(m for m in (attn_mask, key_padding_mask) if m is not None).device,
    )
    if attn_mask is not None:
        am = attn_mask.reshape(batch, heads, tgt, src) if attn_mask.dim() == 3 else attn_mask
        mask = mask.masked_fill(am, float("-inf")) if am.dtype == torch.bool else mask + am.to(dtype)
    if key_padding_mask is not None:
        kp = key_padding_mask.reshape(batch, 1, 1, src)
        mask = mask.masked_fill(kp, float("-inf")) if kp.dtype == torch.bool else mask + kp.to(dtype)
    return mask


def norm_forward(module: nn.Module, switch: ModeSwitch) -> Callable[[torch.Tensor], torch.Tensor]:
    """The forward of a LayerNorm / RMSNorm with its normaliser constant under the rules."""
    shape = tuple(module.normalized_shape)  # type: ignore[arg-type]
    if isinstance(module, nn.LayerNorm):
        return lambda x: layer_norm(x, shape, module.weight, module.bias, module.eps, switch)
    assert isinstance(module, nn.RMSNorm)
    return lambda x: rms_norm(x, shape, module.weight, module.eps, switch)


def identity_forward(module: nn.Module, switch: ModeSwitch) -> Callable[[torch.Tensor], torch.Tensor]:
    """The forward of an elementwise nonlinearity under the identity rule."""
    impl = type(module).forward
    return lambda x: IdentityRule.apply(x, lambda t: impl(module, t), switch)


def _regrad(param: nn.Parameter) -> Callable[[], None]:
    def undo() -> None:
        param.requires_grad_(True)

    return undo


class AttentionLrpEngine:
    """Installs the rules of ``composite`` (``attnlrp`` or ``cp_lrp``) on a model inside a
    :class:`ModelPatch` (a :class:`~xai_serve.explain.backprop.PassExtension` whose relevance is the
    input times the rules' gradient)."""

    def __init__(self, composite: str, stabilizer: float) -> None:
        self.composite = composite
        self.conservative = ATTENTION_COMPOSITES[composite]
        self.stabilizer = stabilizer

    def install(
        self, patch: ModelPatch, model: nn.Module, x: torch.Tensor, switch: ModeSwitch
    ) -> InstalledRules:
        """Replace the attention, normalisation and nonlinearity forwards; refuse unknown layers; watch
        the operations outside modules during the forward pass."""
        disable_inplace(patch, model)
        handled: set[int] = set()
        inside: set[int] = set()  # modules whose work a replaced forward does (MHA's out_proj)
        for name, module in model.named_modules():
            if id(module) in inside:
                continue
            if isinstance(module, nn.MultiheadAttention):
                patch.replace_forward(module, mha_forward(module, name, switch, self.conservative))
                inside.update(id(m) for m in module.modules())
            elif isinstance(module, NORM_TYPES):
                patch.replace_forward(module, norm_forward(module, switch))
            elif isinstance(module, IDENTITY_RULE_TYPES):
                patch.replace_forward(module, identity_forward(module, switch))
            elif isinstance(module, GRADIENT_RULE_TYPES):
                pass
            elif type(module).__module__.startswith("torch.nn.") and not any(True for _ in module.children()):
                raise _refuse(name or "<root>", module, self.composite)  # a built-in layer without a rule
            else:
                continue  # a container or the model's own code: the operations it performs are watched
            handled.add(id(module))
        for param in model.parameters():  # products with parameters stay linear: only the input is tracked
            if param.requires_grad:
                param.requires_grad_(False)
                patch.on_exit(_regrad(param))
        watch = watch_attention_model(
            model, handled | inside, switch, self.conservative, f"lrp ({self.composite})"
        )
        return InstalledRules({}, frozenset(), self.stabilizer, "lrp", input_times_gradient=True, watch=watch)
