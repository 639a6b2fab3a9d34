#!/usr/bin/env bash
# What evaluating recording rules costs, side by side: Strata and Prometheus 2.42 each get the
# same node_exporter-like fleet (100 hosts by default: the last hour loaded, then live remote
# write at the fleet's own pace), then 1,000 recording rules of dashboard shape (rate, sum by,
# histogram_quantile, ratios) in 20 groups at a 15 s interval, added by a configuration reload.
# The method is in bench/src/rules.rs: CPU per evaluation round is the server's CPU per second
# with the rules minus without, times the interval; group evaluation times come from each
# server's own rule-group metrics; Strata's recorded values are evaluated again in Prometheus
# at their timestamps and compared.
#
# docs/perf.md (issue 15) runs it as
#   scripts/rules-compare.sh --results DIR
#
# Needs: cargo, curl, and Debian's `prometheus` (or $PROMETHEUS). Everything talks to 127.0.0.1
# only. About 8 minutes per system with the defaults.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: scripts/rules-compare.sh [options]

  --hosts N        hosts of the fleet, ~517 series each (default 100)
  --rules N        recording rules (default 1000)
  --groups N       rule groups (default 20)
  --interval S     evaluation interval, seconds (default 15)
  --baseline S     seconds of live load before the rules (default 120)
  --measure S      seconds measured with the rules (default 240)
  --systems LIST   strata,prometheus (default; Strata first: Prometheus checks its values)
  --compare FILE   a strata result of an earlier run to check the values of (with --start-ms
                   of that run, so the same data is loaded), e.g. to run prometheus alone
  --start-ms MS    the dataset's first scrape (default: an hour before now, to the minute)
  --results DIR    keep the JSON results, the table and the server logs in DIR
  --no-pin         do not pin the server and the generator to separate CPUs
  -h, --help       this text
USAGE
}

hosts=100
rules=1000
groups=20
interval=15
baseline=120
measure=240
systems="strata,prometheus"
results_dir=""
pin=1
compare_with=""
start_ms=""
while [ $# -gt 0 ]; do
    case "$1" in
        --hosts) hosts=$2; shift 2 ;;
        --rules) rules=$2; shift 2 ;;
        --groups) groups=$2; shift 2 ;;
        --interval) interval=$2; shift 2 ;;
        --baseline) baseline=$2; shift 2 ;;
        --measure) measure=$2; shift 2 ;;
        --systems) systems=$2; shift 2 ;;
        --results) results_dir=$2; shift 2 ;;
        --compare) compare_with=$2; shift 2 ;;
        --start-ms) start_ms=$2; shift 2 ;;
        --no-pin) pin=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "rules-compare: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=servers.sh
. "$root/scripts/servers.sh"
IFS=',' read -r -a system_list <<<"$systems"
require_systems "${system_list[@]}"
build_binaries rules-compare
pin_cpus
say "pinning: $pinning"
make_work_dir rules-compare

# One start for every system: the last hour before the first run, so each run loads the same
# scrapes up to its own start and Prometheus holds the times Strata recorded at.
[ -n "$start_ms" ] || start_ms=$(( ($(date +%s) - 3600) / 60 * 60 * 1000 ))
say "the dataset starts at $start_ms"
results=()
previous=$compare_with
for system in "${system_list[@]}"; do
    dir=$work/$system
    mkdir -p "$dir/data"
    port=$("$bench" free-port)
    rules_file=$dir/rules.yml
    case "$system" in
        strata)
            printf 'global:\n  evaluation_interval: %ss\n' "$interval" >"$dir/config.yml"
            printf 'global:\n  evaluation_interval: %ss\nrule_files: [%s]\n' "$interval" "$rules_file" >"$dir/with-rules.yml"
            cmd=("$strata" serve --listen "127.0.0.1:$port" --data-dir "$dir/data" --config "$dir/config.yml")
            prefix=strata ;;
        prometheus)
            printf 'global:\n  scrape_interval: 15s\n  evaluation_interval: %ss\n' "$interval" >"$dir/config.yml"
            printf 'global:\n  scrape_interval: 15s\n  evaluation_interval: %ss\nrule_files: [%s]\n' "$interval" "$rules_file" >"$dir/with-rules.yml"
            cmd=("$prometheus" "--config.file=$dir/config.yml" "--storage.tsdb.path=$dir/data"
                "--web.listen-address=127.0.0.1:$port" --web.enable-remote-write-receiver
                --web.enable-lifecycle)
            prefix=prometheus ;;
        *) die "rules-compare compares strata and prometheus, not $system" ;;
    esac
    "${server_pin[@]}" "${cmd[@]}" >"$dir/server.log" 2>&1 &
    server_pid=$!
    url="http://127.0.0.1:$port"
    for _ in $(seq 1 600); do
        curl -fsS "$url/-/ready" >/dev/null 2>&1 && break
        sleep 0.1
    done
    version=$(version_of "$system")
    say "$system ($version) on $url"
    compare=()
    [ -n "$previous" ] && compare=(--compare "$previous")
    "${generator_pin[@]}" "$bench" run --system "$system" --version "$version" --url "$url" \
        --server-pid "$server_pid" --hosts "$hosts" --start-ms "$start_ms" --rules "$rules" \
        --groups "$groups" --interval-s "$interval" --baseline-s "$baseline" \
        --measure-s "$measure" --config "$dir/config.yml" \
        --config-with-rules "$dir/with-rules.yml" --rules-path "$rules_file" \
        --metrics-prefix "$prefix" "${compare[@]}" --out "$dir/result.json"
    stop_server
    [ -f "$dir/result.json" ] || die "$system wrote no result"
    results+=("$dir/result.json")
    if [ "$system" = strata ]; then previous=$dir/result.json; fi
    if [ -n "$results_dir" ]; then
        mkdir -p "$results_dir"
        cp "$dir/server.log" "$results_dir/$system.log"
        cp "$dir/result.json" "$results_dir/$system.json"
    fi
done
[ -z "$compare_with" ] || results=("$compare_with" "${results[@]}")
"$bench" report "${results[@]}" | tee "${results_dir:-$work}/table.md"
