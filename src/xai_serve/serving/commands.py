"""CLI commands of serving: ``xai archive``, ``xai serve [--stop]``, ``xai predict``, ``xai explain``.

``predict``/``explain`` are the client's commands (``xai-client predict|explain``), so they behave
the same with or without torch installed. Heavy imports happen inside the command bodies.
"""

from __future__ import annotations

from pathlib import Path

import typer


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add this part's commands to ``app``."""

    @app.command()
    def archive(
        checkpoint: Path = typer.Argument(..., help="checkpoint directory written by `xai train`"),
        name: str = typer.Option(..., "--name", help="model name: writes STORE/NAME.mar"),
        store: Path = typer.Option(Path("model_store"), "--store", help="model store directory"),
        which: str = typer.Option("best", help="best | last"),
        batch_size: int = typer.Option(8, help="TorchServe batchSize"),
        max_batch_delay: int = typer.Option(20, help="TorchServe maxBatchDelay (ms)"),
        workers: int = typer.Option(1, help="workers (min = max)"),
        response_timeout: int = typer.Option(120, help="responseTimeout (s)"),
        default_method: list[str] = typer.Option(["gradient"], help="methods for /explanations without one"),
    ) -> None:
        """Pack a checkpoint into a TorchServe archive (.mar)."""
        from xai_serve.errors import XaiError
        from xai_serve.serving.archive import ArchiveOptions, build_archive

        if which not in ("best", "last"):
            _fail("--which must be best or last")
        opts = ArchiveOptions(
            batch_size=batch_size,
            max_batch_delay_ms=max_batch_delay,
            workers=workers,
            response_timeout_s=response_timeout,
            default_methods=list(default_method),
        )
        try:
            path = build_archive(checkpoint, name, store=store, which=which, options=opts)  # type: ignore[arg-type]
        except XaiError as exc:
            _fail(str(exc))
        typer.echo(str(path))

    @app.command()
    def serve(
        models: list[str] = typer.Argument(None, help="archive names in the store (default: all)"),
        store: Path = typer.Option(Path("model_store"), "--store", help="model store directory"),
        state_dir: Path = typer.Option(Path(".xai-serve"), help="config, key file, pid, logs, temp dir"),
        stop: bool = typer.Option(False, "--stop", help="stop the server of --state-dir"),
        inference_port: int = typer.Option(8080),
        management_port: int = typer.Option(8081),
        metrics_port: int = typer.Option(8082),
        grpc_port: int = typer.Option(7070),
        grpc_management_port: int = typer.Option(7071),
        timeout: float = typer.Option(180.0, help="seconds to wait for every model to be READY"),
        host: str = typer.Option("127.0.0.1", help="listen address (0.0.0.0 only inside a container)"),
        foreground: bool = typer.Option(
            False, "--foreground", help="stay attached until TorchServe exits or SIGTERM (containers)"
        ),
    ) -> None:
        """Start TorchServe in the background (returns when every model is READY), or --stop it."""
        from xai_serve.serving import server as srv

        if stop:
            typer.echo("stopped" if srv.stop(state_dir) else f"no server running from {state_dir}")
            return
        cfg = srv.ServerConfig(
            model_store=store,
            models=list(models or []),
            state_dir=state_dir,
            inference_port=inference_port,
            management_port=management_port,
            metrics_port=metrics_port,
            grpc_port=grpc_port,
            grpc_management_port=grpc_management_port,
            host=host,
        )
        try:
            s = srv.start(cfg, timeout=timeout)
        except srv.ServerError as exc:
            _fail(str(exc))
        c = s.config
        typer.echo(f"TorchServe ready (pid {s.pid}), models: {', '.join(c.models)}")
        typer.echo(f"  gRPC       {c.grpc_address}   (management {c.host}:{c.grpc_management_port})")
        typer.echo(f"  HTTP       {c.inference_url}   (management {c.management_url})")
        typer.echo(f"  metrics    {c.metrics_url}/metrics")
        typer.echo(f"  key file   {c.key_file}   (the client reads it; or set XAI_SERVE_KEY_FILE)")
        typer.echo(f"  logs       {c.state_dir / 'logs'}")
        typer.echo(f"  stop with  xai serve --stop --state-dir {state_dir}")
        if foreground:
            _wait_foreground(s)

    def _wait_foreground(s: object) -> None:
        """Block until the Java process exits; SIGTERM/SIGINT stop the server by PID first."""
        import signal

        from xai_serve.serving import server as srv

        assert isinstance(s, srv.Server)

        def _terminate(signum: int, _frame: object) -> None:
            srv.stop(s.config.state_dir)
            raise typer.Exit(0)

        signal.signal(signal.SIGTERM, _terminate)
        signal.signal(signal.SIGINT, _terminate)
        code = s.process.wait() if s.process is not None else 0
        srv.stop(s.config.state_dir)
        raise typer.Exit(code)

    @app.command()
    def predict(
        images: list[Path] = typer.Argument(..., help="PNG/JPEG files"),
        model: str = typer.Option(..., "--model"),
        protocol: str = typer.Option("grpc", help="grpc | http"),
        address: str = typer.Option(None, help="inference address (default 127.0.0.1:7070 / :8080)"),
        token: str = typer.Option(None, help="inference token (default: $XAI_SERVE_TOKEN or the key file)"),
        key_file: Path = typer.Option(None),
        top_k: int = typer.Option(5),
    ) -> None:
        """Top-k classes of images from a served model."""
        from xai_client.cli import main

        args = ["predict", *map(str, images), "--model", model, "--protocol", protocol, "--top-k", str(top_k)]
        args += _common(address, token, key_file)
        raise typer.Exit(main(args, prog="xai"))

    @app.command()
    def explain(
        images: list[Path] = typer.Argument(..., help="PNG/JPEG files"),
        model: str = typer.Option(..., "--model"),
        method: list[str] = typer.Option(..., "--method", help="repeat for several methods"),
        target: str = typer.Option(None, help="class index, 'predicted' (default) or 'topK'"),
        protocol: str = typer.Option("grpc", help="grpc | http"),
        out: Path = typer.Option(..., "--out", help="directory for overlay PNGs and .npy heatmaps"),
        address: str = typer.Option(None, help="inference address (default 127.0.0.1:7070 / :8080)"),
        token: str = typer.Option(None, help="inference token (default: $XAI_SERVE_TOKEN or the key file)"),
        key_file: Path = typer.Option(None),
    ) -> None:
        """Explain images with a served model: overlay PNG + .npy per method."""
        from xai_client.cli import main

        args = ["explain", *map(str, images), "--model", model, "--protocol", protocol, "--out", str(out)]
        for m in method:
            args += ["--method", m]
        if target is not None:
            args += ["--target", target]
        args += _common(address, token, key_file)
        raise typer.Exit(main(args, prog="xai"))


def _common(address: str | None, token: str | None, key_file: Path | None) -> list[str]:
    args: list[str] = []
    if address:
        args += ["--address", address]
    if token:
        args += ["--token", token]
    if key_file:
        args += ["--key-file", str(key_file)]
    return args
