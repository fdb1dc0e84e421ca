#!/usr/bin/env bash
# Run the exporter with S shards out-of-cluster against the kind cluster and measure it
# with collect.py (results/*.json). Panopticon: a redis-server, S `panopticon shard`
# processes and one `panopticon aggregator`; optionally kube-state-metrics with
# --total-shards=S afterwards, for comparison. Needs Docker, kind and kubectl; never run in CI.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: run.sh [--preset small|medium|large|FILE] [--shards S] [--ksm | --exporters LIST]
              [--load] [--interval SECONDS] [--steady SECONDS] [--no-churn]
              [--fault restart|apiserver] [--name CLUSTER] [--results DIR]

  --preset P        workload preset (default small); its churn rate and seconds are used
  --shards S        shards of each exporter (default 2)
  --ksm             also measure kube-state-metrics (after Panopticon); same as
                    --exporters panopticon,ksm
  --exporters LIST  comma-separated, run one after the other: panopticon, ksm
  --load            run generate.py --preset P first
  --interval N      seconds between scrapes (default 5)
  --steady N        seconds of the steady phase (default 60)
  --no-churn        skip the churn phase
  --fault MODE      after the churn: faults.sh MODE (restart | apiserver), then measure recovery
  --name CLUSTER    kind cluster (default panopticon-bench; env CLUSTER)
  --results DIR     where results go (default benchmarks/kind/results)

Environment: PANOPTICON (the panopticon command), KSM_BIN (a kube-state-metrics binary;
default: one on PATH, else the KSM_IMAGE container with host networking), KSM_IMAGE
(default registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.19.1), PYTHON.
EOF
}

case "${1:-}" in -h | --help) usage && exit 0 ;; esac
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_tools docker kind kubectl

preset=small
shards=2
exporters=panopticon
load=false
interval=5
steady=60
churn=()
fault=()
results="$KIND_DIR/results"
while [ $# -gt 0 ]; do
  case "$1" in
    --preset) preset=$2 && shift ;;
    --shards) shards=$2 && shift ;;
    --ksm) exporters=panopticon,ksm ;;
    --exporters) exporters=$2 && shift ;;
    --load) load=true ;;
    --interval) interval=$2 && shift ;;
    --steady) steady=$2 && shift ;;
    --no-churn) churn=(--churn-rate 0) ;;
    --fault) fault=(--fault "$2") && shift ;;
    --name) CLUSTER=$2 && shift ;;
    --results) results=$2 && shift ;;
    *) usage >&2 && exit 2 ;;
  esac
  shift
done

PANOPTICON=${PANOPTICON:-$ROOT/.venv/bin/panopticon}
[ -x "$PANOPTICON" ] || PANOPTICON=$(command -v panopticon || true)
KSM_IMAGE=${KSM_IMAGE:-registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.19.1}
KSM_BIN=${KSM_BIN:-$(command -v kube-state-metrics || true)}
case ",$exporters," in
  *,panopticon,*)
    require_tools redis-server
    [ -n "$PANOPTICON" ] || die "no panopticon command (run scripts/setup, or set PANOPTICON)"
    ;;
esac
case ",$exporters," in
  *,ksm,*) [ -n "$KSM_BIN" ] || require_docker_daemon ;;
esac

kubeconfig=$(kubeconfig_file)
wait_api "$kubeconfig" 60 || die "the API server of '$CLUSTER' is not ready"
stamp=$(date +%Y%m%d-%H%M%S)
logs="$WORK/$CLUSTER/logs/$stamp"
mkdir -p "$logs" "$results"

pids=()
containers=()
stop_all() {
  local pid name
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for name in "${containers[@]}"; do docker rm -f "$name" >/dev/null 2>&1 || true; done
  pids=()
  containers=()
}
trap stop_all EXIT
trap 'exit 130' INT TERM

if [ "$load" = true ]; then
  "$PYTHON" "$KIND_DIR/generate.py" --preset "$preset" --cluster "$CLUSTER"
