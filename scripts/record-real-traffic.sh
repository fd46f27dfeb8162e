#!/usr/bin/env bash
# Records real traffic between real programs (python3 http.server, curl, nc)
# into pcap files, for tests/tshark.rs and for trying `aa inspect` on captures
# no aa code wrote.
#
# Usage: scripts/record-real-traffic.sh [OUTDIR]      (default: data/real)
#
# Everything happens inside two network namespaces of this script's own,
# aa-rec-srv-PID and aa-rec-cli-PID, joined by a veth pair: the client is
# 198.51.100.1 and the server 198.51.100.2 (TEST-NET-2, RFC 5737); nothing is
# sent from the host namespace or to any other address (IPv6 is disabled in both
# namespaces, so there is no neighbour discovery either). tcpdump captures on the
# server's end of the veth. The namespaces are deleted on exit, error or not.
#
# Writes into OUTDIR:
#   real_http_keepalive.pcap  one HTTP/1.1 connection (port 8080): GETs of
#                             files of varied sizes (0, small, > 1448 bytes),
#                             204, 304, 404, three POSTs with bodies
#   real_http_chunked.pcap    one HTTP/1.1 connection (port 8080): two chunked
#                             responses (one with a chunk extension and one with
#                             a trailer), then a Content-Length one
#   real_http_head.pcap       one HTTP/1.1 connection (port 8080): HEADs, whose
#                             responses announce a Content-Length and carry no
#                             body, between GETs of the same files
#   real_tls.pcap             three HTTPS connections (port 443) from curl to
#                             Python's http.server behind TLS (a self-signed
#                             certificate made here): TLS 1.3, TLS 1.2, and
#                             TLS 1.2 offering h2 and http/1.1 (the server
#                             picks http/1.1); server name test.example
#   real_csv_nc.pcap          one connection (port 9000): nc sends
#                             real_csv_nc.csv to `nc -l`
#   real_csv_nc.csv           the CSV file sent (quoted fields, "" escapes,
#                             a line break inside quotes, CRLF line ends)
#
# TSO/GSO/GRO are switched off on the veth so that frames are at most the MTU
# as on a wire. Transmit checksum offload stays on: TCP checksums in the
# captures are left unfilled by the kernel (aa's checksum `auto` mode and tshark
# both cope). Needs root; installs missing tools with apt-get when it can.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${1:-data/real}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

SRV_NS="aa-rec-srv-$$"
CLI_NS="aa-rec-cli-$$"
SRV_IF=aa-s
CLI_IF=aa-c
SRV_IP=198.51.100.2
CLI_IP=198.51.100.1
HTTP_PORT=8080
CSV_PORT=9000

if [ "$(id -u)" -ne 0 ]; then
    echo "record-real-traffic: needs root (network namespaces, tcpdump)" >&2
    exit 1
fi

# Tools: install what is missing (Debian/Ubuntu).
missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v tcpdump >/dev/null 2>&1 || missing+=(tcpdump)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v nc >/dev/null 2>&1 || missing+=(netcat-openbsd)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v ethtool >/dev/null 2>&1 || missing+=(ethtool)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "record-real-traffic: installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

WORK=$(mktemp -d)
PIDS=()

