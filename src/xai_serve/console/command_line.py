"""The ``xai-client explain`` command line that reproduces a console request (a download of the page).

Method parameters travel as ``--param METHOD.KEY=VALUE``, the grammar of :mod:`xai_client.params`."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence


def reproduce(
    *,
    model: str,
    methods: Sequence[str],
    params: Mapping[str, Mapping[str, str]],
    target: str | None,
    address: str,
    management_address: str | None,
    protocol: str,
    key_file: str | None,
    image: str = "IMAGE.png",
    out: str = "explanations",
) -> str:
    """One shell-quoted line; ``image`` stands for the uploaded file (saved under that name)."""
    args = ["xai-client", "explain", image, "--model", model, "--protocol", protocol, "--address", address]
    if management_address:
        args += ["--management-address", management_address]
    if key_file:
        args += ["--key-file", key_file]
    for m in methods:
        args += ["--method", m]
    for m in methods:
        for key, value in (params.get(m) or {}).items():
            args += ["--param", f"{m}.{key}={value}"]
    if target:
        args += ["--target", target]
    args += ["--out", out]
    return shlex.join(args)
