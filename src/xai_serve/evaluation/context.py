"""What every evaluation suite works on: a model, the chosen samples, attribution functions.

``EvalContext`` can be built from explicit objects (tests, notebooks) or from a checkpoint and a
registered dataset (``from_checkpoint``, used by ``xai evaluate``). Attribution functions are
plain callables ``(x, target) -> Tensor``; ``engine_attributions`` wraps the explanation engine's
registered methods as such callables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xai_serve.errors import InvalidParameterError

AttributionFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
TARGETS = ("true", "predicted")


def select_samples(n_total: int, n: int | None, seed: int) -> torch.Tensor:
    """``n`` distinct dataset indices drawn with ``seed`` (all of them, shuffled, if ``n`` is None)."""
    perm = torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))
    if n is None:
        return perm
    if n < 1:
        raise InvalidParameterError(f"samples must be >= 1, got {n}")
    return perm[: min(n, n_total)]


def batch_generator(seed: int, *keys: int) -> torch.Generator:
    """A generator seeded from the run seed and the batch coordinates (resumable randomness)."""
    s = seed
    for k in keys:
        s = (s * 1_000_003 + k + 1) % (2**63)
    return torch.Generator().manual_seed(s)


@dataclass
class EvalContext:
    """A model (eval mode) and the samples to evaluate it on, with their metadata."""

    model: nn.Module
    images: torch.Tensor  # (N, C, H, W), normalised model inputs
    labels: torch.Tensor  # (N,)
    indices: torch.Tensor  # (N,) indices into the dataset split
    label_names: list[str]
    mean: list[float]
    std: list[float]
    attributions: dict[str, AttributionFn] = field(default_factory=dict)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    info: dict[str, Any] = field(default_factory=dict)
    # a model with several outputs (models.multi_output): ``model`` is its classifier view,
    # ``full_model`` the model, ``components`` the dataset's per-pixel targets of the chosen samples
    # by output name ((N, H, W))
    full_model: nn.Module | None = None
    components: dict[str, torch.Tensor] = field(default_factory=dict)

    def batches(self, batch_size: int) -> Iterator[tuple[int, slice]]:
        n = self.images.shape[0]
        for i, start in enumerate(range(0, n, batch_size)):
            yield i, slice(start, min(start + batch_size, n))

    def n_batches(self, batch_size: int) -> int:
        return -(-self.images.shape[0] // batch_size)

    def batch(self, sl: slice) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[sl].to(self.device), self.labels[sl].to(self.device)

    @torch.no_grad()
    def targets(self, x: torch.Tensor, y: torch.Tensor, target: str) -> torch.Tensor:
        if target == "true":
            return y
        if target == "predicted":
            return self.model(x).argmax(dim=1)
        raise InvalidParameterError(f"target must be one of {', '.join(TARGETS)}; got {target!r}")

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        shape = [1, len(self.mean), 1, 1]
        m = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(shape)
        s = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(shape)
        return x * s + m

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str,
        *,
        which: str = "best",
        dataset: str = "",
        split: str = "test",
        samples: int | None = None,
        seed: int = 0,
        methods: Sequence[str] = (),
        method_params: dict[str, dict[str, Any]] | None = None,
        device: str = "cpu",
        root: str | None = None,
    ) -> EvalContext:
        from xai_serve.data.for_model import load_for_card
        from xai_serve.models import load_checkpoint

        dev = torch.device(device)
        model, card = load_checkpoint(checkpoint, which, device=dev)  # type: ignore[arg-type]
        model.eval()
        full_model = None
        if card.outputs:  # several outputs: suites see the classifier (the first output)
            from xai_serve.models.multi_output import ClassifierView

            full_model, model = model, ClassifierView(model).eval()
        dataset = dataset or card.dataset  # the card's dataset unless told otherwise
        bundle = load_for_card(dataset, split, card, root=root, seed=seed)
        idx = select_samples(len(bundle.dataset), samples, seed)  # type: ignore[arg-type]
        components = {
            name: getattr(bundle.dataset, name)[idx]
            for name in card.outputs[1:]
            if isinstance(getattr(bundle.dataset, name, None), torch.Tensor)
        }
        items = [bundle.dataset[int(i)] for i in idx]
        images = torch.stack([im for im, _ in items]).float()
        labels = torch.tensor([lab for _, lab in items], dtype=torch.long)
        attrs = engine_attributions(model, methods, method_params or {}, bundle.mean, bundle.std)
        info: dict[str, Any] = {
            "checkpoint": str(checkpoint),
            "model": card.model,
            "dataset": dataset,
            "split": split,
        }
        info["method_params"] = {m: dict((method_params or {}).get(m, {})) for m in methods}
        return cls(
            model,
            images,
            labels,
            idx,
            list(bundle.labels),
            list(bundle.mean),
            list(bundle.std),
            attrs,
            dev,
            info,
            full_model,
            components,
        )


def fit_to_input(attribution: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Bring a method's output to x's spatial size (bilinear) with 1 or C channels."""
    a = attribution
    if a.dim() == 3:
        a = a.unsqueeze(1)
    if a.shape[-2:] != x.shape[-2:]:
        a = F.interpolate(a.float(), size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)
    if a.shape[1] not in (1, x.shape[1]):
        a = a.sum(dim=1, keepdim=True)
    return a.to(x.dtype)


def engine_attributions(
    model: nn.Module,
    methods: Sequence[str],
    method_params: dict[str, dict[str, Any]],
    mean: Sequence[float],
    std: Sequence[float],
) -> dict[str, AttributionFn]:
    """The explanation engine's methods as attribution callables ``(x, target) -> Tensor``."""
    from xai_serve.explain import ModelContext, create_explainer, list_methods

    specs = list_methods()
    out: dict[str, AttributionFn] = {}
    for name in methods:
        params = dict(method_params.get(name, {}))
        spec = specs.get(name)
        if spec is not None and spec.output != "heatmap":
            raise InvalidParameterError(
                f"method {name!r} produces an image, not a heatmap; it cannot be evaluated"
            )
        # UnknownMethodError for unknown names
        explainer = create_explainer(name, model, context=ModelContext.of(mean, std), **params)

        def attribute(x: torch.Tensor, target: torch.Tensor, _e: Any = explainer) -> torch.Tensor:
            return fit_to_input(_e(x, [int(t) for t in target.tolist()]).detach(), x)

        out[name] = attribute
    return out
