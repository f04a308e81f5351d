"""Command-line options declared once, on dataclasses (torch-free: ``xai --help`` imports this).

A dataclass field declared with :func:`opt` is a command-line option: its name (``--field-name`` or
the ``flag`` given), type, default and help come from the field. ``list[str]`` fields are entered
comma-separated. :func:`typer_parameters` turns one or more such dataclasses into the parameters
of a generated typer command and :func:`build` turns the parsed values back into the dataclasses,
so no option list is ever repeated per command. :class:`CommonOptions` holds the options every
batch job shares (checkpoint, data, samples, seed, output, backend, metrics).
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from xai_client.errors import InvalidArgument
from xai_client.params import parse_param_items

from xai_serve.errors import InvalidParameterError

CLI = "cli"


@dataclass(frozen=True)
class CliSpec:
    help: str
    flag: str | None = None  # e.g. "--step" for field features_in_step (default: --field-name)


def opt(default: Any = dataclasses.MISSING, help: str = "", *, flag: str | None = None) -> Any:
    """A dataclass field that is also a command-line option (lists: pass a list, copied per instance)."""
    md = {CLI: CliSpec(help, flag)}
    if isinstance(default, list):
        value = list(default)
        return field(default_factory=lambda: list(value), metadata=md)
    return field(default=default, metadata=md)


def split_list(s: str | Sequence[str] | None) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (lists pass through)."""
    if s is None:
        return []
    if not isinstance(s, str):
        return [str(p) for p in s]
    return [p.strip() for p in s.split(",") if p.strip()]


def _is_str_list(t: Any) -> bool:
    return typing.get_origin(t) is list and typing.get_args(t) == (str,)


def cli_fields(cls: type) -> list[tuple[dataclasses.Field[Any], CliSpec, Any]]:
    """The fields of ``cls`` declared with :func:`opt`: (field, spec, resolved type)."""
    hints = typing.get_type_hints(cls)
    return [(f, f.metadata[CLI], hints[f.name]) for f in dataclasses.fields(cls) if CLI in f.metadata]


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return ...


def typer_parameters(*classes: type, defaults: dict[str, Any] | None = None) -> list[inspect.Parameter]:
    """The keyword parameters of a typer command taking every :func:`opt` field of ``classes``.

    ``defaults`` overrides field defaults (e.g. a suite's default sample count). A name declared by
    two classes is an error: one option, one meaning.
    """
    import typer

    params: list[inspect.Parameter] = []
    seen: dict[str, type] = {}
    for cls in classes:
        for f, spec, t in cli_fields(cls):
            if f.name in seen:
                raise ValueError(
                    f"option {f.name!r} declared by both {seen[f.name].__name__} and {cls.__name__}"
                )
            seen[f.name] = cls
            default = (defaults or {}).get(f.name, _default(f))
            if _is_str_list(t):
                t = str
                default = ",".join(default) if default is not ... else ...
            info = typer.Option(spec.flag, help=spec.help) if spec.flag else typer.Option(help=spec.help)
            params.append(
                inspect.Parameter(
                    f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[t, info]
                )
            )
    return params


def build(cls: type, values: dict[str, Any], **extra: Any) -> Any:
    """An instance of ``cls`` from parsed command-line ``values`` (unknown keys ignored)."""
    kw: dict[str, Any] = {}
    for f, _spec, t in cli_fields(cls):
        if f.name in values:
            v = values[f.name]
            kw[f.name] = split_list(v) if _is_str_list(t) else v
    return cls(**kw, **extra)


def command_from(
    name: str,
    doc: str,
    classes: Sequence[type],
    body: Callable[..., None],
    defaults: dict[str, Any] | None = None,
) -> Callable[..., None]:
    """A typer command function named ``name`` whose options are the :func:`opt` fields of
    ``classes``; it calls ``body(**values)``."""
    params = typer_parameters(*classes, defaults=defaults)

    def command(**values: Any) -> None:
        body(**values)

    command.__name__ = name.replace("-", "_")
    command.__doc__ = doc
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


BACKENDS = ("local", "ray")


@dataclass
class CommonOptions:
    """The options every offline batch job shares (declared once)."""

    checkpoint: str = opt("runs/digits_simplenet", "checkpoint directory written by `xai train`")
    which: str = opt("best", "weights to load: best | last")
    dataset: str = opt(
        "", "registered dataset name (digits, mnist, cifar10, imagefolder; default: the card's)"
    )
    data_root: str | None = opt(None, "dataset root folder (for local datasets)")
    split: str = opt("test", "dataset split")
    samples: int | None = opt(64, "number of samples (all of them when not given and the suite says so)")
    seed: int = opt(0, "seed of the sample choice and every random draw")
    out: str | None = opt(None, "output directory (default eval/<suite>)")
    resume: bool = opt(False, "continue an interrupted run in --out (also: merge the parts of --shard runs)")
    overwrite: bool = opt(False, "replace an existing run in --out")
    device: str = opt("cpu", "torch device (cpu, cuda)")
    backend: str = opt("local", "where batches run: local (in-process) | ray (tasks on a Ray cluster)")
    address: str | None = opt(None, "Ray cluster address (default: start a local Ray)")
    workers: int | None = opt(None, "Ray tasks (default: one per CPU of the cluster, at most one per batch)")
    shard: str | None = opt(None, "run only slice K/N of the batches (0 <= K < N; a Kubernetes Indexed Job)")
    metrics_file: str | None = opt(
        None,
        "Prometheus textfile-collector file (*.prom) with the job's progress, e.g. in node exporter's "
        "--collector.textfile.directory (shards and Ray tasks write NAME-shard-K-of-N.prom beside it)",
    )
    pushgateway: str | None = opt(None, "also push the job's metrics to this Prometheus Pushgateway URL")

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise InvalidParameterError(f"backend must be one of {', '.join(BACKENDS)}; got {self.backend!r}")
        if self.shard is not None and self.backend != "local":
            raise InvalidParameterError(
                "--shard runs one slice in-process; it cannot be combined with --backend ray"
            )


@dataclass
class MethodOptions:
    """The options of suites that evaluate explanation methods."""

    methods: list[str] = opt(
        ["gradient", "input_x_gradient", "guided_backprop"], "comma-separated registered explanation methods"
    )
    param: list[str] | None = opt(None, "method parameter METHOD.KEY=VALUE (repeatable)", flag="--param")

    def method_params(self) -> dict[str, dict[str, Any]]:
        try:
            return dict(parse_param_items(self.param or []))
        except InvalidArgument as exc:
            raise InvalidParameterError(exc.message) from exc
