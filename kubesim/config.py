"""Settings of the Kubernetes API server simulator.

`SimConfig` is frozen: the simulator swaps in a new instance (`dataclasses.replace`)
when a test changes a knob at run time, so a request always sees one consistent set.
Defaults are kube-apiserver 1.36 defaults (README.md, "Versions and feature gates"); `for_version`
derives the feature gates of other releases.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

DEFAULT_TOKEN = "panopticon-sim-token"  # noqa: S105 - a well-known test credential, by design
"""Bearer token of the default administrator (user `system:admin`)."""

DEFAULT_USER = "system:admin"

SUPPORTED_VERSIONS = tuple(f"1.{minor}" for minor in range(27, 38))

WatchListMode = Literal["on", "off", "unsupported"]


@dataclass(frozen=True, slots=True)
class AccessRule:
    """One allow-list entry of the authorizer; `*` matches anything.

    The verb is the Kubernetes verb (`get`, `list`, `watch`, `create`, `update`,
    `patch`, `delete`, `deletecollection`); `namespace="*"` also allows cluster scope.
    """

    user: str
    verbs: tuple[str, ...] = ("*",)
    groups: tuple[str, ...] = ("*",)
    resources: tuple[str, ...] = ("*",)
    namespaces: tuple[str, ...] = ("*",)

    def allows(self, *, user: str, verb: str, group: str, resource: str, namespace: str) -> bool:
        return (
            self.user in ("*", user)
            and _matches(self.verbs, verb)
            and _matches(self.groups, group)
            and _matches(self.resources, resource)
            and _matches(self.namespaces, namespace)
        )


def _matches(allowed: tuple[str, ...], value: str) -> bool:
    return "*" in allowed or value in allowed


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Every knob of the simulator, with its unit and the reason for its default."""

    k8s_version: str = "1.36"
    """Reported by `/version`; `for_version` derives the gates below from it."""

    watch_list: bool = True
    """`WatchList` gate (on since 1.34): `sendInitialEvents` accepted, and legacy
    watches with RV ""/"0" are defaulted into watch-list mode. Off: 422 (as 1.33)."""

    watch_list_progress_notify: bool = True
    """False simulates storage without progress notify: a watch-list request gets an
    ERROR event first ("unsupported", cacher.go)."""

    watch_list_compression: bool = False
    """`WatchListCompression` (1.37): gzip watch-list streams, flushed per batch."""

    gzip: bool = True
    """`APIResponseCompression`: gzip get/list bodies over `gzip_threshold_bytes`."""

    gzip_threshold_bytes: int = 128 * 1024
    """`defaultGzipThresholdBytes` in responsewriters/writers.go."""

    gzip_level: int = 1
    """`defaultGzipContentEncodingLevel` in responsewriters/writers.go."""

    sharding: bool = False
    """`ShardedListAndWatch` (alpha 1.36, off): honour `shardSelector` (KEP-5866)."""

    shard_selector_error_code: int = 500
    """HTTP code for an unparsable `shardSelector` (1.36 returns a plain error, which
    probably surfaces as 500, so tests assert only "error")."""

    shard_selector_refused: bool = False
    """With `sharding`: answer every request carrying a `shardSelector` with
    `shard_selector_error_code` (a server that validates selectors otherwise, or a
    selector it cannot take): clients must fall back to filtering themselves."""

    rv0_honours_limit: bool = False
    """False: an RV="0" LIST ignores `limit` like the watch cache; True: etcd mode."""

    fill_pages: bool = True
    """False: read only `limit` keys per page, so selector-filtered pages come back
    short or empty with a `continue` token (as selector-filtered pages may)."""

    bookmark_interval: float | None = 60.0
    """Seconds between bookmarks on watches that allow them (real: about 60 s);
    None never sends periodic or pre-deadline bookmarks."""

    bookmark_before_deadline: float = 2.0
    """Seconds before a watch's deadline at which a last bookmark is sent."""

    realistic_bookmarks: bool = True
    """Bookmarks of built-in kinds carry the zero fields of an empty typed object
    (`"spec":{"containers":null}` on pods), as real servers send."""

    min_request_timeout: float = 1800.0
    """Seconds; a watch without `timeoutSeconds` lasts a random [T, 2T) (get.go)."""

    compaction_window: float | None = 300.0
    """Seconds of MVCC history kept (etcd keeps 5 minutes); None disables automatic
    compaction (tests compact explicitly)."""

    watch_cache_capacity: int = 102_400
    """Events kept per resource for watches (cacher's upper bound capacity); a watch
    from an RV older than the kept window gets 410."""

    time_scale: float = 1.0
    """Simulated seconds per real second for watch deadlines and bookmark timing: with
    60, a client's timeoutSeconds=300 ends after 5 s and 60 s bookmarks come every
    second (clock control for tests)."""

    clock_offset: float = 0.0
    """Seconds added to the wall clock for timestamps the simulator writes
    (creationTimestamp, deletionTimestamp, managedFields times)."""

    too_large_rv_wait: float = 3.0
    """Seconds a request for a future RV waits before 504 ResourceVersionTooLarge."""

    slow_watcher_max_lag: int | None = None
    """Close a watch (clean EOF) whose unsent backlog exceeds this many events, as
    the cacher terminates unresponsive watchers; None keeps every watcher."""

    expired_reason: str = "Expired"
    """Reason of 410 Status objects; "Gone" reproduces servers up to 1.17."""

    aggregated_discovery: bool = True
    """Serve `apidiscovery.k8s.io/v2` when asked (kubectl asks, then falls back)."""

    seed: int = 0
    """Seeds uids, the start revision, timeout jitter and fault randomness."""

    start_revision: int | None = None
    """First revision; None picks a large random one from `seed` so clients cannot
    rely on small or contiguous RVs (API Concepts: RVs are opaque)."""

    tokens: tuple[tuple[str, str], ...] = ((DEFAULT_TOKEN, DEFAULT_USER),)
    """Static bearer token → user name map."""

    rules: tuple[AccessRule, ...] = (AccessRule(user=DEFAULT_USER),)
    """Authorizer allow-list; anything not allowed is 403."""

    anonymous: bool = False
    """Serve requests without credentials as `system:anonymous` (still authorised
    by `rules`); False answers them 401."""

    admin_enabled: bool = True
    """Serve the admin API (`admin_prefix`) for tests that run the simulator as a process."""

    admin_prefix: str = "/_sim"

    admin_token: str | None = None
    """Bearer token of the admin API; None uses the first entry of `tokens`."""

    request_log_size: int = 10_000
    """Requests remembered for `/_sim/requests` and `Simulator.requests`."""

    startup_unavailable_seconds: float = 0.0
    """Answer API requests 503 ServiceUnavailable for this long after start."""

    default_namespace: str = "demo"
    """Namespace given to namespaced objects loaded without one (examples, workloads)."""

    initial_namespaces: tuple[str, ...] = ("default", "kube-system", "kube-public", "kube-node-lease")

    @property
    def admin_bearer(self) -> str:
        if self.admin_token is not None:
            return self.admin_token
        return self.tokens[0][0] if self.tokens else ""

    @property
    def watch_list_mode(self) -> WatchListMode:
        if not self.watch_list:
            return "off"
        return "on" if self.watch_list_progress_notify else "unsupported"

    def replace(self, **changes: Any) -> SimConfig:
        """A copy with `changes` applied (unknown names raise TypeError)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def for_version(cls, version: str, **overrides: Any) -> SimConfig:
        """The gates of kube-apiserver `version` (1.27–1.37), then `overrides`."""
        if version not in SUPPORTED_VERSIONS:
            raise ValueError(f"k8s_version {version!r}: supported are {', '.join(SUPPORTED_VERSIONS)}")
        minor = int(version.split(".")[1])
        gates: dict[str, Any] = {
            "k8s_version": version,
            # WatchList: alpha 1.27 (off), beta 1.32 (on), 1.33 (off), 1.34 (on).
            "watch_list": minor == 32 or minor >= 34,
            "watch_list_compression": minor >= 37,
        }
        gates.update(overrides)
        return cls(**gates)
