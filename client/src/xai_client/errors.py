"""Typed client errors, built from the Status an xai-serve handler returns.

TorchServe maps every gRPC failure to INTERNAL, so the client does not trust the transport's code:
the handler puts a typed :class:`~xai_client.api.v1.explain_pb2.Status` inside each response, and
transport-level failures (no server, bad token, unknown model) are classified from what the
transport says.
"""

from __future__ import annotations


class XaiClientError(Exception):
    """Base class of every error the client raises. ``code`` is a google.rpc.Code name."""

    code = "INTERNAL"

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason  # the server-side error class, when known


class InvalidArgument(XaiClientError):
    """The request was malformed: input image/tensor, method parameter or target."""

    code = "INVALID_ARGUMENT"


class NotFound(XaiClientError):
    """The model or method does not exist."""

    code = "NOT_FOUND"


class Unauthenticated(XaiClientError):
    """The token is missing, wrong or expired."""

    code = "UNAUTHENTICATED"


class Unavailable(XaiClientError):
    """The server cannot be reached or is not ready (retried with backoff)."""

    code = "UNAVAILABLE"


class DeadlineExceeded(XaiClientError):
    """The call took longer than the client's timeout."""

    code = "DEADLINE_EXCEEDED"


class FailedPrecondition(XaiClientError):
    """The server is in a state that cannot serve the request (e.g. a bad checkpoint)."""

    code = "FAILED_PRECONDITION"


class ResourceExhausted(XaiClientError):
    """The request exceeds a server-side cost limit (rows, iterations, work; the message names it).
    Not retried: the same request would be refused again."""

    code = "RESOURCE_EXHAUSTED"


class Internal(XaiClientError):
    """The server failed unexpectedly."""

    code = "INTERNAL"


_BY_CODE: dict[str, type[XaiClientError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        Unauthenticated,
        Unavailable,
        DeadlineExceeded,
        FailedPrecondition,
        ResourceExhausted,
    )
}
_BY_CODE["PERMISSION_DENIED"] = Unauthenticated
_BY_CODE["OUT_OF_RANGE"] = InvalidArgument


def error_for_code(code: str, message: str, *, reason: str = "") -> XaiClientError:
    """The typed error for a google.rpc.Code name (unknown names give :class:`Internal`)."""
    return _BY_CODE.get(code, Internal)(message, reason=reason)


def classify_transport_message(message: str) -> type[XaiClientError] | None:
    """Recognise TorchServe's own failure texts, which arrive as INTERNAL or HTTP 4xx/5xx."""
    text = message.lower()
    if (
        "token authorization failed" in text
        or "invalidkeyexception" in text
        or ("token" in text and "invalid" in text)
    ):
        return Unauthenticated
    if "model not found" in text or "modelnotfound" in text or "model version not found" in text:
        return NotFound
    if (
        "worker died" in text
        or "no worker" in text
        or "service unavailable" in text
        or "is not ready" in text
    ):
        return Unavailable
    return None
