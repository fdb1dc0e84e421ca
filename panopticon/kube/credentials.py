"""Credentials for the Kubernetes API: the only module of the project that imports
the `kubernetes` package (an import-linter contract enforces it).

`load_credentials` reads a kubeconfig (client certificates, tokens, token files,
exec plugins, insecure-skip-tls-verify, tls-server-name, proxy-url) or, when no
kubeconfig is given or named by `KUBECONFIG` and `KUBERNETES_SERVICE_HOST` is set,
the in-cluster service account. The hot path never touches the package: the
result is a server URL, an `ssl.SSLContext` and a function that returns the
current `Authorization` header.

The package is imported only to read a kubeconfig that is not plain (exec
plugins, auth providers, several files...: `panopticon.kube.kubeconfig` reads
the plain ones itself): in a pod (the production path) the service account is
read here, as client-go's `InClusterConfig` does, which spares each shard the
package's ~20 MB and a quarter of a second of start-up.

Tokens rotate. Exec-plugin and OIDC tokens are refreshed by the package's
`refresh_api_key_hook` when they expire; bound service-account tokens are re-read
whenever the token file changes (the kubelet replaces it well before expiry), so
no request goes out with a token older than the file.
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panopticon.kube.errors import CredentialsError
from panopticon.kube.kubeconfig import read_plain

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
"""Where the kubelet mounts the service account's `token`, `ca.crt` and `namespace`."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """How to reach and authenticate to one API server."""

    server: str
    """Base URL, e.g. `https://10.0.0.1:443` (no trailing slash)."""
    ssl_context: ssl.SSLContext | None
    """CA, client certificate and verification mode; None for plain HTTP."""
    header: Callable[[], str | None] = field(repr=False, compare=False)
    """Returns the current `Authorization` value (refreshing it if needed); may block
    briefly (exec plugins, file reads), so async callers run it in a thread."""
    source: str = ""
    """Where these came from, for logs: `kubeconfig PATH (context C)` or `in-cluster`."""
    tls_server_name: str | None = None
    """SNI and verification name when it differs from the URL's host."""
    proxy: str | None = None
    """HTTP proxy URL from the kubeconfig's `proxy-url`."""
    namespace: str = ""
    """The service account's namespace in-cluster, or the context's namespace."""

    def authorization(self) -> str | None:
        """The current `Authorization` header value, or None (client certificates only)."""
        try:
            return self.header()
        except CredentialsError:
            raise
        except Exception as e:
            raise CredentialsError(f"refreshing credentials from {self.source}: {e}") from e


def load_credentials(
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    environ: dict[str, str] | None = None,
    service_account_dir: str = SERVICE_ACCOUNT_DIR,
) -> Credentials:
    """Load credentials: `kubeconfig` (or `$KUBECONFIG`), else in-cluster, else `~/.kube/config`.

    `environ` defaults to `os.environ`; `service_account_dir` holds `token`, `ca.crt`
    and `namespace` in-cluster (tests point it at temporary files).
    """
    env = dict(os.environ) if environ is None else environ
    if kubeconfig:
        return _from_kubeconfig(kubeconfig, context, origin="--kubeconfig")
    if env.get("KUBECONFIG"):
        return _from_kubeconfig(env["KUBECONFIG"], context, origin="$KUBECONFIG")
    if env.get("KUBERNETES_SERVICE_HOST"):
        return _in_cluster(env, Path(service_account_dir))
    default = Path("~/.kube/config").expanduser()
    if default.is_file():
        return _from_kubeconfig(str(default), context, origin="kubeconfig")
    raise CredentialsError(
        "no Kubernetes credentials: pass a kubeconfig, set KUBECONFIG, or run in a pod "
        "(KUBERNETES_SERVICE_HOST unset)"
    )


def _from_kubeconfig(path: str, context: str | None, *, origin: str) -> Credentials:
    """`origin` names where `path` came from in errors (`--kubeconfig`, `KUBECONFIG`).
    A plain kubeconfig is read without the package (`panopticon.kube.kubeconfig`)."""
    _check_files(path, origin)
    plain = read_plain(path, context)
    if plain is None:
        return _from_package(path, context, origin=origin)
    source = f"kubeconfig {path}" + (f" (context {context})" if context else "")
    authorization = f"Bearer {plain.token}" if plain.token else None
    return Credentials(
        server=plain.server.rstrip("/"),
        ssl_context=_ssl_context(
            plain.server,
            source,
            ca=plain.ca_file,
            cadata=plain.ca_data,
            cert=plain.cert_file,
            key=plain.key_file,
            verify=plain.verify,
        ),
        header=lambda: authorization,
        source=source,
        tls_server_name=plain.tls_server_name,
        proxy=plain.proxy,
        namespace=plain.namespace,
    )


