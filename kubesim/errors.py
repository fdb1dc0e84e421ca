"""Status objects and the exception that carries them (README.md, "Status errors").

Builders return exactly what kube-apiserver writes: `Status` bodies with the same
reasons, messages, details and causes (apimachinery `pkg/api/errors/errors.go`,
`pkg/util/validation/field/errors.go`), and the two plain-text answers (the
`404 page not found` of paths outside any group, and APF's 429).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from panopticon.errors import PanopticonError


class ApiError(PanopticonError):
    """An error answer: a Status object (`status`) or a plain-text body (`text`)."""

    def __init__(
        self,
        code: int,
        status: dict[str, Any] | None = None,
        *,
        text: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.code = code
        self.status = status
        self.text = text
        self.headers = dict(headers or {})
        retry = (status or {}).get("details", {}).get("retryAfterSeconds")
        if retry:
            # writers.go ErrorNegotiated: Retry-After whenever retryAfterSeconds > 0.
            self.headers.setdefault("Retry-After", str(retry))
        super().__init__(status["message"] if status else (text or str(code)))

    def body(self, *, pretty: bool = False) -> bytes:
        if self.status is None:
            return (self.text or "").encode()
        if pretty:
            return orjson.dumps(self.status, option=orjson.OPT_INDENT_2) + b"\n"
        return orjson.dumps(self.status) + b"\n"

    @property
    def content_type(self) -> str:
        return "application/json" if self.status is not None else "text/plain; charset=utf-8"


def status(
    code: int,
    reason: str,
    message: str,
    *,
    details: dict[str, Any] | None = None,
    list_meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A failure `Status` in the field order Go's encoder writes."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": list_meta or {},
        "status": "Failure",
        "message": message,
    }
    if reason:
        body["reason"] = reason
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def qualified(resource: str, group: str) -> str:
    """`GroupResource.String()`: `pods`, `deployments.apps`."""
    return f"{resource}.{group}" if group else resource


def _details(*, name: str = "", group: str = "", kind: str = "") -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if kind:
        details["kind"] = kind
    return details


def not_found(resource: str, name: str, *, group: str = "") -> ApiError:
    msg = f'{qualified(resource, group)} "{name}" not found'
    return ApiError(
        404, status(404, "NotFound", msg, details=_details(name=name, group=group, kind=resource))
    )


def resource_not_found() -> ApiError:
    """An unknown resource inside a served group version."""
    return ApiError(
        404, status(404, "NotFound", "the server could not find the requested resource", details={})
    )


def page_not_found() -> ApiError:
    """A path outside any installed group (`apiserver:pkg/util/notfoundhandler`)."""
    return ApiError(404, text="404 page not found\n")


def already_exists(resource: str, name: str, *, group: str = "") -> ApiError:
    msg = f'{qualified(resource, group)} "{name}" already exists'
    return ApiError(
        409, status(409, "AlreadyExists", msg, details=_details(name=name, group=group, kind=resource))
    )


def conflict(resource: str, name: str, detail: str, *, group: str = "") -> ApiError:
    msg = f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {detail}'
    return ApiError(
        409, status(409, "Conflict", msg, details=_details(name=name, group=group, kind=resource))
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, status(400, "BadRequest", message))


def unauthorized() -> ApiError:
    return ApiError(401, status(401, "Unauthorized", "Unauthorized"))


def forbidden(
    *, user: str, verb: str, resource: str, group: str, namespace: str, name: str = "", subresource: str = ""
) -> ApiError:
    """`responsewriters/errors.go` `forbiddenMessage` wrapped by `NewForbidden`."""
    shown = f"{resource}/{subresource}" if subresource else resource
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    why = f'User "{user}" cannot {verb} resource "{shown}" in API group "{group}" {scope}'
    what = qualified(resource, group)
    msg = f'{what} "{name}" is forbidden: {why}' if name else f"{what} is forbidden: {why}"
    return ApiError(
        403, status(403, "Forbidden", msg, details=_details(name=name, group=group, kind=resource))
    )


@dataclass(frozen=True, slots=True)
class FieldError:
    """One `field.Error`: `kind` is Forbidden, NotSupported, Invalid or Required."""

    kind: str
    field: str
    detail: str = ""
    value: str | None = None
    supported: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        return {
            "Forbidden": "FieldValueForbidden",
            "NotSupported": "FieldValueNotSupported",
            "Invalid": "FieldValueInvalid",
            "Required": "FieldValueRequired",
        }[self.kind]

    def body(self) -> str:
        """`field.Error.ErrorBody()`."""
        if self.kind == "NotSupported":
            values = ", ".join(f'"{v}"' for v in self.supported)
            return f'Unsupported value: "{self.value}": supported values: {values}'
        if self.kind == "Invalid":
            return f'Invalid value: "{self.value}": {self.detail}'
        if self.kind == "Required":
            return f"Required value: {self.detail}" if self.detail else "Required value"
        return f"Forbidden: {self.detail}"

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"


def aggregate(errors: list[FieldError]) -> str:
    """`errs.ToAggregate().Error()`: one message, or `[a, b]` for several."""
    if len(errors) == 1:
        return str(errors[0])
    return "[" + ", ".join(str(e) for e in errors) + "]"


def invalid(errors: list[FieldError], *, kind: str, group: str, name: str = "") -> ApiError:
    """`errors.NewInvalid`: 422 with one cause per field error."""
    what = f"{kind}.{group}" if group else kind
    msg = f'{what} "{name}" is invalid: {aggregate(errors)}'
    causes = [{"reason": e.reason, "message": e.body(), "field": e.field} for e in errors]
    details: dict[str, Any] = _details(name=name, group=group, kind=kind)
    details["causes"] = causes
    return ApiError(422, status(422, "Invalid", msg, details=details))


def invalid_list_options(errors: list[FieldError]) -> ApiError:
    return invalid(errors, kind="ListOptions", group="meta.k8s.io")


def expired(message: str, *, reason: str = "Expired", continue_token: str | None = None) -> ApiError:
    meta = {"continue": continue_token} if continue_token else None
    return ApiError(410, status(410, reason, message, list_meta=meta))


def too_large_resource_version(requested: int, current: int) -> ApiError:
    """`storage.NewTooLargeResourceVersionError` as the API reports it (504)."""
    details = {
        "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
        "retryAfterSeconds": 1,
    }
    msg = f"Timeout: Too large resource version: {requested}, current: {current}"
    return ApiError(504, status(504, "Timeout", msg, details=details))


def too_many_requests_json(
    retry_after: int, message: str = "Too many requests, please try again later."
) -> ApiError:
    """The watch-cache-not-ready form (a Status)."""
    details = {"retryAfterSeconds": retry_after}
    return ApiError(429, status(429, "TooManyRequests", message, details=details))


def too_many_requests_text(retry_after: int) -> ApiError:
    """API Priority and Fairness' rejection: plain text, not a Status."""
    return ApiError(
        429, text="Too many requests, please try again later.\n", headers={"Retry-After": str(retry_after)}
    )


