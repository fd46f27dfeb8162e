#!/usr/bin/env bash
# aa over a TAP device against a plain kernel TCP socket over veth, same CSV.
#
#   sudo scripts/bench-tap.sh            # SIZE_MB=64 RUNS=3 by default
#   SIZE_MB=100 RUNS=5 sudo scripts/bench-tap.sh
#
# What it does:
#   * builds `csv_client` (aa's TCP endpoint + compiled CSV grammar) and
#     `csv_socket` (std::net::TcpStream + csv-core) in release;
#   * generates SIZE_MB of CSV with quoted fields (commas, doubled quotes,
#     line breaks inside quotes) once into /tmp (reused on later runs);
#   * makes two namespaces of its own and nothing in the host namespace:
#       server ns: python3 server on 0.0.0.0:PORT (sendfile of the CSV to
#                  every client, then close);
#                  TAP aabt0 198.51.100.1/26, aa (csv_client, also run in the
#                  server ns, where the TAP is) is 198.51.100.2;
#                  veth aabt-s 198.51.100.65/26
#       client ns: veth aabt-c 198.51.100.66/26, csv_socket runs here
#     (the two /26 subnets are disjoint, all inside 198.51.100.0/24);
#   * runs each client RUNS times, keeps the fastest, checks that every run
#     saw the same rows and bytes as the generator wrote, prints both summary
#     lines, the throughputs and their ratio; deletes everything on exit.
#
# Read the figures with this in mind: over TAP, every 1500-byte frame costs a
# read() syscall in aa's process and the kernel segments to the MTU on one
# core, so the TAP device is the ceiling for aa here, not aa's stack. The
# kernel path over veth moves GSO/GRO super-segments (up to 64 KiB) with no
# per-frame syscall, and the reader does one read() per 256 KiB. The two CPU
# cores are shared by the server, the kernel and the client.
#
# Needs root (namespaces, /dev/net/tun), iproute2, python3 and cargo.
set -euo pipefail

SIZE_MB=${SIZE_MB:-64}
RUNS=${RUNS:-3}
PORT=${PORT:-9000}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NS_S=aa-bt-srv-$$
NS_C=aa-bt-cli-$$
TAP=aabt0
VETH_S=aabt-s
VETH_C=aabt-c
AA_IP=198.51.100.2
TAP_IP=198.51.100.1
VS_IP=198.51.100.65
VC_IP=198.51.100.66
DATA=/tmp/aa-bench-tap-${SIZE_MB}M.csv
WORK=$(mktemp -d /tmp/aa-bench-tap.XXXXXX)
SERVER_PID=

