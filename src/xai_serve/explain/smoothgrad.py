"""SmoothGrad (Smilkov et al., "SmoothGrad: removing noise by adding noise", 2017) and its variants,
method ``smoothgrad``.

The plain input gradient of the target score averaged over ``samples`` noisy copies
``x + sigma * N_j`` of each sample, ``sigma = noise * (max(x_b) - min(x_b))`` (the paper's noise level:
a fraction of the sample's value range). ``variant``: ``smoothgrad`` the mean gradient,
``smoothgrad_sq`` the mean squared gradient, ``vargrad`` (Adebayo et al. 2018) their variance
``mean(g^2) - mean(g)^2`` (Captum ``NoiseTunnel`` over ``Saliency(abs=False)`` with ``nt_type``
``smoothgrad`` / ``smoothgrad_sq`` / ``vargrad``).

The noise generator, documented so that a seed reproduces: ``N = torch.randn((samples, *x.shape[1:]),
generator=torch.Generator().manual_seed(seed), dtype=x.dtype)`` on the CPU, the same ``N`` for every
sample of a batch (a batch equals its samples one by one); copy ``j`` of sample ``b`` is
``x_b + sigma_b * N_j``. Without a ``seed`` the generator is seeded from the operating system's entropy:
the map is then not reproducible (and a server never caches it). The target is fixed on the input
(``"predicted"`` is the clean input's class). The copies run ``internal_batch`` rows per pass.
"""

from __future__ import annotations

import torch

from xai_serve.explain.expanded import Progress, input_gradients, progress_of, resolve
from xai_serve.explain.params import ParamSpec
from xai_serve.explain.patching import gradient_context
from xai_serve.explain.registry import Attribution, Explainer, register_method
from xai_serve.explain.targets import Target

VARIANTS = ("smoothgrad", "smoothgrad_sq", "vargrad")


def unit_noise(samples: int, shape: tuple[int, ...], seed: int | None, dtype: torch.dtype) -> torch.Tensor:
    """The ``(samples, *shape)`` standard normal noise of ``seed`` (the module doc's generator)."""
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)
    return torch.randn((samples, *shape), generator=gen, dtype=dtype)


@register_method(
    "smoothgrad",
    params={
        "samples": ParamSpec("int", 16, "noisy copies per sample", minimum=1, maximum=10000),
        "noise": ParamSpec("float", 0.15, "noise std as a fraction of the sample's value range", minimum=0.0),
        "variant": ParamSpec("str", "smoothgrad", "smoothgrad, smoothgrad_sq or vargrad", choices=VARIANTS),
        "seed": ParamSpec("int", None, "seed of the noise (unset: not reproducible)", minimum=0),
        "internal_batch": ParamSpec("int", 32, "noisy copies per forward pass (memory bound)", minimum=1),
    },
    signed=True,
    test_params={"samples": 3, "seed": 0},
    demo_params={"samples": 16, "seed": 0},
    iterations="samples",
    seed="seed",
)
class SmoothGrad(Explainer):
    """The input gradient averaged over noisy copies of the input (SmoothGrad, Smilkov et al. 2017), or
    its square (smoothgrad_sq) or variance (VarGrad, Adebayo et al. 2018)."""

    #: ``progress(done, total)`` after each chunk of noisy copies (``total`` = samples x batch)
    progress: Progress | None = None

    def _progress(self) -> Progress:
        return progress_of(self.spec.name, self.progress)

    def noisy_copies(self, x: torch.Tensor) -> torch.Tensor:
        """The (B * samples, ...) noisy copies, sample-major (the copies of sample 0 first)."""
        n = self.params["samples"]
        flat = x.detach().flatten(1)
        sigma = self.params["noise"] * (flat.max(dim=1).values - flat.min(dim=1).values)
        noise = unit_noise(n, tuple(x.shape[1:]), self.params["seed"], x.dtype).to(x.device)
        shape = (x.shape[0], 1) + (1,) * (x.ndim - 1)
        rows = x.detach()[:, None] + sigma.view(shape) * noise[None]
        return rows.reshape(x.shape[0] * n, *x.shape[1:])

    def attribute(self, x: torch.Tensor, target: Target = "predicted") -> Attribution:
        with gradient_context():  # also under the caller's inference_mode
            return self._attribute(x, target)

    def _attribute(self, x: torch.Tensor, target: Target = "predicted") -> Attribution:
        p = self.params
        resolved = resolve(self.model, x, target)
        n = p["samples"]
        rows = self.noisy_copies(x)
        samples = [b for b in range(x.shape[0]) for _ in range(n)]
        grads = input_gradients(
            self.model,
            rows,
            samples,
            resolved,
            p["internal_batch"],
            progress_of(self.spec.name, self.progress),
        )
        grads = grads.view(x.shape[0], n, *x.shape[1:])
        mean = grads.sum(dim=1) / n
        if p["variant"] == "smoothgrad":
            heat = mean
        else:
            mean_sq = (grads * grads).sum(dim=1) / n
            heat = mean_sq if p["variant"] == "smoothgrad_sq" else mean_sq - mean * mean
        return Attribution(
            heatmap=heat,
            logits=resolved.logits,
            classes=resolved.classes,
            stats={"target_score": resolved.scores.tolist()},
        )
