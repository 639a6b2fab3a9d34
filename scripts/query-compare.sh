#!/usr/bin/env bash
# What a user sees, side by side: Strata, VictoriaMetrics 1.79 and Prometheus 2.42 each sent
# the same catch-up of hours of node_exporter data through remote write (time-major, as a
# Prometheus that was cut off sends it), then live remote write at a fixed rate, then the same
# dashboard queries (bench/src/query.rs lists them; the method is there too).
#
# For each system: start it (pinned to the last CPU when there are two or more) in a fresh
# data directory on a free loopback port, run `query-compare run` (pinned to CPU 0) against it,
# stop it. `run` loads (server CPU measured), waits until the server has been idle for 65 s
# (RSS measured: settled), sends the live phase (latency of every request from when it was
# due), times every query (first run and median of the repeats; RSS measured again), has the
# system persist and merge its data its own way (Strata and Prometheus: a snapshot;
# VictoriaMetrics: force_flush and force_merge) and measures the bytes, and probes the disk's
# fdatasync latency beside the data. Then one table of query medians and one of what each
# server cost, side by side. VictoriaMetrics runs with its result cache off
# (-search.disableCache), since every query is repeated.
#
# Then, side by side: every system that loaded serves its persisted data again, all at once on
# the server's CPU, and the dashboard is timed against each in turn (`query-compare time`),
# the order rotated every round. Each system's queries in the main runs happen minutes apart,
# so a slow stretch of the host can decide their ratio; within a round it falls on every
# system. The table ends with each round's totals and the ratio of their sums.
#
# The datasets: `generated` (the project's own node_exporter-like fleet),
# `template:PATH` (every sample line of a real exposition, such as
# ../shared/data/node_exporter-1.5-scrape.txt, on every host: counters advancing by random
# amounts at the decimals the exporter wrote, gauges with noise, 20% of scrapes 1-3 ms late)
# and `scrapes:PATH` (real scrapes replayed, such as bench/data/node-exporter-debian-1s.prom.zst
# recorded by scripts/record-node-exporter.sh: nothing generated but the timestamps).
#
# docs/perf.md (issue 23) runs it as
#   scripts/query-compare.sh --hosts 100 --hours 24 --systems victoriametrics,strata \
#       --dataset scrapes:bench/data/node-exporter-debian-1s.prom.zst --results DIR
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
  --dataset D      generated (default), template:PATH (a Prometheus text exposition) or
                   scrapes:PATH (a recording of scripts/record-node-exporter.sh)
  --shards N       requests in flight during the catch-up (default 4)
  --batch-samples N  samples per request (default 2000)
  --live-seconds S   live remote write after the catch-up (default 60; 0 for none)
  --live-rate R      samples per second of the live phase (default 50000)
  --systems LIST   comma-separated subset of strata,strata-base,victoriametrics,prometheus
  --results DIR    keep the JSON results, the table and the server logs in DIR
  --side-by-side N  after every system's run, serve all their data at once and time the
                   dashboard against each in turn, N rounds, the order rotated every round
                   (default 6; 0 for none): the warm ratio that this host's pace cannot
                   decide, since a slow stretch falls on every system of a round
  --keep-data      also keep each system's data directory in DIR (as SYSTEM-data, with the
                   data's end time in DIR/end-ms), for `query-compare time` and profiling
  --no-pin         do not pin the server and the generator to separate CPUs
  -h, --help       this text

environment: PROMETHEUS, VICTORIA_METRICS (binaries; default: found on PATH),
             STRATA_BASE (another strata binary, for the system strata-base)
USAGE
}

hosts=30
hours=26
repeats=7
dataset=generated
shards=4
batch_samples=2000
live_seconds=60
live_rate=50000
systems="strata,victoriametrics,prometheus"
results_dir=""
keep_data=0
side_by_side=6
pin=1
while [ $# -gt 0 ]; do
    case "$1" in
        --hosts) hosts=$2; shift 2 ;;
        --hours) hours=$2; shift 2 ;;
        --repeats) repeats=$2; shift 2 ;;
        --dataset) dataset=$2; shift 2 ;;
        --shards) shards=$2; shift 2 ;;
        --batch-samples) batch_samples=$2; shift 2 ;;
        --live-seconds) live_seconds=$2; shift 2 ;;
        --live-rate) live_rate=$2; shift 2 ;;
        --systems) systems=$2; shift 2 ;;
        --results) results_dir=$2; shift 2 ;;
        --keep-data) keep_data=1; shift ;;
        --side-by-side) side_by_side=$2; shift 2 ;;
        --no-pin) pin=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "query-compare: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=servers.sh
