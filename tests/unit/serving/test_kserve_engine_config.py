"""The kserve engine's configuration without starting it: which models a store and checkpoint
directories give, the key file (TorchServe's format, owner-only), stop without a server."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from xai_client.tokens import read_key_file

from xai_serve.serving.server import ServerError
from xai_serve.serving.v2 import kserve_engine as engine


def test_models_from_store_and_checkpoint_dirs(tmp_path: Path, ckpt_dir: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "a.mar").write_bytes(b"")
    (store / "b.mar").write_bytes(b"")
    cfg = engine.KServeConfig(store, [], tmp_path / "state").resolved()
    assert cfg.models == ["a", "b"] and set(cfg.model_paths()) == {"a", "b"}
    cfg = engine.KServeConfig(store, ["a", str(ckpt_dir)], tmp_path / "state").resolved()
    paths = cfg.model_paths()
    assert paths["a"] == store / "a.mar" and paths[ckpt_dir.name.replace(".", "_")] == ckpt_dir.resolve()
    with pytest.raises(ServerError, match="no archive"):
        engine.KServeConfig(store, ["missing"], tmp_path / "state").resolved().model_paths()


def test_key_file_is_torchserve_format_and_private(tmp_path: Path) -> None:
    token = engine.write_key_file(tmp_path)
    path = tmp_path / "key_file.json"
    assert read_key_file(path).inference == token == engine.read_inference_token(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert engine.write_key_file(tmp_path) != token  # fresh at each start
    path.write_text(json.dumps({"management": {}}))
    with pytest.raises(ServerError):
        engine.read_inference_token(tmp_path)


def test_stop_without_a_server(tmp_path: Path) -> None:
    assert engine.stop(tmp_path) is False
    (tmp_path / "server.pid").write_text("1")  # a PID that is not the engine's: left alone
    assert engine.stop(tmp_path) is False and (tmp_path / "server.pid").exists()
