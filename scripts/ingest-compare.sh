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
  --systems LIST          comma-separated subset of strata,victoriametrics,prometheus
  --results DIR           keep the JSON results, the table and the server logs in DIR
  --no-pin                do not pin the server and the generator to separate CPUs
  -h, --help              this text

environment: PROMETHEUS, VICTORIA_METRICS (binaries; default: found on PATH),
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

say() { echo "ingest-compare: $*" >&2; }
die() { say "$*"; exit 1; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IFS=',' read -r -a system_list <<<"$systems"

# Every program this run needs, named with how to get it when missing.
missing=0
require() {
    local path=$1 what=$2
    if ! command -v "$path" >/dev/null 2>&1; then
        say "missing: $path ($what)"
        missing=1
    fi
}
require cargo "the Rust toolchain, to build strata and ingest-compare: https://rustup.rs"
prometheus=${PROMETHEUS:-prometheus}
victoria_metrics=${VICTORIA_METRICS:-victoria-metrics}
for system in "${system_list[@]}"; do
    case "$system" in
        strata) ;;
        prometheus)
            require "$prometheus" "Prometheus 2.42: apt-get install prometheus, or PROMETHEUS=/path/to/prometheus" ;;
        victoriametrics)
            require "$victoria_metrics" "VictoriaMetrics 1.79: apt-get install victoria-metrics, or VICTORIA_METRICS=/path/to/victoria-metrics" ;;
        *) die "unknown system $system: choose from strata, victoriametrics, prometheus" ;;
    esac
done
[ "$missing" = 0 ] || die "install what is missing above and run again"

say "building strata and ingest-compare (release)"
(cd "$root" && cargo build --release --quiet -p strata-server -p strata-bench)
target_dir=${CARGO_TARGET_DIR:-$root/target}
case "$target_dir" in /*) ;; *) target_dir=$root/$target_dir ;; esac
strata=$target_dir/release/strata
bench=$target_dir/release/ingest-compare
[ -x "$strata" ] && [ -x "$bench" ] || die "the build did not produce $strata and $bench"

# The server gets the last CPU, the generator CPU 0: neither steals the other's time, and the
# server's CPU-seconds are its own work.
server_pin=()
generator_pin=()
cpus=$(nproc)
if [ "$pin" = 1 ] && command -v taskset >/dev/null 2>&1 && [ "$cpus" -ge 2 ] \
    && [ "$cpus" = "$(getconf _NPROCESSORS_ONLN)" ]; then
    last=$((cpus - 1))
    if [ "$cpus" -gt 2 ]; then server_cpus="1-$last"; else server_cpus="1"; fi
    server_pin=(taskset -c "$server_cpus")
    generator_pin=(taskset -c 0)
    pinning="server on CPU $server_cpus, generator on CPU 0 (taskset; $cpus CPUs)"
else
    pinning="not pinned ($cpus CPUs; taskset $(command -v taskset >/dev/null && echo present || echo missing))"
fi
say "pinning: $pinning"

work=$(mktemp -d "${TMPDIR:-/tmp}/ingest-compare.XXXXXX")
server_pid=""

# Stops the running server: SIGTERM, then SIGKILL if it has not exited within 60 s.
stop_server() {
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    local i state
    for ((i = 0; i < 600; i++)); do
        state=$(awk '{print $3}' "/proc/$server_pid/stat" 2>/dev/null || echo gone)
        if [ "$state" = gone ] || [ "$state" = Z ]; then break; fi
        sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null && [ "$state" != Z ]; then
        say "pid $server_pid did not stop within 60 s of SIGTERM: SIGKILL"
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}
cleanup() {
    stop_server
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

version_of() {
    case "$1" in
        strata) "$strata" --version 2>/dev/null | head -n1 ;;
        prometheus) "$prometheus" --version 2>&1 | head -n1 ;;
        victoriametrics)
            # Debian's build prints an empty version; its package knows.
            local v
            v=$("$victoria_metrics" -version 2>&1 | head -n1)
            if [ -z "$v" ] && command -v dpkg-query >/dev/null 2>&1; then
                v="victoria-metrics $(dpkg-query -W -f '${Version}' victoria-metrics 2>/dev/null || echo '?') (Debian package)"
            fi
            echo "${v:-unknown}" ;;
    esac
}

# Every system gets the same timestamps, two hours back: old enough to be history, recent enough
# for Prometheus's head and VictoriaMetrics's retention, and never behind Strata's newest sample.
start_ms=$(( $(date +%s) * 1000 - 2 * 3600 * 1000 ))
failed=()
results=()
for system in "${system_list[@]}"; do
    dir=$work/$system
    mkdir -p "$dir/data"
    port=$("$bench" free-port)
    case "$system" in
        strata)
            cmd=("$strata" serve --listen "127.0.0.1:$port" --data-dir "$dir/data")
            ready=/-/ready ;;
        victoriametrics)
            cmd=("$victoria_metrics" "-storageDataPath=$dir/data" "-httpListenAddr=127.0.0.1:$port")
            ready=/health ;;
        prometheus)
            # No scrape jobs: a self-scrape would write samples at the current time, after
            # which Prometheus rejects the benchmark's older ones as out of bounds.
            printf 'global:\n  scrape_interval: 15s\n' >"$dir/prometheus.yml"
            cmd=("$prometheus" "--config.file=$dir/prometheus.yml" "--storage.tsdb.path=$dir/data"
                "--web.listen-address=127.0.0.1:$port" --web.enable-remote-write-receiver)
            ready=/-/ready ;;
    esac
    version=$(version_of "$system")
    say "$system ($version) on 127.0.0.1:$port"
    "${server_pin[@]}" "${cmd[@]}" >"$dir/server.log" 2>&1 &
    server_pid=$!
    if "${generator_pin[@]}" "$bench" run --system "$system" --version "$version" \
        --pinning "$pinning" --pid "$server_pid" \
        --write-url "http://127.0.0.1:$port/api/v1/write" --ready-url "http://127.0.0.1:$port$ready" \
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
