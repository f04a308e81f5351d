"""``xai console``: the explanation console in the browser, over a running xai-serve."""

from __future__ import annotations

from pathlib import Path

import typer


def console(
    address: str = typer.Option(None, help="the model server's inference address (default 127.0.0.1:7070)"),
    management_address: str = typer.Option(
        None, help="its management address (default: the inference address's port + 1, e.g. 7070 -> 7071)"
    ),
    protocol: str = typer.Option(
        None,
        help="grpc | http: TorchServe's two APIs (default grpc); with --engine kserve the v2 REST API "
        "(default: --address HOST:HTTP_PORT) or v2 gRPC (--address HOST:GRPC_PORT)",
    ),
    engine: str = typer.Option(
        "torchserve", help="torchserve | kserve (`xai serve --engine kserve`: the Open Inference Protocol v2)"
    ),
    key_file: Path = typer.Option(None, help="the key file `xai serve` wrote (default: $XAI_SERVE_KEY_FILE)"),
    token: str = typer.Option(None, help="inference token (default: $XAI_SERVE_TOKEN or the key file)"),
    port: int = typer.Option(8090, help="the console's port on 127.0.0.1"),
    timeout: float = typer.Option(120.0, help="seconds per call to the model server"),
) -> None:
    """Open the explanation console: a web page on 127.0.0.1 to explain images with a served model."""
    from xai_serve.console.app import create_app
    from xai_serve.console.backend import Backend, ServerOptions
    from xai_serve.console.runner import serve

    options = ServerOptions(
        address=address,
        management_address=management_address,
        protocol=protocol,
        engine=engine,
        key_file=str(key_file) if key_file else None,
        token=token,
        timeout=timeout,
    )
    try:
        backend = Backend(options)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        serve(create_app(backend), port, announce=typer.echo)
    except KeyboardInterrupt:  # uvicorn shuts down first, then re-raises the Ctrl-C it captured
        pass
    finally:
        backend.close()
    typer.echo("console stopped")


def register(app: typer.Typer) -> None:
    app.command("console")(console)
