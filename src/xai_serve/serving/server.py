"""Starting and stopping TorchServe (``xai serve`` / ``xai serve --stop``).

The Java frontend is launched directly (not through the ``torchserve`` wrapper, whose death
orphans Java) from a generated ``config.properties`` in a state directory that also holds:

- ``key_file.json``: TorchServe's tokens (token auth stays on; the client reads this file),
- ``server.pid``: the Java PID, used by :func:`stop` to stop Java and its Python workers,
- ``tmp/``: the private temp dir (``TMPDIR``/``TEMP``/``java.io.tmpdir``: worker sockets, unpacked
  archives), so several servers can run side by side,
- ``logs/``: TorchServe's logs (``model_log.log`` has the workers' tracebacks), ``metrics.yaml``.

All listeners bind to 127.0.0.1, the model registration API is off, ``allowed_urls`` only allows
the model store, metrics are in Prometheus format. Workers run this interpreter
(``sys.executable``, passed to the frontend as ``--python``), with its ``bin/`` first on PATH.
:func:`start` returns once every model's workers are READY on the management API.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xai_serve.errors import XaiError
from xai_serve.serving.metrics import write_metrics_config

DEFAULT_STATE_DIR = Path(".xai-serve")
PID_FILE = "server.pid"
KEY_FILE = "key_file.json"


class ServerError(XaiError):
    """TorchServe could not be started, did not become ready, or could not be stopped."""

    code = "FAILED_PRECONDITION"


@dataclass
class ServerConfig:
    model_store: Path
    models: list[str] = field(default_factory=list)  # archive names (NAME for NAME.mar); empty: all
    state_dir: Path = DEFAULT_STATE_DIR
    host: str = "127.0.0.1"  # inference listeners (REST + gRPC) only
    management_host: str = "127.0.0.1"  # REST + gRPC management: loopback unless asked
    metrics_host: str = "127.0.0.1"  # Prometheus metrics: loopback unless asked
    inference_port: int = 8080
    management_port: int = 8081
    metrics_port: int = 8082
    grpc_port: int = 7070
    grpc_management_port: int = 7071
    token_auth: bool = True
    token_expiration_min: int = 1440
    max_request_size: int = 16 * 1024 * 1024
    max_response_size: int = 64 * 1024 * 1024
    job_queue_size: int = 1000
    java_heap: str = "1g"

    def resolved(self) -> ServerConfig:
        self.model_store = Path(self.model_store).resolve()
        self.state_dir = Path(self.state_dir).resolve()
        if not self.models:
            self.models = sorted(p.stem for p in self.model_store.glob("*.mar"))
        return self

    @property
    def inference_url(self) -> str:
        return f"http://{self.host}:{self.inference_port}"

    @property
    def management_url(self) -> str:
        return f"http://{_connectable(self.management_host)}:{self.management_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{_connectable(self.metrics_host)}:{self.metrics_port}"

    @property
    def grpc_address(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def grpc_management_address(self) -> str:
        return f"{_connectable(self.management_host)}:{self.grpc_management_port}"

    def client(self, protocol: str = "grpc", **kwargs: Any) -> Any:
        """An ``xai_client.Client`` for this server over ``protocol`` (``grpc`` or ``http``), with the
        inference and management addresses and the token file filled in; ``kwargs`` go to the Client
        (timeout, retries, backoff, or another key_file)."""
        from xai_client import Client

        grpc = protocol == "grpc"
        kwargs.setdefault("key_file", self.key_file)
        return Client(
            self.grpc_address if grpc else self.inference_url,
            protocol,
            management_address=self.grpc_management_address if grpc else self.management_url,
            **kwargs,
        )

    @property
    def key_file(self) -> Path:
        return self.state_dir / KEY_FILE


def _connectable(host: str) -> str:
    """An address this machine can connect to for a listener bound to ``host`` (wildcards: loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback TCP ports."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def render_config(cfg: ServerConfig, metrics_yaml: Path) -> str:
    """config.properties for ``cfg`` (see model_store/config.properties for the annotated template)."""
    store = str(cfg.model_store)
    models = ",".join(f"{m}={m}.mar" for m in cfg.models)
    lines = [
        "# generated by `xai serve`; edit the command's options instead",
        f"inference_address=http://{cfg.host}:{cfg.inference_port}",
        f"management_address=http://{cfg.management_host}:{cfg.management_port}",
        f"metrics_address=http://{cfg.metrics_host}:{cfg.metrics_port}",
        f"grpc_inference_address={cfg.host}",
        f"grpc_management_address={cfg.management_host}",
        f"grpc_inference_port={cfg.grpc_port}",
        f"grpc_management_port={cfg.grpc_management_port}",
        f"model_store={store}",
        f"load_models={models}",
        "enable_model_api=false",
        f"disable_token_authorization={'false' if cfg.token_auth else 'true'}",
        f"token_expiration_min={cfg.token_expiration_min}",
        # only archives inside the model store may be loaded (no remote URLs); \\Q..\\E quotes the
        # path for Java's regex, with the backslashes doubled for the .properties format
        "allowed_urls=file://\\\\Q" + store + "\\\\E/.*",
        "metrics_mode=prometheus",
        f"metrics_config={metrics_yaml}",
        "enable_envvars_config=false",
        "install_py_dep_per_model=false",
        f"max_request_size={cfg.max_request_size}",
        f"max_response_size={cfg.max_response_size}",
        f"job_queue_size={cfg.job_queue_size}",
        "default_workers_per_model=1",
        "disable_system_metrics=true",
    ]
    return "\n".join(lines) + "\n"


def find_java() -> str:
    """The java executable (``$JAVA_HOME/bin/java`` or PATH), checked to be Java 11 or newer."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise ServerError(
            "Java was not found: TorchServe needs a Java 17 runtime. Install it (Debian/Ubuntu: "
            "`apt-get install openjdk-17-jre-headless`; macOS: `brew install openjdk@17`) or set JAVA_HOME."
        )
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except OSError as exc:
        raise ServerError(f"could not run {java}: {exc}") from exc
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if m:
        major = int(m.group(1)) if m.group(1) != "1" else int(m.group(2) or 0)
        if major < 11:
            raise ServerError(
                f"{java} is Java {major}; TorchServe 0.12 needs Java 17 (openjdk-17-jre-headless)"
            )
    return java


def _pid_alive(pid: int) -> bool:
    import psutil

    try:
        p = psutil.Process(pid)
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def read_pid(state_dir: Path) -> int | None:
    path = Path(state_dir) / PID_FILE
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


@dataclass
class Server:
    """A started TorchServe: its config and Java process id."""

    config: ServerConfig
    pid: int
    process: subprocess.Popen | None = None

    def stop(self, timeout: float = 30.0) -> bool:
        return stop(self.config.state_dir, timeout=timeout)


def start(cfg: ServerConfig, *, timeout: float = 180.0, wait: bool = True) -> Server:
    """Start TorchServe for ``cfg`` and (``wait``) return when every model is READY."""
    import ts

    cfg = cfg.resolved()
    if not cfg.models:
        raise ServerError(f"no .mar archives in {cfg.model_store}; run `xai archive CHECKPOINT --name NAME`")
    for m in cfg.models:
        if not (cfg.model_store / f"{m}.mar").is_file():
            raise ServerError(f"{cfg.model_store / (m + '.mar')} not found; run `xai archive` first")
    old = read_pid(cfg.state_dir)
    if old is not None and _pid_alive(old):
        raise ServerError(
            f"a server from {cfg.state_dir} is already running (pid {old}); `xai serve --stop` first"
        )
    java = find_java()
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    tmp = cfg.state_dir / "tmp"
    logs = cfg.state_dir / "logs"
    for d in (tmp, logs):
        d.mkdir(exist_ok=True)
    (cfg.state_dir / KEY_FILE).unlink(missing_ok=True)
    metrics_yaml = write_metrics_config(cfg.state_dir / "metrics.yaml")
    config_path = cfg.state_dir / "config.properties"
    config_path.write_text(render_config(cfg, metrics_yaml))
    ts_home = Path(ts.__file__).resolve().parents[1]
    cmd = [
        java,
        f"-Dmodel_server_home={ts_home}",
        f"-Djava.io.tmpdir={tmp}",
        f"-Xmx{cfg.java_heap}",
        "-cp",
        f".:{ts_home / 'ts' / 'frontend' / '*'}",
        "org.pytorch.serve.ModelServer",
        "--python",
        sys.executable,
        "-f",
        str(config_path),
        "-s",
        str(cfg.model_store),
        "-ncs",
    ]
    env = dict(os.environ)
    env.update(
        {
            "TMPDIR": str(tmp),
            "TEMP": str(tmp),
            "LOG_LOCATION": str(logs),
            "METRICS_LOCATION": str(logs),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("TS_CONFIG_FILE", None)
    with (logs / "ts_stdout.log").open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=cfg.state_dir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    (cfg.state_dir / PID_FILE).write_text(str(proc.pid))
    server = Server(cfg, proc.pid, proc)
    if wait:
        try:
            wait_ready(cfg, timeout=timeout, process=proc)
        except BaseException:
            stop(cfg.state_dir)
            raise
    return server


def management_token(cfg: ServerConfig) -> str | None:
    if not cfg.token_auth:
        return None
    try:
        return json.loads(cfg.key_file.read_text())["management"]["key"]
    except (OSError, ValueError, KeyError):
        return None


def _get(url: str, token: str | None, timeout: float = 5.0) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def model_status(cfg: ServerConfig, name: str) -> list[dict]:
    """The management API's description of ``name`` (one entry per version)."""
    status, body = _get(f"{cfg.management_url}/models/{name}", management_token(cfg))
    if status != 200:
        raise ServerError(f"GET /models/{name}: HTTP {status} {body[:200]}")
    return json.loads(body)


def _log_tail(cfg: ServerConfig, lines: int = 30) -> str:
    for name in ("model_log.log", "ts_log.log", "ts_stdout.log"):
        path = cfg.state_dir / "logs" / name
        if path.is_file():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            if text:
                return f"\n--- last lines of {path} ---\n" + "\n".join(text)
    return ""


def wait_ready(cfg: ServerConfig, *, timeout: float = 180.0, process: subprocess.Popen | None = None) -> None:
    """Poll the management API until every model has all its workers READY (not just /ping)."""
    deadline = time.monotonic() + timeout
    pending = set(cfg.models)
    last = ""
    while pending:
        if process is not None and process.poll() is not None:
            raise ServerError(f"TorchServe exited with code {process.returncode}" + _log_tail(cfg))
        if time.monotonic() > deadline:
            raise ServerError(
                f"models not READY after {timeout:.0f} s: {sorted(pending)} ({last})" + _log_tail(cfg)
            )
        for name in sorted(pending):
            try:
                desc = model_status(cfg, name)
            except (ServerError, OSError, ValueError) as exc:
                last = str(exc)
                continue
            workers = [w for d in desc for w in d.get("workers", [])]
            if workers and all(w.get("status") == "READY" for w in workers):
                pending.discard(name)
            else:
                last = f"{name}: " + ", ".join(str(w.get("status")) for w in workers)
        if pending:
            time.sleep(0.25)


def stop(state_dir: str | Path = DEFAULT_STATE_DIR, *, timeout: float = 30.0) -> bool:
    """Stop the server of ``state_dir``: Java first (it stops its workers), then any worker left,
    all by PID. Returns False when no server was running."""
    import psutil

    state_dir = Path(state_dir)
    pid = read_pid(state_dir)
    if pid is None:
        return False
    try:
        java = psutil.Process(pid)
        cmdline = " ".join(java.cmdline())
        if "org.pytorch.serve.ModelServer" not in cmdline:  # the PID was reused by something else
            raise psutil.NoSuchProcess(pid)
        children = java.children(recursive=True)
    except psutil.Error:
        _cleanup(state_dir)
        return False
    try:
        java.send_signal(signal.SIGTERM)
        java.wait(timeout=timeout)
    except psutil.TimeoutExpired:
        java.kill()
        java.wait(timeout=10)
    except psutil.NoSuchProcess:
        pass
    _gone, alive = psutil.wait_procs(children, timeout=10)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=5)
    _cleanup(state_dir)
    return True


def _cleanup(state_dir: Path) -> None:
    (state_dir / PID_FILE).unlink(missing_ok=True)
    (state_dir / KEY_FILE).unlink(missing_ok=True)
    tmp = state_dir / "tmp"
    if tmp.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
