"""LRP rules: how one linear layer (``nn.Linear``, ``nn.Conv1d``, ``nn.Conv2d``, ``nn.ConvTranspose2d``)
passes relevance down.

Notation (docs/methods.md#lrp-rules): ``a`` layer input, ``W``/``b`` its (BatchNorm-merged) parameters, ``R``
the relevance arriving at its output. Every rule is the "gradient trick" of Montavon et al. (2019, §10.2.3)
with explicit vector-Jacobian products: ``z`` = a modified forward, ``s = R / stab(z)`` (``0`` where
``stab(z) = 0``: see :func:`~xai_serve.explain.quotients.divide`), ``R_in = a * (rho(W)^T s)``.
``stab(z) = z + eps * sign(z)`` with ``sign(0) = +1`` (Zennit's
``Stabilizer``). Conventions follow Zennit 0.5.1 exactly (so results are comparable):

* ``Epsilon(eps)``: ``z = W a + b``; LRP-0 is ``eps = 0``.
* ``ZPlus``: ``z = W+ a+ + W- a- + b+``; ``R_in = a+ (W+^T s) + a- (W-^T s)``.
* ``AlphaBeta(alpha, beta)``: positive part ``W+ a+ + W- a- + b+``, negative part
  ``W- a+ + W+ a- + b-``; **bias convention: b+ joins the positive denominator and b- the negative one**
  (Bach et al. 2015); ``alpha - beta = 1`` is required.
* ``Gamma(gamma)``: generalised gamma (Andeol et al. 2021, Zennit): outputs with ``W a + b > 0`` use
  ``(W + gamma W+) a+ + (W + gamma W-) a- + b + gamma b+``, negative outputs the mirrored form; equal to
  the original gamma rule (``rho(w) = w + gamma w+`` on weights and bias) for non-negative inputs.
* ``ZBox(low, high)``: ``z = W a - W+ l - W- h`` (the biases cancel),
  ``R_in = a (W^T s) - l (W+^T s) - h (W-^T s)``.
* ``WSquare``: ``z = W^2 1 + b^2``, ``R_in = (W^2)^T s``. ``Flat``: ``z = 1 1`` (ones for weights and
  inputs, no bias), ``R_in = 1^T s``.

For a non-negative input (after a ReLU) ZPlus, Gamma and AlphaBeta take a fast path with one extra
convolution in the forward pass (``W+ a``; ``W- a = (W a + b) - b - W+ a``) instead of four.

A transposed convolution is a linear layer like any other (Zennit's ``Convolution`` type includes it):
its forward is ``conv_transpose2d`` and ``W^T s`` is its adjoint, the ``conv2d`` of ``s`` with the same
weights; its weight holds the output channels in dimension 1 (``(in, out / groups, kh, kw)``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xai_serve.errors import InvalidParameterError, UnsupportedLayerError
from xai_serve.explain.quotients import divide, nonneg_quotient, positive_in, quotient, stabilise

Params = dict[str, Any]


_CONV_BACKWARD = torch.ops.aten.convolution_backward.default
_INPUT_ONLY = (True, False, False)


class LinearOp:
    """Forward and input vector-Jacobian product of one ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` /
    ``nn.ConvTranspose2d``."""

    def __init__(self, name: str, module: nn.Module) -> None:
        self.name = name
        if isinstance(module, nn.Linear):
            self.kind = "linear"
            return
        if not isinstance(module, nn.Conv1d | nn.Conv2d | nn.ConvTranspose2d):
            raise UnsupportedLayerError(f"layer {name!r} ({type(module).__name__}) has no LRP rule")
        if module.padding_mode != "zeros":
            raise UnsupportedLayerError(
                f"layer {name!r}: padding_mode {module.padding_mode!r} has no LRP rule"
            )
        self.stride = module.stride
        if isinstance(module, nn.ConvTranspose2d):
            self.kind = "conv_transpose2d"
            self.dilation = module.dilation
            self.groups = module.groups
            self.padding = tuple(int(p) for p in module.padding)  # never a string for a transposed conv
            self.output_padding = module.output_padding
            return
        self.kind = "conv1d" if isinstance(module, nn.Conv1d) else "conv2d"
        self.dilation = module.dilation
        self.groups = module.groups
        padding = module.padding
        if isinstance(padding, str):
            if padding == "valid":
                padding = (0,) * len(module.kernel_size)
            else:  # "same": symmetric only when every (kernel - 1) * dilation is even
                total = [(k - 1) * d for k, d in zip(module.kernel_size, module.dilation, strict=True)]
                if any(t % 2 for t in total):
                    raise UnsupportedLayerError(f"layer {name!r}: asymmetric 'same' padding has no LRP rule")
                padding = tuple(t // 2 for t in total)
        self.padding = padding
        self._zeros = (0,) * len(module.kernel_size)  # output padding of the (untransposed) convolution

    @property
    def channel_dim(self) -> int:
        return -1 if self.kind == "linear" else 1

    @property
    def weight_out_dim(self) -> int:
        """The dimension of the weight that indexes output channels (per group)."""
        return 1 if self.kind == "conv_transpose2d" else 0

    @property
    def weight_in_dim(self) -> int:
        """The dimension of the weight that indexes input channels (per group)."""
        return 0 if self.kind == "conv_transpose2d" else 1

    @property
    def can_fuse(self) -> bool:
        """Whether weights concatenated along the output channels form a valid layer (no groups)."""
        return self.kind == "linear" or self.groups == 1

    def split(self, both: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The two halves of a fused forward (first half made contiguous: it is the layer output)."""
        first, second = both.split(channels, dim=self.channel_dim)
        return first.contiguous(), second

    def forward(self, a: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        if self.kind == "linear":
            return F.linear(a, w, b)
        if self.kind == "conv_transpose2d":
            return F.conv_transpose2d(
                a, w, b, self.stride, self.padding, self.output_padding, self.groups, self.dilation
            )
        conv = F.conv2d if self.kind == "conv2d" else F.conv1d
        return conv(a, w, b, self.stride, self.padding, self.dilation, self.groups)

    def vjp(self, s: torch.Tensor, w: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """``d forward(a, w) / d a`` applied to ``s`` for an input of ``shape``."""
        if self.kind == "linear":
            return s @ w
        if self.kind == "conv_transpose2d":  # the adjoint of a transposed convolution: the convolution
            out = F.conv2d(s, w, None, self.stride, self.padding, self.dilation, self.groups)
            if tuple(out.shape) != tuple(shape):
                raise UnsupportedLayerError(
                    f"layer {self.name!r}: transposed-convolution shapes do not match"
                )
            return out
        # the input gradient of the convolution (what torch.nn.grad.conv2d_input computes), called
        # directly: the input only lends its shape, so a broadcast scalar stands in for it
        stand_in = s.new_empty(1).expand(shape)
        return _CONV_BACKWARD(
            s, stand_in, w, None, self.stride, self.padding, self.dilation, False, self._zeros, self.groups,
            _INPUT_ONLY,
        )[0]  # fmt: skip


def _pos(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.clamp(min=0)


def _neg(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.clamp(max=0)


def _add(t: torch.Tensor, b: torch.Tensor | None, op: LinearOp) -> torch.Tensor:
    if b is None:
        return t
    return t + (b if op.kind == "linear" else b.view(-1, *([1] * (t.ndim - 2))))


def _add_(t: torch.Tensor, b: torch.Tensor | float, op: LinearOp) -> torch.Tensor:
    """``t += b`` in place, ``b`` a scalar or a per-output-channel vector."""
    if isinstance(b, float) or op.kind == "linear":
        return t.add_(b)
    return t.add_(b.view(-1, *([1] * (t.ndim - 2))))


# autograd nodes whose output is ``relu(x)``: >= 0 (or NaN) by construction
_RELU_NODES = frozenset({"ReluBackward0", "ModeReLUBackward"})


def _nonneg(a: torch.Tensor) -> bool:
    """Whether ``a >= 0`` everywhere. Free for the direct, unmodified output of a ReLU (its autograd node
    says so; any in-place change since would have replaced the node or bumped the version); otherwise
    one reduction (and, on a GPU, a synchronisation)."""
    node = a.grad_fn
    if node is not None and a._version == 0 and type(node).__name__ in _RELU_NODES:
        return True
    return bool(a.min() >= 0)


class Rule(ABC):
    """One LRP rule. ``prepare`` derives parameter tensors once (cached by the engine); ``forward``
    returns the layer's true output and what ``backward`` needs; ``backward`` maps R to R_in."""

    def cache_key(self) -> tuple[Any, ...]:
        """Rules with equal keys derive equal parameter tensors (shared cache entry)."""
        return ("base",)

    def prepare(self, op: LinearOp, w: torch.Tensor, b: torch.Tensor | None) -> Params:
        return {"w": w, "b": b}

    @abstractmethod
    def forward(self, op: LinearOp, a: torch.Tensor, p: Params) -> tuple[torch.Tensor, Any]: ...

    @abstractmethod
    def backward(self, op: LinearOp, p: Params, saved: Any, relevance: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class Epsilon(Rule):
    epsilon: float = 1e-6
    norm_scale: bool = False  # epsilon times the per-sample RMS of z (the tutorial's 0.1 * std)

    def cache_key(self) -> tuple[Any, ...]:
        return ("base",)

    def forward(self, op: LinearOp, a: torch.Tensor, p: Params) -> tuple[torch.Tensor, Any]:
        z = op.forward(a, p["w"], p["b"])
        return z, (a, z)

    def backward(self, op: LinearOp, p: Params, saved: Any, relevance: torch.Tensor) -> torch.Tensor:
        a, z = saved
        s = quotient(relevance, z, self.epsilon, self.norm_scale)
        return op.vjp(s, p["w"], a.shape).mul_(a)


def _signed_parts(op: LinearOp, w: torch.Tensor, b: torch.Tensor | None, plus_bias: bool) -> Params:
    """W, b, W+, W-, b+, b- and, for ungrouped layers, the fused ``[W; W+]`` with bias ``[b; b+]``
    (``plus_bias``) or ``[b; 0]``: one forward call yields ``W a + b`` and ``W+ a (+ b+)``, and one
    vector-Jacobian product call with ``[s1; s2]`` yields ``W^T s1 + W+^T s2``."""
    wp = w.clamp(min=0)
    p: Params = {"w": w, "b": b, "wp": wp, "wn": w.clamp(max=0), "bp": _pos(b), "bn": _neg(b)}
    if op.can_fuse:
        p["w_cat"] = torch.cat([w, wp], op.weight_out_dim)
        p["b_cat"] = (
            None if b is None else torch.cat([b, b.clamp(min=0) if plus_bias else torch.zeros_like(b)])
        )
    return p


def _z_and_plus(
    op: LinearOp, a: torch.Tensor, p: Params, plus_bias: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W a + b, W+ a [+ b+])`` with one fused call when possible."""
    channels = p["w"].shape[op.weight_out_dim]  # output channels (fused: one group)
    if "w_cat" in p:
        return op.split(op.forward(a, p["w_cat"], p["b_cat"]), channels)
    return op.forward(a, p["w"], p["b"]), op.forward(a, p["wp"], p["bp"] if plus_bias else None)


def _fused_vjp(
    op: LinearOp, p: Params, s_w: torch.Tensor, s_wp: torch.Tensor, shape: torch.Size
) -> torch.Tensor:
    """``W^T s_w + W+^T s_wp`` (one call when fused)."""
    if "w_cat" in p:
        return op.vjp(torch.cat([s_w, s_wp], dim=op.channel_dim), p["w_cat"], shape)
    return op.vjp(s_w, p["w"], shape) + op.vjp(s_wp, p["wp"], shape)


def _pair(op: LinearOp, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """An empty tensor like ``like`` with twice its channels, and its two halves (views): the signals
    of a fused vector-Jacobian product, written in place (``out=``) instead of concatenated."""
    dim = op.channel_dim % like.ndim
    shape = list(like.shape)
    channels = shape[dim]
    shape[dim] *= 2
    both = like.new_empty(shape)
    first, second = both.split(channels, dim=dim)
    return both, first, second


def _two_vjps(
    op: LinearOp, p: Params, s: torch.Tensor, shape: torch.Size
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W^T s, W+^T s)``: one call with ``[W, W+]`` stacked along the input channels when possible
    (``p["w_in_cat"]``), two otherwise."""
    if "w_in_cat" not in p:
        return op.vjp(s, p["w"], shape), op.vjp(s, p["wp"], shape)
    dim = op.channel_dim % len(shape)
    doubled = list(shape)
    doubled[dim] *= 2
    both = op.vjp(s, p["w_in_cat"], torch.Size(doubled))
    first, second = both.split(shape[dim], dim=dim)
    return first, second


@dataclass(frozen=True)
class ZPlus(Rule):
    stabilizer: float = 1e-6

    def cache_key(self) -> tuple[Any, ...]:
        return ("signed", "plus_bias")

    def prepare(self, op: LinearOp, w: torch.Tensor, b: torch.Tensor | None) -> Params:
        return _signed_parts(op, w, b, plus_bias=True)

    def forward(self, op: LinearOp, a: torch.Tensor, p: Params) -> tuple[torch.Tensor, Any]:
        if _nonneg(a):
            z, zp = _z_and_plus(op, a, p, plus_bias=True)
            return z, (a, None, zp)
        z = op.forward(a, p["w"], p["b"])
        ap, an = a.clamp(min=0), a.clamp(max=0)
        zp = op.forward(ap, p["wp"], p["bp"]) + op.forward(an, p["wn"], None)
        return z, (ap, an, zp)

    def backward(self, op: LinearOp, p: Params, saved: Any, relevance: torch.Tensor) -> torch.Tensor:
        ap, an, zp = saved  # zp = W+ a+ + W- a- + b+ >= 0
        s = nonneg_quotient(relevance, zp, self.stabilizer)
        out = op.vjp(s, p["wp"], ap.shape).mul_(ap)
        if an is not None:
            out = out + an * op.vjp(s, p["wn"], an.shape)
        return out


@dataclass(frozen=True)
class AlphaBeta(Rule):
    alpha: float = 2.0
    beta: float = 1.0
    stabilizer: float = 1e-6

    def __post_init__(self) -> None:
        if self.alpha < 0 or self.beta < 0 or abs(self.alpha - self.beta - 1) > 1e-12:
            raise InvalidParameterError(
                "parameters 'alpha'/'beta': need alpha, beta >= 0 and alpha - beta = 1, "
                f"got {self.alpha}, {self.beta}"
            )

    def cache_key(self) -> tuple[Any, ...]:
        return ("signed",)

    def prepare(self, op: LinearOp, w: torch.Tensor, b: torch.Tensor | None) -> Params:
        return _signed_parts(op, w, b, plus_bias=False)

    def forward(self, op: LinearOp, a: torch.Tensor, p: Params) -> tuple[torch.Tensor, Any]:
        if _nonneg(a):
            z, plus = _z_and_plus(op, a, p, plus_bias=False)
            zp = _add(plus, p["bp"], op)
            zn = _add(z - plus, None if p["b"] is None else p["bn"] - p["b"], op)
            return z, (a, None, zp, zn)
        z = op.forward(a, p["w"], p["b"])
        ap, an = a.clamp(min=0), a.clamp(max=0)
        zp = op.forward(ap, p["wp"], p["bp"]) + op.forward(an, p["wn"], None)
        zn = op.forward(ap, p["wn"], p["bn"]) + op.forward(an, p["wp"], None)
        return z, (ap, an, zp, zn)

    def backward(self, op: LinearOp, p: Params, saved: Any, relevance: torch.Tensor) -> torch.Tensor:
        ap, an, zp, zn = saved
        sp = nonneg_quotient(relevance, zp, self.stabilizer)  # zp = W+ a+ + W- a- + b+ >= 0
        if self.beta == 0:
            out = ap * op.vjp(self.alpha * sp, p["wp"], ap.shape)
            if an is not None:
                out = out + an * op.vjp(self.alpha * sp, p["wn"], an.shape)
            return out
        sn = quotient(relevance, zn, self.stabilizer)
        if an is None:  # a >= 0:  alpha W+^T sp - beta W-^T sn  with W- = W - W+
            return _fused_vjp(op, p, -self.beta * sn, self.alpha * sp + self.beta * sn, ap.shape).mul_(ap)
        pos = ap * op.vjp(sp, p["wp"], ap.shape) + an * op.vjp(sp, p["wn"], an.shape)
        neg = ap * op.vjp(sn, p["wn"], ap.shape) + an * op.vjp(sn, p["wp"], an.shape)
        return self.alpha * pos - self.beta * neg


@dataclass(frozen=True)
class Gamma(Rule):
    gamma: float = 0.25
    stabilizer: float = 1e-6

    def cache_key(self) -> tuple[Any, ...]:
        return ("gamma", self.gamma, self.stabilizer)

    def prepare(self, op: LinearOp, w: torch.Tensor, b: torch.Tensor | None) -> Params:
        p = _signed_parts(op, w, b, plus_bias=False)
        g = self.gamma
        p["wgp"] = w + g * p["wp"]
        p["wgn"] = w + g * p["wn"]
        p["bgp"] = None if b is None else b + g * p["bp"]
        p["bgn"] = None if b is None else b + g * p["bn"]
        eps = self.stabilizer  # the per-channel shifts of the non-negative-input denominators
        p["shift_pos"] = eps if b is None else g * p["bp"] + eps
        p["shift_neg"] = -eps if b is None else g * (p["bn"] - b) - eps
        return p

    def forward(self, op: LinearOp, a: torch.Tensor, p: Params) -> tuple[torch.Tensor, Any]:
        if _nonneg(a):  # the denominators are formed in backward, o_neg only when needed
            z, plus = _z_and_plus(op, a, p, plus_bias=False)
            return z, (a, None, z, plus, None)
        z = op.forward(a, p["w"], p["b"])
        ap, an = a.clamp(min=0), a.clamp(max=0)
        o_pos = op.forward(ap, p["wgp"], p["bgp"]) + op.forward(an, p["wgn"], None)
        o_neg = op.forward(ap, p["wgn"], p["bgn"]) + op.forward(an, p["wgp"], None)
        return z, (ap, an, z, o_pos, o_neg)

    def backward(self, op: LinearOp, p: Params, saved: Any, relevance: torch.Tensor) -> torch.Tensor:
        ap, an, z, o_pos, o_neg = saved
        if an is None and positive_in(self.stabilizer, z.dtype):
            return self._backward_nonneg(op, p, ap, z, o_pos, relevance)
        g = self.gamma
        if an is None:  # o_pos = z + g (W+ a + b+), o_neg = z + g (W- a + b-), W- a = z - b - W+ a
            plus = o_pos
            o_pos = _add(torch.add(z, plus, alpha=g), None if p["b"] is None else g * p["bp"], op)
            shift = None if p["b"] is None else g * (p["bn"] - p["b"])
            o_neg = _add(torch.add(z, z - plus, alpha=g), shift, op)
        g0 = (z > 0) * divide(relevance, stabilise(o_pos, self.stabilizer))
        g2 = (z < 0) * divide(relevance, stabilise(o_neg, self.stabilizer))
        if an is None:  # (W + g W+)^T g0 + (W + g W-)^T g2 = W^T (g0 + (1+g) g2) + g W+^T (g0 - g2)
            return ap * _fused_vjp(op, p, g0 + (1 + g) * g2, g * (g0 - g2), ap.shape)
        return ap * (op.vjp(g0, p["wgp"], ap.shape) + op.vjp(g2, p["wgn"], ap.shape)) + an * (
            op.vjp(g0, p["wgn"], an.shape) + op.vjp(g2, p["wgp"], an.shape)
        )

    def _backward_nonneg(
        self, op: LinearOp, p: Params, a: torch.Tensor, z: torch.Tensor, plus: torch.Tensor, r: torch.Tensor
    ) -> torch.Tensor:
        """``a >= 0`` (``plus = W+ a``): ``o_pos = z + g (W+ a + b+) >= z`` and ``o_neg = z + g (W- a + b-)
        <= z``, so where ``z > 0`` the stabilised ``o_pos`` is ``o_pos + eps`` and where ``z < 0`` the
        stabilised ``o_neg`` is ``o_neg - eps``: no sign or zero tests. Outputs outside a part get an
        infinite denominator (quotient 0). Relevance on negative outputs is checked once; without it
        (a ReLU follows) the rule is one product with ``W + g W+``."""
        g = self.gamma
        den = _add_(torch.add(z, plus, alpha=g), p["shift_pos"], op)
        g0 = torch.div(r, den.masked_fill_(z <= 0, math.inf), out=den)
        neg = z < 0
        r_neg = torch.where(neg, r, 0.0)
        if not bool(r_neg.any()):
            return op.vjp(g0, p["wgp"], a.shape).mul_(a)
        den = torch.sub(z, plus)  # W- a + b
        den = torch.add(z, den, alpha=g, out=den)
        den = _add_(den, p["shift_neg"], op)
        g2 = torch.div(r_neg, den.masked_fill_(~neg, math.inf), out=den)
        # (W + g W+)^T g0 + (W + g W-)^T g2 = W^T (g0 + (1+g) g2) + g W+^T (g0 - g2)
        if "w_cat" not in p:
            s_w = torch.add(g0, g2, alpha=1 + g)
            return _fused_vjp(op, p, s_w, torch.sub(g0, g2).mul_(g), a.shape).mul_(a)
        both, s_w, s_wp = _pair(op, g0)  # the two signals written in place: no concatenation
        torch.add(g0, g2, alpha=1 + g, out=s_w)
        torch.sub(g0, g2, out=s_wp).mul_(g)
        return op.vjp(both, p["w_cat"], a.shape).mul_(a)


def _bound(value: list[float], like: torch.Tensor) -> torch.Tensor:
    """Per-channel bounds as a (1, *like.shape[1:]) tensor (channels: dim 1; a flat vector split evenly)."""
    t = torch.tensor(value, dtype=like.dtype, device=like.device)
    shape = like.shape[1:]
    if t.numel() == 1:
        return t.reshape(1).expand(1, *shape) if len(shape) else t.reshape(1)
    channels = t.numel()
    if len(shape) == 1:
        if shape[0] % channels:
            raise UnsupportedLayerError(
                f"{channels} per-channel bounds do not divide {shape[0]} input features"
            )
        return t.repeat_interleave(shape[0] // channels)[None]
    if shape[0] != channels:
        raise UnsupportedLayerError(f"{channels} per-channel bounds for an input with {shape[0]} channels")
    return t.view(1, channels, *([1] * (len(shape) - 1))).expand(1, *shape)


@dataclass(frozen=True)
class ZBox(Rule):
    low: tuple[float, ...] = (0.0,)
    high: tuple[float, ...] = (1.0,)
    stabilizer: float = 1e-6

    def cache_key(self) -> tuple[Any, ...]:
        return ("zbox", self.low, self.high)

    def prepare(self, op: LinearOp, w: torch.Tensor, b: torch.Tensor | None) -> Params:
        p = _signed_parts(op, w, b, plus_bias=False)
        if op.can_fuse:  # W^T s and W+^T s from one call: [W, W+] stacked along the input channels
            p["w_in_cat"] = torch.cat([w, p["wp"]], op.weight_in_dim)
        p["bounds"] = {}
        return p

    def _bounds(self, op: LinearOp, a: torch.Tensor, p: Params) -> tuple[torch.Tensor, ...]:
        """``h``, ``W+ l + b+``, ``W- h + b-`` and ``h - l`` (input-independent), cached per input shape."""
        key = (tuple(a.shape[1:]), a.dtype, a.device)
        hit = p["bounds"].get(key)
        if hit is None:
            with torch.no_grad():
                low, high = _bound(list(self.low), a), _bound(list(self.high), a)
                z_low, z_high = op.forward(low, p["wp"], p["bp"]), op.forward(high, p["wn"], p["bn"])
                hit = (high, z_low, z_high, high - low)
            p["bounds"][key] = hit
        return hit

    def forward(self, op: LinearOp, a: torch.Tensor, p: Params) -> tuple[torch.Tensor, Any]:
        z = op.forward(a, p["w"], p["b"])
        high, z_low, z_high, span = self._bounds(op, a, p)
        return z, (a, high, span, z - z_low - z_high)

    def backward(self, op: LinearOp, p: Params, saved: Any, relevance: torch.Tensor) -> torch.Tensor:
        # a (W^T s) - l (W+^T s) - h (W-^T s)  with  W- = W - W+:  (a - h) (W^T s) + (h - l) (W+^T s)
        a, high, span, den = saved  # span = h - l
        s = quotient(relevance, den, self.stabilizer)
        ws, wps = _two_vjps(op, p, s, a.shape)
        return torch.sub(a, high).mul_(ws).addcmul_(span, wps)


def _ones_forward(op: LinearOp, a: torch.Tensor, p: Params, w: str, b: str) -> torch.Tensor:
    """The input-independent denominator ``op(1, W', b')`` for one sample, cached per input shape."""
    key = (tuple(a.shape[1:]), a.dtype, a.device)
    den = p["den"].get(key)
    if den is None:
        with torch.no_grad():
            ones = torch.ones((1, *a.shape[1:]), dtype=a.dtype, device=a.device)
            den = p["den"][key] = op.forward(ones, p[w], p[b])
    return den


@dataclass(frozen=True)
class WSquare(Rule):
    stabilizer: float = 1e-6

    def cache_key(self) -> tuple[Any, ...]:
        return ("wsquare",)

    def prepare(self, op: LinearOp, w: torch.Tensor, b: torch.Tensor | None) -> Params:
        return {"w": w, "b": b, "w2": w**2, "b2": None if b is None else b**2, "den": {}}

    def forward(self, op: LinearOp, a: torch.Tensor, p: Params) -> tuple[torch.Tensor, Any]:
        return op.forward(a, p["w"], p["b"]), (a.shape, _ones_forward(op, a, p, "w2", "b2"))

    def backward(self, op: LinearOp, p: Params, saved: Any, relevance: torch.Tensor) -> torch.Tensor:
        shape, den = saved
        return op.vjp(nonneg_quotient(relevance, den, self.stabilizer), p["w2"], shape)  # W^2 1 + b^2 >= 0


@dataclass(frozen=True)
class Flat(Rule):
    stabilizer: float = 1e-6

    def cache_key(self) -> tuple[Any, ...]:
        return ("flat",)

    def prepare(self, op: LinearOp, w: torch.Tensor, b: torch.Tensor | None) -> Params:
        p: Params = {"w": w, "b": b, "w1": torch.ones_like(w), "b1": None, "den": {}}
        if op.kind != "conv_transpose2d" and op.can_fuse:  # one output and one input channel suffice
            p["w1_single"] = w.new_ones((1, 1, *w.shape[2:]))
        return p

    def forward(self, op: LinearOp, a: torch.Tensor, p: Params) -> tuple[torch.Tensor, Any]:
        return op.forward(a, p["w"], p["b"]), (a.shape, _ones_forward(op, a, p, "w1", "b1"))

    def backward(self, op: LinearOp, p: Params, saved: Any, relevance: torch.Tensor) -> torch.Tensor:
        shape, den = saved
        s = nonneg_quotient(relevance, den, self.stabilizer)  # 1^T 1 > 0
        if "w1_single" not in p:
            return op.vjp(s, p["w1"], shape)
        # every weight is 1, so 1^T s is the same for every input channel: the adjoint of a one-channel
        # all-ones layer applied to the sum of s over the output channels, broadcast to the input channels
        summed = s.sum(dim=op.channel_dim, keepdim=True)
        if op.kind == "linear":
            return summed.expand(shape).contiguous()
        single = op.vjp(summed, p["w1_single"], torch.Size((shape[0], 1, *shape[2:])))
        return single.expand(shape).contiguous()
