"""No silent fallbacks for LRP on attention models: the operations a model performs outside modules.

The attention composites (:mod:`xai_serve.explain.attention_lrp`) compute relevance as the input times a
modified gradient, so an operation outside a module is right as it is when its rule *is* its gradient
(sums, differences, scaling by a constant, concatenation, indexing, shape operations, means, ``relu``,
``F.linear`` / convolutions: the epsilon rule with epsilon -> 0). :func:`watch_attention_model` runs the
forward pass under a ``TorchFunctionMode`` that gives the other operations the rules of AttnLRP
(Achtibat et al., ICML 2024):

* a product of two input-dependent tensors (``*``, ``@``, ``matmul``, ``bmm``, ``einsum``): the uniform
  rule, half the gradient to each operand (a tensor CP-LRP holds constant counts as a constant);
* ``softmax``: its gradient (AttnLRP) or, under CP-LRP, a constant output;
* ``F.scaled_dot_product_attention``: the explicit attention of :mod:`xai_serve.explain.attention_rules`;
* ``F.layer_norm`` / ``F.rms_norm``: the normaliser constant;
* elementwise nonlinearities (``gelu``, ``silu``, ``sigmoid``, ``tanh``, ...): the identity rule;

and refuses anything else on an input-dependent tensor with
:class:`~xai_serve.errors.UnsupportedOperationError` naming the call site.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from xai_serve.errors import UnsupportedOperationError
from xai_serve.explain.attention_rules import IdentityRule, attention, constant, half, layer_norm, rms_norm
from xai_serve.explain.functional import (
    ADD_NAMES,
    GRADIENT_NAMES,
    NORM_NAMES,
    PASS_NAMES,
    SCALE_NAMES,
    SUB_NAMES,
    _innermost_module,
    call_site,
)
from xai_serve.explain.passes import ModeSwitch

PRODUCT_NAMES = frozenset(
    {"matmul", "__matmul__", "__rmatmul__", "bmm", "einsum", "mul", "__mul__", "__rmul__", "multiply"}
)
LINEAR_NAMES = frozenset({"linear", "conv1d", "conv2d", "conv_transpose2d", "embedding"})
DIVIDE_NAMES = frozenset({"div", "__truediv__", "div_", "__itruediv__", "divide", "true_divide"})


class _AttentionWatch(TorchFunctionMode):
    def __init__(self, known: set[int], switch: ModeSwitch, conservative: bool, method: str) -> None:
        super().__init__()
        self.known, self.switch, self.conservative, self.method = known, switch, conservative, method
        self.constants: set[int] = set()  # ids of CP-LRP's constant probabilities (kept alive by the graph)
        self.keep: list[torch.Tensor] = []
        self.handled: list[str] = []

    def refuse(self, name: str, why: str) -> UnsupportedOperationError:
        return UnsupportedOperationError(
            f"{self.method}: the model calls {name!r} outside a module at {call_site()}; {why}. "
            f"{self.method} would silently give a different map, so it is refused "
            "(write the operation as a module with a rule, or choose another method)"
        )

    def _tracked(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[torch.Tensor]:
        leaves, _ = tree_flatten((args, kwargs))
        return [
            t
            for t in leaves
            if isinstance(t, torch.Tensor) and t.requires_grad and id(t) not in self.constants
        ]

    def _held_constant(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        leaves, _ = tree_flatten((args, kwargs))
        return any(isinstance(t, torch.Tensor) and id(t) in self.constants for t in leaves)

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        if id(_innermost_module()) in self.known:
            return func(*args, **kwargs)
        tracked = self._tracked(args, kwargs)
        if not tracked:
            out = func(*args, **kwargs)
            if self.constants and self._held_constant(args, kwargs) and isinstance(out, torch.Tensor):
                self.constants.add(id(out))  # a cast or view of CP-LRP's constant probabilities
                self.keep.append(out)
            return out
        name = getattr(func, "__name__", None) or repr(func)
        if name in ADD_NAMES or name in SUB_NAMES or name in GRADIENT_NAMES or name in NORM_NAMES:
            return func(*args, **kwargs)
        if name in LINEAR_NAMES:
            return func(*args, **kwargs)
        if name in DIVIDE_NAMES:
            if len(args) > 1 and any(args[1] is t for t in tracked):
                raise self.refuse(name, "a division by an input-dependent tensor has no LRP rule here")
            return func(*args, **kwargs)
        if name in PRODUCT_NAMES:
            return self._product(func, name, args, kwargs, tracked)
        if name in SCALE_NAMES:  # negation
            return func(*args, **kwargs)
        if name == "softmax":
            self.handled.append(f"{name} at {call_site()}")
            out = func(*args, **kwargs)
            if self.conservative:
                out = constant(out, self.switch)
                self.constants.add(id(out))
                self.keep.append(out)
            return out
        if name == "scaled_dot_product_attention":
            return self._sdpa(args, kwargs)
        if name == "layer_norm":
            x, shape = args[0], tuple(args[1])
            weight, bias = _arg(args, kwargs, 2, "weight"), _arg(args, kwargs, 3, "bias")
            eps = _arg(args, kwargs, 4, "eps", 1e-5)
            self.handled.append(f"{name} at {call_site()}")
            return layer_norm(x, shape, weight, bias, eps, self.switch)
        if name == "rms_norm":
            x, shape = args[0], tuple(args[1])
            weight, eps = _arg(args, kwargs, 2, "weight"), _arg(args, kwargs, 3, "eps")
            self.handled.append(f"{name} at {call_site()}")
            return rms_norm(x, shape, weight, eps, self.switch)
        if name in PASS_NAMES and name not in {"softmax", "log_softmax"}:
            if len(tracked) != 1 or not isinstance(args[0], torch.Tensor) or args[0] is not tracked[0]:
                raise self.refuse(name, "the identity rule needs one input-dependent operand")
            self.handled.append(f"{name} at {call_site()}")
            base = func
            return IdentityRule.apply(args[0], lambda t: base(t, *args[1:], **kwargs), self.switch)
        out = func(*args, **kwargs)
        leaves, _ = tree_flatten(out)
        if not any(isinstance(t, torch.Tensor) and t.dtype.is_floating_point for t in leaves):
            return out  # a query (shape, mask, argmax...): no relevance flows through it
        raise self.refuse(name, "the attention composites have no rule for this operation")

    def _product(
        self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], tracked: list[torch.Tensor]
    ) -> Any:
        if len(tracked) < 2:
            return func(*args, **kwargs)  # linear in the one input-dependent operand
        if name.endswith("_") or name.startswith("__i"):
            raise self.refuse(name, "an in-place product of input-dependent tensors has no rule here")
        self.handled.append(f"{name} at {call_site()}")
        ids = {id(t) for t in tracked}

        def halve(a: Any) -> Any:
            return half(a, self.switch) if isinstance(a, torch.Tensor) and id(a) in ids else a

        if name == "einsum":
            operands = args[1:] if len(args) > 2 or not isinstance(args[1], list | tuple) else tuple(args[1])
            return torch.einsum(args[0], *[halve(a) for a in operands])
        return func(*[halve(a) for a in args], **kwargs)

    def _sdpa(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor:
        q, k, v = args[:3]
        mask = _arg(args, kwargs, 3, "attn_mask")
        dropout = _arg(args, kwargs, 4, "dropout_p", 0.0)
        causal = _arg(args, kwargs, 5, "is_causal", False)
        scale = _arg(args, kwargs, 6, "scale")
        if dropout:
            raise self.refuse("scaled_dot_product_attention", "attention dropout has no LRP rule")
        if kwargs.get("enable_gqa"):
            raise self.refuse("scaled_dot_product_attention", "grouped-query attention is not supported here")
        self.handled.append(f"scaled_dot_product_attention at {call_site()}")
        out, _ = attention(q, k, v, self.switch, self.conservative, mask=mask, is_causal=causal, scale=scale)
        return out


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, key: str, default: Any = None) -> Any:
    return args[index] if len(args) > index else kwargs.get(key, default)


@contextlib.contextmanager
def watch_attention_model(
    model: nn.Module, known: set[int], switch: ModeSwitch, conservative: bool, method: str
) -> Iterator[list[str]]:
    """Run the block (the forward pass) with the operations outside ``known`` modules under the attention
    composites' rules (see the module docstring); yields the list of the calls given a rule."""
    del model  # the known modules are given by id
    watch = _AttentionWatch(known, switch, conservative, method)
    with watch:
        yield watch.handled
