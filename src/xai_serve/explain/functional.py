"""No silent fallbacks: functional calls that per-module rules cannot see.

Guided backprop, DeconvNet and LRP attach their rules to modules (``nn.ReLU``, ``nn.Linear``, ``Sum``...).
A model that calls ``torch.relu`` / ``F.relu`` in its ``forward`` or adds two tensors outside a module
would otherwise get plain-gradient treatment there, i.e. a different method's map under the method's
name. :func:`watch_functional` runs the method's forward pass under a ``TorchFunctionMode`` that sees
every torch call made *outside known modules* (leaf modules of ``torch.nn`` or
:mod:`xai_serve.models.layers`, and the engine's hidden ``Sum`` modules) and, per method policy,

* applies the method's rule to the call (:data:`HANDLED`), or
* lets it run when its gradient *is* the method's rule there (shape operations, max pooling, ...), or
* refuses with :class:`~xai_serve.errors.UnsupportedOperationError` naming the call site
  (``file:line in function``) and the operation.

Policies:

``relu`` (guided backprop, DeconvNet, layer guided backprop): functional ``relu`` / ``relu_`` and
``clamp(min=0)`` get the method's ReLU backward; every other operation keeps its gradient, as these
methods define it (only ReLUs are modified, also when written as modules).

``lrp``: functional ``relu`` keeps its gradient (LRP's ReLU rule); the sum of two input-dependent tensors
gets the ``Norm`` rule (``R_i = x_i / stab(a + b) R``), as a :class:`~xai_serve.models.layers.Sum` module
would; average pooling, ``mean`` and ``sum`` over dimensions get ``Norm`` as ``nn.AvgPool2d`` does;
elementwise nonlinearities (sigmoid, tanh, ...) and scaling by a constant pass relevance unchanged, as the
corresponding modules do; shape operations, indexing, concatenation, max pooling and shifts by a constant
keep their gradient. Anything else on an input-dependent tensor (a product of two input-dependent
tensors, ``F.linear`` / ``F.conv2d`` outside a module, an unknown operation) is refused.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any, Literal

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from xai_serve.errors import UnsupportedOperationError
from xai_serve.explain.passes import ModeSwitch, NormIn, NormOut, PassThrough, keep_saved_copy
from xai_serve.explain.patching import ModelPatch
from xai_serve.explain.relu_only import NON_RELU_FUNCTIONS

Policy = Literal["relu", "lrp"]

RELU_NAMES = frozenset({"relu", "relu_"})
CLAMP_NAMES = frozenset({"clamp", "clamp_", "clip", "clip_", "clamp_min", "clamp_min_"})
ADD_NAMES = frozenset({"add", "__add__", "__radd__", "add_", "__iadd__"})
SUB_NAMES = frozenset({"sub", "__sub__", "__rsub__", "sub_", "__isub__", "subtract"})
SCALE_NAMES = frozenset(
    {"mul", "__mul__", "__rmul__", "mul_", "__imul__", "multiply", "div", "__truediv__", "div_",
     "__itruediv__", "divide", "true_divide", "neg", "__neg__", "negative"}
)  # fmt: skip
NORM_NAMES = frozenset(
    {"avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
     "adaptive_avg_pool3d", "mean", "sum"}
)  # fmt: skip
PASS_NAMES = frozenset(
    {"sigmoid", "sigmoid_", "tanh", "tanh_", "gelu", "silu", "elu", "elu_", "leaky_relu", "leaky_relu_",
     "softplus", "relu6", "hardtanh", "hardtanh_", "mish", "softmax", "log_softmax", "hardsigmoid",
     "hardswish", "selu", "celu"}
)  # fmt: skip
GRADIENT_NAMES = frozenset(
    {"view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "permute", "transpose", "t",
     "contiguous", "squeeze", "unsqueeze", "__getitem__", "cat", "concat", "concatenate", "stack",
     "split", "chunk", "unbind", "narrow", "select", "clone", "detach", "to", "float", "double", "half",
     "type_as", "pad", "max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices",
     "max_pool2d_with_indices", "adaptive_max_pool1d", "adaptive_max_pool2d", "dropout", "dropout1d",
     "dropout2d", "expand", "expand_as", "flip", "roll", "movedim", "swapaxes", "identity", "__get__",
     "__setitem__", "requires_grad_", "size", "dim", "numel", "relu", "relu_", "clamp",
     "clamp_", "clip", "clip_", "clamp_min", "clamp_min_", "threshold", "threshold_"}
)  # fmt: skip


ReluApply = Callable[[torch.Tensor], torch.Tensor]


def _grad_tensors(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[torch.Tensor]:
    leaves, _ = tree_flatten((args, kwargs))
    return [t for t in leaves if isinstance(t, torch.Tensor) and t.requires_grad]


def _name(func: Any) -> str:
    name = getattr(func, "__name__", None)
    if name == "__get__":  # property getters (x.shape, x.T): name the property
        return "__get__"
    return str(name) if name else repr(func)


_HERE = os.path.dirname(os.path.abspath(__file__))
_TORCH = os.path.dirname(os.path.abspath(torch.__file__))


def call_site() -> str:
    """``file:line in function: source`` of the innermost frame outside torch and this engine."""
    for frame in reversed(traceback.extract_stack()):
        path = os.path.abspath(frame.filename)
        if path.startswith(_TORCH) or path.startswith(_HERE) or "contextlib" in path:
            continue
        source = f": {frame.line.strip()}" if frame.line else ""
        return f"{frame.filename}:{frame.lineno} in {frame.name}{source}"
    return "<unknown call site>"


def _is_known(module: nn.Module) -> bool:
    if any(True for _ in module.children()):
        return False
    owner = type(module).__module__
    return owner.startswith("torch.nn.") or owner == "xai_serve.models.layers"


_CALL_IMPL = nn.Module._call_impl.__code__


def _innermost_module() -> Any:
    """The module whose call is innermost on the Python stack (its ``Module._call_impl`` frame)."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code is _CALL_IMPL:
            return frame.f_locals.get("self")
        frame = frame.f_back  # type: ignore[assignment]
    return None


