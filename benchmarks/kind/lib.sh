# Shared by setup.sh, run.sh and faults.sh (sourced, never run). Defines paths and
# helpers only; each script calls require_tools first thing.
# shellcheck shell=bash

KIND_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$KIND_DIR/../.." && pwd)
WORK=${PANOPTICON_KIND_WORK:-$KIND_DIR/.work}
CLUSTER=${CLUSTER:-panopticon-bench}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
MISSING_TOOLS_EXIT=3

# require_tools TOOL...: exit 3 with a clear message unless every TOOL is on PATH.
require_tools() {
  local tool missing=()
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "$(basename "$0"): missing ${missing[*]} on PATH. The kind benchmarks need Docker, kind >= 0.32" \
      "and kubectl (see benchmarks/kind/README.md); they never run in CI." >&2
    exit "$MISSING_TOOLS_EXIT"
  fi
}

require_docker_daemon() {
  if ! docker info >/dev/null 2>&1; then
    echo "$(basename "$0"): docker is installed but its daemon does not answer (docker info failed)." >&2
    exit "$MISSING_TOOLS_EXIT"
  fi
}

die() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}

# now: epoch seconds with milliseconds (date +%N is GNU-only).
now() { "$PYTHON" -c 'import time; print(f"{time.time():.3f}")'; }

# kubeconfig_file: write the cluster's kubeconfig (external address) and print its path.
kubeconfig_file() {
  local file="$WORK/$CLUSTER/kubeconfig"
  mkdir -p "$WORK/$CLUSTER"
  kind get kubeconfig --name "$CLUSTER" >"$file" 2>/dev/null ||
    die "no kind cluster '$CLUSTER': run benchmarks/kind/setup.sh first"
  chmod 600 "$file"
  echo "$file"
}

# wait_api KUBECONFIG SECONDS: until the API server's /readyz answers (1 when it never does).
wait_api() {
  local deadline=$((SECONDS + $2))
  until kubectl --kubeconfig "$1" get --raw /readyz >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

# free_ports N: N distinct free TCP ports on 127.0.0.1, space-separated (all held open
# while choosing, so none is handed out twice).
free_ports() {
  "$PYTHON" - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# wait_port PORT SECONDS: until something listens on 127.0.0.1:PORT.
wait_port() {
  local deadline=$((SECONDS + $2))
  until (: >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
