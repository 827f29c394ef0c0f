#!/usr/bin/env bash
# Relay throughput of the scan service alone (no scanning yet): Postfix's smtp-source sends
# N messages of SIZE bytes at concurrency C through `portcullis-child scan` to Postfix's
# smtp-sink, side by side with smtp-source straight into smtp-sink (the limit of this box).
# Not a test: it prints a Markdown table for docs/BENCHMARKS.md and never fails on a number.
#   usage: tests/bench/relay_throughput.sh [N=2000] [SIZE=20000] [BIN=build/bin]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-2000}
size=${2:-20000}
bin=${3:-build/bin}
sink_port=21026
filter_port=21025
out=build/bench
mkdir -p "$out"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "port $1 did not open" >&2
    exit 1
}

/usr/sbin/smtp-sink -u postfix -c 127.0.0.1:$sink_port 256 >/dev/null 2>&1 &
pids+=($!)
wait_port $sink_port
"$bin/portcullis-child" scan --listen 127.0.0.1:$filter_port --downstream 127.0.0.1:$sink_port \
    --log-level warning >"$out/relay-scan.log" 2>&1 &
pids+=($!)
wait_port $filter_port

run() { # port concurrency → seconds
    local t0 t1
    t0=$(date +%s.%N)
    /usr/sbin/smtp-source -s "$2" -m "$n" -l "$size" -f bench@origin.test -t sink@sink.test \
        127.0.0.1:"$1" >/dev/null
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
}

echo "| concurrency | direct smtp-source → smtp-sink (msg/s) | through the scan service (msg/s) |"
echo "|---|---|---|"
for c in 1 10 50; do
    d=$(run $sink_port $c)
    f=$(run $filter_port $c)
    printf "| %d | %.0f | %.0f |\n" "$c" "$(awk -v n="$n" -v t="$d" 'BEGIN { print n / t }')" "$(awk -v n="$n" -v t="$f" 'BEGIN { print n / t }')"
done | tee "$out/relay_throughput.md"
echo
echo "($n messages of $size bytes each; $(nproc) cores; $(date -u +%Y-%m-%d))"