cleanup() {
    local rc=$?
    set +e
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    ip netns del "$SRV_NS" 2>/dev/null
    ip netns del "$CLI_NS" 2>/dev/null
    rm -rf "$WORK"
    if [ "$rc" -ne 0 ]; then
        echo "record-real-traffic: failed (exit $rc)" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_srv() { ip netns exec "$SRV_NS" "$@"; }
in_cli() { ip netns exec "$CLI_NS" "$@"; }

# --- namespaces and the veth between them -----------------------------------
ip netns add "$SRV_NS"
ip netns add "$CLI_NS"
for ns in "$SRV_NS" "$CLI_NS"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
        net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
    ip -n "$ns" link set lo up
done
# Created inside the client namespace, its peer moved straight to the server's:
# the host namespace never holds either end.
ip -n "$CLI_NS" link add "$CLI_IF" type veth peer name "$SRV_IF" netns "$SRV_NS"
ip -n "$CLI_NS" addr add "$CLI_IP/24" dev "$CLI_IF"
ip -n "$SRV_NS" addr add "$SRV_IP/24" dev "$SRV_IF"
in_cli ethtool -K "$CLI_IF" tso off gso off gro off 2>/dev/null || true
in_srv ethtool -K "$SRV_IF" tso off gso off gro off 2>/dev/null || true
ip -n "$CLI_NS" link set "$CLI_IF" up
ip -n "$SRV_NS" link set "$SRV_IF" up

# Waits until something listens on TCP port $1 in the server namespace (asks
# the kernel; sends nothing).
wait_listen() {
    local i
    for i in $(seq 100); do
        if in_srv ss -Hltn "sport = :$1" | grep -q .; then
            return 0
        fi
        sleep 0.1
    done
    echo "record-real-traffic: nothing listens on port $1" >&2
    return 1
}

CAP_PID=
# start_capture FILE: tcpdump on the server's end of the veth.
start_capture() {
    local log="$WORK/tcpdump.log"
    : >"$log"
    # Not through in_srv: $! must be tcpdump itself (ip netns exec execs it).
    ip netns exec "$SRV_NS" tcpdump -i "$SRV_IF" -s 0 -n -U --immediate-mode -Z root -w "$1" 2>"$log" &
    CAP_PID=$!
    PIDS+=("$CAP_PID")
    local i
    for i in $(seq 100); do
        if grep -q "listening on" "$log"; then
            return 0
        fi
        sleep 0.1
    done
    cat "$log" >&2
    echo "record-real-traffic: tcpdump did not start" >&2
    return 1
}
# stop_capture: SIGINT after the last ACKs and FINs, then wait until tcpdump has
# flushed and closed the file.
stop_capture() {
    sleep 0.5
    kill -INT "$CAP_PID"
    wait "$CAP_PID" || true
    sed -n 's/^/  tcpdump: /p' "$WORK/tcpdump.log" | grep -v "listening on" || true
}

# syns FILE: connections opened in a capture (SYN without ACK).
syns() {
    tcpdump -r "$1" -n 'tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn' 2>/dev/null | wc -l
}

# --- the HTTP/1.1 server ----------------------------------------------------
cat >"$WORK/server.py" <<'PY'
import http.server
import sys


def lines(n, fmt):
    out = bytearray()
    i = 0
    while len(out) < n:
        out += (fmt % i).encode()
        i += 1
    return bytes(out[:n])


INDEX = (
    b"<!doctype html>\n<html><head><title>aa test server</title></head>\n"
    b"<body><h1>aa</h1><p>Application-aware, zero-copy TCP.</p>\n"
    b'<ul><li><a href="/small.txt">small</a></li>'
    b'<li><a href="/large.txt">large</a></li></ul></body></html>\n'
)
FILES = {
    "/": (INDEX, "text/html"),
    "/index.html": (INDEX, "text/html"),
    "/small.txt": (b"hello, aa\n", "text/plain"),
    "/empty.txt": (b"", "text/plain"),
    "/data.json": (
        b'{"items":[' + b",".join(b'{"id":%d,"name":"item-%04d"}' % (i, i) for i in range(60))
        + b"]}\n",
        "application/json",
    ),
    "/large.txt": (lines(5000, "line %04d: the quick brown fox jumps over the lazy dog\n"), "text/plain"),
    "/huge.bin": (bytes(range(256)) * 80, "application/octet-stream"),
}
CHUNKS = [b"first chunk\n", b"x", lines(3000, "chunk line %03d\n"), b"last one\n"]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "aa-test/1.0"
    sys_version = ""
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        sys.stderr.write("%s:%d %s\n" % (self.client_address + (fmt % args,)))

    def fixed(self, code, body, ctype="text/plain", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def chunked(self, trailer):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        if trailer:
            self.send_header("Trailer", "X-Checksum")
        self.end_headers()
        for i, c in enumerate(CHUNKS):
            ext = ";name=value" if i == 1 and not trailer else ""
            self.wfile.write(b"%x%s\r\n" % (len(c), ext.encode()) + c + b"\r\n")
        if trailer:
            self.wfile.write(b"0\r\nX-Checksum: 0123abcd\r\n\r\n")
        else:
            self.wfile.write(b"0\r\n\r\n")

    def do_GET(self):
        path = self.path
        if path in FILES:
            body, ctype = FILES[path]
            self.fixed(200, body, ctype)
        elif path == "/cached":
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_response(304)
                self.send_header("ETag", '"v1"')
                self.end_headers()
            else:
                self.fixed(200, b"cached body\n", extra=[("ETag", '"v1"')])
        elif path == "/nothing":
            self.send_response(204)
            self.end_headers()
        elif path == "/chunked":
            self.chunked(False)
        elif path == "/chunked-trailer":
            self.chunked(True)
        else:
            self.fixed(404, b"not found: " + path.encode() + b"\n")

    def do_HEAD(self):
        # The GET's head: its Content-Length, no body.
        if self.path in FILES:
            body, ctype = FILES[self.path]
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
        else:
            self.send_response(404)
            self.send_header("Content-Length", "10")
            self.end_headers()

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self.fixed(201, b"received %d bytes\n" % len(body))


addr, port = sys.argv[1], int(sys.argv[2])
http.server.ThreadingHTTPServer((addr, port), Handler).serve_forever()
PY

ip netns exec "$SRV_NS" python3 "$WORK/server.py" "$SRV_IP" "$HTTP_PORT" 2>"$WORK/server.log" &
PIDS+=("$!")
wait_listen "$HTTP_PORT"

BASE="http://$SRV_IP:$HTTP_PORT"
# Request bodies: a small form, a CSV body larger than one segment.
printf 'name=aa&kind=zero-copy' >"$WORK/post-small"
for i in $(seq 0 119); do
    printf '%d,item-%04d,%d.%02d\n' "$i" "$i" $((i * 7)) $((i % 100))
done >"$WORK/post-large"

# curl reuses its one connection for every URL of a command line, --next too.
# `Expect:` keeps curl from waiting for a 100 Continue.
echo "recording $OUT/real_http_keepalive.pcap"
start_capture "$WORK/keepalive.pcap"
in_cli curl -sS --http1.1 -H 'Expect:' \
    "$BASE/" "$BASE/small.txt" "$BASE/empty.txt" "$BASE/large.txt" \
    "$BASE/data.json" "$BASE/huge.bin" "$BASE/nothing" "$BASE/files/a%20b.txt" \
    --next -sS --http1.1 -H 'If-None-Match: "v1"' "$BASE/cached" \
    --next -sS --http1.1 -H 'Expect:' --data-binary "@$WORK/post-small" "$BASE/upload" \
    --next -sS --http1.1 -H 'Expect:' -H 'Content-Type: text/csv' \
    --data-binary "@$WORK/post-large" "$BASE/upload?kind=csv" \
    --next -sS --http1.1 -d '' "$BASE/upload?empty=1" \
    --next -sS --http1.1 "$BASE/index.html" >"$WORK/keepalive.out"
stop_capture

echo "recording $OUT/real_http_chunked.pcap"
start_capture "$WORK/chunked.pcap"
in_cli curl -sS --http1.1 "$BASE/chunked" "$BASE/chunked-trailer" "$BASE/small.txt" \
    >"$WORK/chunked.out"
stop_capture

echo "recording $OUT/real_http_head.pcap"
start_capture "$WORK/head.pcap"
in_cli curl -sS --http1.1 -I "$BASE/large.txt" \
    --next -sS --http1.1 "$BASE/small.txt" \
    --next -sS --http1.1 -I "$BASE/huge.bin" \
    --next -sS --http1.1 -I "$BASE/missing" \
    --next -sS --http1.1 "$BASE/data.json" \
    --next -sS --http1.1 -I "$BASE/small.txt" \
    --next -sS --http1.1 "$BASE/large.txt" >"$WORK/head.out"
stop_capture

# --- HTTPS ------------------------------------------------------------------
TLS_PORT=443
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=test.example -days 2 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
cat >"$WORK/tls_server.py" <<'PY'
import http.server
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        body = b"hello over tls\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


addr, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.set_alpn_protocols(["http/1.1"])
srv = http.server.ThreadingHTTPServer((addr, port), Handler)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PY
ip netns exec "$SRV_NS" python3 "$WORK/tls_server.py" "$SRV_IP" "$TLS_PORT" \
    "$WORK/cert.pem" "$WORK/key.pem" 2>"$WORK/tls_server.log" &
PIDS+=("$!")
wait_listen "$TLS_PORT"
echo "recording $OUT/real_tls.pcap"
start_capture "$WORK/tls.pcap"
TLS_URL="https://test.example:$TLS_PORT/"
TLS_RESOLVE="test.example:$TLS_PORT:$SRV_IP"
in_cli curl -sS -k --http1.1 --tlsv1.3 --resolve "$TLS_RESOLVE" "$TLS_URL" >"$WORK/tls.out"
in_cli curl -sS -k --http1.1 --tlsv1.2 --tls-max 1.2 --resolve "$TLS_RESOLVE" "$TLS_URL" >>"$WORK/tls.out"
in_cli curl -sS -k --http2 --tlsv1.2 --tls-max 1.2 --resolve "$TLS_RESOLVE" "$TLS_URL" >>"$WORK/tls.out"
stop_capture
grep -c "hello over tls" "$WORK/tls.out" | sed 's/^/  tls: /; s/$/ answers/'

# --- CSV over nc ------------------------------------------------------------
python3 - "$WORK/sent.csv" <<'PY'
import sys

sides = ["buy", "sell"]
symbols = ["AAPL", "MSFT", "BRK.A", "7203.T", "SAP"]
notes = [
    "",
    "plain note",
    '"quoted, with a comma"',
    '"she said ""hi"""',
    '"two\nlines"',
    '""',
    "caf\u00e9 cr\u00e8me",
    '"trailing space "',
]
rows = ["id,symbol,side,price,qty,note"]
for i in range(60):
    rows.append(
        "%d,%s,%s,%d.%02d,%d,%s"
        % (i, symbols[i % 5], sides[i % 2], 100 + i * 3, (i * 37) % 100, (i + 1) * 10, notes[i % 8])
    )
with open(sys.argv[1], "wb") as f:
    f.write(("\r\n".join(rows) + "\r\n").encode())
PY

echo "recording $OUT/real_csv_nc.pcap"
ip netns exec "$SRV_NS" nc -l "$SRV_IP" "$CSV_PORT" </dev/null >"$WORK/received.csv" &
NC_PID=$!
PIDS+=("$NC_PID")
wait_listen "$CSV_PORT"
start_capture "$WORK/csv.pcap"
# -N: shut the connection down at the end of the file, so the listener sees FIN.
in_cli nc -N "$SRV_IP" "$CSV_PORT" <"$WORK/sent.csv"
wait "$NC_PID"
stop_capture
cmp "$WORK/sent.csv" "$WORK/received.csv"

# --- checks, then the files -------------------------------------------------
for f in keepalive chunked head csv; do
    n=$(syns "$WORK/$f.pcap")
    if [ "$n" -ne 1 ]; then
        echo "record-real-traffic: $f.pcap holds $n connections, expected 1" >&2
        exit 1
    fi
done
grep -c '" [0-9][0-9][0-9] ' "$WORK/server.log" | sed 's/^/  server: /; s/$/ requests answered/'

cp "$WORK/keepalive.pcap" "$OUT/real_http_keepalive.pcap"
cp "$WORK/chunked.pcap" "$OUT/real_http_chunked.pcap"
cp "$WORK/head.pcap" "$OUT/real_http_head.pcap"
cp "$WORK/tls.pcap" "$OUT/real_tls.pcap"
cp "$WORK/csv.pcap" "$OUT/real_csv_nc.pcap"
cp "$WORK/sent.csv" "$OUT/real_csv_nc.csv"
for f in real_http_keepalive.pcap real_http_chunked.pcap real_http_head.pcap real_tls.pcap \
    real_csv_nc.pcap real_csv_nc.csv; do
    printf '  %-26s %7d bytes\n' "$f" "$(wc -c <"$OUT/$f")"
done
