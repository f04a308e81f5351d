"""``xai gpt samples|heatmaps|heatmapsGC CHECKPOINT --out DIR``: the General Pattern Theory figures as PNGs +
index.html.

The samples are drawn from ``pattern_digits`` with ``--seed`` (one per class, 0..9). Heavy imports
happen inside the command bodies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer

SECTIONS = ("samples", "heatmaps", "heatmapsGC")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def one_per_class(seed: int) -> tuple[Any, Any, Any, Any]:
    """x (10,1,28,28), y0, yg0, ys0: one pattern_digits sample of each class 0..9."""
    import numpy as np

    from xai_serve.data.pattern_digits import sample_batch

    return sample_batch(list(range(10)), np.random.default_rng(seed))


def gpt_figures(
    checkpoint: Path,
    out: Path,
    *,
    sections: tuple[str, ...] = SECTIONS,
    seed: int = 0,
    classes: tuple[int, ...] = tuple(range(10)),
    pixels: int = 6,
) -> Path:
    """Write the chosen figures of ``checkpoint``'s GPT model into ``out``; returns ``out/index.html``."""
    from xai_serve.errors import InvalidArgumentError
    from xai_serve.models import load_checkpoint
    from xai_serve.pattern_theory import figures as fg

    model, card = load_checkpoint(checkpoint)
    if list(card.outputs) != ["y", "yg", "ys"]:
        raise InvalidArgumentError(
            f"{checkpoint} is not a GPT model (outputs {card.outputs}, want y, yg, ys)"
        )
    out.mkdir(parents=True, exist_ok=True)
    x, y0, yg0, ys0 = one_per_class(seed)
    report: list[tuple[str, list[str]]] = []
    if "samples" in sections:
        png = fg.samples_figure(
            model, x[list(classes)], y0[list(classes)], yg0[list(classes)], ys0[list(classes)]
        )
        report.append(
            (
                "generate_samples: image | grown from true seeds | grown from predicted seeds",
                [fg.save(out, "samples.png", png)],
            )
        )
    if "heatmaps" in sections:
        png = fg.class_heatmaps_figure(model, x[list(classes)], y0[list(classes)])
        report.append(("heatmaps of y (target: the true class)", [fg.save(out, "heatmaps.y0.png", png)]))
    if "heatmapsGC" in sections:
        files = []
        for c in classes:
            for key, png in fg.component_heatmaps(model, x[c : c + 1], yg0[c], ys0[c], pixels).items():
                files.append(fg.save(out, f"{c}.{key}.png", png))
        report.append(
            ("component heatmaps (heatmapsGC): yg/ys at true (yg0, ys0) and predicted seed pixels", files)
        )
    verdict = _verdict(model, x[list(classes)], y0[list(classes)], yg0[list(classes)], ys0[list(classes)])
    config = {"checkpoint": checkpoint, "seed": seed, "classes": classes, "pixels per map": pixels}
    return fg.write_report(out, f"GPT figures of {checkpoint}", report, verdict=verdict, config=config)


def _verdict(model: Any, x: Any, y0: Any, yg0: Any, ys0: Any) -> str:
    """One sentence a person reads first: how well the model does on the samples the page shows."""
    import torch

    with torch.no_grad():
        y, yg, ys = model(x)[:3]
    right = int((y.argmax(1) == y0).sum())
    g = float((yg.argmax(1) == yg0).float().mean())
    s = float((ys.argmax(1) == ys0).float().mean())
    return (
        f"The model classifies {right} of {len(y0)} samples shown correctly; its grown maps agree with the "
        f"true seed maps at {100 * g:.1f} % (yg, generator type) and {100 * s:.1f} % (ys, transformation) "
        "of the pixels. Heatmaps of y explain the true class; component heatmaps explain one seed pixel "
        "of yg or ys each (marked)."
    )


#: the General Pattern Theory three attribution methods of the sanity check (docs/methods.md#gpt-cascade)
SANITY_METHODS = {
    "gradCAM": ("gradcam", {"layer": "channel_adj", "relu": False}),
    "deconv": ("deconvnet", {}),
    "GuidedBP": ("guided_backprop", {}),
}


