"""``xai certify CHECKPOINT``: measure the explanation credentials of a checkpoint (torch imported
lazily). See :mod:`xai_serve.evaluation.certify` and :mod:`xai_serve.evaluation.credentials`.

The data, sample, seed, output and backend options are the evaluation jobs' shared ones
(:class:`~xai_serve.evaluation.options.CommonOptions`, :class:`~.options.MethodOptions`, declared
once), with certification's defaults: the validation split, 32 samples, every served heatmap
method, output ``certify/<checkpoint name>``; its own options are :class:`CertifyCliOptions`.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from xai_serve.evaluation.options import CommonOptions, MethodOptions, build, opt, typer_parameters
from xai_serve.evaluation.sanity_rule import SANITY_THRESHOLD

DEFAULTS = {"split": "val", "samples": 32, "methods": [], "dataset": ""}


@dataclass
class CertifyCliOptions:
    threshold: float = opt(
        SANITY_THRESHOLD,
        "sanity rule: pass iff |Spearman of |maps|| of the fully randomised model < this, in (0, 1]",
    )
    target: str = opt("true", "class explained and scored: true | predicted")
    batch_size: int = opt(16, "images per stored batch (the unit of resumption and of sharding)")


def run_certify(checkpoint: Path, **values: Any) -> None:
    from xai_serve.errors import XaiError
    from xai_serve.evaluation.certify import CertifyOptions, certify

    try:
        common: CommonOptions = build(CommonOptions, values)
        methods: MethodOptions = build(MethodOptions, values)
        own: CertifyCliOptions = build(CertifyCliOptions, values)
        common.validate()
        opts = CertifyOptions(
            methods=methods.methods or None,
            method_params=methods.method_params(),
            samples=common.samples or 32,
            seed=common.seed,
            dataset=common.dataset or None,
            split=common.split,
            data_root=common.data_root,
            which=common.which,
            threshold=own.threshold,
            target=own.target,
            batch_size=own.batch_size,
            device=common.device,
            backend=common.backend,
            address=common.address,
            workers=common.workers,
            shard=common.shard,
        )
        dest = Path(common.out) if common.out else Path("certify") / checkpoint.name
        path = certify(
            checkpoint,
            dest,
            opts,
            resume=common.resume,
            overwrite=common.overwrite,
            log=lambda m: typer.echo(m, err=True),
        )
    except (XaiError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if path is None:
        typer.echo(json.dumps({"shard": common.shard, "out": str(dest)}))
        return
    doc = json.loads(path.read_text())
    verdicts = {m: v["sanity"]["pass"] for m, v in doc["methods"].items()}
    typer.echo(
        json.dumps(
            {
                "credentials": str(path),
                "passed": sorted(m for m, ok in verdicts.items() if ok),
                "failed": sorted(m for m, ok in verdicts.items() if not ok),
            }
        )
    )


def _command() -> Any:
    params = [
        p
        for p in typer_parameters(CommonOptions, MethodOptions, CertifyCliOptions, defaults=DEFAULTS)
        if p.name not in ("checkpoint", "metrics_file", "pushgateway")  # positional; no job metrics
    ]
    ckpt = inspect.Parameter(
        "checkpoint",
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        annotation=Annotated[Path, typer.Argument(help="checkpoint directory written by `xai train`")],
    )

    def certify(checkpoint: Path, **values: Any) -> None:
        run_certify(checkpoint, **values)

    certify.__doc__ = (
        "Sanity check (cascading randomisation, documented rule) + faithfulness (AOPC MoRF/LeRF, ABPC) "
        "per served method on validation data: writes OUT/credentials.json for `xai archive --credentials`."
    )
    sig = inspect.Signature([ckpt, *params])
    certify.__signature__ = sig  # type: ignore[attr-defined]
    certify.__annotations__ = {p.name: p.annotation for p in sig.parameters.values()}
    return certify


def register(app: typer.Typer) -> None:
    """Add ``xai certify`` to ``app``."""
    app.command("certify")(_command())
