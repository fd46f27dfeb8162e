#!/usr/bin/env bash
# Times `aa inspect` against tshark on one capture, best of 3 runs each.
#
# Usage: scripts/inspect-vs-tshark.sh CAPTURE [ARGS...]
#   ARGS go to `aa inspect` (e.g. --checksums off, --port 9000=csv).
#
# The two commands timed (output to /dev/null; wall-clock seconds):
#   aa:     target/release/aa inspect --stats ARGS... CAPTURE
#   tshark: tshark -n -r CAPTURE -Y http -T fields -e http.response.code
# tshark with its default preferences reassembles TCP streams and HTTP headers
# and bodies (de-chunked) and dissects every frame fully, as its display
# filter needs; `-n` turns off name resolution. Both read the whole capture and
# parse HTTP in both directions: comparable work, though tshark also dissects
# what aa does not look at (every header, every other protocol). aa is built
# with `cargo build --release --bin aa` first.
set -euo pipefail

if [ "$#" -lt 1 ]; then
    echo "usage: $0 CAPTURE [aa inspect ARGS...]" >&2
    exit 2
fi
CAPTURE=$1
shift
if [ ! -r "$CAPTURE" ]; then
    echo "$CAPTURE: not readable" >&2
    exit 1
fi
CAPTURE=$(cd "$(dirname "$CAPTURE")" && pwd)/$(basename "$CAPTURE")
if ! command -v tshark >/dev/null 2>&1; then
    echo "tshark not installed (.ci/deps installs it)" >&2
    exit 1
fi

cd "$(dirname "$0")/.."
cargo build --release --quiet --bin aa
AA=$PWD/target/release/aa
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

# Wall-clock seconds of one run of "$@" (stdout discarded, stderr kept in
# $LOG). aa's exit status 3 (capture ends inside a record) is not a failure.
seconds() {
    local start end rc=0
    start=$EPOCHREALTIME
    "$@" >/dev/null 2>"$LOG" || rc=$?
    end=$EPOCHREALTIME
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
        cat "$LOG" >&2
        echo "failed (exit $rc): $*" >&2
        return 1
    fi
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f\n", e - s }'
}

# Best (smallest) of 3 runs.
best_of_3() {
    local best="" t
    for _ in 1 2 3; do
        t=$(seconds "$@")
        if [ -z "$best" ] || awk -v t="$t" -v b="$best" 'BEGIN { exit !(t < b) }'; then
            best=$t
        fi
    done
    echo "$best"
}

AA_CMD=("$AA" inspect --stats "$@" "$CAPTURE")
TSHARK_CMD=(tshark -n -r "$CAPTURE" -Y http -T fields -e http.response.code)

aa_time=$(best_of_3 "${AA_CMD[@]}")
aa_summary=$(cat "$LOG")
tshark_time=$(best_of_3 "${TSHARK_CMD[@]}")
responses=$("${TSHARK_CMD[@]}" 2>/dev/null | grep -c . || true)

echo "capture: $CAPTURE ($(wc -c <"$CAPTURE") bytes)"
echo "aa:     ${aa_time} s  (best of 3: aa inspect --stats${*:+ $*} CAPTURE)"
while IFS= read -r line; do
    printf '        %s\n' "$line"
done <<<"$aa_summary"
echo "tshark: ${tshark_time} s  (best of 3: ${TSHARK_CMD[*]:0:1} -n -r CAPTURE -Y http -T fields -e http.response.code; $responses responses)"
awk -v t="$tshark_time" -v a="$aa_time" 'BEGIN {
    if (a > 0) printf "ratio tshark/aa: %.1f\n", t / a
    else print "ratio tshark/aa: aa too fast to measure"
}'
