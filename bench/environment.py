"""The machine and the software versions a benchmark run was measured with (for BENCHMARKS.md)."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata
from typing import Any

# distribution name -> label in BENCHMARKS.md
PACKAGES = {
    "torch": "torch",
    "torchvision": "torchvision",
    "captum": "captum",
    "zennit": "zennit",
    "grad-cam": "grad-cam",
    "quantus": "quantus",
    "torchserve": "torchserve",
    "torch-model-archiver": "torch-model-archiver",
    "grpcio": "grpcio",
    "protobuf": "protobuf",
    "numpy": "numpy",
    "xai-serve": "xai-serve",
    "xai-serve-client": "xai-serve-client",
}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_gib() -> float | None:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # pragma: no cover - psutil is a dependency
        return None


def java_version() -> str | None:
    java = shutil.which("java")
    if java is None:
        java_home = os.environ.get("JAVA_HOME")
        if java_home and os.path.exists(os.path.join(java_home, "bin", "java")):
            java = os.path.join(java_home, "bin", "java")
    if java is None:
        return None
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = out.stderr or out.stdout
    match = re.search(r'version "([^"]+)"', text)
    return match.group(1) if match else text.strip().splitlines()[0] if text.strip() else None


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist, label in PACKAGES.items():
        try:
            out[label] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[label] = None
    return out


def describe() -> dict[str, Any]:
    """Machine and versions as a JSON-serialisable dict."""
    try:
        import torch

        threads = torch.get_num_threads()
    except Exception:  # pragma: no cover
        threads = None
    return {
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "ram_gib": ram_gib(),
            "os": f"{platform.system()} {platform.release()}",
            "arch": platform.machine(),
            "torch_threads": threads,
        },
        "versions": {
            "python": platform.python_version(),
            **package_versions(),
            "java": java_version(),
        },
        "python_executable": sys.executable,
    }
