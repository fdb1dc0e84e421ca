#!/usr/bin/env bash
# Create the benchmark kind cluster from kind.yaml; its kubeconfig goes to
# .work/<name>/kubeconfig (your ~/.kube/config is left alone). Needs Docker, kind >= 0.32
# and kubectl; never run in CI.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: setup.sh [--name NAME] [--image IMAGE] [--no-sharding] [--watch-list-compression on|off] [--recreate]

  --name NAME      cluster name (default panopticon-bench; env CLUSTER)
  --image IMAGE    node image (default: kind.yaml's kindest/node:v1.36.1 pin; env KIND_NODE_IMAGE)
  --no-sharding    ShardedListAndWatch off (kind.yaml turns it on)
  --watch-list-compression on|off
                   set the WatchListCompression gate (on by default in 1.37; the gate must
                   exist in the node image's Kubernetes version)
  --recreate       delete the cluster first if it exists

Then: generate.py --preset small (load a workload), run.sh --preset small (measure).
Fake nodes come from the workload itself (the generator's Node objects); kind.yaml keeps
the controllers that would act on them off, so no kwok is needed.
EOF
}

case "${1:-}" in -h | --help) usage && exit 0 ;; esac
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_tools docker kind kubectl
require_docker_daemon

image=${KIND_NODE_IMAGE:-}
sharding=true
compression=""
recreate=false
while [ $# -gt 0 ]; do
  case "$1" in
    --name) CLUSTER=$2 && shift ;;
    --image) image=$2 && shift ;;
    --no-sharding) sharding=false ;;
    --watch-list-compression)
      case "$2" in on) compression=true ;; off) compression=false ;; *) die "--watch-list-compression on|off" ;; esac
      shift
      ;;
    --recreate) recreate=true ;;
    *) usage >&2 && exit 2 ;;
  esac
  shift
done

# kind >= 0.32: the first release with Kubernetes 1.36 node images and v1beta4 kubeadm configs.
version=$(kind version)
minor=$(sed -n 's/^kind v0\.\([0-9]*\)\..*/\1/p' <<<"$version")
if [ -n "$minor" ] && [ "$minor" -lt 32 ]; then
  die "kind >= 0.32 needed, found: $version"
fi

dir="$WORK/$CLUSTER"
mkdir -p "$dir"
config="$dir/kind.yaml"
# awk, not sed -i: the same on GNU and BSD (macOS).
awk -v sharding="$sharding" -v compression="$compression" '
  /^  ShardedListAndWatch: true$/ { print "  ShardedListAndWatch: " sharding; next }
  { print }
  /^featureGates:$/ && compression != "" { print "  WatchListCompression: " compression }
' "$KIND_DIR/kind.yaml" >"$config"

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  if [ "$recreate" = true ]; then
    kind delete cluster --name "$CLUSTER"
  else
    echo "kind cluster '$CLUSTER' exists (use --recreate to start over); kubeconfig: $(kubeconfig_file)"
    exit 0
  fi
fi

args=(create cluster --name "$CLUSTER" --config "$config" --kubeconfig "$dir/kubeconfig" --wait 5m)
[ -n "$image" ] && args+=(--image "$image")
kind "${args[@]}"
kubeconfig=$(kubeconfig_file)
wait_api "$kubeconfig" 120 || die "the API server did not become ready"

echo "cluster '$CLUSTER' is up; kubeconfig: $kubeconfig"
echo "feature gates as the API server reports them:"
kubectl --kubeconfig "$kubeconfig" get --raw /metrics |
  grep -E '^kubernetes_feature_enabled\{name="(ShardedListAndWatch|WatchList|WatchListCompression)"' ||
  echo "  (none of ShardedListAndWatch, WatchList, WatchListCompression reported)"
echo "next: $PYTHON $KIND_DIR/generate.py --preset small --cluster $CLUSTER"
