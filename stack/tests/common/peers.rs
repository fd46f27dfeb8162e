//! Peers and files shared by the live tests (TAP and DPDK): a Python CSV
//! server, a Python HTTP/1.1 server, generated files to serve, and parallel
//! keep-alive `curl`s with the checks of what they downloaded.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, ErrorKind};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::netns::{Netns, Reaped};

/// A directory removed with its contents on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create a temporary directory");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `len` deterministic bytes (a linear congruential generator from `seed`).
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 56) as u8
        })
        .collect()
}

/// Files of awkward sizes (empty, one byte, around the MSS, several
/// windows' worth), written to `dir`; their names and contents.
pub fn make_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let sizes = [0usize, 1, 1000, 1460, 3 * 1460 + 7, 100_000, 700_001];
    sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let name = format!("f{i}_{len}.bin");
            let data = content(len, i as u64 + 1);
            std::fs::write(dir.join(&name), &data).expect("write a file");
            (name, data)
        })
        .collect()
}

/// Serves the files in `argv[1]` over HTTP/1.1 with keep-alive on
/// 198.51.100.1, an ephemeral port it prints first. `/NAME` gets the file
/// with Content-Length; `/chunked/NAME` gets it in chunked coding (chunks of
/// varying sizes); anything else a 404 with a short body (the connection
/// stays open).
pub const PY_HTTP_SERVER: &str = r#"
import http.server, os, sys
root = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        path = self.path
        chunked = path.startswith('/chunked/')
        if chunked:
            path = path[len('/chunked'):]
        name = path[1:]
        p = os.path.join(root, name)
        if '/' in name or not name or not os.path.isfile(p):
            body = b'no such file\n'
            self.send_response(404)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        body = open(p, 'rb').read()
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        if chunked:
            self.send_header('Transfer-Encoding', 'chunked')
            self.end_headers()
            i, n = 0, 1
            while i < len(body):
                c = body[i:i + n]
                self.wfile.write(b'%x\r\n' % len(c) + c + b'\r\n')
                i += len(c)
                n = n * 7 + 13
            self.wfile.write(b'0\r\n\r\n')
        else:
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
    def log_message(self, *args):
        pass