def _from_package(path: str, context: str | None, *, origin: str) -> Credentials:
    """Any kubeconfig, through the `kubernetes` package (exec plugins, auth providers...)."""
    from kubernetes.client import Configuration  # noqa: PLC0415 - only kubeconfigs need the package
    from kubernetes.config import kube_config as loader  # noqa: PLC0415

    kube_config: Any = loader  # untyped
    source = f"kubeconfig {path}" + (f" (context {context})" if context else "")
    cfg = Configuration()
    try:
        kube_config.load_kube_config(
            config_file=path, context=context, client_configuration=cfg, persist_config=False
        )
        namespace = _context_namespace(kube_config, path, context)
    except Exception as e:
        raise _load_error(kube_config, path, context, origin, e) from e
    lock = threading.Lock()

    def header() -> str | None:
        with lock:  # the package's loaders are not thread-safe
            value: Any = cfg.get_api_key_with_prefix("BearerToken")
        return str(value) if value else None

    server = str(cfg.host).rstrip("/")
    return Credentials(
        server=server,
        ssl_context=_ssl_context(
            server, source, ca=cfg.ssl_ca_cert, cert=cfg.cert_file, key=cfg.key_file, verify=cfg.verify_ssl
        ),
        header=header,
        source=source,
        tls_server_name=getattr(cfg, "tls_server_name", None) or None,
        proxy=cfg.proxy or None,
        namespace=namespace,
    )


def _check_files(spec: str, origin: str) -> None:
    """What the package would report as a traceback or an obscure message: a
    directory, no file at all, only empty files. `spec` may list several files
    (`KUBECONFIG=a:b`); like kubectl, missing ones among several are skipped."""
    paths = [os.path.expanduser(p) for p in spec.split(os.pathsep) if p]
    existing = []
    for path in paths:
        if os.path.isdir(path):
            raise CredentialsError(f"{origin} {path}: is a directory, not a kubeconfig file")
        if os.path.exists(path):
            existing.append(path)
    if not existing:
        raise CredentialsError(f"{origin} {spec}: no such file")
    if all(os.path.getsize(p) == 0 for p in existing):
        raise CredentialsError(f"{origin} {spec}: the file is empty")


def _load_error(
    kube_config: Any, path: str, context: str | None, origin: str, error: Exception
) -> CredentialsError:
    """One line naming the flag: an unknown `--context` lists the contexts there are."""
    if context:
        try:
            contexts, _ = kube_config.list_kube_config_contexts(config_file=path)
            names = [str(c.get("name")) for c in contexts if isinstance(c, dict)]
        except Exception:  # the load error below says what is wrong
            names = None
        if names is not None and context not in names:
            known = ", ".join(names) or "none"
            return CredentialsError(
                f"--context {context}: no such context in {origin} {path} (it has: {known})"
            )
    return CredentialsError(f"{origin} {path}: {error}")


def _context_namespace(kube_config: Any, path: str, context: str | None) -> str:
    contexts, current = kube_config.list_kube_config_contexts(config_file=path)
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else current
    value = (chosen or {}).get("context", {}).get("namespace", "")
    return value if isinstance(value, str) else ""


def _in_cluster(env: dict[str, str], sa_dir: Path) -> Credentials:
    """client-go's `rest.InClusterConfig`: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT,
    the service account's CA and its (rotating) token. One difference: a missing or
    unreadable CA is an error here, where client-go logs it and trusts the system's
    roots, which would fail later and less clearly against a cluster CA."""
    source = f"in-cluster service account ({sa_dir})"
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise CredentialsError(
            f"{source}: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both be set"
        )
    if ":" in host:  # an IPv6 address (Go's net.JoinHostPort)
        host = f"[{host}]"
    token_file, ca_file = sa_dir / "token", sa_dir / "ca.crt"
    for path, what in ((token_file, "token"), (ca_file, "CA certificate")):
        try:
            empty = path.stat().st_size == 0
        except OSError as e:
            raise CredentialsError(f"{source}: the {what} file: {e}") from e
        if empty:
            raise CredentialsError(f"{source}: the {what} file {path} is empty")
    header = TokenFile(token_file).header
    header()  # fails now, not at the first request, when the token cannot be read
    ns_file = sa_dir / "namespace"
    namespace = ns_file.read_text().strip() if ns_file.is_file() else ""
    server = f"https://{host}:{port}"
    return Credentials(
        server=server,
        ssl_context=_ssl_context(server, "in-cluster", ca=str(ca_file)),
        header=header,
        source="in-cluster",
        namespace=namespace,
    )


class TokenFile:
    """A bearer token file, re-read whenever it changes (bound tokens rotate)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._value = ""
        self._lock = threading.Lock()

    def header(self) -> str:
        with self._lock:
            try:
                st = self.path.stat()
                stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
                if stamp != self._stamp:
                    token = self.path.read_text().strip()
                    if not token:
                        raise CredentialsError(f"service account token file {self.path} is empty")
                    self._value, self._stamp = f"Bearer {token}", stamp
            except OSError as e:
                if not self._value:
                    raise CredentialsError(f"reading service account token {self.path}: {e}") from e
                # Keep the last token while the kubelet swaps the file.
            return self._value


def _ssl_context(
    server: str,
    source: str,
    *,
    ca: str | None,
    cadata: str | None = None,
    cert: str | None = None,
    key: str | None = None,
    verify: bool = True,
) -> ssl.SSLContext | None:
    if not server.startswith("https"):
        return None
    try:
        ctx = ssl.create_default_context(cafile=ca or None, cadata=cadata or None)
        if cert:
            ctx.load_cert_chain(cert, key or None)
    except (OSError, ssl.SSLError, ValueError) as e:
        raise CredentialsError(f"{source}: TLS material: {e}") from e
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