cleanup() {
    set +e
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    ip netns del "$NS_C" 2>/dev/null
    ip netns del "$NS_S" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "bench-tap: $*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces and a TAP device)"
[[ -e /dev/net/tun ]] || die "no /dev/net/tun"
for prog in ip python3 cargo; do
    command -v "$prog" >/dev/null || die "no $prog on PATH"
done

echo "== building csv_client and csv_socket (release)"
(cd "$ROOT" && cargo build --release -q -p aa-stack --example csv_client --example csv_socket)
BIN=$ROOT/target/release/examples
[[ -x $BIN/csv_client && -x $BIN/csv_socket ]] || die "examples not built in $BIN"

if [[ ! -s $DATA || ! -s $DATA.rows ]]; then
    echo "== generating ${SIZE_MB} MB of CSV into $DATA"
    python3 - "$DATA" "$((SIZE_MB * 1000000))" <<'EOF'
import csv, io, random, sys
random.seed(20261122)
words = ['alpha', 'beta', 'x,y', 'say "hi"', 'two\nlines', 'crlf\r\ninside', '',
         'na\u00efve', '12.5', '-3', ' padded ', '""', 'a,"b",c', 'plain text']
pool = []
for _ in range(50000):
    buf = io.StringIO()
    row = []
    for _ in range(random.randint(2, 9)):
        v = random.choice(words)
        if random.random() < 0.5:
            v += str(random.randint(0, 10 ** random.randint(1, 9)))
        row.append(v)
    csv.writer(buf, lineterminator='\n').writerow(row)
    pool.append(buf.getvalue().encode())
path, target = sys.argv[1], int(sys.argv[2])
rows = size = 0
with open(path + '.tmp', 'wb') as f:
    while size < target:
        chunk = random.choices(pool, k=10000)
        data = b''.join(chunk)
        f.write(data)
        rows += len(chunk)
        size += len(data)
# Each pooled line is exactly one record; check it on a sample with Python's
# own reader.
sample = b''.join(pool[:2000]).decode()
assert len(list(csv.reader(io.StringIO(sample, newline='')))) == 2000
import os
os.replace(path + '.tmp', path)
with open(path + '.rows', 'w') as f:
    f.write(f'{rows} {size}\n')
EOF
fi
read -r ROWS BYTES <"$DATA.rows"
echo "== data: $DATA, $ROWS rows, $BYTES bytes"

echo "== namespaces $NS_S (server, TAP) and $NS_C (kernel client)"
ip netns add "$NS_S"
ip netns add "$NS_C"
ip -n "$NS_S" link set lo up
ip -n "$NS_C" link set lo up
ip -n "$NS_S" tuntap add dev "$TAP" mode tap
ip -n "$NS_S" addr add "$TAP_IP/26" dev "$TAP"
ip -n "$NS_S" link set "$TAP" up
ip -n "$NS_S" link add "$VETH_S" type veth peer name "$VETH_C" netns "$NS_C"
ip -n "$NS_S" addr add "$VS_IP/26" dev "$VETH_S"
ip -n "$NS_C" addr add "$VC_IP/26" dev "$VETH_C"
ip -n "$NS_S" link set "$VETH_S" up
ip -n "$NS_C" link set "$VETH_C" up

ip netns exec "$NS_S" python3 - "$DATA" "$PORT" "$WORK/ready" <<'EOF' &
import os, socket, sys
path, port, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', port))
s.listen(4)
open(ready, 'w').close()
with open(path, 'rb') as f:
    while True:
        c, _ = s.accept()
        try:
            f.seek(0)
            c.sendfile(f)
            c.shutdown(socket.SHUT_WR)
            while c.recv(65536):
                pass
        except OSError as e:
            print(f'server: {e}', file=sys.stderr)
        finally:
            c.close()
EOF
SERVER_PID=$!
for _ in $(seq 100); do
    [[ -e $WORK/ready ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || die "the python3 server exited"
    sleep 0.1
done
[[ -e $WORK/ready ]] || die "the python3 server did not start"

# run_best NAME NS CMD...: runs CMD in NS RUNS times, checks rows and bytes,
# leaves the fastest summary line in $WORK/NAME.best.
run_best() {
    local name=$1 ns=$2
    shift 2
    local best='' best_s='' line rows bytes secs i
    for i in $(seq "$RUNS"); do
        if ! line=$(ip netns exec "$ns" "$@" 2>"$WORK/$name.err"); then
            cat "$WORK/$name.err" >&2
            die "$name run $i failed: $line"
        fi
        read -r rows bytes secs < <(sed -E 's/rows=([0-9]+) bytes=([0-9]+) seconds=([0-9.]+)/\1 \2 \3/' <<<"$line")
        [[ $rows == "$ROWS" ]] || die "$name run $i: rows=$rows, expected $ROWS"
        [[ $bytes == "$BYTES" ]] || die "$name run $i: bytes=$bytes, expected $BYTES"
        printf '   %-10s run %d: %s  (%s)\n' "$name" "$i" "$line" "$(tail -n1 "$WORK/$name.err" | sed "s/, [0-9]* field bytes.*//")"
        if [[ -z $best ]] || awk -v a="$secs" -v b="$best_s" 'BEGIN { exit !(a < b) }'; then
            best=$line
            best_s=$secs
        fi
    done
    echo "$best" >"$WORK/$name.best"
}

echo "== aa csv_client over TAP ($AA_IP -> $TAP_IP:$PORT), best of $RUNS"
run_best aa "$NS_S" "$BIN/csv_client" --tap "$TAP" --ip "$AA_IP/26" --peer "$TAP_IP:$PORT"
echo "== kernel csv_socket over veth ($VC_IP -> $VS_IP:$PORT), best of $RUNS"
run_best kernel "$NS_C" "$BIN/csv_socket" "$VS_IP:$PORT"

AA=$(cat "$WORK/aa.best")
KERNEL=$(cat "$WORK/kernel.best")
gbps() {
    sed -E 's/.*bytes=([0-9]+) seconds=([0-9.]+).*/\1 \2/' <<<"$1" |
        awk '{ printf "%.3f", $1 * 8 / $2 / 1e9 }'
}
AA_G=$(gbps "$AA")
KERNEL_G=$(gbps "$KERNEL")
echo
echo "aa (TAP):        $AA  ->  $AA_G Gbit/s"
echo "kernel (veth):   $KERNEL  ->  $KERNEL_G Gbit/s"
awk -v a="$AA_G" -v k="$KERNEL_G" 'BEGIN { printf "ratio aa/kernel: %.2f\n", a / k }'
