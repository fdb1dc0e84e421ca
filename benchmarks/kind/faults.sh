#!/usr/bin/env bash
# Interrupt every watch on the kind cluster, to exercise the exporter's reconnect,
# relist and 410 paths, and wait until the API server answers again. Prints one JSON
# line: the fault, when it began, and how long the API server was unavailable.
#
#   faults.sh restart     docker restart <cluster>-control-plane (API server, etcd, all)
#   faults.sh apiserver   move the kube-apiserver static-pod manifest away, wait --down
#                         seconds, move it back (etcd keeps running)
#
# After either, a client resuming a watch from its last resourceVersion meets a fresh
# watch cache and may get 410 Gone, which forces a relist. Needs Docker, kind and
# kubectl; never run in CI.
set -euo pipefail

usage() {
  echo "usage: faults.sh restart|apiserver [--name CLUSTER] [--down SECONDS] [--timeout SECONDS]"
}

case "${1:-}" in -h | --help) usage && exit 0 ;; esac
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_tools docker kind kubectl
require_docker_daemon

mode=${1:-}
[ $# -gt 0 ] && shift
down=10
timeout=300
while [ $# -gt 0 ]; do
  case "$1" in
    --name) CLUSTER=$2 && shift ;;
    --down) down=$2 && shift ;;
    --timeout) timeout=$2 && shift ;;
    *) usage >&2 && exit 2 ;;
  esac
  shift
done

node="$CLUSTER-control-plane"
docker inspect "$node" >/dev/null 2>&1 || die "no node container '$node': run setup.sh first"
kubeconfig=$(kubeconfig_file)
manifest=/etc/kubernetes/manifests/kube-apiserver.yaml
parked=/etc/kubernetes/kube-apiserver.yaml.parked

restore_manifest() {
  docker exec "$node" sh -c "[ ! -f $parked ] || mv $parked $manifest" || true
}

began=$(now)
down_at=null
case "$mode" in
  restart)
    docker restart "$node" >/dev/null
    ;;
  apiserver)
    trap restore_manifest EXIT
    docker exec "$node" mv "$manifest" "$parked"
    # The kubelet notices within its file-check period (20 s by default).
    deadline=$((SECONDS + 60))
    while kubectl --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1; do
      [ "$SECONDS" -lt "$deadline" ] || die "the API server kept running without its manifest"
      sleep 0.5
    done
    down_at=$(now)
    sleep "$down"
    restore_manifest
    ;;
  *)
    usage >&2
    exit 2
    ;;
esac

kubeconfig=$(kubeconfig_file) # the same port after a restart, but cheap to be sure
wait_api "$kubeconfig" "$timeout" || die "the API server did not come back within ${timeout}s"
ready_at=$(now)
printf '{"fault": "%s", "began": %s, "api_down_at": %s, "api_ready_at": %s, "unavailable_s": %s}\n' \
  "$mode" "$began" "$down_at" "$ready_at" "$(awk -v a="$began" -v b="$ready_at" 'BEGIN { printf "%.3f", b - a }')"
