"""Ordinary command-line mistakes, as an operator makes them: the real CLI, one line.

Every numeric flag of every command is given a value out of its range, every port
flag a port in use and a port another flag already took, and the kubeconfig is
missing, empty, a directory or lacks the context asked for. Each case must exit 2
with one line naming the flag, and no traceback. The cases run as subprocesses, a
few at a time, once for the module; each test checks its own case's outcome.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from panopticon import cli, flags
from tests.panopticon.examples import CONFIG_DIR, OBJECT_DIR
from tests.support.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

BUSY = "{busy}"
"""Replaced by a port a socket of this test listens on."""
REDIS = ("--redis", "redis://127.0.0.1:1/0")
"""A Redis nobody answers at: every case must fail before it connects."""
LOCAL = ("--host", "127.0.0.1")


@dataclass(frozen=True, slots=True)
class Case:
    argv: tuple[str, ...]
    flag: str
    """What the one line must name (a flag, or the environment variable)."""
    env: tuple[tuple[str, str], ...] = ()
    module: str = "panopticon"


def aggregator(*args: str) -> tuple[str, ...]:
    return ("aggregator", *REDIS, *LOCAL, "--port", "0", "--telemetry-port", "0", *args)


def shard(*args: str) -> tuple[str, ...]:
    return ("shard", *REDIS, *LOCAL, "--shards", "1", "--shard-index", "0", "--port", "0", *args)


def embedded(*args: str) -> tuple[str, ...]:
    return ("run", *LOCAL, "--port", "0", "--telemetry-port", "0", "--shard-port", "0", *args)


CASES: dict[str, Case] = {
    "aggregator port above 65535": Case(aggregator("--port", "70000"), "--port"),
    "aggregator port in use": Case(aggregator("--redis", "{redis}", "--port", BUSY), "--port"),
    "aggregator one port twice": Case(
        aggregator("--port", "8097", "--telemetry-port", "8097"), "--telemetry-port"
    ),
    "aggregator more slots than buckets": Case(aggregator("--buckets", "64", "--slots", "128"), "--slots"),
    "aggregator CA file without TLS": Case(aggregator("--redis-ca-file", "{ca}"), "--redis-ca-file"),
    "aggregator via python -m": Case(aggregator("--port", "65536")[1:], "--port", module="aggregator"),
    "shard port in use": Case(shard("--kubeconfig", "{kubeconfig}", "--port", BUSY), "--port"),
    "shard unknown context": Case(shard("--kubeconfig", "{kubeconfig}", "--context", "nope"), "--context"),
    "shard via python -m": Case(shard("--shards", "0")[1:], "--shards", module="shard"),
    "run shard port in use": Case(
        embedded("--kubeconfig", "{kubeconfig}", "--shard-port", BUSY), "--shard-port"
    ),
    "run empty kubeconfig": Case(embedded("--kubeconfig", "{empty}"), "--kubeconfig"),
    "run KUBECONFIG missing": Case(embedded(), "$KUBECONFIG", env=(("KUBECONFIG", "/nonexistent/config"),)),
    "sim port in use": Case(("sim", "--port", BUSY), "--port"),
    "demo port in use": Case(
        ("demo", "--port", BUSY, "--telemetry-port", "0", "--shard-port", "0"), "--port"
    ),
    "render unwritable output": Case(
        ("render", "-c", "{config}", "-o", "{object}", "--output", "{directory}"), "--output"
    ),
}  # fmt: skip
"""The process-level cases: one per command and per way a mistake is found (argparse,
a check across flags, a port that cannot be bound, a kubeconfig, a file to write).
Every flag's own range is checked in-process below, through the same parsers."""


@dataclass(frozen=True, slots=True)
class Outcome:
    returncode: int
    stderr: str


@pytest.fixture(scope="module")
def outcomes(
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,  # noqa: F811 - fixture
) -> Iterator[dict[str, Outcome]]:
    tmp = tmp_path_factory.mktemp("flags")
    (tmp / "empty").write_text("")
    (tmp / "directory").mkdir()
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    values = {
        BUSY: str(busy.getsockname()[1]),
        "{empty}": str(tmp / "empty"),
        "{directory}": str(tmp / "directory"),
        "{kubeconfig}": str(kubeconfig),
        "{config}": str(CONFIG_DIR / "kubedb" / "kubedb-com-mongodb.yaml"),
        "{object}": str(OBJECT_DIR / "mongodb" / "resource-metrics-v1-standalone.yaml"),
        "{ca}": _ca_bundle(),
        "{redis}": redis_server.url,
    }

    def run(case: Case) -> Outcome:
        argv = [values.get(a, a) for a in case.argv]
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"} | dict(case.env)
        done = subprocess.run(
            [sys.executable, "-m", case.module, *argv], capture_output=True, timeout=60, env=env, check=False
        )
        return Outcome(done.returncode, done.stderr.decode(errors="replace"))

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            yield dict(zip(CASES, pool.map(run, CASES.values()), strict=True))
    finally:
        busy.close()


