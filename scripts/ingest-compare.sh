#!/usr/bin/env bash
# Remote-write ingestion, end to end: Strata, VictoriaMetrics and Prometheus measured the same
# way, one after the other, each in a fresh data directory on a free loopback port.
#
# For each system: start it (pinned to the last CPU when taskset is there and the machine has
# two or more), wait until it is ready, run `ingest-compare run` (pinned to CPU 0) against it,
# stop it with SIGTERM; then print one table with the three side by side and Strata's ratio to
# each. The method (phases, what is read from /proc, the open-loop fixed load) is described in
# bench/src/ingest.rs.
#
# Needs: cargo (builds Strata and the generator in release), and for the other two systems
# Debian's packages `prometheus` (2.42) and `victoria-metrics` (1.79), or their binaries named
# by $PROMETHEUS and $VICTORIA_METRICS. Everything talks to 127.0.0.1 only.
#
# Heavy: about 7 minutes and ~5 GiB of memory with the defaults (2,000 hosts, ~1M series) on a
# 2-core machine; run nothing else meanwhile.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/ingest-compare.sh [options]

  --hosts N               hosts in the dataset, ~517 series each (default 2000, ~1.03M series)
  --throughput-scrapes N  scrapes of every host sent as fast as possible (default 8)
  --latency-rate R        fixed load, requests/s over all connections (default 20,
                          40,000 samples/s: about a third of Prometheus's maximum here)
  --latency-seconds S     length of the fixed-load phase in seconds (default 60)
  --shards N              connections, as Prometheus's remote-write shards (default 8)
  --batch-samples N       samples per request (default 2000, Prometheus 2.42's default)
  --systems LIST          comma-separated subset of strata,strata-base,victoriametrics,prometheus
  --results DIR           keep the JSON results, the table and the server logs in DIR
  --no-pin                do not pin the server and the generator to separate CPUs
  -h, --help              this text

environment: PROMETHEUS, VICTORIA_METRICS (binaries; default: found on PATH),
             STRATA_BASE (another strata binary, for the system strata-base),
             CARGO_TARGET_DIR (where cargo builds; default: target/ in the workspace)
EOF
}

hosts=2000
throughput_scrapes=8
latency_rate=20
latency_seconds=60
shards=8
batch_samples=2000
systems="strata,victoriametrics,prometheus"
results_dir=""
pin=1
while [ $# -gt 0 ]; do
    case "$1" in
        --hosts) hosts=$2; shift 2 ;;
        --throughput-scrapes) throughput_scrapes=$2; shift 2 ;;
        --latency-rate) latency_rate=$2; shift 2 ;;
        --latency-seconds) latency_seconds=$2; shift 2 ;;
        --shards) shards=$2; shift 2 ;;
        --batch-samples) batch_samples=$2; shift 2 ;;
        --systems) systems=$2; shift 2 ;;
        --results) results_dir=$2; shift 2 ;;
        --no-pin) pin=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "ingest-compare: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=servers.sh
. "$root/scripts/servers.sh"
IFS=',' read -r -a system_list <<<"$systems"

require_systems "${system_list[@]}"

build_binaries ingest-compare

pin_cpus
say "pinning: $pinning"

make_work_dir ingest-compare

# Every system gets the same timestamps, two hours back: old enough to be history, recent enough
# for Prometheus's head and VictoriaMetrics's retention, and never behind Strata's newest sample.
start_ms=$(( $(date +%s) * 1000 - 2 * 3600 * 1000 ))
failed=()
results=()
for system in "${system_list[@]}"; do
    dir=$work/$system
    mkdir -p "$dir/data"
    start_system "$system" "$dir/data" "$dir/server.log"
    version=$(version_of "$system")
    say "$system ($version) on $server_url"
    if "${generator_pin[@]}" "$bench" run --system "$system" --version "$version" \
        --pinning "$pinning" --pid "$server_pid" \
        --write-url "$server_url/api/v1/write" --ready-url "$server_url$ready_path" \
        --out "$dir/result.json" --hosts "$hosts" --start-ms "$start_ms" --shards "$shards" \
        --batch-samples "$batch_samples" --throughput-scrapes "$throughput_scrapes" \
        --latency-rate "$latency_rate" --latency-seconds "$latency_seconds"; then
        :
    else
        failed+=("$system")
        say "$system failed; the end of its log:"
        tail -n 20 "$dir/server.log" >&2 || true
    fi
    stop_server
    [ -f "$dir/result.json" ] && results+=("$dir/result.json")
    if [ -n "$results_dir" ]; then
        mkdir -p "$results_dir"
        cp "$dir/server.log" "$results_dir/$system.log"
        [ -f "$dir/result.json" ] && cp "$dir/result.json" "$results_dir/$system.json"
    fi
    rm -rf "$dir/data"
done

[ ${#results[@]} -gt 0 ] || die "no system produced results"
echo
"$bench" report "${results[@]}" | tee "$work/table.txt"
[ -z "$results_dir" ] || cp "$work/table.txt" "$results_dir/table.txt"
if [ ${#failed[@]} -gt 0 ]; then
    die "FAILED: ${failed[*]} (errors are counted in the table; see the messages above)"
fi
