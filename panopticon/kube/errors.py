"""Errors of the Kubernetes client, translated at the edge from HTTP answers, Status
objects (apimachinery `pkg/api/errors/errors.go`), transport failures and credential loaders.

Every error is a `KubeError` carrying `code` (the HTTP code or the Status' code; 0
for failures without one), `reason` (the Status reason, e.g. `Expired`), `message`
and `retry_after` (seconds, from the `Retry-After` header or
`details.retryAfterSeconds`). The classes let callers branch the way client-go's
`apierrors.Is*` helpers do; `api_error` and `status_error` pick the class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from panopticon.errors import PanopticonError


class KubeError(PanopticonError):
    """Root of the Kubernetes client's errors."""

    def __init__(
        self,
        message: str,
        *,
        code: int = 0,
        reason: str = "",
        retry_after: float | None = None,
        status: Mapping[str, Any] | None = None,
    ) -> None:
        self.code = code
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        self.status: Mapping[str, Any] = status or {}
        super().__init__(f"{code} {reason}: {message}" if code else message)


class CredentialsError(KubeError):
    """Credentials could not be loaded (kubeconfig, exec plugin, service account)."""


class UnknownKindError(KubeError):
    """Discovery knows no resource for this apiVersion and kind."""


class DiscoveryFailedError(KubeError):
    """A kind's group-version is listed but its discovery document failed to load (an
    aggregated API server down): the kind may well exist, nobody can tell yet."""


class KubeConnectionError(KubeError):
    """The transport failed: connection refused or reset, TLS, DNS, closed mid-stream."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused
        """True when the connection was refused (client-go retries the watch, no relist)."""


class StreamBrokenError(KubeConnectionError):
    """A watch stream broke after its headers (reset, truncated chunked body): a
    "probable EOF" to client-go, which re-watches from the last resourceVersion."""


class VeryShortWatchError(KubeError):
    """A watch ended within a second without a single event (client-go relists after backoff)."""


class ProtocolError(KubeError):
    """The server's answer could not be decoded (bad JSON, unexpected shape)."""


class LineTooLongError(ProtocolError):
    """A watch line (one event) exceeded the splitter's size bound."""


class WatchTimeoutError(KubeError):
    """A watch sent no bytes for longer than its inactivity timeout."""


class ApiStatusError(KubeError):
    """The API server answered a Status (an HTTP error, or an in-band watch ERROR)."""

    @property
    def causes(self) -> list[Mapping[str, Any]]:
        details = self.status.get("details")
        causes = details.get("causes") if isinstance(details, Mapping) else None
        return [c for c in causes if isinstance(c, Mapping)] if isinstance(causes, list) else []

    @property
    def continue_token(self) -> str:
        """The `metadata.continue` a 410 on a continue token carries (inconsistent resume)."""
        meta = self.status.get("metadata")
        token = meta.get("continue") if isinstance(meta, Mapping) else None
        return token if isinstance(token, str) else ""


class BadRequestError(ApiStatusError):
    """400: a bad selector, continue token or parameter."""


class UnauthorizedError(ApiStatusError):
    """401: missing or rejected credentials."""


class ForbiddenError(ApiStatusError):
    """403: RBAC denies the verb."""


class NotFoundError(ApiStatusError):
    """404: the object, the resource, or (plain text) the path does not exist."""


class ConflictError(ApiStatusError):
    """409: AlreadyExists or Conflict."""


class ExpiredError(ApiStatusError):
    """410 `Expired` (or `Gone` from servers up to 1.17): the RV or continue token was compacted."""


class InvalidError(ApiStatusError):
    """422: invalid options (e.g. `sendInitialEvents` while the WatchList gate is off)."""


class TooManyRequestsError(ApiStatusError):
    """429: API Priority and Fairness, or the watch cache is not ready."""


class InternalServerError(ApiStatusError):
    """500 InternalError."""


class ServiceUnavailableError(ApiStatusError):
    """503: the API server is starting or overloaded."""


class ServerTimeoutError(ApiStatusError):
    """504 Timeout, e.g. `ResourceVersionTooLarge` when the client is ahead of the server."""


_BY_CODE: dict[int, type[ApiStatusError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    410: ExpiredError,
    422: InvalidError,
    429: TooManyRequestsError,
    500: InternalServerError,
    503: ServiceUnavailableError,
    504: ServerTimeoutError,
}
_REASON_OF_CODE = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status_error(
    status: Mapping[str, Any], *, code: int = 0, retry_after: float | None = None
) -> ApiStatusError:
    """The error a Status object stands for (from an HTTP body or an in-band ERROR event)."""
    raw_code = status.get("code")
    code = raw_code if isinstance(raw_code, int) and raw_code else code
    reason = status.get("reason")
    reason = reason if isinstance(reason, str) else ""
    message = status.get("message")
    message = message if isinstance(message, str) else ""
    if retry_after is None:
        details = status.get("details")
        seconds = details.get("retryAfterSeconds") if isinstance(details, Mapping) else None
        if isinstance(seconds, int | float) and seconds > 0:
            retry_after = float(seconds)
    cls = _BY_CODE.get(code, ApiStatusError)
    if reason in ("Expired", "Gone"):
        cls = ExpiredError  # client-go isExpiredError: by reason, whatever the code
    return cls(message or f"HTTP {code}", code=code, reason=reason, retry_after=retry_after, status=status)


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` in whole seconds, as client-go reads it (dates are not supported)."""
    if not value:
        return None
    try:
        seconds = int(value.strip())
    except ValueError:
        return None
    return float(seconds) if seconds >= 0 else None


def api_error(code: int, body: bytes, *, retry_after: str | None = None) -> ApiStatusError:
    """The error an HTTP answer with a non-2xx `code` stands for.

    The body is a Status (JSON) or one of the plain-text forms: `404 page not found`
    for paths outside any group, and APF's `Too many requests, please try again later.`
    """
    wait = parse_retry_after(retry_after)
    try:
        status = orjson.loads(body) if body[:1] == b"{" or body.lstrip()[:1] == b"{" else None
    except orjson.JSONDecodeError:
        status = None
    if isinstance(status, dict) and status.get("kind") == "Status":
        return status_error(status, code=code, retry_after=wait)
    text = body.decode("utf-8", "replace").strip()[:1000] or f"HTTP {code}"
    cls = _BY_CODE.get(code, ApiStatusError)
    return cls(text, code=code, reason=_REASON_OF_CODE.get(code, ""), retry_after=wait)


def is_too_large_resource_version(err: BaseException) -> bool:
    """client-go `isTooLargeResourceVersionError`: the `ResourceVersionTooLarge` cause, or
    a 504 Timeout whose message says so (servers that drop the cause)."""
    if not isinstance(err, ApiStatusError):
        return False
    if any(c.get("reason") == "ResourceVersionTooLarge" for c in err.causes):
        return True
    return err.code == 504 and "Too large resource version" in err.message