s = http.server.ThreadingHTTPServer(('198.51.100.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// Appends CSV record `r` (a `row`) in the canonical form of
/// [`PY_CSV_SERVER`]: its fields unquoted, joined by 0x1f, the row ended by
/// 0x1e. `field` is scratch space.
pub fn push_canonical<P: aa_runtime::Packet>(
    r: &aa_runtime::Record<'_, P>,
    field: &mut Vec<u8>,
    canon: &mut Vec<u8>,
) {
    assert_eq!(r.name(), "row");
    for (k, f) in r.fields().enumerate() {
        if k > 0 {
            canon.push(0x1f);
        }
        field.clear();
        aa_runtime::csv::unquote(&f, b'"', field);
        canon.extend_from_slice(field);
    }
    canon.push(0x1e);
}

/// Generates CSV of about `argv[1]` bytes, writes Python's reading of it in
/// canonical form (fields joined by 0x1f, each row ended by 0x1e) to
/// `argv[2]`, prints `PORT ROWS BYTES`, accepts the first client, reads a
/// request of `argv[3]` bytes (`abc...z` repeated) and checks it, sends the
/// CSV and closes. With `argv[4]` = `client` it prints `0 ROWS BYTES`,
/// connects to 198.51.100.2 port `argv[5]` instead, sends the CSV, shuts its
/// side down and waits for ours.
pub const PY_CSV_SERVER: &str = r#"
import csv, io, random, socket, sys
random.seed(20261122)
words = ['alpha', 'beta', 'x,y', 'say "hi"', 'two\nlines', 'crlf\r\ninside', '',
         'na\u00efve', '12.5', '-3', ' padded ', '""', 'a,"b",c']
buf = io.StringIO()
w = csv.writer(buf, lineterminator='\n')
target = int(sys.argv[1])
while buf.tell() < target:
    row = []
    for _ in range(random.randint(2, 9)):
        v = random.choice(words)
        if random.random() < 0.5:
            v += str(random.randint(0, 10**random.randint(1, 9)))
        row.append(v)
    w.writerow(row)
text = buf.getvalue()
data = text.encode()
rows = list(csv.reader(io.StringIO(text, newline='')))
with open(sys.argv[2], 'wb') as f:
    for r in rows:
        f.write(b'\x1f'.join(x.encode() for x in r) + b'\x1e')
if sys.argv[4] == 'client':
    # Passive open on our side: connect to it, send, half-close, wait for
    # its FIN.
    print(0, len(rows), len(data), flush=True)
    c = socket.create_connection(('198.51.100.2', int(sys.argv[5])), timeout=30)
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
    while c.recv(65536):
        pass
    c.close()
    sys.exit(0)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('198.51.100.1', 0))
s.listen(1)
print(s.getsockname()[1], len(rows), len(data), flush=True)
c, _ = s.accept()
need = int(sys.argv[3])
want = bytes(b'abcdefghijklmnopqrstuvwxyz'[i % 26] for i in range(need))
got = b''
while len(got) < need:
    b = c.recv(65536)
    if not b:
        break
    got += b
if got != want:
    sys.exit('request: got %d bytes, %r...' % (len(got), got[:40]))
c.sendall(data)
c.close()
s.close()
"#;

/// `clients` curl processes running at once against `base` (say
/// `http://198.51.100.2:8080`), each on one keep-alive connection: curl `k`
/// fetches the files rotated by `k`, then a missing file (a 404), then the
/// first of its files again, into `out`.
pub struct Curls {
    children: Vec<Reaped>,
    /// Per request, in order: where curl writes it, the status and body due.
    expect: Vec<(PathBuf, u16, Vec<u8>)>,
    clients: usize,
}

impl Curls {
    /// Starts the curls in `ns`.
    pub fn spawn(
        ns: &Netns,
        base: &str,
        files: &[(String, Vec<u8>)],
        out: &Path,
        clients: usize,
    ) -> Curls {
        let mut curls = Vec::new();
        let mut expect: Vec<(PathBuf, u16, Vec<u8>)> = Vec::new();
        for k in 0..clients {
            let mut args: Vec<String> = [
                "curl",
                "-sS",
                "--http1.1",
                "--max-time",
                "60",
                "-w",
                "%{http_code} %{size_download} %{num_connects}\\n",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let mut order: Vec<usize> = (0..files.len()).map(|i| (i + k) % files.len()).collect();
            order.push(usize::MAX);
            order.push(k % files.len());
            for (j, &i) in order.iter().enumerate() {
                let dst = out.join(format!("c{k}_{j}"));
                let (url, status, data) = if i == usize::MAX {
                    (format!("{base}/missing.bin"), 404, b"not found\n".to_vec())
                } else {
                    (format!("{base}/{}", files[i].0), 200, files[i].1.clone())
                };
                args.push("-o".into());
                args.push(dst.to_str().unwrap().into());
                args.push(url);
                expect.push((dst, status, data));
            }
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let child = ns
                .cmd(&argv)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn curl");
            curls.push(Reaped(child));
        }
        Curls {
            children: curls,
            expect,
            clients,
        }
    }

    /// How many requests the curls make in all.
    pub fn requests(&self) -> u64 {
        self.expect.len() as u64
    }

    /// Waits for every curl and checks them: each succeeded, kept one
    /// connection, got the statuses due, and every download is
    /// byte-identical to its file.
    pub fn check(self) {
        let Curls {
            children: curls,
            expect,
            clients,
        } = self;
        let mut connects = 0;
        let mut codes = Vec::new();
        for mut c in curls {
            let stdout = c.0.stdout.take().unwrap();
            let stderr = c.0.stderr.take().unwrap();
            let status = c.0.wait().expect("wait for curl");
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut err);
            assert!(status.success(), "curl: {status}: {err}");
            for line in BufReader::new(stdout).lines() {
                let line = line.unwrap();
                let v: Vec<u64> = line
                    .split_whitespace()
                    .map(|x| x.parse().unwrap())
                    .collect();
                assert_eq!(v.len(), 3, "{line:?}");
                codes.push(v[0] as u16);
                connects += v[2];
            }
        }
        assert_eq!(
            connects, clients as u64,
            "each curl kept its connection alive"
        );
        let want_codes: Vec<u16> = expect.iter().map(|e| e.1).collect();
        assert_eq!(codes, want_codes);
        for (path, _, data) in &expect {
            // curl may not create the file of an empty body.
            let got = match std::fs::read(path) {
                Err(e) if e.kind() == ErrorKind::NotFound && data.is_empty() => Vec::new(),
                r => r.unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            };
            assert_eq!(got.len(), data.len(), "{}", path.display());
            assert!(got == *data, "{} differs from its file", path.display());
        }
    }
}