class _Watch(TorchFunctionMode):
    def __init__(
        self,
        policy: Policy,
        method: str,
        relu: ReluApply | None,
        eps: float,
        known: set[int],
        switch: ModeSwitch | None,
    ) -> None:
        super().__init__()
        self.policy, self.method, self.relu, self.eps, self.switch = policy, method, relu, eps, switch
        self.known = known  # ids of the known modules
        self.handled: list[str] = []

    def refuse(self, name: str, why: str) -> UnsupportedOperationError:
        return UnsupportedOperationError(
            f"{self.method}: the model calls {name!r} outside a module at {call_site()}; {why}. "
            f"{self.method} would silently give a different map, so it is refused "
            "(write the operation as a module, e.g. nn.ReLU / a Sum module, or choose another method)"
        )

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        if id(_innermost_module()) in self.known:  # inside a module the method has a rule for
            return func(*args, **kwargs)
        name = _name(func)
        tracked = _grad_tensors(args, kwargs)
        if not tracked:
            return func(*args, **kwargs)
        if self.policy == "relu" or (self.relu is not None and _is_relu_call(name, args, kwargs)):
            return self._relu_policy(func, name, args, kwargs)  # lrp + relu: a pass shared with LRP
        return self._lrp_policy(func, name, args, kwargs, tracked)

    # ---- guided backprop / deconvnet: only ReLUs change
    def _relu_policy(self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        is_relu = _is_relu_call(name, args, kwargs)
        if self.policy == "relu" and name in NON_RELU_FUNCTIONS:
            raise self.refuse(name, f"{self.method} changes ReLUs only; this activation is not one")
        if not is_relu or not isinstance(args[0], torch.Tensor):
            return func(*args, **kwargs)
        assert self.relu is not None
        self.handled.append(f"{name} at {call_site()}")
        out = self.relu(args[0])
        return args[0].copy_(out) if _inplace(name) else out

    def _pass(
        self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], x: torch.Tensor
    ) -> torch.Tensor:
        """``func(*args)`` with relevance passing to ``x`` unchanged (in-place variants write back)."""
        compute = _out_of_place(func, name)
        assert self.switch is not None
        out = pass_apply(lambda: compute(*args, **kwargs), x, self.switch)
        return _write_back(args[0], out) if _inplace(name) else out

    # ---- LRP
    def _lrp_policy(
        self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], tracked: list[torch.Tensor]
    ) -> Any:
        assert self.switch is not None
        if (_inplace(name) or name == "__setitem__") and isinstance(args[0], torch.Tensor):
            keep_saved_copy(args[0])  # a rule layer's backward reads this output: it keeps a copy
        if name in ADD_NAMES:
            if len(tracked) >= 2 and "alpha" not in kwargs:
                self.handled.append(f"{name} at {call_site()}")
                a, b = args[0], args[1]
                if _inplace(name):  # the rules saved the pre-update value: keep copies of it
                    out = norm_apply(lambda p, q: p + q, (a.clone(), b), self.eps, self.switch)
                    return _write_back(a, out)
                return norm_apply(lambda p, q: p + q, (a, b), self.eps, self.switch)
            return func(*args, **kwargs)  # a shift by a constant: relevance passes (its gradient)
        if name in SUB_NAMES:
            if len(tracked) >= 2:
                raise self.refuse(name, "the difference of two input-dependent tensors has no LRP rule here")
            return func(*args, **kwargs)
        if name in SCALE_NAMES:
            divisor_tracked = name in {
                "div",
                "__truediv__",
                "div_",
                "__itruediv__",
                "divide",
                "true_divide",
            } and (len(args) > 1 and isinstance(args[1], torch.Tensor) and args[1].requires_grad)
            if len(tracked) >= 2 or divisor_tracked:
                raise self.refuse(name, "a product of input-dependent tensors has no LRP rule here")
            self.handled.append(f"{name} at {call_site()}")
            return self._pass(func, name, args, kwargs, tracked[0])
        if name in NORM_NAMES:
            self.handled.append(f"{name} at {call_site()}")
            return norm_apply(lambda t: func(t, *args[1:], **kwargs), (args[0],), self.eps, self.switch)
        if name in PASS_NAMES:
            self.handled.append(f"{name} at {call_site()}")
            return self._pass(func, name, args, kwargs, tracked[0])
        if name in GRADIENT_NAMES:
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        leaves, _ = tree_flatten(out)
        if not any(isinstance(t, torch.Tensor) and t.dtype.is_floating_point for t in leaves):
            return out  # a query (shape, comparison mask, argmax...): no relevance flows through it
        raise self.refuse(name, "LRP has no rule for this operation")


