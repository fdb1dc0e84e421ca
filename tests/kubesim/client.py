"""A tiny black-box Kubernetes API client for the contract tests.

Standard library HTTP (http.client), so the same tests run unchanged against the
simulator and against a real cluster (a kubeconfig with a token or client
certificates). Watches are read line by line with a deadline per read.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import http.client
import json
import os
import ssl
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubesim.admin_client import AdminClient


@dataclass
class Resp:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        data = self.body
        if self.headers.get("content-encoding") == "gzip":
            data = gzip.decompress(data)
        return json.loads(data)

    @property
    def text(self) -> str:
        return self.body.decode()


@dataclass
class Watch:
    """An open watch; `next()` returns the next event, or None at end of stream."""

    conn: http.client.HTTPConnection
    resp: http.client.HTTPResponse
    status: int
    headers: dict[str, str]
    lines: list[bytes] = field(default_factory=list)

    def next(self, timeout: float = 5.0) -> dict[str, Any] | None:
        sock = self.conn.sock
        if sock is not None:
            sock.settimeout(timeout)
        line = self.resp.readline()
        if not line:
            return None
        self.lines.append(line)
        event: dict[str, Any] = json.loads(line)
        return event

    def events(
        self, *, until_eof: bool = True, timeout: float = 5.0, limit: int = 100_000
    ) -> list[dict[str, Any]]:
        """Events until the stream ends (or `limit` events)."""
        out: list[dict[str, Any]] = []
        while len(out) < limit:
            ev = self.next(timeout)
            if ev is None:
                break
            out.append(ev)
        return out

    def next_of(self, types: tuple[str, ...], timeout: float = 5.0) -> dict[str, Any]:
        """The next event of one of `types`, skipping others (bookmarks, say)."""
        deadline = time.monotonic() + timeout
        while True:
            ev = self.next(max(0.05, deadline - time.monotonic()))
            assert ev is not None, f"stream ended before a {types} event"
            if ev["type"] in types:
                return ev

    def expect_quiet(self, seconds: float) -> None:
        """Assert nothing but bookmarks arrives for `seconds` (the stream stays open)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                ev = self.next(left)
            except TimeoutError:
                return
            assert ev is not None and ev["type"] == "BOOKMARK", f"unexpected {ev}"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()


class Api:
    """Requests against one API server (the simulator or a real cluster)."""

    def __init__(
        self,
        server: str,
        *,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        admin: AdminClient | None = None,
        kind: str = "sim",
    ) -> None:
        url = urllib.parse.urlsplit(server)
        self.server = server.rstrip("/")
        self.https = url.scheme == "https"
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or (443 if self.https else 80)
        self.token = token
        self.ssl_context = ssl_context
        self.admin = admin
        self.kind = kind

    @property
    def is_sim(self) -> bool:
        return self.admin is not None

    def _conn(self, timeout: float) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=self.ssl_context
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _headers(self, extra: dict[str, str] | None, body: bytes | None, content_type: str) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "panopticon-contract-tests/1"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            headers["Content-Type"] = content_type
        headers.update(extra or {})
        return {k: v for k, v in headers.items() if v is not None}

    @staticmethod
    def url(path: str, params: dict[str, Any] | None) -> str:
        if not params:
            return path
        return path + "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> Resp:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        conn = self._conn(timeout)
        try:
            conn.request(
                method, self.url(path, params), body=data, headers=self._headers(headers, data, content_type)
            )
            r = conn.getresponse()
            return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def get(self, path: str, **params: Any) -> Resp:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any, **kw: Any) -> Resp:
        return self.request("POST", path, body=body, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> Resp:
        return self.request("PUT", path, body=body, **kw)

    def patch(self, path: str, body: Any, *, content_type: str = "application/merge-patch+json") -> Resp:
        return self.request("PATCH", path, body=body, content_type=content_type)

    def delete(self, path: str, body: Any = None) -> Resp:
        return self.request("DELETE", path, body=body)

    def watch(self, path: str, params: dict[str, Any], *, headers: dict[str, str] | None = None) -> Watch:
        conn = self._conn(30.0)
        conn.request(
            "GET", self.url(path, {"watch": "1", **params}), headers=self._headers(headers, None, "")
        )
        r = conn.getresponse()
        return Watch(conn, r, r.status, {k.lower(): v for k, v in r.getheaders()})

    @contextlib.contextmanager
    def watching(self, path: str, **params: Any) -> Iterator[Watch]:
        w = self.watch(path, params)
        try:
            yield w
        finally:
            w.close()

    # --- fixtures' helpers ---

    def must(self, resp: Resp, *codes: int) -> Any:
        assert resp.status in (codes or (200, 201)), f"{resp.status}: {resp.body[:500]!r}"
        return resp.json

    def create_namespace(self, name: str) -> None:
        self.must(
            self.post(
                "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            )
        )

    def delete_namespace(self, name: str) -> None:
        self.delete(f"/api/v1/namespaces/{name}")

    def configmap(
        self, ns: str, name: str, *, labels: dict[str, str] | None = None, data: dict[str, str] | None = None
    ) -> dict[str, Any]:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "labels": labels or {}},
            "data": data or {},
        }
        return self.must(self.post(f"/api/v1/namespaces/{ns}/configmaps", body))  # type: ignore[no-any-return]

    def set_labels(self, ns: str, name: str, labels: dict[str, str | None]) -> dict[str, Any]:
        resp = self.patch(f"/api/v1/namespaces/{ns}/configmaps/{name}", {"metadata": {"labels": labels}})
        return self.must(resp, 200)  # type: ignore[no-any-return]

    def rv_now(self, ns: str) -> int:
        """A current resourceVersion (of a consistent LIST)."""
        return int(
            self.must(self.get(f"/api/v1/namespaces/{ns}/configmaps", limit=1), 200)["metadata"][
                "resourceVersion"
            ]
        )


def api_from_kubeconfig(path: str) -> Api:
    """An Api for the current context of a kubeconfig (token or client certificate)."""
    doc = yaml.safe_load(Path(path).read_text())
    ctx_name = doc.get("current-context")
    ctx = next(c["context"] for c in doc["contexts"] if c["name"] == ctx_name)
    cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
    user = next((u["user"] for u in doc.get("users", []) if u["name"] == ctx.get("user")), {})
    context = ssl.create_default_context()
    if cluster.get("insecure-skip-tls-verify"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cluster.get("certificate-authority-data"):
        context.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    elif cluster.get("certificate-authority"):
        context.load_verify_locations(cafile=cluster["certificate-authority"])
    if user.get("client-certificate-data") or user.get("client-certificate"):
        tmp = tempfile.mkdtemp(prefix="panopticon-kubeconfig-")
        cert, key = os.path.join(tmp, "client.crt"), os.path.join(tmp, "client.key")
        Path(cert).write_bytes(
            base64.b64decode(user["client-certificate-data"])
            if "client-certificate-data" in user
            else Path(user["client-certificate"]).read_bytes()
        )
        Path(key).write_bytes(
            base64.b64decode(user["client-key-data"])
            if "client-key-data" in user
            else Path(user["client-key"]).read_bytes()
        )
        context.load_cert_chain(cert, key)
    token = user.get("token")
    if token is None and user.get("tokenFile"):
        token = Path(user["tokenFile"]).read_text().strip()
    return Api(cluster["server"], token=token, ssl_context=context, kind="real")
