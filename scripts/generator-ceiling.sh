#!/usr/bin/env bash
# strata-bench's own ceiling: how much load one core of the generator produces against a
# receiver that answers at once (`strata-bench null`), so that it is never what a load test
# measures. Two figures:
#
#   1. remote write: samples per second built, compressed and sent, and per CPU-second of the
#      generator (closed model, the generator pinned to one CPU, the receiver to the other);
#   2. plain HTTP: requests per second of `strata-bench http` against `wrk` (Debian package
#      `wrk`, or $WRK) on the same endpoint, each pinned to the same one CPU, same connections.
#
# Everything talks to 127.0.0.1 only and stops by itself.
set -euo pipefail

seconds=${SECONDS_PER_RUN:-15}
connections=${CONNECTIONS:-32}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { echo "generator-ceiling: $*" >&2; }

(cd "$root" && cargo build --release --quiet -p strata-bench)
bench=${CARGO_TARGET_DIR:-$root/target}/release/strata-bench
wrk=${WRK:-$(command -v wrk || true)}

cpus=$(nproc)
if [ "$cpus" -ge 2 ]; then
    gen=(taskset -c 0)
    recv=(taskset -c $((cpus - 1)))
else
    gen=()
    recv=()
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${recv[@]}" "$bench" null --listen "127.0.0.1:$port" 2>/dev/null &
null_pid=$!
trap 'kill $null_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
    curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && break
    sleep 0.1
done

say "remote write, ${seconds}s, closed model, 8 workers, one runtime thread"
"${gen[@]}" "$bench" write --url "http://127.0.0.1:$port/api/v1/write" --model closed \
    --concurrency 8 --threads 1 --hosts 200 --batch 2000 --duration "${seconds}s" -q \
    | tee /tmp/generator-ceiling-write.txt

say "http, ${seconds}s, closed model, $connections connections, one runtime thread"
"${gen[@]}" "$bench" http --url "http://127.0.0.1:$port/" --model closed \
    --concurrency "$connections" --threads 1 --duration "${seconds}s" -q \
    | tee /tmp/generator-ceiling-http.txt

if [ -n "$wrk" ]; then
    say "wrk, ${seconds}s, one thread, $connections connections"
    "${gen[@]}" "$wrk" -t1 -c"$connections" -d"${seconds}s" "http://127.0.0.1:$port/" \
        | tee /tmp/generator-ceiling-wrk.txt
    ours=$(awk '$1 == "http" {print $4}' /tmp/generator-ceiling-http.txt)
    theirs=$(awk '/Requests\/sec/ {print $2}' /tmp/generator-ceiling-wrk.txt)
    python3 - "$ours" "$theirs" <<'EOF'
import sys
def num(s):
    s = s.strip()
    mult = {"k": 1e3, "M": 1e6, "G": 1e9}.get(s[-1:], 1)
    return float(s.rstrip("kMG")) * mult
ours, theirs = num(sys.argv[1]), num(sys.argv[2])
print(f"strata-bench http {ours:,.0f} req/s, wrk {theirs:,.0f} req/s: ratio {ours / theirs:.2f}")
EOF
else
    say "wrk is not installed (Debian package wrk): no ratio"
fi
