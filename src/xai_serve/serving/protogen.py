"""Regenerate the client's protobuf/gRPC code from ``protos/`` (``make protos``).

``python -m xai_serve.serving.protogen`` writes ``client/src/xai_client/api/``;
``--check`` regenerates into a temporary directory and exits 1 on any difference, so drift between
the ``.proto`` sources and the committed code fails CI.

Layout: ``protos/xai_serve/v1/*.proto`` -> ``api/v1/``, ``protos/torchserve/*.proto`` ->
``api/torchserve/``, ``protos/oip/*.proto`` (the Open Inference
Protocol) -> ``api/oip/``. protoc writes absolute imports derived from the proto path
(``from torchserve import inference_pb2``); they are rewritten to package-relative ones
(``from . import inference_pb2``) so the code works wherever ``xai_client`` is installed.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PROTOS = REPO / "protos"
API = REPO / "client" / "src" / "xai_client" / "api"

# proto directory (relative to protos/) -> output package directory (relative to api/),
# and whether the files define gRPC services.
GROUPS: dict[str, tuple[str, bool]] = {
    "xai_serve/v1": ("v1", False),
    "torchserve": ("torchserve", True),
    "oip": ("oip", True),
}
# groups whose files are named without their directory (as the published protos name themselves)
ROOTED = {"oip"}

_INIT_DOCS = {
    "": '"""Generated protobuf/gRPC code (``make protos``; do not edit)."""\n',
    "v1": '"""xai_serve.v1 messages, generated from protos/xai_serve/v1 (do not edit)."""\n',
    "torchserve": (
        '"""TorchServe inference/management gRPC stubs, generated from protos/torchserve (do not edit)."""\n'
    ),
    "oip": (
        '"""Open Inference Protocol (v2) gRPC stubs, generated from protos/oip (do not edit).\n\n'
        "Package ``inference``, like kserve's and tritonclient's own stubs: a process can import only one\n"
        'of the three (duplicate symbols in the protobuf descriptor pool)."""\n'
    ),
}


def _include_dirs() -> list[str]:
    """protoc include paths: ours, grpc_tools' well-known types, googleapis-common-protos."""
    import grpc_tools

    dirs = [str(PROTOS), str(Path(grpc_tools.__file__).parent / "_proto")]
    try:
        import google.rpc.status_pb2 as status_pb2

        # site-packages root holding google/rpc/status.proto
        dirs.append(str(Path(status_pb2.__file__).parents[2]))
    except ImportError:  # pragma: no cover - googleapis-common-protos is a client dependency
        pass
    return dirs


def _fix_imports(text: str, proto_dir: str) -> str:
    if proto_dir in ROOTED:  # protoc wrote "import grpc_predict_v2_pb2 as ..."
        return re.sub(r"^import (\w+_pb2) as ", r"from . import \1 as ", text, flags=re.MULTILINE)
    module = proto_dir.replace("/", ".")
    return re.sub(rf"^from {re.escape(module)} import ", "from . import ", text, flags=re.MULTILINE)


def generate(out_dir: Path, protos_dir: Path = PROTOS) -> list[Path]:
    """Generate every group into ``out_dir`` (the ``api`` package); return the files written."""
    from grpc_tools import protoc

    written: list[Path] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "__init__.py").write_text(_INIT_DOCS[""])
    written.append(out_dir / "__init__.py")
    includes = [f"-I{d}" for d in _include_dirs()]
    for proto_dir, (package, has_services) in GROUPS.items():
        files = sorted((protos_dir / proto_dir).glob("*.proto"))
        with tempfile.TemporaryDirectory() as tmp:
            args = ["protoc", *includes, f"--python_out={tmp}", f"--pyi_out={tmp}"]
            if has_services:
                args.append(f"--grpc_python_out={tmp}")
            root = protos_dir / proto_dir if proto_dir in ROOTED else protos_dir
            if proto_dir in ROOTED:
                args.insert(1, f"-I{root}")
            args += [str(f.relative_to(root)) for f in files]
            # protoc resolves the relative proto names against the include paths
            rc = protoc.main(args)
            if rc != 0:
                raise RuntimeError(f"protoc failed ({rc}) for {proto_dir}")
            target = out_dir / package
            target.mkdir(parents=True, exist_ok=True)
            (target / "__init__.py").write_text(_INIT_DOCS[package])
            written.append(target / "__init__.py")
            for src in sorted((Path(tmp) if proto_dir in ROOTED else Path(tmp) / proto_dir).glob("*.py*")):
                text = _fix_imports(src.read_text(), proto_dir)
                (target / src.name).write_text(text)
                written.append(target / src.name)
    return written


def diff(expected_dir: Path, actual_dir: Path) -> list[str]:
    """Relative paths that differ between two generated trees (missing on either side included)."""

    def files(root: Path) -> set[str]:
        return {
            str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
        }

    a, b = files(expected_dir), files(actual_dir)
    changed = sorted(a ^ b)
    for rel in sorted(a & b):
        if not filecmp.cmp(expected_dir / rel, actual_dir / rel, shallow=False):
            changed.append(rel)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed code differs")
    parser.add_argument("--out", type=Path, default=API, help="output directory (the api package)")
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp) / "api")
            changed = diff(Path(tmp) / "api", args.out)
        if changed:
            print("generated code is stale; run `make protos`:\n  " + "\n  ".join(changed))
            return 1
        print("generated code is up to date")
        return 0
    # regenerate from scratch so deleted protos leave no stale modules behind
    if args.out.exists():
        shutil.rmtree(args.out)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
