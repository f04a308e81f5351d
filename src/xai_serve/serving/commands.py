"""CLI commands of serving: ``xai archive``, ``xai serve [--stop]``, ``xai predict``, ``xai explain``.

``predict``/``explain`` are the client's commands (``xai-client predict|explain``), so they behave
the same with or without torch installed. Heavy imports happen inside the command bodies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

# the client CLI's option text (xai_client.cli.MANAGEMENT_ADDRESS_HELP; not imported: --help stays light)
MANAGEMENT_ADDRESS_HELP = "management address (default: the inference address's port + 1, e.g. 7070 -> 7071)"


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
        max_batch_delay: int = typer.Option(2, help="TorchServe maxBatchDelay (ms); a lone request waits it"),
        workers: int = typer.Option(1, help="workers (min = max)"),
        response_timeout: int = typer.Option(120, help="responseTimeout (s)"),
        default_method: list[str] = typer.Option(["gradient"], help="methods for /explanations without one"),
        max_rows: int = typer.Option(64, help="cost limit: explained rows (targets x methods)"),
        max_iterations: int = typer.Option(500, help="cost limit: iterations of an iterative method"),
        max_work: float = typer.Option(2000.0, help="cost limit: estimated forward+backward passes"),
        lrp_cache_entries: int = typer.Option(1024, help="LRU bound of the LRP derived-parameter cache"),
        cache_mib: float = typer.Option(
            16.0, "--cache-mib", min=0.0, help="explanation cache per worker (MiB)"
        ),
        decompose: Path | None = typer.Option(
            None, "--decompose", help="index file (class -> filters): serve the decomposed final layer"
        ),
        dissection: Path | None = typer.Option(
            None, "--dissection", help="results.csv of `xai dissect`: label the dissected layer's units"
        ),
        credentials: Path = typer.Option(
            None, help="credentials.json written by `xai certify` (packed, checked)"
        ),
        certify: bool = typer.Option(
            False, "--certify", help="run `xai certify` first and pack its credentials"
        ),
        certify_samples: int = typer.Option(32, help="--certify: validation samples"),
        certify_out: Path = typer.Option(None, help="--certify: output directory (default certify/NAME)"),
        refuse_failed: bool = typer.Option(
            False, "--refuse-failed", help="refuse (FAILED_PRECONDITION) methods that failed the sanity check"
        ),
        onnx: bool = typer.Option(False, "--onnx", help="also pack model.onnx (checked, dynamic batch)"),
        monitor_rate: float = typer.Option(
            0.0, "--monitor-rate", help="live credentials: fraction of explanations checked (0: off)"
        ),
        monitor_queue: int = typer.Option(16, "--monitor-queue", help="live credentials: queue bound"),
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
            limits=_limits(max_rows, max_iterations, max_work, lrp_cache_entries),
            decompose=decompose,
            dissection=dissection,
            refuse_failed_methods=refuse_failed,
            onnx=onnx,
            cache_mib=cache_mib,
        )
        try:
            from xai_serve.serving.live_monitor import MonitorConfig

            opts.monitor = MonitorConfig(rate=monitor_rate, queue_size=monitor_queue)
            if certify and credentials is not None:
                _fail("--certify and --credentials are exclusive")
            if certify:
                from xai_serve.evaluation.certify import CertifyOptions
                from xai_serve.evaluation.certify import certify as run_certify

                out = certify_out or Path("certify") / name
                copts = CertifyOptions(samples=certify_samples, which=which)
                certified = run_certify(checkpoint, out, copts, overwrite=True, log=typer.echo)
                assert certified is not None  # no shard: the whole run
                credentials = certified
            opts.credentials = credentials
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
        host: str = typer.Option(
            "127.0.0.1", help="listen address of inference, REST and gRPC (0.0.0.0 in a container)"
        ),
        management_host: str = typer.Option("127.0.0.1", help="listen address of REST + gRPC management"),
        metrics_host: str = typer.Option("127.0.0.1", help="listen address of the Prometheus metrics"),
        foreground: bool = typer.Option(
            False, "--foreground", help="stay attached until TorchServe exits or SIGTERM (containers)"
        ),
        engine: str = typer.Option(
            "torchserve",
            envvar="XAI_SERVE_ENGINE",
            help="torchserve | kserve (KServe's model server: Open Inference Protocol v2)",
        ),
        http_port: int = typer.Option(8080, help="--engine kserve: REST port"),
        no_auth: bool = typer.Option(False, "--no-auth", help="--engine kserve: no bearer token"),
    ) -> None:
        """Start TorchServe (or KServe's model server) in the background (returns when every model is
        READY), or --stop it."""
        from xai_serve.serving import server as srv

        if stop:
            from xai_serve.serving.v2 import kserve_engine

            # the kserve engine first: TorchServe's stop clears a state dir whose PID is not Java's
            stopped = kserve_engine.stop(state_dir) or srv.stop(state_dir)
            typer.echo("stopped" if stopped else f"no server running from {state_dir}")
            return
        if engine == "kserve":
            from xai_serve.serving.v2.cli import serve_kserve

            serve_kserve(
                store, list(models or []), state_dir, host, http_port, grpc_port, no_auth, timeout, foreground
            )
            return
        if engine != "torchserve":
            _fail(f"--engine must be torchserve or kserve, not {engine!r}")
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
            management_host=management_host,
            metrics_host=metrics_host,
        )
        try:
            s = srv.start(cfg, timeout=timeout)
        except srv.ServerError as exc:
            _fail(str(exc))
        c = s.config
        typer.echo(f"TorchServe ready (pid {s.pid}), models: {', '.join(c.models)}")
        grpc_management = f"{c.management_host}:{c.grpc_management_port}"
        typer.echo(f"  gRPC       {c.grpc_address}   (management {grpc_management})")
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
    def methods(
        names: list[str] = typer.Argument(None, help="methods to describe (default: all registered)"),
    ) -> None:
        """List the registered explanation methods with their parameters (type, default, choices, doc)."""
        from xai_serve.explain import list_methods

        specs = list_methods()
        unknown = [n for n in names or [] if n not in specs]
        if unknown:
            _fail(f"unknown method {', '.join(map(repr, unknown))}; registered: {', '.join(specs)}")
        typer.echo(_methods_help(specs, list(names or [])))

    @app.command()
    def predict(
        images: list[Path] = typer.Argument(..., help="PNG/JPEG files"),
        model: str = typer.Option(..., "--model"),
        protocol: str = typer.Option("grpc", help="grpc | http | v2 (the kserve engine)"),
        address: str = typer.Option(None, help="inference address (default 127.0.0.1:7070 / :8080)"),
        token: str = typer.Option(None, help="inference token (default: $XAI_SERVE_TOKEN or the key file)"),
        key_file: Path = typer.Option(None),
        management_address: str = typer.Option(None, help=MANAGEMENT_ADDRESS_HELP),
        top_k: int = typer.Option(5),
    ) -> None:
        """Top-k classes of images from a served model."""
        from xai_client.cli import main

        args = ["predict", *map(str, images), "--model", model, "--protocol", protocol, "--top-k", str(top_k)]
        args += _common(address, token, key_file, management_address)
        raise typer.Exit(main(args, prog="xai"))

    @app.command()
    def explain(
        images: list[Path] = typer.Argument(..., help="PNG/JPEG files"),
        model: str = typer.Option(..., "--model"),
        method: list[str] = typer.Option(
            ..., "--method", help="a registered method (`xai methods` lists them with parameters); repeatable"
        ),
        target: str = typer.Option(
            None, help="7 | predicted (default) | top3 | OUTPUT:ROW,COL[:CHANNEL|predicted], e.g. yg:14,9:3"
        ),
        protocol: str = typer.Option("grpc", help="grpc | http | v2 (the kserve engine)"),
        out: Path = typer.Option(..., "--out", help="directory for overlay PNGs and .npy heatmaps"),
        address: str = typer.Option(None, help="inference address (default 127.0.0.1:7070 / :8080)"),
        token: str = typer.Option(None, help="inference token (default: $XAI_SERVE_TOKEN or the key file)"),
        key_file: Path = typer.Option(None),
        management_address: str = typer.Option(None, help=MANAGEMENT_ADDRESS_HELP),
        reduce: str = typer.Option("none", help="channel reduction of the values: none|sum|abs_sum|max_abs"),
        value_type: str = typer.Option("float32", help="type the values travel in: float32|float16|uint8"),
        render: str = typer.Option(
            "color", help="overlay: color (signed) | gray | pos | neg (the SimpleNet study's renders)"
        ),
        seed_names: bool = typer.Option(
            False, help="also the SimpleNet study's _Guided_BP_color/_gray, _pos/_neg_sal"
        ),
        progress: bool = typer.Option(False, "--progress", help="stream (gRPC) with a progress bar"),
        param: list[str] = typer.Option(
            [], "--param", help="method parameter METHOD.KEY=VALUE, e.g. lrp.rule=epsilon (repeatable)"
        ),
    ) -> None:
        """Explain images with a served model: overlay PNG + .npy per method."""
        from xai_client.cli import main

        from xai_serve.explain import list_methods

        known = list_methods()
        unknown = [m for m in method if m not in known]
        if unknown:
            _fail(f"unknown method {', '.join(map(repr, unknown))}; choices:\n{_methods_help(known)}")
        _check_params(method, param, known)

        args = ["explain", *map(str, images), "--model", model, "--protocol", protocol, "--out", str(out)]
        for m in method:
            args += ["--method", m]
        if target is not None:
            args += ["--target", target]
        args += ["--reduce", reduce, "--value-type", value_type, "--render", render]
        args += ["--seed-names"] if seed_names else []
        args += ["--progress"] if progress else []
        args += [f"--param={item}" for item in param]
        args += _common(address, token, key_file, management_address)
        raise typer.Exit(main(args, prog="xai"))


def _check_params(methods: list[str], items: list[str], known: dict[str, Any]) -> None:
    """``--param`` items: the client's grammar, checked against the registry's parameter specs."""
    from xai_client.cli import methods_with_params
    from xai_client.errors import XaiClientError

    from xai_serve.errors import XaiError
    from xai_serve.explain.params import convert_params

    try:
        for name, given in methods_with_params(methods, items).items():
            convert_params(name, known[name].params, given)
    except XaiClientError as exc:
        _fail(exc.message)
    except XaiError as exc:
        _fail(f"{exc}\n{_methods_help(known, [m for m in methods if m in known])}")


def _methods_help(specs: dict[str, Any], names: list[str] | None = None) -> str:
    """Per-method help from the registry's specs (the client's formatter: one text for both CLIs)."""
    from xai_client.methods import methods_from_describe

    infos = methods_from_describe({"methods": {n: s.describe() for n, s in specs.items()}})
    return "\n".join(infos[n].help() for n in (names or list(infos)))


def _limits(max_rows: int, max_iterations: int, max_work: float, lrp_cache_entries: int) -> Any:
    from xai_serve.errors import XaiError
    from xai_serve.serving.limits import CostLimits

    try:
        return CostLimits(max_rows, max_iterations, max_work, lrp_cache_entries)
    except XaiError as exc:
        _fail(str(exc))


def _common(
    address: str | None, token: str | None, key_file: Path | None, management_address: str | None = None
) -> list[str]:
    args: list[str] = []
    if address:
        args += ["--address", address]
    if management_address:
        args += ["--management-address", management_address]
    if token:
        args += ["--token", token]
    if key_file:
        args += ["--key-file", str(key_file)]
    return args
