"""Starting and stopping the kserve engine (``xai serve --engine kserve`` / ``xai serve --stop``).

Like the TorchServe engine (:mod:`xai_serve.serving.server`), it runs from a state directory holding
``key_file.json`` (TorchServe's format; the ``inference`` key is the bearer token, written fresh at each
start unless auth is off), ``server.pid`` (the model server's PID, used by :func:`stop`), ``tmp/``
(unpacked archives) and ``logs/kserve.log``. The models are the archives of a store (``NAME.mar``,
default: all) or checkpoint directories (archived at start). :func:`start` returns once every model
answers ``GET /v2/models/NAME/ready``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xai_serve.serving.server import KEY_FILE, PID_FILE, ServerError, free_ports, read_pid

MAIN_MODULE = "xai_serve.serving.v2.kserve_main"
LOG_FILE = "kserve.log"


@dataclass
class KServeConfig:
    model_store: Path
    models: list[str] = field(default_factory=list)  # NAME (store/NAME.mar) or a checkpoint dir; empty: all
    state_dir: Path = Path(".xai-serve")
    host: str = "127.0.0.1"
    http_port: int = 8080
    grpc_port: int = 8081
    token_auth: bool = True
    max_batch_rows: int = 16
    max_batch_delay_ms: float = 0.0

    @classmethod
    def on_free_ports(
        cls, model_store: Path, models: list[str], state_dir: Path, **options: Any
    ) -> KServeConfig:
        http, grpc = free_ports(2)
        return cls(model_store, models, state_dir, http_port=http, grpc_port=grpc, **options)

    def resolved(self) -> KServeConfig:
        self.model_store = Path(self.model_store).resolve()
        self.state_dir = Path(self.state_dir).resolve()
        if not self.models:
            self.models = sorted(p.stem for p in self.model_store.glob("*.mar"))
        return self

    def model_paths(self) -> dict[str, Path]:
        """Model name -> its archive or checkpoint directory (ServerError when one is missing)."""
        out = {}
        for m in self.models:
            path = Path(m)
            if path.is_dir():
                out[path.name.replace(".", "_")] = path.resolve()
                continue
            mar = self.model_store / f"{m}.mar"
            if not mar.is_file():
                raise ServerError(f"no archive {mar} and no checkpoint directory {m!r}")
            out[m] = mar
        if not out:
            raise ServerError(f"no models to serve: {self.model_store} has no .mar archive")
        return out

    @property
    def connect_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host

    @property
    def inference_url(self) -> str:
        return f"http://{self.connect_host}:{self.http_port}"

    @property
    def grpc_address(self) -> str:
        return f"{self.connect_host}:{self.grpc_port}"

    @property
    def key_file(self) -> Path:
        return self.state_dir / KEY_FILE

    def token(self) -> str | None:
        return read_inference_token(self.state_dir) if self.token_auth else None

    def client(self, transport: str = "grpc", **kwargs: Any) -> Any:
        """An ``xai_client.Client`` speaking v2 over ``transport`` (``grpc`` or ``http``) to this server."""
        from xai_client import Client

        kwargs.setdefault("key_file", self.key_file if self.token_auth else None)
        if transport == "grpc":
            return Client(self.grpc_address, "v2", management_address=self.inference_url, **kwargs)
        return Client(self.inference_url, "v2", **kwargs)


def write_key_file(state_dir: Path) -> str:
    """A fresh inference token in ``state_dir/key_file.json`` (TorchServe's format, owner-only)."""
    token = secrets.token_urlsafe(24)
    path = state_dir / KEY_FILE
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"inference": {"key": token}, "management": {"key": secrets.token_urlsafe(24)}}, f)
    return token


def read_inference_token(state_dir: Path) -> str:
    try:
        return str(json.loads((Path(state_dir) / KEY_FILE).read_text())["inference"]["key"])
    except (OSError, ValueError, KeyError) as exc:
        raise ServerError(f"cannot read the inference token of {state_dir / KEY_FILE}: {exc}") from exc


