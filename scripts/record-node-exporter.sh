#!/usr/bin/env bash
# Records real node_exporter scrapes for the benchmarks' `scrapes:PATH` dataset: starts
# Debian's prometheus-node-exporter (all its default collectors) on a free loopback port and
# fetches /metrics at a fixed interval, as a Prometheus scrape would (text format 0.0.4), for
# a number of scrapes; the expositions go one after the other into one zstd-compressed file,
# each after a line `# SCRAPE <unix ms>` (consecutive scrapes share almost every byte, so
# 5,760 of them take a few MiB).
#
# The values are this machine's own: counters advancing with its real CPU, disk and network
# work, gauges as they were, the decimals the exporter writes. Nothing here is generated.
#
# usage: scripts/record-node-exporter.sh OUT.prom.zst [SCRAPES [INTERVAL_S]]
#   (defaults: 5,760 scrapes 1 s apart: 96 minutes; the benchmarks stamp them 15 s apart)
# needs: prometheus-node-exporter (Debian), curl, zstd. Talks to 127.0.0.1 only.
set -euo pipefail

out=${1:?usage: record-node-exporter.sh OUT.prom.zst [SCRAPES [INTERVAL_S]]}
scrapes=${2:-5760}
interval_s=${3:-1}
exporter=${NODE_EXPORTER:-$(command -v prometheus-node-exporter || true)}
[ -n "$exporter" ] || { echo "record-node-exporter: install Debian's prometheus-node-exporter" >&2; exit 1; }
command -v zstd >/dev/null || { echo "record-node-exporter: install zstd" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$exporter" --web.listen-address="127.0.0.1:$port" >"$out.exporter.log" 2>&1 &
exporter_pid=$!
trap 'kill "$exporter_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/metrics" >/dev/null && break
    sleep 0.1
done

interval_ns=$((interval_s * 1000000000))
start_ns=$(date +%s%N)
{
    for ((k = 0; k < scrapes; k++)); do
        due=$((start_ns + k * interval_ns))
        now=$(date +%s%N)
        if [ "$now" -lt "$due" ]; then
            sleep "$(awk -v ns=$((due - now)) 'BEGIN { printf "%.6f", ns / 1e9 }')"
        fi
        echo "# SCRAPE $(($(date +%s%N) / 1000000))"
        curl -sf --max-time 5 "http://127.0.0.1:$port/metrics"
        if ((k % 600 == 599)); then echo "record-node-exporter: $((k + 1)) of $scrapes" >&2; fi
    done
} | zstd -q -f -o "$out"
echo "record-node-exporter: $scrapes scrapes in $out ($(du -h "$out" | cut -f1))" >&2
