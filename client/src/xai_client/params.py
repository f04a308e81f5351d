"""The ``METHOD.KEY=VALUE`` grammar of method parameters given on a command line or in a form field
(``xai evaluate --param``, ``xai explain --param``, ``xai-client explain --param``, the console's ``param``).

Values stay strings here; the server validates and converts them against the method's registered
parameter specs, so this module holds only the syntax, once."""

from __future__ import annotations

from collections.abc import Iterable

from xai_client.errors import InvalidArgument


def parse_param_items(items: Iterable[str]) -> dict[str, dict[str, str]]:
    """``["lrp.epsilon=1e-6", "gradcam.layer=layer4"]`` -> ``{"lrp": {"epsilon": "1e-6"}, "gradcam": {...}}``.

    A later item for the same method and key wins. An item without ``=`` or without a ``.`` in its key
    raises :class:`~xai_client.errors.InvalidArgument` naming the item."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        method, dot, name = key.partition(".")
        if not sep or not dot or not method.strip() or not name.strip():
            raise InvalidArgument(f"--param expects METHOD.KEY=VALUE, got {item!r}")
        out.setdefault(method.strip(), {})[name.strip()] = value
    return out