@dataclass
class KServeServer:
    config: KServeConfig
    pid: int
    process: subprocess.Popen | None = None

    def stop(self, timeout: float = 30.0) -> bool:
        return stop(self.config.state_dir, timeout=timeout)


def start(cfg: KServeConfig, *, timeout: float = 180.0) -> KServeServer:
    """Start the model server in the background; return when every model is ready."""
    cfg = cfg.resolved()
    old = read_pid(cfg.state_dir)
    if old is not None and _ours(old):
        raise ServerError(
            f"a server from {cfg.state_dir} is already running (pid {old}); `xai serve --stop` first"
        )
    paths = cfg.model_paths()
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    (cfg.state_dir / "logs").mkdir(exist_ok=True)
    if cfg.token_auth:
        write_key_file(cfg.state_dir)
    else:
        (cfg.state_dir / KEY_FILE).unlink(missing_ok=True)
    cmd = [sys.executable, "-m", MAIN_MODULE, "--state-dir", str(cfg.state_dir), "--host", cfg.host]
    cmd += ["--http-port", str(cfg.http_port), "--grpc-port", str(cfg.grpc_port)]
    cmd += ["--max-batch-rows", str(cfg.max_batch_rows), "--max-batch-delay-ms", str(cfg.max_batch_delay_ms)]
    cmd += ["--no-auth"] if not cfg.token_auth else []
    for name, path in paths.items():
        cmd += ["--model", f"{name}={path}"]
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    log = (cfg.state_dir / "logs" / LOG_FILE).open("ab")
    process = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
    )
    log.close()
    (cfg.state_dir / PID_FILE).write_text(str(process.pid))
    cfg.models = list(paths)
    try:
        wait_ready(cfg, timeout=timeout, process=process)
    except BaseException:
        stop(cfg.state_dir)
        raise
    return KServeServer(cfg, process.pid, process)


def _log_tail(cfg: KServeConfig, lines: int = 30) -> str:
    path = cfg.state_dir / "logs" / LOG_FILE
    if not path.is_file():
        return ""
    return f"\n--- last lines of {path} ---\n" + "\n".join(
        path.read_text(errors="replace").splitlines()[-lines:]
    )


def wait_ready(cfg: KServeConfig, *, timeout: float = 180.0, process: subprocess.Popen | None = None) -> None:
    """Poll ``/v2/models/NAME/ready`` until every model answers 200."""
    deadline = time.monotonic() + timeout
    pending = set(cfg.models)
    while pending:
        if process is not None and process.poll() is not None:
            raise ServerError(f"the kserve engine exited with code {process.returncode}" + _log_tail(cfg))
        if time.monotonic() > deadline:
            raise ServerError(f"models not ready after {timeout:.0f} s: {sorted(pending)}" + _log_tail(cfg))
        for name in sorted(pending):
            try:
                with urllib.request.urlopen(f"{cfg.inference_url}/v2/models/{name}/ready", timeout=2) as r:
                    if r.status == 200:
                        pending.discard(name)
            except (urllib.error.URLError, OSError):
                pass
        if pending:
            time.sleep(0.25)


def _ours(pid: int) -> bool:
    import psutil

    try:
        p = psutil.Process(pid)
        return MAIN_MODULE in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop(state_dir: str | Path, *, timeout: float = 30.0) -> bool:
    """Stop the kserve engine of ``state_dir`` by PID (SIGTERM, then SIGKILL); False when none ran."""
    import psutil

    state_dir = Path(state_dir)
    pid = read_pid(state_dir)
    if pid is None or not _ours(pid):
        return False
    try:
        proc = psutil.Process(pid)
        children = proc.children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout)
    except psutil.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    except psutil.NoSuchProcess:
        children = []
    _gone, alive = psutil.wait_procs(children, timeout=10)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    (state_dir / PID_FILE).unlink(missing_ok=True)
    (state_dir / KEY_FILE).unlink(missing_ok=True)
    shutil.rmtree(state_dir / "tmp", ignore_errors=True)
    return True
