"""Integrated gradients (Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks", ICML 2017),
method ``integrated_gradients``.

``IG(x) = (x - x') * sum_k w_k * d f_t / d x (x' + a_k (x - x'))``: the path integral of the gradient
from a baseline ``x'`` to the input, approximated at ``n_steps`` points ``a_k`` with weights ``w_k``.
``integration`` names the rule, with Captum's ``IntegratedGradients`` points and weights:

* ``gausslegendre`` (default): the Gauss-Legendre nodes and weights on [0, 1];
* ``riemann_left`` / ``riemann_right`` / ``riemann_middle``: ``n_steps`` equal weights ``1/n`` at the
  left ends, right ends or midpoints of ``n`` equal intervals;
* ``riemann_trapezoid``: points ``linspace(0, 1, n)``, weights ``1/n`` with the two ends halved (Captum's
  weights, which sum to ``(n - 1)/n``; kept for parity).

Baselines (in the model's input space): ``zero`` (the zero tensor, Captum's default), ``uniform``
(uniform noise between the normalised values of a black and a white pixel per channel, drawn by
``torch.rand`` from ``torch.Generator().manual_seed(seed)`` with shape (C, H, W), the same for every
sample, so a batch equals its samples one by one), ``blur`` (the input Gaussian-blurred with sigma
``blur_sigma`` pixels: Sturmfels, Lundberg & Lee, "Visualizing the Impact of Feature Attribution
Baselines", Distill 2020).

The target is fixed on the input (``"predicted"`` is the input's class). ``stats["completeness_gap"]``:
``sum(IG) - (f_t(x) - f_t(x'))`` per sample, the approximation error of the completeness axiom (it
shrinks as ``n_steps`` grows). The path points run ``internal_batch`` rows per forward pass.
"""

from __future__ import annotations

import numpy as np
import torch

from xai_serve.errors import InvalidParameterError
from xai_serve.explain.blur import gaussian_blur
from xai_serve.explain.expanded import Progress, input_gradients, progress_of, resolve, target_scores
from xai_serve.explain.params import ParamSpec
from xai_serve.explain.patching import gradient_context
from xai_serve.explain.registry import Attribution, Explainer, register_method
from xai_serve.explain.targets import Target

RULES = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")


def path_points(rule: str, n: int) -> tuple[list[float], list[float]]:
    """The ``(alphas, weights)`` of ``rule`` with ``n`` points on [0, 1] (see the module doc)."""
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return (0.5 * (1 + nodes)).tolist(), (0.5 * weights).tolist()
    deltas = [1 / n] * n
    if rule == "riemann_trapezoid":
        deltas[0] /= 2
        deltas[-1] /= 2
        return torch.linspace(0, 1, n).tolist(), deltas
    if rule == "riemann_left":
        return torch.linspace(0, 1 - 1 / n, n).tolist(), deltas
    if rule == "riemann_middle":
        return torch.linspace(1 / (2 * n), 1 - 1 / (2 * n), n).tolist(), deltas
    return torch.linspace(1 / n, 1, n).tolist(), deltas


@register_method(
    "integrated_gradients",
    params={
        "n_steps": ParamSpec("int", 32, "points on the path from the baseline", minimum=2, maximum=10000),
        "baseline": ParamSpec(
            "str", "zero", "zero, uniform (seeded) or blur", choices=("zero", "uniform", "blur")
        ),
        "integration": ParamSpec("str", "gausslegendre", "integration rule", choices=RULES),
        "internal_batch": ParamSpec("int", 32, "path points per forward pass (memory bound)", minimum=1),
        "seed": ParamSpec("int", 0, "seed of the uniform baseline", minimum=0),
        "blur_sigma": ParamSpec("float", 5.0, "Gaussian sigma in pixels of the blur baseline", above=0.0),
    },
    signed=True,
    test_params={"n_steps": 4},
    demo_params={"n_steps": 16},
    iterations="n_steps",
)
class IntegratedGradients(Explainer):
    """Integrated gradients from a baseline (zero, seeded uniform noise or the blurred input) to the
    input; the completeness gap as a statistic (Sundararajan et al., ICML 2017)."""

    #: ``progress(done, total)`` after each chunk of path points (``total`` = n_steps x batch)
    progress: Progress | None = None

    def _progress(self) -> Progress:
        return progress_of(self.spec.name, self.progress)

    def baseline(self, x: torch.Tensor) -> torch.Tensor:
        kind = self.params["baseline"]
        if kind == "zero":
            return torch.zeros_like(x)
        if kind == "blur":
            if x.ndim != 4:
                raise InvalidParameterError(
                    f"parameter 'baseline': blur needs (B, C, H, W) images, got {tuple(x.shape)}"
                )
            return gaussian_blur(x.detach(), self.params["blur_sigma"])
        gen = torch.Generator().manual_seed(self.params["seed"])
        noise = torch.rand(tuple(x.shape[1:]), generator=gen, dtype=x.dtype).to(x.device)
        channels = x.shape[1] if x.ndim > 2 else 1
        low = torch.tensor(self.context.low, dtype=x.dtype, device=x.device)
        high = torch.tensor(self.context.high, dtype=x.dtype, device=x.device)
        if low.numel() == 1 and channels > 1:
            low, high = low.expand(channels), high.expand(channels)
        shape = (channels,) + (1,) * (x.ndim - 2)
        span = low.view(shape) + noise * (high - low).view(shape)
        return span.expand_as(x).clone()

    def attribute(self, x: torch.Tensor, target: Target = "predicted") -> Attribution:
        with gradient_context():  # also under the caller's inference_mode
            return self._attribute(x, target)

    def _attribute(self, x: torch.Tensor, target: Target = "predicted") -> Attribution:
        p = self.params
        resolved = resolve(self.model, x, target)
        x = x.detach()
        base = self.baseline(x)
        alphas, weights = path_points(p["integration"], p["n_steps"])
        batch, n = x.shape[0], p["n_steps"]
        diff = x - base
        points = torch.cat([base + a * diff for a in alphas])  # step-major, as Captum
        samples = [b for _ in range(n) for b in range(batch)]
        grads = input_gradients(
            self.model,
            points,
            samples,
            resolved,
            p["internal_batch"],
            progress_of(self.spec.name, self.progress),
        )
        w = torch.tensor(weights, dtype=x.dtype, device=x.device).view(n, *([1] * x.ndim))
        total = (grads.view(n, *x.shape) * w).sum(dim=0)
        heat = diff * total
        base_scores = target_scores(self.model, base, list(range(batch)), resolved, batch)
        gap = heat.flatten(1).sum(dim=1) - (resolved.scores - base_scores)
        return Attribution(
            heatmap=heat,
            logits=resolved.logits,
            classes=resolved.classes,
            stats={"target_score": resolved.scores.tolist(), "completeness_gap": gap.tolist()},
        )
