"""Hand-written modules against the library that could replace them: time per call, same run.

Each case runs one seeded workload through the project's module and through the library
a reader would reach for, checks that both give the same answers on it (a case whose
answers differ says so and is not timed as equal work), and prints best-of-R nanoseconds
per call and the ratio library / ours (above 1: the hand-written module is faster).

- `render.paths` (`Path.get`) vs jsonpath-ng (`parse` once, `find` per object);
- `render.quantity` (`parse_quantity`) vs `kubernetes.utils.parse_quantity`, on the
  repeated strings a cluster holds (ours caches parsed strings) and on distinct strings
  (our parser without its cache);
- `render.expr` (`compile_expression` once, `evaluate` per object) vs simpleeval (`parse`
  once, `eval(previously_parsed=…)` per object), on expressions both grammars read alike;
- `kubesim.jsonpath` (printer-column paths) vs jsonpath-ng's extended parser;
- `kubesim.patch` `merge_patch` vs json-merge-patch (which merges into its target in
  place; also timed on a deep copy, since the simulator never mutates a stored version),
  `json_patch` vs jsonpatch (`apply_patch`, which parses the operations per call, as a
  server receives them, and copies the document, as ours does);
- `store.scan` (`HvalsStream`) vs redis-py's asyncio client (with hiredis) pipelining the
  same HVALS in windows of the same size, against a real `redis-server` this script
  starts on a free port (skipped when there is none); per call = per hash read.

The libraries are not dependencies of the project. Install them into a throwaway venv
and put its site-packages after the project's (a library that is missing is reported
and its case skipped):

    /work/main/.venv/bin/python -m venv /tmp/venvF
    /tmp/venvF/bin/pip install jsonpath-ng simpleeval json-merge-patch jsonpatch
    PYTHONPATH=.:/tmp/venvF/lib/python3.11/site-packages \\
        /work/main/.venv/bin/python benchmarks/handwritten.py [--objects 2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import importlib
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from kubesim.jsonpath import compile_path as compile_column_path
from kubesim.patch import json_patch, merge_patch
from panopticon.render.expr.compiler import compile_expression
from panopticon.render.paths import MISSING, compile_path
from panopticon.render.quantity import _parse_text, parse_quantity
from panopticon.store.scan import WINDOW, Endpoint, HvalsStream

QUANTITIES = ["100m", "250m", "500m", "1", "2", "1.5", "128Mi", "512Mi", "1Gi", "2Gi", "100M", "1e3", "64Ki"]


@dataclass
class Case:
    name: str
    ours: Callable[[], list[Any]]
    theirs: Callable[[], list[Any]] | None
    calls: int
    same: Callable[[list[Any], list[Any]], bool] = lambda a, b: a == b
    missing: str = ""
    reset: Callable[[], None] = lambda: None
    """Run (untimed) before each timed run of `theirs`: for libraries that mutate their input."""


def pod(rng: random.Random, i: int) -> dict[str, Any]:
    """A deployment-like object with the fields the cases read."""
    return {
        "metadata": {
            "name": f"web-{i}",
            "namespace": f"ns-{i % 7}",
            "labels": {"app.kubernetes.io/name": f"app-{rng.randrange(20)}", "tier": rng.choice("abc")},
        },
        "spec": {
            "replicas": rng.randrange(1, 10),
            "template": {"spec": {"containers": [{"name": "c", "image": f"nginx:1.{rng.randrange(30)}"}]}},
        },
        "status": {
            "conditions": [
                {"type": "Available", "status": rng.choice(["True", "False"])},
                {"type": "Ready", "status": rng.choice(["True", "False"])},
            ]
        },
    }


def optional(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def paths_case(objs: list[dict[str, Any]]) -> Case:
    texts = [
        ".spec.replicas",
        ".metadata.labels['app.kubernetes.io/name']",
        ".status.conditions[1].status",
        ".spec.template.spec.containers[0].image",
    ]
    ours = [compile_path(t) for t in texts]
    calls = len(objs) * len(texts)

    def run_ours() -> list[Any]:
        return [None if (v := p.get(o)) is MISSING else v for o in objs for p in ours]

    jp = optional("jsonpath_ng")
    if jp is None:
        return Case("render.paths vs jsonpath-ng", run_ours, None, calls, missing="jsonpath-ng")
    theirs = [jp.parse("$" + t) for t in texts]

    def run_theirs() -> list[Any]:
        return [m[0].value if (m := p.find(o)) else None for o in objs for p in theirs]

    return Case("render.paths vs jsonpath-ng", run_ours, run_theirs, calls)


def quantity_cases(rng: random.Random, n: int) -> list[Case]:
    repeated = [rng.choice(QUANTITIES) for _ in range(n)]
    distinct = [f"{rng.randrange(1, 10**6)}{rng.choice(['m', 'Mi', 'Ki', '', 'G'])}" for _ in range(n)]
    k8s = optional("kubernetes.utils")

    def exact(a: list[Any], b: list[Any]) -> bool:
        return all(x == Fraction(str(y)) for x, y in zip(a, b, strict=True))

    cases = []
    for label, texts, ours in (
        ("repeated strings", repeated, parse_quantity),
        ("distinct strings, no cache", distinct, _parse_text.__wrapped__),
    ):

        def run_ours(texts: list[str] = texts, ours: Callable[[str], Fraction] = ours) -> list[Any]:
            return [ours(t) for t in texts]

        theirs = None
        if k8s is not None:

            def theirs(texts: list[str] = texts) -> list[Any]:
                return [k8s.parse_quantity(t) for t in texts]

        name = f"render.quantity vs kubernetes.utils ({label})"
        cases.append(Case(name, run_ours, theirs, n, exact, "" if k8s else "kubernetes"))
    return cases


def expr_case(rng: random.Random, n: int) -> Case:
    pairs = [  # (govaluate-like, Python for simpleeval)
        ("a * 2 + b", "a * 2 + b"),
        ("a > b && c == 'x'", "a > b and c == 'x'"),
        ("a > 5 ? a : b", "a if a > 5 else b"),
    ]
    envs = [{"a": rng.randrange(10), "b": rng.randrange(10), "c": rng.choice("xy")} for _ in range(n)]
    ours = [compile_expression(g, {"a", "b", "c"}).evaluate for g, _ in pairs]
    calls = n * len(pairs)

    def run_ours() -> list[Any]:
        return [f(env) for env in envs for f in ours]

    se = optional("simpleeval")
    if se is None:
        return Case("render.expr vs simpleeval", run_ours, None, calls, missing="simpleeval")
    evaluator = se.SimpleEval()
    parsed = [(p, evaluator.parse(p)) for _, p in pairs]

    def run_theirs() -> list[Any]:
        out = []
        for env in envs:
            evaluator.names = env
            out.extend(evaluator.eval(text, previously_parsed=tree) for text, tree in parsed)
        return out

    def same(a: list[Any], b: list[Any]) -> bool:
        return all(float(x) == float(y) for x, y in zip(a, b, strict=True))

    return Case("render.expr vs simpleeval", run_ours, run_theirs, calls, same)


def column_case(objs: list[dict[str, Any]]) -> Case:
    texts = ['.status.conditions[?(@.type=="Ready")].status', ".metadata.name", ".spec.replicas"]
    ours = [compile_column_path(t) for t in texts]
    calls = len(objs) * len(texts)

    def run_ours() -> list[Any]:
        return [g(o) for o in objs for g in ours]

    ext = optional("jsonpath_ng.ext")
    if ext is None:
        return Case("kubesim.jsonpath vs jsonpath-ng.ext", run_ours, None, calls, missing="jsonpath-ng")
    theirs = [ext.parse("$" + t) for t in texts]

    def run_theirs() -> list[Any]:
        return [[m.value for m in p.find(o)] for o in objs for p in theirs]

    return Case("kubesim.jsonpath vs jsonpath-ng.ext", run_ours, run_theirs, calls)


def patch_cases(objs: list[dict[str, Any]]) -> list[Case]:
    merge = {"metadata": {"labels": {"tier": None, "patched": "yes"}}, "spec": {"replicas": 3}}
    ops = [
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "add", "path": "/metadata/labels/patched", "value": "yes"},
        {"op": "remove", "path": "/metadata/labels/tier"},
    ]
    cases = []
    # json-merge-patch merges into its first argument: every timed call gets its own copy
    targets = [copy.deepcopy(o) for o in objs]

    def reset() -> None:
        targets[:] = [copy.deepcopy(o) for o in objs]

    def merge_ours() -> list[Any]:
        return [merge_patch(o, merge) for o in objs]

    jmp = optional("json_merge_patch")
    merge_theirs = None
    if jmp is not None:

        def merge_theirs() -> list[Any]:
            return [jmp.merge(t, merge) for t in targets]

    missing = "" if jmp else "json-merge-patch"
    cases.append(
        Case(
            "kubesim.patch merge vs json-merge-patch",
            merge_ours,
            merge_theirs,
            len(objs),
            missing=missing,
            reset=reset,
        )
    )

    if jmp is not None:  # what the simulator needs: stored versions are never mutated

        def merge_copy() -> list[Any]:
            return [jmp.merge(copy.deepcopy(o), merge) for o in objs]

        cases.append(
            Case("kubesim.patch merge vs json-merge-patch on a copy", merge_ours, merge_copy, len(objs))
        )

    def json_ours() -> list[Any]:
        return [json_patch(o, ops) for o in objs]

    jpatch = optional("jsonpatch")
    json_theirs = None
    if jpatch is not None:

        def json_theirs() -> list[Any]:
            return [jpatch.apply_patch(o, ops) for o in objs]

    cases.append(
        Case(
            "kubesim.patch JSON patch vs jsonpatch",
            json_ours,
            json_theirs,
            len(objs),
            missing="" if jpatch else "jsonpatch",
        )
    )
    return cases


@contextmanager
def redis_server() -> Iterator[int | None]:
    """A throwaway redis-server on a free port, or None when none is installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", tmp]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            yield port
        finally:
            proc.terminate()
            proc.wait()


