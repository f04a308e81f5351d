"""Filter visualisation by activation maximisation (docs/methods.md#filter-image), method
``filter_image``.

As the SimpleNet study's ``cnn_layer_visualization.py`` (docs/methods.md#simplenet), at the model's
own resolution and normalisation (the input ``x`` gives the shape, the model context the mean/std):

* start from a uniform random image with pixel values in 150..180 (uint8, seeded by ``seed``);
* normalise it once; Adam (``lr`` 0.1, ``weight_decay`` 1e-6) on the normalised image for
  ``iterations`` steps (30), each a forward pass up to the layer (the pass stops there) and the loss
  ``-mean(A_layer[filter])`` over the filter's spatial positions (on a vision transformer's ``(B, N, C)``
  token layer, channel ``filter`` over all tokens);
* the result is the optimised image de-normalised, clipped to [0, 1] and quantised to 1/255 (the original
  re-creates the image this way only for saving; the optimisation itself runs unclipped).

The map does not depend on the target nor on the sample (the same image for every row). Values are
pixels in [0, 1] shaped like ``x``; ``stats["activation"]`` is the filter's mean activation on that
final image.
"""

from __future__ import annotations

import torch
from torch import nn

from xai_serve.errors import InvalidParameterError
from xai_serve.explain.context import quantised_pixels
from xai_serve.explain.layers import LayerChoice
from xai_serve.explain.params import ParamSpec
from xai_serve.explain.patching import gradient_context, prepare_input
from xai_serve.explain.progress import report
from xai_serve.explain.registry import Attribution, Explainer, register_method
from xai_serve.explain.targets import Target
from xai_serve.explain.tokens import contains_attention
from xai_serve.models.layers import layer_output


@register_method(
    "filter_image",
    params={
        "layer": ParamSpec(
            "layer", None, "module name or features index (default: the last module with output > 1x1)"
        ),
        "filter": ParamSpec("int", 0, "channel (filter) of the layer output", minimum=0),
        "iterations": ParamSpec("int", 30, "Adam steps (the original code: 30)", minimum=1, maximum=10000),
        "lr": ParamSpec("float", 0.1, "Adam learning rate", minimum=0.0, maximum=1e3),
        "weight_decay": ParamSpec("float", 1e-6, "Adam weight decay on the image", minimum=0.0, maximum=1e3),
        "seed": ParamSpec("int", 0, "seed of the initial uniform(150, 180) image", minimum=0),
    },
    signed=False,
    output="image",
    test_params={"iterations": 3},
    demo_params={"iterations": 30},
    iterations="iterations",
    targeted=False,
)
class FilterImage(Explainer):
    """An image that maximises one filter's mean activation (docs/methods.md#filter-image)."""

    def setup(self) -> None:
        self.choice = LayerChoice(self.model, self.params["layer"])
        self.tokens = contains_attention(self.model)

    def _activation(self, z: torch.Tensor, name: str, layer: nn.Module) -> torch.Tensor:
        activation = layer_output(self.model, layer, z)
        if activation is None:
            raise InvalidParameterError(f"parameter 'layer': {name!r} is not called by the model")
        if not isinstance(activation, torch.Tensor) or activation.ndim < 2:
            raise InvalidParameterError(f"parameter 'layer': {name!r} does not output (B, C, ...)")
        if self.tokens and activation.ndim == 3:  # (B, N, C) tokens: a filter is a channel, over all tokens
            activation = activation.transpose(1, 2)
        f = self.params["filter"]
        if f >= activation.shape[1]:
            raise InvalidParameterError(
                f"parameter 'filter': {f} is out of range for {activation.shape[1]} channels of {name!r}"
            )
        return activation[:, f].flatten(1).mean(1)

    def attribute(self, x: torch.Tensor, target: Target = "predicted") -> Attribution:
        p = self.params
        name, layer = self.choice.resolve(x)
        with gradient_context():
            xin = prepare_input(x).detach()
            mean, std = self.context.image_normalisation(xin, "filter_image")
            gen = torch.Generator().manual_seed(p["seed"])
            start = torch.randint(150, 181, (1, *xin.shape[1:]), generator=gen).to(xin)  # uniform(150,180)
            z = ((start / 255 - mean) / std).requires_grad_(True)
            optimiser = torch.optim.Adam([z], lr=p["lr"], weight_decay=p["weight_decay"])
            for step in range(p["iterations"]):
                loss = -self._activation(z, name, layer).sum()
                (z.grad,) = torch.autograd.grad(loss, z)  # the model's parameters get no .grad
                optimiser.step()
                report("filter_image", step + 1, p["iterations"])
            with torch.no_grad():
                img = quantised_pixels(z.detach(), mean, std)
                final = self._activation((img - mean) / std, name, layer)
        rows = xin.shape[0]
        return Attribution(
            heatmap=img.expand(rows, *img.shape[1:]).clone(),
            stats={"activation": [float(final[0])] * rows},
            layer=name,
        )
