"""Authentication (static bearer tokens) and an allow-list authorizer (README.md,
"Authentication and authorization").

401 for missing or unknown credentials (unless anonymous access is on), 403 with
the apiserver's exact `forbiddenMessage` when no rule allows the request. The verb
is the Kubernetes verb: `watch` for watch requests, `list` for collections.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from kubesim import errors
from kubesim.config import SimConfig

ANONYMOUS = "system:anonymous"


@dataclass(frozen=True, slots=True)
class Attributes:
    """What the authorizer sees of a resource request."""

    verb: str
    group: str
    resource: str
    namespace: str = ""
    name: str = ""
    subresource: str = ""


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(cfg: SimConfig, authorization: str | None) -> str:
    """The user name for the request's credentials; raises 401."""
    token = bearer(authorization)
    if token is None:
        if cfg.anonymous:
            return ANONYMOUS
        raise errors.unauthorized()
    for known, user in cfg.tokens:
        if hmac.compare_digest(known.encode(), token.encode()):
            return user
    raise errors.unauthorized()


def authorize(cfg: SimConfig, user: str, attrs: Attributes) -> None:
    """Raise 403 unless an `AccessRule` allows `attrs` for `user`."""
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    for rule in cfg.rules:
        if rule.allows(
            user=user, verb=attrs.verb, group=attrs.group, resource=resource, namespace=attrs.namespace
        ):
            return
        if attrs.subresource and rule.allows(
            user=user,
            verb=attrs.verb,
            group=attrs.group,
            resource=attrs.resource + "/*",
            namespace=attrs.namespace,
        ):
            return
    raise errors.forbidden(
        user=user,
        verb=attrs.verb,
        resource=attrs.resource,
        group=attrs.group,
        namespace=attrs.namespace,
        name=attrs.name,
        subresource=attrs.subresource,
    )


def is_admin(cfg: SimConfig, authorization: str | None) -> bool:
    token = bearer(authorization)
    expected = cfg.admin_bearer
    return token is not None and bool(expected) and hmac.compare_digest(token.encode(), expected.encode())
