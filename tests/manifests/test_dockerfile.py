"""The Dockerfile, checked statically: no container engine runs on the test machines, so
`docker build` cannot be exercised here. What can be: the file parses with BuildKit's own
parser (the `dockerfile` wheel), and its stages, base images, install command, user and
entry point are what the manifests rely on; the .dockerignore keeps the build context to
the sources the build copies.
"""

from __future__ import annotations

import re

import dockerfile
import pytest

from tests.manifests.conftest import ROOT, Rendered

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
IMAGE_UID = 65532


def stages() -> list[list[dockerfile.Command]]:
    """The instructions of each stage (global ARGs before the first FROM are left out)."""
    out: list[list[dockerfile.Command]] = []
    for command in dockerfile.parse_file(str(DOCKERFILE)):
        if command.cmd == "FROM":
            out.append([])
        if out:
            out[-1].append(command)
    return out


def global_args() -> dict[str, str]:
    args = {}
    for command in dockerfile.parse_file(str(DOCKERFILE)):
        if command.cmd == "FROM":
            break
        if command.cmd == "ARG" and "=" in command.value[0]:
            name, default = command.value[0].split("=", 1)
            args[name] = default
    return args


def base_images() -> list[str]:
    args = global_args()
    images = []
    for stage in stages():
        image = stage[0].value[0]
        images.append(re.sub(r"\$\{?(\w+)\}?", lambda m: args[m.group(1)], image))
    return images


def test_the_build_has_a_build_stage_and_a_final_stage_on_a_pinned_slim_python() -> None:
    images = base_images()
    assert len(images) >= 2
    for image in images:
        name, _, tag = image.partition(":")
        assert name == "python" and tag and tag != "latest", image
        assert re.match(r"3\.11\.\d+-slim", tag), f"{image}: pin the patch release of the 3.11 slim image"


def test_the_final_stage_runs_panopticon_as_a_non_root_user() -> None:
    final = stages()[-1]
    users = [c.value[0] for c in final if c.cmd == "USER"]
    assert users, "the final stage sets no USER: the image would run as root"
    assert users[-1] == f"{IMAGE_UID}:{IMAGE_UID}", users[-1]
    (entrypoint,) = [c for c in final if c.cmd == "ENTRYPOINT"]
    assert entrypoint.json and entrypoint.value == ("panopticon",)


def test_the_final_stage_installs_nothing_and_copies_only_the_virtualenv() -> None:
    final = stages()[-1]
    assert not [c for c in final if c.cmd in ("RUN", "ADD")], "build tools belong to the build stage"
    copies = [c for c in final if c.cmd == "COPY"]
    assert copies and all(any(f.startswith("--from=") for f in c.flags) for c in copies)


def test_the_project_is_pip_installed_without_editable_mode() -> None:
    runs = " ".join(c.value[0] for stage in stages()[:-1] for c in stage if c.cmd == "RUN")
    assert "pip install" in runs
    assert not re.search(r"(^|\s)(-e|--editable)(\s|=)", runs), runs
    assert "--only-binary" in runs, "dependencies must come as wheels (no compiler in the build stage)"


def test_no_base_image_is_latest_or_untagged() -> None:
    for command in dockerfile.parse_file(str(DOCKERFILE)):
        if command.cmd == "FROM":
            assert not command.value[0].endswith(":latest")
    for image in base_images():
        assert ":" in image and not image.endswith(":latest"), image


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex on slash paths."""
    out = ""
    i = 0
    pattern = pattern.strip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + "(?:/.*)?")  # a matched directory takes its contents along


def in_build_context(path: str) -> bool:
    """Docker's rule: the last matching pattern decides; `!` re-includes."""
    included = True
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if _ignore_regex(line.lstrip("!")).fullmatch(path):
            included = negate
    return included


@pytest.mark.parametrize(
    ("path", "included"),
    [
        ("pyproject.toml", True),
        ("README.md", True),
        ("panopticon/cli.py", True),
        ("panopticon/data/crds/kubedb.yaml", True),
        ("shard/command.py", True),
        ("aggregator/app.py", True),
        (".venv/bin/python", False),
        (".git/HEAD", False),
        ("tests/conftest.py", False),
        ("manifests/base/kustomization.yaml", False),
        ("panopticon/__pycache__/cli.cpython-311.pyc", False),
        ("panopticon.egg-info/PKG-INFO", False),
    ],
)
def test_the_build_context_holds_the_sources_and_nothing_else(path: str, included: bool) -> None:
    assert in_build_context(path) is included


def test_every_source_the_build_copies_is_in_the_build_context() -> None:
    for stage in stages():
        for command in stage:
            if command.cmd != "COPY" or any(f.startswith("--from=") for f in command.flags):
                continue
            for source in command.value[:-1]:
                assert (ROOT / source).exists(), source
                probe = source.rstrip("/") + ("/__init__.py" if (ROOT / source).is_dir() else "")
                assert in_build_context(probe), source


def test_the_manifests_run_panopticon_as_the_images_user(rendered: dict[str, Rendered]) -> None:
    assert f"USER {IMAGE_UID}:{IMAGE_UID}" in DOCKERFILE.read_text()
    for workload in rendered["base"].workloads():
        spec = workload["spec"]["template"]["spec"]
        if spec["containers"][0]["image"].startswith("panopticon:"):
            assert spec["securityContext"]["runAsUser"] == IMAGE_UID
            assert spec["securityContext"]["runAsGroup"] == IMAGE_UID


NOT_SHIPPED = {"kubesim"}
"""Packages the project declares that the image leaves out on purpose: the API simulator
serves tests, the demo and benchmarks, never a cluster."""


def test_the_dockerfile_copies_every_package_the_project_declares() -> None:
    import tomllib

    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    copied = {c.value[0].rstrip("/") for s in stages() for c in s if c.cmd == "COPY" and not c.flags}
    for pattern in packages["include"]:
        package = pattern.rstrip("*")
        assert package in copied or package in NOT_SHIPPED, pattern
    assert not NOT_SHIPPED & copied, "the simulator is not part of the image"
    text = (ROOT / "Dockerfile").read_text()
    assert all(f"{name}/" in text for name in NOT_SHIPPED), "the Dockerfile says what it leaves out, and why"
