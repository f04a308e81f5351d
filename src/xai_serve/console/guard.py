"""Cross-site request protection: a state-changing request (POST, PUT, PATCH, DELETE) must come from the
console's own pages. Browsers send ``Sec-Fetch-Site`` (``same-origin`` for the console's own fetches) and
``Origin``; a request whose ``Sec-Fetch-Site`` is ``cross-site`` or ``same-site``, or whose ``Origin`` is not
the console's own, gets 403. A request without either header (curl, a script) is not a browser's
cross-site request and passes."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})


def cross_site_reason(method: str, headers: dict[str, str], scheme: str = "http") -> str | None:
    """Why a request must be refused (None: it may pass). ``headers``: lower-case names."""
    if method.upper() in SAFE_METHODS:
        return None
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ALLOWED_FETCH_SITES:
        return f"Sec-Fetch-Site {site!r}: the console takes requests from its own pages only"
    origin = headers.get("origin")
    if origin is not None and origin != f"{scheme}://{headers.get('host', '')}":
        return f"Origin {origin!r} is not this console's"
    return None


class SameOriginGuard:
    """ASGI middleware applying :func:`cross_site_reason` to every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            reason = cross_site_reason(scope["method"], headers, scope.get("scheme", "http"))
            if reason is not None:
                body = json.dumps({"error": {"code": "PERMISSION_DENIED", "message": reason}}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 403,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", b"%d" % len(body)),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
