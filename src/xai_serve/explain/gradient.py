"""The gradient family: ``gradient`` (saliency) and ``input_x_gradient``.

Both read the plain input gradient of the target score, so :func:`~xai_serve.explain.explain` computes
them from one backward pass. ``gradient`` with ``abs=true`` is Simonyan et al.'s saliency (Captum
``Saliency`` default); ``input_x_gradient`` equals LRP-0 on ReLU networks.
"""

from __future__ import annotations

from xai_serve.explain.backprop import BackpropExplainer, BackpropRequest, BackpropResult, base_attribution
from xai_serve.explain.params import ParamSpec
from xai_serve.explain.passes import ReluMode
from xai_serve.explain.registry import Attribution, register_method


@register_method(
    "gradient",
    params={"abs": ParamSpec("bool", False, "absolute value of the gradient (Simonyan saliency)")},
    signed=True,
)
class Gradient(BackpropExplainer):
    """Gradient of the target score with respect to the input (signed unless ``abs``)."""

    def request(self) -> BackpropRequest:
        return BackpropRequest(modes={ReluMode.PLAIN})

    def finish(self, result: BackpropResult) -> Attribution:
        grad = result.input_grads[ReluMode.PLAIN]
        return base_attribution(result, grad.abs() if self.params["abs"] else grad.clone())


@register_method("input_x_gradient", params={}, signed=True)
class InputXGradient(BackpropExplainer):
    """Input times the gradient of the target score (Shrikumar et al. 2016)."""

    def request(self) -> BackpropRequest:
        return BackpropRequest(modes={ReluMode.PLAIN})

    def finish(self, result: BackpropResult) -> Attribution:
        return base_attribution(result, result.x * result.input_grads[ReluMode.PLAIN])
