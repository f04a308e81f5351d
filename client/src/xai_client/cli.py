"""``xai-client predict|explain``: the same two commands as ``xai predict|explain``, without torch."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from xai_client import saliency
from xai_client.client import Client
from xai_client.errors import InvalidArgument, XaiClientError
from xai_client.overlay import overlay_png
from xai_client.params import parse_param_items
from xai_client.requests import Methods
from xai_client.results import Explanation, Prediction
from xai_client.streaming import Progress, progress_bar
from xai_client.targets import GRAMMAR, TargetSyntaxError, parse_target
from xai_client.values import REDUCTIONS, VALUE_TYPES

# The method names come from the server's registry: ``methods --model M`` lists them with their
# parameters (a static list here would be a second copy that goes stale).
MANAGEMENT_ADDRESS_HELP = (
    "management address (models, methods, describe); default: the inference address's port + 1, "
    "TorchServe's convention (7070 -> 7071, 8080 -> 8081)"
)
METHOD_HELP = "a method the model serves; `methods --model M` lists them with their parameters"


def _target(text: str) -> str:
    """argparse type: check the target grammar early (the text is sent as it is)."""
    try:
        parse_target(text)
    except TargetSyntaxError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _load_image(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def _display_scale(shape: Sequence[int], at_least: int = 224) -> int:
    side = max(int(shape[-1]), int(shape[-2]) if len(shape) > 1 else 1, 1)
    return max(1, -(-at_least // side))


def prediction_record(image: Path, prediction: Prediction) -> dict:
    return {
        "image": str(image),
        "top": [{"index": s.index, "label": s.label, "probability": s.probability} for s in prediction.top],
    }


def write_explanation(
    image: Path, explanation: Explanation, out: Path, *, render: str = "color", seed_names: bool = False
) -> list[Path]:
    """``<stem>_<method>[_t<target>].png`` (overlay) and ``.npy`` (values) for every heatmap.

    ``render`` (:mod:`xai_client.saliency`): ``color`` overlays the values, ``gray`` / ``pos`` / ``neg``
    the SimpleNet study's grey-scale / positive / negative saliency of them. ``seed_names``: also the
    study's four images per heatmap, ``<stem>_<method>_Guided_BP_color.png``, ``..._Guided_BP_gray``,
    ``_pos_sal``, ``_neg_sal``."""
    out.mkdir(parents=True, exist_ok=True)
    pixels = _load_image(image)
    several_targets = len({h.target for h in explanation.heatmaps}) > 1
    written = []
    for h in explanation.heatmaps:
        stem = f"{image.stem}_{h.method}" + (f"_t{h.target}" if several_targets else "")
        if h.values is not None:
            np.save(out / f"{stem}.npy", h.values)
            written.append(out / f"{stem}.npy")
            shown, signed = (h.values, h.signed) if h.kind != "heatmap" else saliency.render(h.values, render)
            if seed_names and h.kind == "heatmap":
                for suffix, img in saliency.seed_images(h.values).items():
                    path = out / f"{stem}{suffix}.png"
                    Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(path)
                    written.append(path)
            png = overlay_png(
                pixels,
                shown,
                signed=signed and h.signed,
                kind=h.kind,
                scale=_display_scale(h.values.shape),
                badge=h.credential.badge if h.credential else None,
            )
        else:
            png = h.png or b""
        (out / f"{stem}.png").write_bytes(png)
        written.append(out / f"{stem}.png")
    return written


def run_predict(images: Sequence[Path], *, model: str, client: Client, top_k: int = 5) -> list[dict]:
    records = []
    for image in images:
        records.append(prediction_record(image, client.predict(model, image, top_k=top_k)))
    return records


def run_explain(
    images: Sequence[Path],
    *,
    model: str,
    methods: Sequence[str] | dict[str, dict[str, str]],
    client: Client,
    out: Path,
    target: str | None = None,
    reduction: str = "none",
    value_type: str = "float32",
    render: str = "color",
    seed_names: bool = False,
    progress: bool = False,
) -> list[dict]:
    records = []
    for image in images:
        wanted: Methods = dict(methods) if isinstance(methods, dict) else list(methods)
        if progress:  # streamed over gRPC, a progress bar on stderr (xai_client.streaming)
            e = explain_with_progress(
                client, model, image, wanted, target=target, reduction=reduction, value_type=value_type
            )
        else:
            e = client.explain(
                model, image, wanted, target=target, reduction=reduction, value_type=value_type
            )
        files = write_explanation(image, e, out, render=render, seed_names=seed_names)
        rec = prediction_record(image, e.prediction)
        rec["files"] = [str(f) for f in files]
        rec["timings_ms"] = e.timings
        records.append(rec)
    (out / "predictions.json").write_text(json.dumps(records, indent=2))
    return records


def methods_with_params(methods: Sequence[str], items: Sequence[str]) -> dict[str, dict[str, str]]:
    """``--method`` names with their ``--param METHOD.KEY=VALUE`` items (values stay text: the server
    converts them against the method's parameter specs); a parameter of a method not asked for is an
    :class:`~xai_client.errors.InvalidArgument`."""
    params = parse_param_items(items)
    stray = sorted(set(params) - set(methods))
    if stray:
        raise InvalidArgument(f"--param for {', '.join(stray)}, which no --method names")
    return {m: dict(params.get(m, {})) for m in methods}


def build_parser(prog: str = "xai-client") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Predictions and explanation heatmaps from xai-serve."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("predict", "explain", "methods"):
        helps = {"methods": "list a served model's methods with their parameters (management token)"}
        p = sub.add_parser(name, help=helps.get(name, f"{name} images with a served model"))
        if name != "methods":
            p.add_argument("images", nargs="+", type=Path)
        p.add_argument("--model", required=True)
        p.add_argument(
            "--protocol", choices=["grpc", "http", "v2"], default="grpc", help="v2: the kserve engine (OIP)"
        )
        p.add_argument(
            "--address", default=None, help="inference address (default 127.0.0.1:7070 / :8080; v2 :8081)"
        )
        p.add_argument("--management-address", default=None, help=MANAGEMENT_ADDRESS_HELP)
        p.add_argument(
            "--token", default=None, help="inference token (default: $XAI_SERVE_TOKEN or key file)"
        )
        p.add_argument("--key-file", default=None, type=Path)
        p.add_argument("--timeout", type=float, default=60.0)
        if name == "predict":
            p.add_argument("--top-k", type=int, default=5)
        elif name == "methods":
            p.add_argument(
                "--management-token", default=None, help="default: $XAI_SERVE_MANAGEMENT_TOKEN or key file"
            )
        else:
            p.add_argument(
                "--method",
                action="append",
                required=True,
                dest="methods",
                help=f"{METHOD_HELP} (repeat for several)",
            )
            p.add_argument(
                "--param",
                action="append",
                default=[],
                dest="params",
                help="method parameter METHOD.KEY=VALUE (repeatable; `xai-client methods` lists them)",
            )
            p.add_argument("--target", default=None, type=_target, help=f"{GRAMMAR} (default: predicted)")
            p.add_argument("--out", type=Path, required=True)
            p.add_argument(
                "--reduce",
                choices=list(REDUCTIONS),
                default="none",
                help="channel reduction of the served values (compact answers)",
            )
            p.add_argument(
                "--value-type", choices=list(VALUE_TYPES), default="float32", help="type the values travel in"
            )
            p.add_argument(
                "--render",
                choices=list(saliency.RENDERS),
                default="color",
                help="overlay: signed values (color), or the SimpleNet study's gray / pos / neg saliency",
            )
            p.add_argument(
                "--seed-names",
                action="store_true",
                help="also SimpleNet-study files <stem>_<method>_Guided_BP_color|_gray, _pos_sal, _neg_sal",
            )
            p.add_argument(
                "--progress",
                action="store_true",
                help="stream (gRPC): a progress bar on stderr",
            )
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "xai-client") -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        with Client(
            args.address,
            args.protocol,
            token=args.token,
            management_token=getattr(args, "management_token", None),
            key_file=args.key_file,
            management_address=args.management_address,
            timeout=args.timeout,
        ) as client:
            if args.command == "methods":
                for info in client.methods(args.model).values():
                    print(info.help())
            elif args.command == "predict":
                for rec in run_predict(args.images, model=args.model, client=client, top_k=args.top_k):
                    best = rec["top"][0]
                    print(f"{rec['image']}: {best['label']} ({best['probability']:.3f})")
            else:
                for rec in run_explain(
                    args.images,
                    model=args.model,
                    methods=methods_with_params(args.methods, args.params),
                    client=client,
                    out=args.out,
                    target=args.target,
                    reduction=args.reduce,
                    value_type=args.value_type,
                    render=args.render,
                    seed_names=args.seed_names,
                    progress=args.progress,
                ):
                    best = rec["top"][0]
                    print(
                        f"{rec['image']}: {best['label']} ({best['probability']:.3f}) -> "
                        f"{len(rec['files'])} files in {args.out}"
                    )
    except XaiClientError as exc:
        print(f"error ({exc.code}): {exc.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())


def explain_with_progress(
    client: Client, model: str, image: Path, methods: Methods, **kwargs: Any
) -> Explanation:
    """:meth:`Client.explain_stream` with a one-line progress bar on stderr; the final Explanation."""
    final: Explanation | None = None
    for item in client.explain_stream(model, image, methods, **kwargs):
        if isinstance(item, Progress):
            print("\r" + progress_bar(item), end="", file=sys.stderr, flush=True)
        else:
            final = item
    print(file=sys.stderr)
    assert final is not None  # read_stream ends with the answer or raises
    return final
