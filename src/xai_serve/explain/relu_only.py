"""Guided backprop and DeconvNet are defined on ReLU networks: refuse the others by name.

Both methods change the backward pass of the ReLUs only (Springenberg et al. 2015; Zeiler & Fergus 2014).
On a model whose hidden nonlinearities are GELU, SiLU, tanh... there is no ReLU to change and the answer
would be the plain gradient under another method's name (what pytorch-grad-cam's
``GuidedBackpropReLUModel`` silently returns on a vision transformer). :func:`refuse_non_relu` raises
:class:`~xai_serve.errors.UnsupportedOperationError` naming the first such activation module and its path
when the model has such activation modules and no ``nn.ReLU`` (a ReLU network with one other
activation, e.g. a tanh layer before the head, keeps its guided ReLUs and answers)
(functional calls of these activations outside modules are refused by the ReLU watch,
:mod:`xai_serve.explain.functional`).
"""

from __future__ import annotations

from torch import nn

from xai_serve.errors import UnsupportedOperationError

NON_RELU_TYPES: tuple[type[nn.Module], ...] = (
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.Softplus,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.ReLU6,
    nn.Hardswish,
    nn.Hardtanh,
    nn.Tanh,
    nn.Sigmoid,
)
NON_RELU_FUNCTIONS = frozenset(
    {"gelu", "silu", "mish", "elu", "elu_", "celu", "selu", "softplus", "hardswish"}
)


def refuse_non_relu(model: nn.Module, method: str) -> None:
    """Raise when ``model`` holds a non-ReLU activation module and no ReLU (see the module docstring)."""
    if any(isinstance(m, nn.ReLU) for m in model.modules()):
        return
    for name, module in model.named_modules():
        if isinstance(module, NON_RELU_TYPES) and not isinstance(module, nn.ReLU):
            raise UnsupportedOperationError(
                f"{method} is defined by changing the backward pass of ReLUs, but the model's activation "
                f"{type(module).__name__} at {name!r} is not a ReLU: the answer would be the plain gradient "
                "there, so it is refused (use gradient, input_x_gradient, gradcam or lrp)"
            )
