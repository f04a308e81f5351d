"""TorchServe's token file (``key_file.json``): where ``xai serve`` puts it and how to read it.

Lookup order for a client: an explicit token; ``$XAI_SERVE_TOKEN``; an explicit key file;
``$XAI_SERVE_KEY_FILE``; ``./.xai-serve/key_file.json`` (the default state directory of
``xai serve``). No token at all is allowed (a server started with token auth off).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_STATE_DIR = Path(".xai-serve")
KEY_FILE_NAME = "key_file.json"


@dataclass(frozen=True)
class Tokens:
    inference: str | None = None
    management: str | None = None


def read_key_file(path: str | Path) -> Tokens:
    data = json.loads(Path(path).read_text())
    return Tokens(
        inference=data.get("inference", {}).get("key"), management=data.get("management", {}).get("key")
    )


def resolve_tokens(
    token: str | None = None, *, management_token: str | None = None, key_file: str | Path | None = None
) -> Tokens:
    """Tokens from the arguments, the environment or the default key file (see module doc)."""
    token = token or os.environ.get("XAI_SERVE_TOKEN")
    management_token = management_token or os.environ.get("XAI_SERVE_MANAGEMENT_TOKEN")
    if token and management_token:
        return Tokens(token, management_token)
    path = key_file or os.environ.get("XAI_SERVE_KEY_FILE")
    if path is None and (DEFAULT_STATE_DIR / KEY_FILE_NAME).is_file():
        path = DEFAULT_STATE_DIR / KEY_FILE_NAME
    from_file = read_key_file(path) if path is not None else Tokens()
    return Tokens(token or from_file.inference, management_token or from_file.management)