fi

common=(--kubeconfig "$kubeconfig" --cluster "$CLUSTER" --preset "$preset" --shards "$shards"
  --interval "$interval" --steady "$steady" "${churn[@]}" "${fault[@]}")

run_panopticon() {
  local ports redis_url started i port procs=() ready=()
  read -r -a ports <<<"$(free_ports $((shards + 3)))"
  redis-server --port "${ports[0]}" --bind 127.0.0.1 --save "" --appendonly no >"$logs/redis.log" 2>&1 &
  pids+=($!)
  procs+=(--proc "redis=$!")
  wait_port "${ports[0]}" 10 || die "redis-server did not start (see $logs/redis.log)"
  redis_url="redis://127.0.0.1:${ports[0]}/0"
  started=$(now)
  for ((i = 0; i < shards; i++)); do
    port=${ports[$((i + 3))]}
    "$PANOPTICON" shard --kubeconfig "$kubeconfig" --redis "$redis_url" --shard-index "$i" --shards "$shards" \
      --host 127.0.0.1 --port "$port" --no-status --log-level WARNING >"$logs/shard-$i.log" 2>&1 &
    pids+=($!)
    procs+=(--proc "shard-$i=$!")
    ready+=(--ready "http://127.0.0.1:$port/readyz")
  done
  "$PANOPTICON" aggregator --redis "$redis_url" --host 127.0.0.1 --port "${ports[1]}" \
    --telemetry-port "${ports[2]}" >"$logs/aggregator.log" 2>&1 &
  pids+=($!)
  procs+=(--proc "aggregator=$!")
  "$PYTHON" "$KIND_DIR/collect.py" "${common[@]}" --exporter panopticon --started "$started" \
    --target "http://127.0.0.1:${ports[1]}/metrics" "${ready[@]}" "${procs[@]}" \
    --out "$results/$(basename "$preset" .yaml)-panopticon-s$shards-$stamp.json"
}

run_ksm() {
  local ports started i port tel name flags procs=() targets=()
  read -r -a ports <<<"$(free_ports $((shards * 2)))"
  [ -n "$KSM_BIN" ] || docker pull --quiet "$KSM_IMAGE" >/dev/null # not part of the measured start-up
  started=$(now)
  for ((i = 0; i < shards; i++)); do
    port=${ports[$((2 * i))]}
    tel=${ports[$((2 * i + 1))]}
    flags=(--host=127.0.0.1 --port="$port" --telemetry-host=127.0.0.1 --telemetry-port="$tel"
      --total-shards="$shards" --shard="$i")
    if [ -n "$KSM_BIN" ]; then
      "$KSM_BIN" --kubeconfig="$kubeconfig" "${flags[@]}" >"$logs/ksm-$i.log" 2>&1 &
      pids+=($!)
      procs+=(--proc "ksm-$i=$!")
    else
      name="$CLUSTER-ksm-$i-$stamp"
      docker run -d --name "$name" --network host --user "$(id -u):$(id -g)" \
        -v "$kubeconfig:/kubeconfig:ro" "$KSM_IMAGE" --kubeconfig=/kubeconfig "${flags[@]}" >/dev/null
      containers+=("$name")
      procs+=(--container "ksm-$i=$name")
    fi
    targets+=(--target "http://127.0.0.1:$port/metrics")
  done
  "$PYTHON" "$KIND_DIR/collect.py" "${common[@]}" --exporter ksm --started "$started" \
    "${targets[@]}" "${procs[@]}" --out "$results/$(basename "$preset" .yaml)-ksm-s$shards-$stamp.json"
}

status=0
IFS=, read -r -a list <<<"$exporters"
for exporter in "${list[@]}"; do
  case "$exporter" in
    panopticon) run_panopticon || status=$? ;;
    ksm) run_ksm || status=$? ;;
    *) die "unknown exporter '$exporter' (panopticon, ksm)" ;;
  esac
  stop_all
done
echo "results: $results (logs: $logs)"
exit "$status"
