#!/usr/bin/env bash
# PromQL query latency, side by side: Strata, VictoriaMetrics 1.79 and Prometheus 2.42 each
# loaded with the same hours of node_exporter-like data through remote write, then timed on
# the same dashboard queries (bench/src/query.rs lists them; the method is there too).
#
# For each system: start it (pinned to the last CPU when there are two or more) in a fresh
# data directory on a free loopback port, run `query-compare run` (pinned to CPU 0) against it
# (it loads, waits until the server has been idle for 65 s, then times), stop it; then print one table with the medians side by side. VictoriaMetrics runs with its
# result cache off (-search.disableCache), since every query is repeated.
#
# Needs: cargo, and for the other systems Debian's `prometheus` and `victoria-metrics` (or
# $PROMETHEUS, $VICTORIA_METRICS). Everything talks to 127.0.0.1 only. With the defaults
# (30 hosts, 26 h: ~97M samples) loading takes ~3 minutes for Strata and VictoriaMetrics and
# ~15 for Prometheus; ~4 GiB of memory.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: scripts/query-compare.sh [options]

  --hosts N        hosts in the dataset, ~517 series each (default 30)
  --hours H        hours of data (default 26; the longest query reads 24)
  --repeats N      timed runs of each query after a warm-up (default 7)
  --systems LIST   comma-separated subset of strata,strata-base,victoriametrics,prometheus
  --results DIR    keep the JSON results, the table and the server logs in DIR
  --no-pin         do not pin the server and the generator to separate CPUs
  -h, --help       this text

environment: PROMETHEUS, VICTORIA_METRICS (binaries; default: found on PATH),
             STRATA_BASE (another strata binary, for the system strata-base)
USAGE
}

hosts=30
hours=26
repeats=7
systems="strata,victoriametrics,prometheus"
results_dir=""
pin=1
while [ $# -gt 0 ]; do
    case "$1" in
        --hosts) hosts=$2; shift 2 ;;
        --hours) hours=$2; shift 2 ;;
        --repeats) repeats=$2; shift 2 ;;
        --systems) systems=$2; shift 2 ;;
        --results) results_dir=$2; shift 2 ;;
        --no-pin) pin=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "query-compare: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=servers.sh
. "$root/scripts/servers.sh"
IFS=',' read -r -a system_list <<<"$systems"
require_systems "${system_list[@]}"

build_binaries query-compare
pin_cpus
say "pinning: $pinning"

make_work_dir query-compare

# Every system gets the same data, ending five minutes ago on a whole minute.
end_ms=$(( ($(date +%s) - 300) / 60 * 60 * 1000 ))
failed=()
results=()
for system in "${system_list[@]}"; do
    dir=$work/$system
    mkdir -p "$dir/data"
    start_system "$system" "$dir/data" "$dir/server.log" -search.disableCache
    version=$(version_of "$system")
    say "$system ($version) on $server_url"
    if "${generator_pin[@]}" "$bench" run --system "$system" --version "$version" \
        --url "$server_url" --ready-url "$server_url$ready_path" --hosts "$hosts" \
        --hours "$hours" --end-ms "$end_ms" --repeats "$repeats" --server-pid "$server_pid" \
        --out "$dir/result.json"; then
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
[ ${#failed[@]} -eq 0 ] || die "FAILED: ${failed[*]}"
