"""The explanation engine: method registry, hook/rule engine, targets.

Public API::

    create_explainer(name, model, **params) -> Explainer      # explainer(x, target) -> Tensor like x
    list_methods() -> dict[str, MethodSpec]
    explain(model, x, methods, target) -> dict[str, Tensor]
    explain_detailed(model, x, methods, target) -> dict[str, Attribution]

``target``: an int, a sequence of ints (one per sample), ``"predicted"`` or a callable
``output -> Tensor[B]``. Parameters may be strings (from the wire). The engine enables autograd itself
(``torch.enable_grad`` and ``torch.inference_mode(False)``), so callers may hold ``torch.no_grad`` or
``torch.inference_mode``; models may be frozen. Models should be in eval mode. After every call, also
one that raised, the model has no hooks, no replaced forward and unchanged parameters. Calls on one
model object must not run concurrently with other use of that model (the engine patches it for the
duration of a call); serving holds a lock per model.
"""

from xai_serve.explain import class_image, gradcam, gradient, guided, lrp  # noqa: F401  (registration)
from xai_serve.explain.multi import explain, explain_detailed
from xai_serve.explain.params import ParamSpec
from xai_serve.explain.patching import model_hooks
from xai_serve.explain.registry import (
    Attribution,
    Explainer,
    MethodSpec,
    create_explainer,
    list_methods,
    register_method,
)
from xai_serve.explain.targets import Target

__all__ = [
    "Attribution",
    "Explainer",
    "MethodSpec",
    "ParamSpec",
    "Target",
    "create_explainer",
    "explain",
    "explain_detailed",
    "list_methods",
    "model_hooks",
    "register_method",
]
