"""``xai serve --engine kserve``: start KServe's model server with the store's archives (or checkpoint
directories), print its addresses, and with ``--foreground`` stay attached until it exits or SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path

import typer

from xai_serve.serving.server import ServerError
from xai_serve.serving.v2 import kserve_engine as engine


def serve_kserve(
    store: Path,
    models: list[str],
    state_dir: Path,
    host: str,
    http_port: int,
    grpc_port: int,
    no_auth: bool,
    timeout: float,
    foreground: bool,
) -> None:
    cfg = engine.KServeConfig(
        store, models, state_dir, host=host, http_port=http_port, grpc_port=grpc_port, token_auth=not no_auth
    )
    try:
        s = engine.start(cfg, timeout=timeout)
    except ServerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    c = s.config
    typer.echo(f"KServe model server ready (pid {s.pid}), models: {', '.join(c.models)}")
    typer.echo(f"  v2 gRPC    {c.grpc_address}   (inference.GRPCInferenceService)")
    typer.echo(f"  v2 REST    {c.inference_url}/v2/models/NAME/infer")
    typer.echo(f"  metrics    {c.inference_url}/metrics")
    if c.token_auth:
        typer.echo(f"  key file   {c.key_file}   (bearer token: its 'inference' key)")
    typer.echo(f"  logs       {c.state_dir / 'logs' / engine.LOG_FILE}")
    typer.echo(f"  stop with  xai serve --stop --state-dir {state_dir}")
    if foreground:

        def _terminate(signum: int, _frame: object) -> None:
            engine.stop(c.state_dir)
            raise typer.Exit(0)

        signal.signal(signal.SIGTERM, _terminate)
        signal.signal(signal.SIGINT, _terminate)
        code = s.process.wait() if s.process is not None else 0
        engine.stop(c.state_dir)
        raise typer.Exit(code)
