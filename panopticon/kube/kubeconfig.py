"""Reading a plain kubeconfig without the `kubernetes` package.

Why: importing the package costs each process about a third of its start-up CPU
(its API client imports thousands of model classes: ~0.3 s and ~20 MB here) and
adds some 36,000 objects for every later full collection of the cyclic GC to walk
(the embedded library's loop holds, docs/library.md). Most kubeconfigs that reach
Panopticon name a server, a CA, a token or client certificate files and nothing
else: `panopticon sim --kubeconfig-out`, kind's, a CI's, a service account's
exported for local runs. `read_plain` reads exactly those, with the package's
meaning for every field it accepts; anything else (several files in
`KUBECONFIG`, exec plugins, auth providers, token files, basic auth,
impersonation, embedded client certificates, an unknown key, anything that does
not parse or does not name its context, cluster and user) gives None, and the
caller loads the file with the package as before, errors included. So a
kubeconfig either reads the same both ways or is left to the package
(tests/panopticon/kube/test_kubeconfig.py compares the two).
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from typing import Any

import yaml

CLUSTER_KEYS = frozenset(
    {
        "server",
        "certificate-authority",
        "certificate-authority-data",
        "insecure-skip-tls-verify",
        "tls-server-name",
        "proxy-url",
        "extensions",
    }
)
"""Cluster fields read here; any other field leaves the file to the package."""
USER_KEYS = frozenset({"token", "client-certificate", "client-key", "extensions"})
"""User fields read here (no exec, auth-provider, tokenFile, username/password, as...)."""
CONTEXT_KEYS = frozenset({"cluster", "user", "namespace", "extensions"})


@dataclass(frozen=True, slots=True)
class PlainKubeconfig:
    """What a plain kubeconfig's chosen context says, paths made absolute."""

    server: str
    ca_file: str | None
    ca_data: str | None
    """The CA bundle as PEM text (from `certificate-authority-data`)."""
    cert_file: str | None
    key_file: str | None
    verify: bool
    token: str | None
    tls_server_name: str | None
    proxy: str | None
    namespace: str


def read_plain(path: str, context: str | None) -> PlainKubeconfig | None:
    """The kubeconfig at `path` (one file) if it is plain (module docstring), else None."""
    if os.pathsep in path or not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            doc = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - safe loader
    except Exception:  # whatever it is, the package reports it as before
        return None
    if not isinstance(doc, dict):
        return None
    name = context or doc.get("current-context")
    ctx = _named(doc.get("contexts"), name, "context")
    if ctx is None or not set(ctx) <= CONTEXT_KEYS:
        return None
    cluster = _named(doc.get("clusters"), ctx.get("cluster"), "cluster")
    user = _named(doc.get("users"), ctx.get("user"), "user")
    if cluster is None or user is None or not set(cluster) <= CLUSTER_KEYS or not set(user) <= USER_KEYS:
        return None
    return _plain(os.path.dirname(os.path.abspath(path)), ctx, cluster, user)


def _plain(
    base: str, ctx: dict[str, Any], cluster: dict[str, Any], user: dict[str, Any]
) -> PlainKubeconfig | None:
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith(("http://", "https://")):
        return None
    strings = [
        cluster.get(k) for k in ("certificate-authority", "certificate-authority-data", "tls-server-name")
    ]
    strings += [cluster.get("proxy-url"), ctx.get("namespace")]
    strings += [user.get(k) for k in ("token", "client-certificate", "client-key")]
    if any(value is not None and (not isinstance(value, str) or not value) for value in strings):
        return None  # empty or not text: the package's reading of it is not worth guessing
    insecure = cluster.get("insecure-skip-tls-verify", False)
    if not isinstance(insecure, bool):
        return None
    ca_file, ca_data = cluster.get("certificate-authority"), cluster.get("certificate-authority-data")
    if ca_file is not None and ca_data is not None:
        return None  # which one wins differs between clients: leave it to the package
    if ca_data is not None:
        try:
            ca_data = base64.b64decode(ca_data, validate=True).decode("ascii")
        except (binascii.Error, ValueError):
            return None
    cert, key = user.get("client-certificate"), user.get("client-key")
    if (cert is None) != (key is None):
        return None
    if any(p is not None and p.startswith("~") for p in (ca_file, cert, key)):
        return None  # whether "~" is expanded differs between clients
    return PlainKubeconfig(
        server=server,
        ca_file=_absolute(base, ca_file),
        ca_data=ca_data,
        cert_file=_absolute(base, cert),
        key_file=_absolute(base, key),
        verify=not insecure,
        token=user.get("token"),
        tls_server_name=cluster.get("tls-server-name"),
        proxy=cluster.get("proxy-url"),
        namespace=ctx.get("namespace") or "",
    )


def _named(entries: object, name: object, field: str) -> dict[str, Any] | None:
    """`entries[i][field]` of the one entry named `name` (None if absent, repeated or malformed)."""
    if not isinstance(entries, list) or not isinstance(name, str) or not name:
        return None
    found = [e for e in entries if isinstance(e, dict) and e.get("name") == name]
    if len(found) != 1:
        return None
    value = found[0].get(field)
    return value if isinstance(value, dict) else None


def _absolute(base: str, path: str | None) -> str | None:
    """A path as kubectl reads it: relative to the kubeconfig's directory."""
    if path is None:
        return None
    return os.path.join(base, path)
