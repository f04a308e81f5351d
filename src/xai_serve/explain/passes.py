"""The autograd Functions of a backprop pass and the mode switch they read.

One forward pass serves several backward passes (:func:`~xai_serve.explain.backprop.run_backprop`):
each replaced module's Function reads the pass's :class:`ModeSwitch` in its backward, so the same graph
gives the plain gradient, guided backprop (Springenberg et al. 2015), DeconvNet (Zeiler & Fergus 2014)
or, in the :attr:`ReluMode.RULES` mode, the relevance of the rules a pass extension installed (LRP,
Bach et al. 2015: :class:`RuleFunction` for the linear layers, :class:`NormIn` / :class:`NormOut` for
``Norm``, :class:`PassThrough` for the operations relevance passes unchanged).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from typing import Any

import torch

from xai_serve.explain.quotients import quotient


class SharedPassUnavailable(RuntimeError):
    """A pass shared between a pass extension (LRP) and the gradient methods cannot serve this model or
    request (the caller runs separate passes instead)."""


class ReluMode(enum.Enum):
    """What a backward pass computes; at ``nn.ReLU``:

    * ``PLAIN``: the ordinary gradient;
    * ``GUIDED``: guided backprop, ``g_in = 1[x > 0] * max(g_out, 0)``;
    * ``DECONV``: DeconvNet, ``g_in = max(g_out, 0)``;
    * ``RULES``: the pass extension's rules (LRP relevance); the ReLU keeps its own gradient.
    """

    PLAIN = "plain"
    GUIDED = "guided"
    DECONV = "deconv"
    RULES = "rules"


GRADIENT_MODES = (ReluMode.PLAIN, ReluMode.GUIDED, ReluMode.DECONV)  # in the order of their passes


class ModeSwitch:
    """The mode of the backward pass running now, shared by every Function of one pass."""

    def __init__(self, mode: ReluMode = ReluMode.PLAIN) -> None:
        self.mode = mode
        # a rules pass keeps what the rules saved (another rules pass follows: several targets)
        self.keep_saved = False


class ModeReLU(torch.autograd.Function):
    """``relu(x)`` whose backward follows the switch (see :class:`ReluMode`)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, switch: ModeSwitch) -> torch.Tensor:
        out = torch.relu(x)
        ctx.save_for_backward(out)
        ctx.switch = switch
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (out,) = ctx.saved_tensors
        mode = ctx.switch.mode
        if mode is ReluMode.DECONV:
            return grad.clamp(min=0), None
        if mode is ReluMode.GUIDED:
            grad = grad.clamp(min=0)
        return torch.ops.aten.threshold_backward(grad, out, 0), None  # grad * (out > 0), as relu's own


class NormIn(torch.autograd.Function):
    """Identity forward; in the rules mode the backward multiplies by the input (the ``x_i *`` of LRP's
    Norm rule), the gradient otherwise."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, switch: ModeSwitch) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.switch = switch
        with torch._C.DisableTorchFunction():
            return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        if ctx.switch.mode is not ReluMode.RULES:
            return grad, None
        (x,) = ctx.saved_tensors
        return grad * x, None


class NormOut(torch.autograd.Function):
    """Identity forward; in the rules mode the backward divides by the stabilised output (the
    ``/ stab(z)`` of LRP's Norm rule), the gradient otherwise."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, eps: float, switch: ModeSwitch) -> torch.Tensor:
        ctx.save_for_backward(z)
        ctx.eps, ctx.switch = eps, switch
        with torch._C.DisableTorchFunction():
            return z.view_as(z)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        if ctx.switch.mode is not ReluMode.RULES:
            return grad, None, None
        (z,) = ctx.saved_tensors
        return quotient(grad, z, ctx.eps), None, None


class PassThrough(torch.autograd.Function):
    """``fn(x)`` forward; in the rules mode relevance passes through unchanged. Otherwise the backward is
    ``fn``'s gradient, recomputed from ``x`` (``fn`` must then be a function of its argument:
    ``recomputable``; if not, the pass raises :class:`SharedPassUnavailable`)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, fn: Any, switch: ModeSwitch, recomputable: bool) -> torch.Tensor:
        ctx.fn, ctx.switch, ctx.recomputable = fn, switch, recomputable
        ctx.save_for_backward(x)
        return fn(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None]:
        if ctx.switch.mode is ReluMode.RULES:
            return grad, None, None, None
        if not ctx.recomputable:
            raise SharedPassUnavailable("an operation passed by LRP has no gradient to recompute here")
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            xd = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(ctx.fn(xd), xd, grad)
        return g, None, None, None


class RuleLayer(ABC):
    """A linear layer under a rule (an LRP rule: :mod:`xai_serve.explain.lrp_engine`), run by
    :class:`RuleFunction`: its backward is the rule in the rules mode and the layer's gradient otherwise."""

    def __init__(self, switch: ModeSwitch) -> None:
        self.switch = switch

    @abstractmethod
    def forward(self, a: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """The layer's output and what the rule's backward needs."""

    @abstractmethod
    def relevance(self, saved: Any, relevance: torch.Tensor) -> torch.Tensor:
        """The rule: the relevance at the layer's input from the relevance at its output."""

    @abstractmethod
    def gradient(self, grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """The layer's vector-Jacobian product (an input of ``shape``)."""


class RuleFunction(torch.autograd.Function):
    """A linear layer whose backward is its :class:`RuleLayer`'s rule or gradient (see the switch)."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, layer: RuleLayer) -> torch.Tensor:
        ctx.shape = a.shape
        # the rule's own tensor operations need no watching (functional.py): skip the torch-function
        # mode, which would otherwise inspect each of them (about a tenth of a small model's time)
        with torch._C.DisableTorchFunction():
            out, saved = layer.forward(a)
        ctx.layer, ctx.saved = layer, saved
        return out

    @staticmethod
    def backward(ctx: Any, relevance: torch.Tensor) -> tuple[torch.Tensor, None]:
        layer = ctx.layer
        if layer.switch.mode is not ReluMode.RULES:
            return layer.gradient(relevance, ctx.shape), None
        out = layer.relevance(ctx.saved, relevance)
        if not layer.switch.keep_saved:
            ctx.saved = None
        return out, None


def keep_saved_copy(t: torch.Tensor) -> None:
    """Before ``t`` is modified in place outside a module (``out += identity``): if ``t`` is the output of
    a :class:`RuleFunction`, whose backward reads the output it saved, that layer keeps a private copy."""
    node = t.grad_fn
    saved = getattr(node, "saved", None)
    if (
        node is None
        or not isinstance(getattr(node, "layer", None), RuleLayer)
        or not isinstance(saved, tuple)
    ):
        return
    ptr = t.untyped_storage().data_ptr()
    # the RuleFunction's autograd node keeps its saved tensors in `saved`
    setattr(  # noqa: B010
        node,
        "saved",
        tuple(
            s.clone() if isinstance(s, torch.Tensor) and s.untyped_storage().data_ptr() == ptr else s
            for s in saved
        ),
    )
