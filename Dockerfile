# syntax=docker/dockerfile:1
# Panopticon's image: the `panopticon` command (shard, aggregator, run, validate, ...).
#   docker build -t panopticon:0.1.0 .
# Two stages: the first builds the project's wheel and installs it, with its dependencies,
# into a virtualenv; the final image gets only that virtualenv on a fresh python base, so no
# build tooling, source tree or pip cache ships. Pin the base by digest as well
# (python:3.11.13-slim-bookworm@sha256:...) where your registry policy requires it.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/panopticon
WORKDIR /src
COPY pyproject.toml README.md ./
COPY panopticon/ panopticon/
COPY shard/ shard/
COPY aggregator/ aggregator/
# Not copied: kubesim/, the Kubernetes API simulator (tests, the demo, benchmarks). Its
# `sim` and `demo` commands plug in through entry points, and `panopticon` does not offer
# them where the package is absent.
# A regular, non-editable install: build the wheel, then install it. --only-binary: every
# dependency ships manylinux wheels for CPython 3.11, so nothing is compiled and the build
# stage needs no compiler; a dependency without a wheel fails the build instead of silently
# needing one. pip and setuptools leave the virtualenv afterwards (nothing imports them at
# run time; console scripts resolve through importlib.metadata).
RUN /opt/panopticon/bin/pip wheel --no-deps --wheel-dir /tmp/wheels . \
 && /opt/panopticon/bin/pip install --only-binary=:all: /tmp/wheels/panopticon-*.whl \
 && /opt/panopticon/bin/python -m pip uninstall --yes pip setuptools \
 && /opt/panopticon/bin/panopticon --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="panopticon" \
      org.opencontainers.image.description="Kubernetes state metrics from MetricsConfiguration objects, sharded over Redis" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/panopticon /opt/panopticon
# Bytecode was compiled at install time; the root filesystem is read-only in the manifests.
ENV PATH=/opt/panopticon/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# 65532: the conventional "nonroot" uid/gid (distroless); the manifests run as the same.
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 8081
ENTRYPOINT ["panopticon"]
CMD ["--help"]
