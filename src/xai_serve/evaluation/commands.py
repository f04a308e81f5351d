"""``xai evaluate SUITE``: one command per registered suite (torch is imported lazily).

The commands are generated from the suite registry: each takes the shared options
(:class:`~xai_serve.evaluation.options.CommonOptions`: checkpoint, data, samples, seed, output,
backend, shard, metrics), the method options when the suite evaluates methods, and the suite's own
options (the :func:`~xai_serve.evaluation.options.opt` fields of its options dataclass). Outputs:
CSV/JSON, PNG plots and report.html in ``--out`` (resumable with ``--resume``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from xai_serve.errors import XaiError
from xai_serve.evaluation.options import CommonOptions, MethodOptions, build, command_from
from xai_serve.evaluation.registry import Suite, list_suites

evaluate_app = typer.Typer(
    help="Evaluate a model and its explanations: basic metrics, faithfulness curves (pixel flipping, "
    "region perturbation, AOPC/AUC/ABPC), feature removal, parameter-randomisation sanity checks.",
    no_args_is_help=True,
)


def suite_command(suite: Suite) -> Any:
    """The typer command of ``suite``: shared options declared once, then the suite's own."""
    classes = [CommonOptions, *([MethodOptions] if suite.uses_methods else []), suite.options]

    def body(**values: Any) -> None:
        from xai_serve.evaluation.job import output_dir, run_job

        common = build(CommonOptions, values)
        try:
            methods = build(MethodOptions, values) if suite.uses_methods else None
            options = build(suite.options, values)
            result = run_job(suite.name, common, methods, options)
        except XaiError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from e
        out = output_dir(suite.name, common)
        brief = {k: v for k, v in result.items() if k != "summary"}
        typer.echo(json.dumps({"out": out, **brief}))
        if "shard" not in result:
            typer.echo(f"report: {Path(out) / 'report.html'}", err=True)

    return command_from(suite.name, suite.help, classes, body, defaults=suite.defaults)


def register(app: typer.Typer) -> None:
    """Add ``xai evaluate`` (one sub-command per registered suite) to ``app``."""
    for suite in list_suites().values():
        evaluate_app.command(suite.name)(suite_command(suite))
    app.add_typer(evaluate_app, name="evaluate")


if __name__ == "__main__":  # pragma: no cover
    evaluate_app(sys.argv[1:])
