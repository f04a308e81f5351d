"""deploy/kserve/*.yaml against KServe's own CRD schemas (tests/fixtures/kserve, see PROVENANCE.md),
strictly: an unknown field fails (Kubernetes would silently prune it, and `kubernetes-validate` only
warns on custom resources). Plus the checks the schemas cannot make (KServe's admission webhook rules
and the agreement between the runtime, the InferenceService and the image)."""

from __future__ import annotations

import copy
import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy" / "kserve"
CRDS = ROOT / "tests" / "fixtures" / "kserve"
FILES = {
    "InferenceService": "serving.kserve.io_inferenceservices.yaml.gz",
    "ServingRuntime": "serving.kserve.io_servingruntimes.yaml.gz",
}
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _openapi_to_jsonschema(node: Any, strict: bool) -> Any:
    """Kubernetes' OpenAPI v3 dialect as JSON Schema: int-or-string, nullable; strict: no unknown fields."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(n, strict) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_jsonschema(v, strict) for k, v in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["type"] = ["integer", "string"]
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if strict and "properties" in out and not preserve and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return {k: v for k, v in out.items() if not k.startswith("x-kubernetes-")}


@cache
def _schema(kind: str, api_version: str, strict: bool = True) -> dict:
    crd = yaml.load(gzip.decompress((CRDS / FILES[kind]).read_bytes()), Loader=_LOADER)
    group = crd["spec"]["group"]
    for v in crd["spec"]["versions"]:
        if f"{group}/{v['name']}" == api_version:
            return _openapi_to_jsonschema(copy.deepcopy(v["schema"]["openAPIV3Schema"]), strict)
    raise AssertionError(f"{api_version} is not a version of {kind}")


def _errors(doc: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(_schema(doc["kind"], doc["apiVersion"]))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def _docs() -> list[tuple[str, dict]]:
    out = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        out += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return out


@pytest.mark.parametrize(("name", "doc"), _docs(), ids=[f"{n}:{d['kind']}" for n, d in _docs()])
def test_manifest_matches_kserve_crd_strictly(name: str, doc: dict) -> None:
    assert doc["kind"] in FILES, f"{name}: no CRD fixture for {doc['kind']}"
    assert _errors(doc) == [], name


def test_strict_mode_rejects_unknown_and_mistyped_fields() -> None:
    (isvc,) = [d for n, d in _docs() if n == "v2-inferenceservice.yaml"]
    bad = copy.deepcopy(isvc)
    bad["spec"]["predictor"]["model"]["storageURI"] = bad["spec"]["predictor"]["model"].pop("storageUri")
    bad["spec"]["predictor"]["minReplicas"] = "one"
    errors = _errors(bad)
    assert any("storageURI" in e for e in errors) and any("minReplicas" in e for e in errors), errors
    loose = jsonschema.Draft7Validator(_schema("InferenceService", "serving.kserve.io/v1beta1", strict=False))
    assert not any("storageURI" in e.message for e in loose.iter_errors(bad))  # why strict mode is needed


def test_v2_runtime_and_inference_service_agree() -> None:
    docs = {n: d for n, d in _docs() if n.startswith("v2-")}
    runtime, isvc = docs["v2-servingruntime.yaml"], docs["v2-inferenceservice.yaml"]
    model = isvc["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["modelFormat"]["name"] in {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    # the admission webhook's rule: the ISVC's protocol must be one the runtime lists
    assert model["protocolVersion"] == "v2" and "v2" in runtime["spec"]["protocolVersions"]
    (container,) = runtime["spec"]["containers"]
    assert container["name"] == "kserve-container"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["XAI_SERVE_ENGINE"] == "kserve"
    http_port = int(container["args"][container["args"].index("--http-port") + 1])
    assert container["ports"][0]["containerPort"] == http_port
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": http_port}
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert runtime["spec"]["annotations"]["prometheus.kserve.io/port"] == str(http_port)
    assert json.dumps(container["resources"]) and isvc["spec"]["predictor"]["maxReplicas"] >= 1


def test_v2_runtime_arguments_are_xai_serve_options() -> None:
    import re

    from typer.testing import CliRunner

    from xai_serve.cli import app

    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    options = set(re.findall(r"--[a-z][a-z-]*", result.output))
    (runtime,) = [d for n, d in _docs() if n == "v2-servingruntime.yaml"]
    flags = {a for a in runtime["spec"]["containers"][0]["args"] if a.startswith("--")}
    assert flags <= options, flags - options
