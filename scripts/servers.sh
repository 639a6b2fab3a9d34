# Shared by the comparison scripts (sourced, not run): finding the three systems, starting one
# pinned to the last CPU in a fresh data directory on a free loopback port, and stopping it.
# A fourth, `strata-base`, is another build of Strata (the binary $STRATA_BASE names, say one
# built at an earlier commit), so a change is measured against the code before it in one run.
#
# Expects: $root (the workspace). `build_binaries` sets $strata and $bench (a binary with a
# `free-port` command); `make_work_dir` sets $work. Sets $server_pid, $server_url and
# $ready_path when a server starts.

say() { echo "$(basename "$0" .sh): $*" >&2; }
die() { say "$*"; exit 1; }

# Builds strata and the benchmark binary named $1 (release); sets $strata and $bench.
build_binaries() {
    local tool=$1 target_dir
    say "building strata and $tool (release)"
    (cd "$root" && cargo build --release --quiet -p strata-server -p strata-bench)
    target_dir=${CARGO_TARGET_DIR:-$root/target}
    case "$target_dir" in /*) ;; *) target_dir=$root/$target_dir ;; esac
    strata=$target_dir/release/strata
    bench=$target_dir/release/$tool
    [ -x "$strata" ] && [ -x "$bench" ] || die "the build did not produce $strata and $bench"
}

# A scratch directory for the run, $work, removed (and the server stopped) however the
# script ends.
make_work_dir() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    trap 'stop_server; rm -rf "$work"' EXIT
    trap 'exit 130' INT TERM
}

prometheus=${PROMETHEUS:-prometheus}
strata_base=${STRATA_BASE:-}
victoria_metrics=${VICTORIA_METRICS:-victoria-metrics}
missing=0

# Checks that a program is there, naming how to get it when it is not.
require() {
    local path=$1 what=$2
    if ! command -v "$path" >/dev/null 2>&1; then
        say "missing: $path ($what)"
        missing=1
    fi
}

# Checks the programs each of the named systems needs.
require_systems() {
    local system
    require cargo "the Rust toolchain, to build strata and the benchmark: https://rustup.rs"
    for system in "$@"; do
        case "$system" in
            strata) ;;
            strata-base)
                [ -x "$strata_base" ] || die "strata-base needs STRATA_BASE=/path/to/a strata binary (another build)" ;;
            prometheus)
                require "$prometheus" "Prometheus 2.42: apt-get install prometheus, or PROMETHEUS=/path/to/prometheus" ;;
            victoriametrics)
                require "$victoria_metrics" "VictoriaMetrics 1.79: apt-get install victoria-metrics, or VICTORIA_METRICS=/path/to/victoria-metrics" ;;
            *) die "unknown system $system: choose from strata, strata-base, victoriametrics, prometheus" ;;
        esac
    done
    [ "$missing" = 0 ] || die "install what is missing above and run again"
}

# Sets server_pin and generator_pin (taskset prefixes) and pinning (a description): the server
# gets the last CPU, the generator CPU 0, so neither steals the other's time.
pin_cpus() {
    server_pin=()
    generator_pin=()
    local cpus last server_cpus
    cpus=$(nproc)
    if [ "${pin:-1}" = 1 ] && command -v taskset >/dev/null 2>&1 && [ "$cpus" -ge 2 ] \
        && [ "$cpus" = "$(getconf _NPROCESSORS_ONLN)" ]; then
        last=$((cpus - 1))
        if [ "$cpus" -gt 2 ]; then server_cpus="1-$last"; else server_cpus="1"; fi
        server_pin=(taskset -c "$server_cpus")
        generator_pin=(taskset -c 0)
        pinning="server on CPU $server_cpus, generator on CPU 0 (taskset; $cpus CPUs)"
    else
        pinning="not pinned ($cpus CPUs; taskset $(command -v taskset >/dev/null && echo present || echo missing))"
    fi
}

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

version_of() {
    case "$1" in
        strata) "$strata" --version 2>/dev/null | head -n1 ;;
        strata-base) echo "$("$strata_base" --version 2>/dev/null | head -n1) ($strata_base)" ;;
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

# Starts `$1` with its data in `$2` on a free port, logging to `$3`; `$4...` are extra
# arguments for VictoriaMetrics. Sets server_pid, server_url and ready_path.
start_system() {
    local system=$1 data=$2 log=$3
    shift 3
    local port cmd
    port=$("$bench" free-port)
    case "$system" in
        strata | strata-base)
            local binary=$strata
            [ "$system" = strata ] || binary=$strata_base
            cmd=("$binary" serve --listen "127.0.0.1:$port" --data-dir "$data" --enable-admin-api)
            ready_path=/-/ready ;;
        victoriametrics)
            cmd=("$victoria_metrics" "-storageDataPath=$data" "-httpListenAddr=127.0.0.1:$port" "$@")
            ready_path=/health ;;
        prometheus)
            # No scrape jobs: a self-scrape would write samples at the current time, after
            # which Prometheus rejects older benchmark samples as out of bounds.
            printf 'global:\n  scrape_interval: 15s\n' >"$data.yml"
            cmd=("$prometheus" "--config.file=$data.yml" "--storage.tsdb.path=$data"
                "--web.listen-address=127.0.0.1:$port" --web.enable-remote-write-receiver
                --web.enable-admin-api)
            ready_path=/-/ready ;;
    esac
    "${server_pin[@]}" "${cmd[@]}" >"$log" 2>&1 &
    server_pid=$!
    server_url="http://127.0.0.1:$port"
}
