"""The demo's digits ViT beside the CNN: the rows it answers in the demo report and the methods it refuses.

A vision transformer (Dosovitskiy et al., ICLR 2021) in torchvision's layout is explained with the methods
that apply to it: the gradient, input x gradient, Grad-CAM on the token grid (Selvaraju et al., ICCV 2017;
the last block's input normalisation, class token dropped), and LRP with the attention composites AttnLRP
(Achtibat et al., ICML 2024) and CP-LRP (Ali et al., ICML 2022). Guided backprop and DeconvNet change the
backward pass of ReLUs, and its hidden nonlinearities are GELUs, so the server refuses them; the report
shows that refusal as the server words it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xai_serve.app.serving_section import Companion

NAME = "digits_vit"

#: (row label, method, params): the same images, each method that applies to a ViT
ROWS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("gradient", "gradient", {}),
    ("input_x_gradient", "input_x_gradient", {}),
    ("gradcam (tokens)", "gradcam", {}),
    ("lrp (attnlrp)", "lrp", {"composite": "attnlrp"}),
    ("lrp (cp_lrp)", "lrp", {"composite": "cp_lrp"}),
)
REFUSED = ("guided_backprop", "deconvnet")


def vit_companion(checkpoint: Path, name: str = NAME) -> Companion:
    """The ViT's archive as a ``beside`` companion; its ``why`` states its measured test accuracy."""
    why = "digits ViT (patch 7, 4 blocks, dim 64)"
    metrics_file = checkpoint / "metrics.json"
    if metrics_file.is_file():
        m = json.loads(metrics_file.read_text(encoding="utf-8"))
        why += f", test accuracy {100 * m['accuracy']:.1f} % after {m['epochs']} epochs (demo budget)"
    return Companion(name, checkpoint, (), None, why, beside=ROWS, refused=REFUSED)
