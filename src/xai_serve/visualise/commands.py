"""``xai class-image CHECKPOINT --class C --out DIR``: class-specific image generation
(docs/methods.md#class-image) run
from the command line, saving what the SimpleNet study's code saves (docs/methods.md#simplenet).

Every ``iterations // 20`` steps (and at the last one) the current image of each class is written as
``c_{class}_iter_{step}_loss_{loss}.jpg`` (``loss`` = ``-logit[class]`` before that step, as the original
names its files), the final image as ``c_{class}_final.png``, and ``run_details.txt`` records the
checkpoint, model, every parameter, the seed and the final logits (the original's ``run_details.txt``).
The image is generated at the model's native resolution and normalisation (from its model card).
Heavy imports happen inside the command body.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer


def _to_image_bytes(img: Any, fmt: str) -> bytes:
    """(C, H, W) in [0, 1] -> JPEG/PNG bytes (grey for one channel)."""
    import io

    import numpy as np
    from PIL import Image

    arr = np.rint(img.detach().cpu().numpy() * 255).astype(np.uint8)
    arr = arr[0] if arr.shape[0] == 1 else np.transpose(arr, (1, 2, 0))
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def class_images(
    checkpoint: Path,
    out: Path,
    classes: list[int],
    *,
    params: dict[str, Any],
    which: str = "best",
) -> dict[str, Any]:
    """Generate one image per class of ``checkpoint``'s model into ``out``; returns a summary."""
    import torch

    from xai_serve.atomic import atomic_write_bytes, atomic_write_text
    from xai_serve.errors import InvalidParameterError
    from xai_serve.explain import create_explainer
    from xai_serve.explain.context import ModelContext
    from xai_serve.models import load_checkpoint

    model, card = load_checkpoint(checkpoint, which)  # type: ignore[arg-type]
    if not classes:
        raise InvalidParameterError("give at least one --class")
    explainer = create_explainer("class_image", model, context=ModelContext.of(card.mean, card.std), **params)
    iterations = int(explainer.params["iterations"])
    every = max(1, iterations // 20)
    out.mkdir(parents=True, exist_ok=True)
    saved: list[str] = []

    def observer(step: int, images: torch.Tensor, losses: list[float]) -> None:
        if step % every and step != iterations - 1:
            return
        for c, img, loss in zip(classes, images, losses, strict=True):
            name = f"c_{c}_iter_{step}_loss_{loss:.4f}.jpg"
            atomic_write_bytes(out / name, _to_image_bytes(img, "JPEG"))
            saved.append(name)

    explainer.observer = observer  # type: ignore[attr-defined]
    x = torch.zeros(len(classes), *card.input_shape)
    result = explainer.attribute(x, classes)
    finals = []
    for c, img in zip(classes, result.heatmap, strict=True):
        name = f"c_{c}_final.png"
        atomic_write_bytes(out / name, _to_image_bytes(img, "PNG"))
        finals.append(name)
    summary = {
        "checkpoint": str(checkpoint),
        "model": card.model,
        "input_shape": list(card.input_shape),
        "mean": list(card.mean),
        "std": list(card.std),
        "classes": classes,
        "labels": [card.labels[c] if c < len(card.labels) else str(c) for c in classes],
        "params": {k: v for k, v in explainer.params.items()},
        "save_every": every,
        "final_logit": [float(v) for v in result.stats["target_score"]],
        "intermediate_images": saved,
        "final_images": finals,
        "note": "the original's clip_grad_norm of the model parameters had no effect on the image: not kept",
    }
    lines = [f"{k}: {json.dumps(v) if not isinstance(v, str) else v}" for k, v in summary.items()]
    atomic_write_text(out / "run_details.txt", "\n".join(lines) + "\n")
    return summary


def register(app: typer.Typer) -> None:
    @app.command("class-image")
    def class_image(
        checkpoint: Path = typer.Argument(..., help="checkpoint directory (model.json + best.pt)"),
        out: Path = typer.Option(..., "--out", help="output directory"),
        cls: list[int] = typer.Option(..., "--class", help="class index to generate (repeatable)"),
        mode: str = typer.Option("plain", help="plain | regularised (blur + weight decay)"),
        iterations: int = typer.Option(150, help="iterations as in the original code (iterations - 1 steps)"),
        lr: float = typer.Option(6.0, help="SGD step size"),
        weight_decay: float = typer.Option(None, help="L2 decay (default 0 plain, 1e-4 regularised)"),
        blur_every: int = typer.Option(4, help="blur every n-th step (regularised)"),
        blur_radius: float = typer.Option(1.0, help="Gaussian blur sigma (regularised)"),
        seed: int = typer.Option(0, help="seed of the initial noise"),
        which: str = typer.Option("best", help="best | last"),
    ) -> None:
        """Class-specific images by gradient ascent (docs/methods.md#class-image): intermediates every
        iterations/20 steps
        and run_details.txt."""
        from xai_serve.errors import XaiError

        params: dict[str, Any] = {
            "mode": mode,
            "iterations": iterations,
            "lr": lr,
            "blur_every": blur_every,
            "blur_radius": blur_radius,
            "seed": seed,
        }
        if weight_decay is not None:
            params["weight_decay"] = weight_decay
        try:
            summary = class_images(checkpoint, out, list(cls), params=params, which=which)
        except XaiError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(json.dumps({k: summary[k] for k in ("classes", "final_logit", "save_every")}))