. "$root/scripts/servers.sh"
IFS=',' read -r -a system_list <<<"$systems"
[ "$keep_data" = 0 ] || [ -n "$results_dir" ] || die "--keep-data needs --results DIR"
require_systems "${system_list[@]}"

build_binaries query-compare
pin_cpus
say "pinning: $pinning"

make_work_dir query-compare

# Every system gets the same data, ending two hours ago on a whole minute: the live phase
# continues it from there (at 50,000 samples/s over 15,000 series, 48 minutes of scrapes), and
# stays in the past.
end_ms=$(( ($(date +%s) - 7200) / 60 * 60 * 1000 ))
failed=()
results=()
loaded=()
for system in "${system_list[@]}"; do
    dir=$work/$system
    mkdir -p "$dir/data"
    start_system "$system" "$dir/data" "$dir/server.log" -search.disableCache
    version=$(version_of "$system")
    say "$system ($version) on $server_url"
    if "${generator_pin[@]}" "$bench" run --system "$system" --version "$version" \
        --url "$server_url" --ready-url "$server_url$ready_path" --hosts "$hosts" \
        --hours "$hours" --end-ms "$end_ms" --repeats "$repeats" --server-pid "$server_pid" \
        --dataset "$dataset" --shards "$shards" --batch-samples "$batch_samples" \
        --live-seconds "$live_seconds" --live-rate "$live_rate" --data-dir "$dir/data" \
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
    [ -f "$dir/result.json" ] && loaded+=("$system")
done

# Side by side: every system that loaded serves its data again (on the server CPU, all at
# once), and the dashboard is timed against each in turn, the order rotated every round.
if [ "$side_by_side" -gt 0 ] && [ ${#loaded[@]} -ge 2 ]; then
    say "side by side: the dashboard against ${loaded[*]} in turn, $side_by_side rounds"
    pids=() urls=() readies=()
    for system in "${loaded[@]}"; do
        start_system "$system" "$work/$system/data" "$work/$system/side.log" -search.disableCache
        pids+=("$server_pid") urls+=("$server_url") readies+=("$server_url$ready_path")
    done
    server_pid=""
    : >"$work/side-by-side.txt"
    n=${#loaded[@]}
    for ((round = 1; round <= side_by_side; round++)); do
        for ((k = 0; k < n; k++)); do
            i=$(( (k + round) % n ))
            total=$("${generator_pin[@]}" "$bench" time --url "${urls[$i]}" \
                --ready-url "${readies[$i]}" --end-ms "$end_ms" --repeats "$repeats" 2>&1 \
                | awk '/total of medians/ {print $(NF-1)}')
            echo "$round ${loaded[$i]} ${total:-failed}" >>"$work/side-by-side.txt"
        done
    done
    for pid in "${pids[@]}"; do
        server_pid=$pid
        stop_server
    done
    {
        echo
        echo "side by side: totals of medians (ms) per round, each system in turn"
        first=${loaded[0]}
        for system in "${loaded[@]}"; do [ "$system" != strata ] || first=strata; done
        awk -v first="$first" '
            $3 == "failed" { bad = 1 }
            { sum[$2] += $3; row[$1] = row[$1] sprintf("  %s %s", $2, $3) }
            END {
                for (r = 1; r in row; r++) print "  round " r ":" row[r]
                for (s in sum) if (s != first)
                    printf "  %s / %s: %.3f (sums %.1f / %.1f ms)\n", first, s, sum[first] / sum[s], sum[first], sum[s]
                if (bad) print "  (a round failed: see the servers side.log)"
            }' "$work/side-by-side.txt"
    } >"$work/side.txt"
fi

for system in "${system_list[@]}"; do
    dir=$work/$system
    [ -d "$dir/data" ] || continue
    if [ "$keep_data" = 1 ]; then
        rm -rf "${results_dir:?}/$system-data"
        mv "$dir/data" "$results_dir/$system-data"
        echo "$end_ms" >"$results_dir/end-ms"
    else
        rm -rf "$dir/data"
    fi
done

[ ${#results[@]} -gt 0 ] || die "no system produced results"
echo
"$bench" report "${results[@]}" | tee "$work/table.txt"
[ ! -f "$work/side.txt" ] || cat "$work/side.txt" | tee -a "$work/table.txt"
[ -z "$results_dir" ] || cp "$work/table.txt" "$results_dir/table.txt"
[ ${#failed[@]} -eq 0 ] || die "FAILED: ${failed[*]}"