def norm_apply(
    fn: Callable[..., torch.Tensor], inputs: tuple[torch.Tensor, ...], eps: float, switch: ModeSwitch
) -> torch.Tensor:
    """``fn(*inputs)`` with LRP's ``Norm`` rule as its backward (as for ``Sum`` / average pooling);
    ``switch``: the pass's mode switch (the rule in the rules mode, the gradient otherwise)."""
    return NormOut.apply(fn(*(NormIn.apply(t, switch) for t in inputs)), eps, switch)


def pass_apply(fn: Callable[[], torch.Tensor], x: torch.Tensor, switch: ModeSwitch) -> torch.Tensor:
    """``fn()`` (an elementwise function of ``x``) with relevance passing to ``x`` unchanged (``switch``:
    the pass's mode switch; ``fn`` closes over its operands, so a gradient pass shared with LRP cannot
    recompute its derivative and gives way to separate passes)."""
    out = PassThrough.apply(x, lambda _t: fn(), switch, False)
    if out.shape != x.shape:
        raise UnsupportedOperationError(
            f"LRP: an elementwise operation at {call_site()} broadcasts {tuple(x.shape)} to "
            f"{tuple(out.shape)}; relevance cannot pass through it unchanged"
        )
    return out


def _write_back(target: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``target.copy_(value)`` for an in-place operation, after the LRP rule that produced ``target``
    (and reads it in its backward) took a private copy."""
    keep_saved_copy(target)
    return target.copy_(value)


def _inplace(name: str) -> bool:
    return name.startswith("__i") or (name.endswith("_") and not name.endswith("__"))


def _out_of_place(func: Any, name: str) -> Any:
    if not _inplace(name):
        return func
    base = name[3:-2] if name.startswith("__i") else name[:-1]
    return getattr(torch.Tensor, base)


def _is_relu_call(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    return name in RELU_NAMES or (name in CLAMP_NAMES and _clamp_is_relu(name, args, kwargs))


def _clamp_is_relu(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    if name.startswith("clamp_min"):
        low = args[1] if len(args) > 1 else kwargs.get("min")
        return isinstance(low, int | float) and low == 0
    low = args[1] if len(args) > 1 else kwargs.get("min")
    high = args[2] if len(args) > 2 else kwargs.get("max")
    return isinstance(low, int | float) and low == 0 and high is None


@contextlib.contextmanager
def watch_functional(
    patch: ModelPatch,
    model: nn.Module,
    policy: Policy,
    *,
    method: str,
    relu: ReluApply | None = None,
    extra: dict[str, nn.Module] | None = None,
    eps: float = 1e-6,
    switch: ModeSwitch | None = None,
) -> Iterator[list[str]]:
    """Run the block (the method's forward pass) with functional calls outside known modules watched.

    Known modules (their internals are not watched) are the leaf modules of ``torch.nn`` and
    :mod:`xai_serve.models.layers` in ``model`` plus ``extra`` (hidden modules such as the engine's
    residual ``Sum`` modules); an operation is inside one when the innermost module call on the Python
    stack (its ``Module._call_impl`` frame) is a known module, so no hook is needed (``patch`` is kept
    for symmetry with the other installers). Yields the list of the calls the policy handled
    (``"name at file:line ..."``), filled during the block. With the ``lrp`` policy, ``relu`` (the
    ReLU of a pass shared with the gradient methods) takes the functional ReLUs and ``switch`` (that
    pass's mode switch) goes to the Norm and pass-through rules.
    """
    if policy == "relu" and relu is None:
        raise ValueError("the relu policy needs the ReLU rule to apply")
    if policy == "lrp" and switch is None:
        raise ValueError("the lrp policy needs the pass's mode switch")
    known = {id(m) for m in model.modules() if _is_known(m)} | {id(m) for m in (extra or {}).values()}
    watch = _Watch(policy, method, relu, eps, known, switch)
    with watch:
        yield watch.handled