def service_unavailable(message: str = "the server is currently unable to handle the request") -> ApiError:
    details = {"retryAfterSeconds": 5}
    return ApiError(503, status(503, "ServiceUnavailable", message, details=details))


def internal(message: str) -> ApiError:
    return ApiError(
        500,
        status(
            500,
            "InternalError",
            f"Internal error occurred: {message}",
            details={"causes": [{"message": message}]},
        ),
    )


def unknown(code: int, message: str) -> ApiError:
    """A storage error that is not an API status (`ErrorToAPIStatus` default: no reason)."""
    return ApiError(code, status(code, "", message))


def method_not_allowed(verb: str, resource: str, *, group: str = "") -> ApiError:
    msg = f"{verb} is not supported on resources of kind {qualified(resource, group)!r}"
    return ApiError(405, status(405, "MethodNotAllowed", msg, details=_details(group=group, kind=resource)))


def not_acceptable(accept: str) -> ApiError:
    msg = f"only the following media types are accepted: application/json, application/yaml (got {accept})"
    return ApiError(406, status(406, "NotAcceptable", msg))


def unsupported_media_type(content_type: str) -> ApiError:
    msg = (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, "
        f"application/strategic-merge-patch+json (got {content_type})"
    )
    return ApiError(415, status(415, "UnsupportedMediaType", msg))


BODY_MEDIA_TYPES = ("application/json", "application/yaml")
PROTOBUF = "application/vnd.kubernetes.protobuf"


def unsupported_body_type(*, protobuf: bool, detail: str = "") -> ApiError:
    """415 for a create/update body (apiserver `negotiation.NewUnsupportedMediaTypeError`
    with the serializers of the resource: custom resources have no protobuf)."""
    accepted = (*BODY_MEDIA_TYPES, PROTOBUF) if protobuf else BODY_MEDIA_TYPES
    msg = "the body of the request was in an unknown format - accepted media types include: " + ", ".join(
        accepted
    )
    return ApiError(415, status(415, "UnsupportedMediaType", msg + (f" ({detail})" if detail else "")))


def error_event(err: ApiError) -> dict[str, Any]:
    """The in-band `ERROR` watch event carrying `err`'s Status."""
    body = err.status if err.status is not None else status(err.code, "", err.text or "")
    return {"type": "ERROR", "object": body}