def scan_case(runner: asyncio.Runner, port: int | None, rng: random.Random, hashes: int) -> Case:
    name = "store.scan HVALS vs redis-py pipeline"
    if port is None:
        return Case(name, list, None, hashes, missing="redis-server")
    import redis.asyncio as aioredis

    keys = [f"bench:{i}" for i in range(hashes)]

    async def fill() -> None:
        client = aioredis.Redis(port=port)
        async with client.pipeline(transaction=False) as pipe:
            for key in keys:
                fields = {f"{rng.getrandbits(64):016x}": b"x" * rng.randrange(60, 160) for _ in range(50)}
                pipe.hset(key, mapping=fields)
            await pipe.execute()
        await client.aclose()

    async def ours() -> list[Any]:
        async with HvalsStream(Endpoint("127.0.0.1", port)) as stream:
            return [value async for _, value in stream.values(keys)]

    async def theirs() -> list[Any]:
        client = aioredis.Redis(port=port)
        out: list[Any] = []
        for start in range(0, len(keys), WINDOW):
            async with client.pipeline(transaction=False) as pipe:
                for key in keys[start : start + WINDOW]:
                    pipe.hvals(key)
                out.extend(b"".join(values) for values in await pipe.execute())
        await client.aclose()
        return out

    runner.run(fill())
    return Case(name, lambda: runner.run(ours()), lambda: runner.run(theirs()), hashes)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop, as the product runs."""
    import uvloop

    return uvloop.new_event_loop


def best_ns(fn: Callable[[], list[Any]], calls: int, repeats: int, *, fresh: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(repeats):
        fresh()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e9 / calls


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    objs = [pod(rng, i) for i in range(args.objects)]
    with redis_server() as port, asyncio.Runner(loop_factory=_loop_factory()) as runner:
        cases = [
            paths_case(objs),
            *quantity_cases(rng, args.objects),
            expr_case(rng, args.objects),
            column_case(objs),
            *patch_cases(objs),
            scan_case(runner, port, rng, args.objects),
        ]
        return report(cases, args)


def report(cases: list[Case], args: argparse.Namespace) -> int:
    print(
        f"{platform.python_implementation()} {platform.python_version()} ({sys.executable}); "
        f"objects={args.objects} repeats={args.repeats} seed={args.seed}"
    )
    print(f"{'case':60} {'ours ns':>9} {'lib ns':>9} {'lib/ours':>8}")
    failed = False
    for case in cases:
        ours_ns = best_ns(case.ours, case.calls, args.repeats, fresh=lambda: None)
        if case.theirs is None:
            print(f"{case.name:60} {ours_ns:9.0f} {'-':>9} {'-':>8}  ({case.missing} not installed)")
            continue
        case.reset()
        if not case.same(case.ours(), case.theirs()):
            print(f"{case.name:60} answers differ on this workload: not compared")
            failed = True
            continue
        case.reset()
        lib_ns = best_ns(case.theirs, case.calls, args.repeats, fresh=case.reset)
        print(f"{case.name:60} {ours_ns:9.0f} {lib_ns:9.0f} {lib_ns / ours_ns:8.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