def _ca_bundle() -> str:
    """A real PEM bundle from the system's trust store (certifi's when there is none)."""
    import ssl

    path = ssl.get_default_verify_paths().cafile
    if path and Path(path).is_file():
        return path
    import certifi

    return str(certifi.where())


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_flag_value_exits_2_with_one_line_naming_the_flag(
    name: str, outcomes: dict[str, Outcome]
) -> None:
    case, outcome = CASES[name], outcomes[name]
    assert "Traceback" not in outcome.stderr, outcome.stderr
    assert outcome.returncode == 2, outcome.stderr
    lines = outcome.stderr.strip().splitlines()
    last = lines[-1]
    prog = "python -m shard" if case.module == "shard" else "python -m aggregator"
    command = prog if case.module != "panopticon" else f"panopticon {case.argv[0]}"
    assert last.startswith(f"{command}: "), outcome.stderr
    assert case.flag in last, outcome.stderr
    # Anything before the message is a log line of the process starting up, never part of it.
    assert all(
        " INFO " in line or line.startswith(("starting", "panopticon sim: http")) for line in lines[:-1]
    ), outcome.stderr


BAD_VALUES: dict[str, dict[str, str]] = {
    "aggregator": {
        "--port": "70000", "--telemetry-port": "-1", "--max-concurrent-scrapes": "0",
        "--gzip-level": "10", "--gzip-engine": "brotli", "--shutdown-grace": "-1", "--redis-timeout": "0",
        "--buckets": "3000",
        "--slots": "0", "--prefix": "a{b", "--log-level": "chatty", "--redis-ca-file": "/nonexistent/ca.pem",
    },
    "shard": {
        "--port": "65536", "--shard-index": "-1", "--shards": "0", "--ring-generation": "0",
        "--flush-interval": "0", "--max-backlog": "0", "--heartbeat-interval": "-2",
        "--status-interval": "nan", "--redis-timeout": "inf", "--buckets": "131072", "--slots": "48",
        "--prefix": "", "--log-level": "x", "--redis-ca-file": "/", "--max-series-per-config": "-1",
    },
    "run": {
        "--port": "70000", "--telemetry-port": "65536", "--shard-port": "-8",
        "--max-concurrent-scrapes": "-1", "--gzip-level": "0", "--gzip-engine": "lz4",
        "--flush-interval": "-0.1",
        "--max-backlog": "-1", "--heartbeat-interval": "0", "--status-interval": "-1",
        "--redis-timeout": "-3", "--buckets": "0", "--slots": "5", "--prefix": "a b", "--log-level": "loud",
        "--redis-ca-file": "/nonexistent", "--max-series-per-config": "x",
    },
    "sim": {
        "--port": "99999", "--seed": "x", "--scale": "-1", "--namespaces": "-1", "--deployments": "-2",
        "--pods-per-deployment": "-1", "--services": "-1", "--configmaps": "-1", "--secrets": "-1",
        "--mongodbs": "-1", "--nodes": "-1", "--bench-mongodbs": "-10", "--churn": "-1",
        "--bookmark-interval": "inf", "--compaction-window": "-1", "--time-scale": "0",
        "--startup-delay": "-1", "--request-log-size": "-5", "--k8s-version": "1.12",
    },
    "demo": {
        "--port": "70000", "--telemetry-port": "-1", "--shard-port": "65536", "--scale": "-1",
        "--mongodbs": "-1", "--churn": "-2", "--seed": "1.5", "--duration": "0", "--log-level": "none",
    },
    "render": {"--format": "yaml", "--max-series-per-config": "-5"},
    "validate": {},
}  # fmt: skip
"""A value out of range for every flag that takes one and is not free text (names,
addresses, paths read later): the whole set, checked by the last test below."""


def _parse(command: str, argv: list[str]) -> None:
    cli.build_parser(cli._command_modules(), command).parse_args([command, *argv])


@pytest.mark.parametrize(
    ("command", "flag", "value"),
    [(c, f, v) for c, flags in BAD_VALUES.items() for f, v in flags.items()],
)
def test_every_flag_refuses_a_value_out_of_its_range_in_one_line(
    command: str, flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        _parse(command, [f"{flag}={value}"])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.count("\n") == 1 and err.startswith(f"panopticon {command}: error: argument {flag}"), err


def _value_flags(command: str) -> set[str]:
    """The command's optional flags that take a value other than free text."""
    parser = cli.build_parser(cli._command_modules(), command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found = set()
    for action in sub.choices[command]._actions:
        if not action.option_strings or action.nargs == 0 or (action.type is None and action.choices is None):
            continue
        assert action.type not in (int, float) or action.choices is not None, (
            f"{command} {action.option_strings[0]}: use a type from panopticon.flags, which checks the range"
        )
        found.add(max(action.option_strings, key=len))
    return found


def test_the_table_covers_every_flag_that_takes_a_number_or_a_checked_value() -> None:
    for command, bad in BAD_VALUES.items():
        assert _value_flags(command) == set(bad), command


def test_a_failed_bind_names_the_port_flag_or_the_host() -> None:
    in_use = OSError(
        98, "error while attempting to bind on address ('0.0.0.0', 8080): address already in use"
    )
    assert str(flags.listen_error("--telemetry-port", "0.0.0.0", 8080, in_use)) == (
        "--telemetry-port 8080: cannot listen on 0.0.0.0:8080: address already in use"
    )
    unknown = socket.gaierror(-2, "Name or service not known")
    assert str(flags.listen_error("--port", "metrics.invalid", 8080, unknown)) == (
        "--host metrics.invalid: cannot listen there: Name or service not known"
    )
