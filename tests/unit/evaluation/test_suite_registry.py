"""The suite registry: every declared suite is an `xai evaluate` command with the shared options
declared once (CommonOptions / MethodOptions) plus its own; options round-trip into dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, fields

import pytest
import typer
from typer.testing import CliRunner

from xai_serve.errors import InvalidParameterError
from xai_serve.evaluation.commands import suite_command
from xai_serve.evaluation.options import (
    CommonOptions,
    MethodOptions,
    build,
    cli_fields,
    opt,
    typer_parameters,
)
from xai_serve.evaluation.registry import Suite, get_suite, list_suites


def test_the_four_suites_are_registered_in_order():
    assert list(list_suites())[:4] == ["basic", "faithfulness", "feature-removal", "randomisation"]
    with pytest.raises(InvalidParameterError, match="suite must be one of"):
        get_suite("nope")


@pytest.mark.parametrize("name", list(list_suites()))
def test_every_suite_command_takes_the_shared_options(name):
    suite = get_suite(name)
    names = {p.name for p in typer_parameters(*_classes(suite), defaults=suite.defaults)}
    shared = {f.name for f, _, _ in cli_fields(CommonOptions)}
    assert shared <= names and {"backend", "shard", "address", "pushgateway", "metrics_file"} <= shared
    assert ({"methods", "param"} <= names) == suite.uses_methods
    assert {f.name for f, _, _ in cli_fields(suite.options)} <= names
    app = typer.Typer()
    app.command(name)(suite_command(suite))
    app.command("other")(lambda: None)
    res = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "--shard" in res.output and "--pushgateway" in res.output


def _classes(suite: Suite) -> list[type]:
    return [CommonOptions, *([MethodOptions] if suite.uses_methods else []), suite.options]


def test_suite_defaults_override_shared_defaults():
    basic = {p.name: p.default for p in typer_parameters(CommonOptions, defaults=get_suite("basic").defaults)}
    assert basic["samples"] is None
    rand = get_suite("randomisation")
    assert {p.name: p.default for p in typer_parameters(CommonOptions, defaults=rand.defaults)}[
        "samples"
    ] == 32


def test_list_options_are_comma_separated_and_round_trip():
    opts_cls = get_suite("faithfulness").options
    params = {p.name: p for p in typer_parameters(opts_cls)}
    assert params["kinds"].default == "pixel,region"
    built = build(opts_cls, {"kinds": "pixel, region", "orders": "morf", "features_in_step": 8})
    assert built.kinds == ["pixel", "region"] and built.orders == ["morf"] and built.features_in_step == 8
    assert built == opts_cls(kinds=["pixel", "region"], orders=["morf"], features_in_step=8)
    # fields without opt() (filled by the runner) are not options
    fr = get_suite("feature-removal").options
    assert "signed" in {f.name for f in fields(fr)} and "signed" not in {f.name for f, _, _ in cli_fields(fr)}


def test_an_option_declared_twice_is_an_error():
    @dataclass
    class Clash:
        seed: int = opt(1, "a second seed")

    with pytest.raises(ValueError, match="seed"):
        typer_parameters(CommonOptions, Clash)


def test_method_params_and_backend_validation():
    m = MethodOptions(param=["lrp.rule=epsilon", "grad_cam.layer=features.3"])
    assert m.method_params() == {"lrp": {"rule": "epsilon"}, "grad_cam": {"layer": "features.3"}}
    with pytest.raises(InvalidParameterError, match=r"METHOD\.KEY=VALUE"):
        MethodOptions(param=["bad"]).method_params()
    with pytest.raises(InvalidParameterError, match="backend"):
        CommonOptions(backend="spark").validate()
    with pytest.raises(InvalidParameterError, match="shard"):
        CommonOptions(backend="ray", shard="0/2").validate()
