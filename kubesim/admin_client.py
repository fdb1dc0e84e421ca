"""A small synchronous client of the admin API (`admin.py`), for tests and benchmarks
that run the simulator as a separate process. Standard library only."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from panopticon.errors import PanopticonError


class AdminError(PanopticonError):
    """The admin API answered an error."""

    def __init__(self, code: int, body: bytes) -> None:
        self.code = code
        self.body = body
        super().__init__(f"admin API answered {code}: {body[:500]!r}")


class AdminClient:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        prefix: str = "/_sim",
        ca_file: Path | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.base = url.rstrip("/") + prefix
        self.token = token
        self.timeout = timeout
        self._ssl = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = orjson.dumps(body) if body is not None else None
        url = self.base + path
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"admin URL must be http(s): {url}")
        req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - scheme checked above
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self._ssl) as resp:  # noqa: S310
                return orjson.loads(resp.read())
        except urllib.error.HTTPError as e:
            raise AdminError(e.code, e.read()) from None

    # --- the knobs, by name ---

    def state(self) -> dict[str, Any]:
        return self.call("GET", "/state")  # type: ignore[no-any-return]

    def config(self, **changes: Any) -> dict[str, Any]:
        return self.call("PATCH", "/config", changes) if changes else self.call("GET", "/config")  # type: ignore[no-any-return]

    def compact(self, revision: int | None = None) -> int:
        return int(
            self.call("POST", "/compact", {} if revision is None else {"revision": revision})[
                "compactedRevision"
            ]
        )

    def watches(self) -> list[dict[str, Any]]:
        return self.call("GET", "/watches")["items"]  # type: ignore[no-any-return]

    def inject_watch_error(self, code: int = 410, *, resource: str | None = None, message: str = "") -> int:
        return int(
            self.call("POST", "/watches/error", {"code": code, "resource": resource, "message": message})[
                "affected"
            ]
        )

    def close_watches(self, mode: str = "eof", *, resource: str | None = None) -> int:
        return int(self.call("POST", "/watches/close", {"mode": mode, "resource": resource})["affected"])

    def stall_watches(self, seconds: float | None = None, *, resource: str | None = None) -> int:
        return int(
            self.call("POST", "/watches/stall", {"seconds": seconds, "resource": resource})["affected"]
        )

    def unstall_watches(self, *, resource: str | None = None) -> int:
        return int(self.call("POST", "/watches/unstall", {"resource": resource})["affected"])

    def throttle(
        self,
        count: int | None = 1,
        *,
        form: str = "text",
        retry_after: int = 1,
        path_prefix: str = "",
        verbs: Iterable[str] = (),
    ) -> None:
        self.call(
            "POST",
            "/faults/throttle",
            {
                "count": count,
                "form": form,
                "retryAfter": retry_after,
                "pathPrefix": path_prefix,
                "verbs": list(verbs),
            },
        )

    def make_unavailable(self, *, count: int | None = None, seconds: float | None = None) -> None:
        self.call("POST", "/faults/unavailable", {"count": count, "seconds": seconds})

    def fail_discovery(self, group_version: str, *, seconds: float) -> None:
        """`group_version`'s discovery document answers 503 for `seconds`."""
        self.call("POST", "/faults/discovery", {"groupVersion": group_version, "seconds": seconds})

    def split_chunks(self, *, max_piece: int = 64, utf8: bool = True, delay: float = 0.001) -> None:
        self.call("POST", "/faults/split-chunks", {"maxPiece": max_piece, "utf8": utf8, "delay": delay})

    def clear_faults(self) -> None:
        self.call("DELETE", "/faults")

    def bulk(self, ops: list[dict[str, Any]]) -> dict[str, Any]:
        return self.call("POST", "/objects", {"ops": ops})  # type: ignore[no-any-return]

    def load_workload(self, **body: Any) -> dict[str, Any]:
        return self.call("POST", "/workload", body)  # type: ignore[no-any-return]

    def start_churn(self, rate: float, **body: Any) -> dict[str, Any]:
        return self.call("POST", "/churn", {"rate": rate, **body})  # type: ignore[no-any-return]

    def stop_churn(self) -> dict[str, Any]:
        return self.call("DELETE", "/churn")  # type: ignore[no-any-return]

    def requests(self, since: int = 0) -> dict[str, Any]:
        return self.call("GET", f"/requests?since={since}")  # type: ignore[no-any-return]

    def clear_requests(self) -> None:
        self.call("DELETE", "/requests")
