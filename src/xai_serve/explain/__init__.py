"""The explanation engine: method registry, hook/rule engine, targets.

Public API::

    create_explainer(name, model, context=None, **params) -> Explainer  # explainer(x, target) -> like x
    list_methods() -> dict[str, MethodSpec]           # every module of this package registers its own
    explain(model, x, methods, target, context=None) -> dict[str, Tensor]
    explain_detailed(model, x, methods, target, context=None) -> dict[str, Attribution]
    explain_targets(model, x, methods, classes (B, K), context=None) -> dict[str, Attribution]  # B*K rows

``context`` (:class:`ModelContext`) is the model's input normalisation (mean/std), for the methods that
need it, and the cache of LRP's derived weights (:class:`DerivedParamCache`) that its holder owns.
Explainers may have optional capabilities (:class:`UnitContributions`). Every result is checked finite
(:class:`~xai_serve.errors.NonFiniteResultError` otherwise).

``target``: an int, a sequence of ints (one per sample), ``"predicted"``, a callable
``output -> Tensor[B]`` or a ``Component(output, row, col, channel)`` of a model with several outputs
(see ``targets``; the first output is the classifier). Parameters may be strings (from the wire).
The engine enables autograd itself
(``torch.enable_grad`` and ``torch.inference_mode(False)``), so callers may hold ``torch.no_grad`` or
``torch.inference_mode``; models may be frozen. Models should be in eval mode. After every call, also
one that raised, the model has no hooks, no replaced forward and unchanged parameters. Calls on one
model object must not run concurrently with other use of that model (the engine patches it for the
duration of a call); a TorchServe worker handles one batch at a time.
"""

from xai_serve.explain.context import ModelContext
from xai_serve.explain.multi import explain, explain_detailed, explain_targets
from xai_serve.explain.param_cache import DerivedParamCache
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
from xai_serve.explain.targets import Component, Target
from xai_serve.explain.units import UnitContributions

__all__ = [
    "Attribution",
    "Component",
    "DerivedParamCache",
    "Explainer",
    "MethodSpec",
    "ModelContext",
    "ParamSpec",
    "Target",
    "UnitContributions",
    "create_explainer",
    "explain",
    "explain_detailed",
    "explain_targets",
    "list_methods",
    "model_hooks",
    "register_method",
]