def gpt_sanity(
    checkpoint: Path, out: Path, *, samples: int = 2, pixels: int = 4, seed: int = 0
) -> list[Path]:
    """The General Pattern Theory component-wise cascading randomisation: ``out/{yg|ys}.cascade_rand.{L}.csv``
    and ``abs.`` variants, columns gradCAM / deconv / GuidedBP, one row per explained pixel (L = 0..6)."""
    import numpy as np

    from xai_serve.evaluation.component_randomisation import component_cascade
    from xai_serve.evaluation.store import write_csv
    from xai_serve.models import load_checkpoint

    model, _ = load_checkpoint(checkpoint)
    rng = np.random.default_rng(seed)
    from xai_serve.data.pattern_digits import sample_batch

    x, _, _, _ = sample_batch([int(c) for c in rng.integers(0, 10, size=samples)], rng)
    per: dict[tuple[str, str, str], list[np.ndarray]] = {}
    for s in range(samples):
        for title, (method, params) in SANITY_METHODS.items():
            res = component_cascade(model, x[s : s + 1], {method: params}, seed=seed + s, pixels=pixels)
            for output, by_method in res.items():
                for key, values in by_method[method].items():
                    per.setdefault((output, key, title), []).append(values)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for output in ("yg", "ys"):
        for key, prefix in (("spearman", ""), ("spearman_abs", "abs.")):
            cols = {t: per.get((output, key, t), []) for t in SANITY_METHODS}
            if not any(cols.values()):
                continue
            stacked = {t: np.concatenate(v, axis=1) for t, v in cols.items() if v}
            for level in range(next(iter(stacked.values())).shape[0]):
                n = max(a.shape[1] for a in stacked.values())
                rows = [
                    {t: (float(a[level, r]) if r < a.shape[1] else -999) for t, a in stacked.items()}
                    for r in range(n)
                ]
                path = out / f"{prefix}{output}.cascade_rand.{level}.csv"
                write_csv(path, rows)
                written.append(path)
    return written


def register(app: typer.Typer) -> None:
    """Add ``xai gpt ...`` to ``app``."""
    gpt = typer.Typer(
        help="General Pattern Theory (Tjoa & Guan): figures and the component-wise sanity check of a "
        "ResGPTNet checkpoint.",
        no_args_is_help=True,
    )
    app.add_typer(gpt, name="gpt")

    def run(section: str, checkpoint: Path, out: Path, seed: int, pixels: int) -> None:
        from xai_serve.errors import XaiError

        try:
            index = gpt_figures(checkpoint, out, sections=(section,), seed=seed, pixels=pixels)
        except XaiError as exc:
            _fail(str(exc))
        typer.echo(f"wrote {index}")

    @gpt.command("samples")
    def samples(
        checkpoint: Path = typer.Argument(..., help="checkpoint directory of a resgptnet model"),
        out: Path = typer.Option(Path("gpt_figures"), "--out", help="output folder"),
        seed: int = typer.Option(0, "--seed", help="seed of the pattern_digits samples"),
    ) -> None:
        """The General Pattern Theory generate_samples: image, grown from the true seeds, grown from the
        predicted seeds."""
        run("samples", checkpoint, out, seed, 0)

    @gpt.command("heatmaps")
    def heatmaps(
        checkpoint: Path = typer.Argument(..., help="checkpoint directory of a resgptnet model"),
        out: Path = typer.Option(Path("gpt_figures"), "--out", help="output folder"),
        seed: int = typer.Option(0, "--seed", help="seed of the pattern_digits samples"),
    ) -> None:
        """Grad-CAM (input adapter, layer1), deconvnet, guided backprop of y, one sample per class."""
        run("heatmaps", checkpoint, out, seed, 0)

    @gpt.command("heatmapsGC")
    def heatmaps_gc(
        checkpoint: Path = typer.Argument(..., help="checkpoint directory of a resgptnet model"),
        out: Path = typer.Option(Path("gpt_figures"), "--out", help="output folder"),
        seed: int = typer.Option(0, "--seed", help="seed of the pattern_digits samples"),
        pixels: int = typer.Option(6, "--pixels", min=1, help="at most this many seed pixels per figure"),
    ) -> None:
        """Component heatmaps: per seed pixel, maps of yg and ys (true and predicted seeds), per class."""
        run("heatmapsGC", checkpoint, out, seed, pixels)

    @gpt.command("sanity")
    def sanity(
        checkpoint: Path = typer.Argument(..., help="checkpoint directory of a resgptnet model"),
        out: Path = typer.Option(Path("gpt_sanity"), "--out", help="output folder"),
        samples: int = typer.Option(2, "--samples", min=1, help="pattern_digits samples (random classes)"),
        pixels: int = typer.Option(4, "--pixels", min=1, help="at most this many predicted seed pixels each"),
        seed: int = typer.Option(0, "--seed", help="seed of the samples and of the noise"),
    ) -> None:
        """Component-wise cascading weight randomisation (General Pattern Theory): Spearman per pixel and
        level, as CSVs. The class output y:
        `xai evaluate randomisation --checkpoint CKPT --variant pattern_theory`; this check as a suite run
        (report, shards, Ray): `... --variant components`."""
        from xai_serve.errors import XaiError

        try:
            files = gpt_sanity(checkpoint, out, samples=samples, pixels=pixels, seed=seed)
        except XaiError as exc:
            _fail(str(exc))
        typer.echo(f"wrote {len(files)} files to {out}")
