//! `aa inspect` against tshark, on captures of real programs talking
//! (`data/real/`, recorded by `scripts/record-real-traffic.sh`: python3's
//! http.server, curl and nc in two network namespaces).
//!
//! For every `data/real/real_http_*.pcap`, per direction of each TCP connection
//! and in order, both tools must see the same HTTP messages: request method and
//! target, response status code, the header lines, the Content-Length header
//! value, the body length (Content-Length, or the sum of the chunk sizes; 0
//! for the response to a HEAD, `real_http_head.pcap`) and chunked trailers. tshark runs with its reassembly settings spelled out (see
//! [`TSHARK_ARGS`]). Without tshark the HTTP test prints
//! "skipped: tshark not installed" and passes, unless `AA_REQUIRE_TSHARK=1`
//! (CI sets it), when it fails.
//!
//! `real_tls.pcap` holds three HTTPS connections (curl to Python, TLS 1.3,
//! TLS 1.2, TLS 1.2 offering h2): per direction, aa's `tls_handshake`
//! records on port 443 and tshark must give the same handshake message
//! types, server names, ALPN protocols and chosen versions.
//!
//! `real_csv_nc.pcap` holds `real_csv_nc.csv` sent by nc to port 9000:
//! `aa inspect --port 9000=csv` must give its rows, field by field.
//!
//! aa runs with its default options. The captures were taken on a veth with
//! transmit checksum offload: no TCP checksum in them is filled, which aa's
//! checksum `auto` mode must recognise (tshark does not validate checksums).

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// tshark options, after `-r FILE`: full reassembly of TCP streams, HTTP
/// headers and bodies (chunked bodies de-chunked), no TCP checksum validation
/// (the captures come from a veth with transmit checksum offload: checksums are
/// unfilled), port 8080 decoded as HTTP, only frames that complete an HTTP
/// message, JSON output in which a frame carrying several messages has an array
/// under `http`.
const TSHARK_ARGS: &[&str] = &[
    "-n",
    "-o",
    "tcp.desegment_tcp_streams:TRUE",
    "-o",
    "tcp.reassemble_out_of_order:TRUE",
    "-o",
    "tcp.check_checksum:FALSE",
    "-o",
    "http.desegment_headers:TRUE",
    "-o",
    "http.desegment_body:TRUE",
    "-o",
    "http.dechunk_body:TRUE",
    "-d",
    "tcp.port==8080,http",
    "-Y",
    "http",
    "-T",
    "json",
    "--no-duplicate-keys",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One HTTP message as seen in one direction of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Msg {
    /// `request` or `response`.
    kind: &'static str,
    /// `METHOD TARGET` for a request, the status code for a response.
    start: String,
    /// Header lines without their CRLF, in order.
    headers: Vec<String>,
    /// The Content-Length header's value, as written.
    content_length: Option<String>,
    /// Body bytes: Content-Length, or the sum of the chunk sizes.
    body_len: u64,
    /// Trailer lines of a chunked body.
    trailers: Vec<String>,
}

impl Msg {
    fn new(kind: &'static str, start: String, headers: Vec<String>) -> Msg {
        let content_length = header_value(&headers, "content-length");
        Msg {
            kind,
            start,
            headers,
            content_length,
            body_len: 0,
            trailers: Vec::new(),
        }
    }
}

/// Value of the first header named `name` (ASCII case-insensitive), trimmed.
fn header_value(headers: &[String], name: &str) -> Option<String> {
    headers.iter().find_map(|h| {
        let (n, v) = h.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// Messages per flow, the flow written `SRC:PORT>DST:PORT` (sender first).
type Flows = BTreeMap<String, Vec<Msg>>;

fn endpoint(addr: &str, port: &str) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

// ---------------------------------------------------------------- tshark side

fn tshark_available() -> bool {
    Command::new("tshark")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The first value under `key` anywhere in `v` (depth first).
fn find<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m.get(key).or_else(|| m.values().find_map(|x| find(x, key))),
        Value::Array(a) => a.iter().find_map(|x| find(x, key)),
        _ => None,
    }
}

/// Every string under `key` anywhere in `v`, in document order.
fn find_all(v: &Value, key: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == key {
                    strings(x, out);
                } else {
                    find_all(x, key, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| find_all(x, key, out)),
        _ => {}
    }
}

/// A string, or the strings of an array (`--no-duplicate-keys` merges repeated
/// keys into arrays).
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        _ => {}
    }
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("tshark JSON: no string `{key}` in {v}"))
}

fn lines_without_crlf(v: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(v) = v {
        strings(v, &mut out);
    }
    out.into_iter()
        .map(|s| s.strip_suffix("\r\n").unwrap_or(&s).to_string())
        .collect()
}

/// The command line the HTTP test runs, for messages.
fn tshark_command_line(file: &Path) -> String {
    format!("tshark -r {} {}", file.display(), TSHARK_ARGS.join(" "))
}

fn tshark_http(file: &Path) -> Flows {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(TSHARK_ARGS)
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "{} failed: {}",
        tshark_command_line(file),
        String::from_utf8_lossy(&out.stderr)
    );
    let frames: Value = serde_json::from_slice(&out.stdout).expect("tshark -T json output");
    let mut flows = Flows::new();
    for frame in frames.as_array().expect("tshark JSON: an array of frames") {
        let layers = &frame["_source"]["layers"];
        let ip = layers
            .get("ip")
            .map(|ip| (str_at(ip, "ip.src"), str_at(ip, "ip.dst")))
            .or_else(|| {
                let ip = layers.get("ipv6")?;
                Some((str_at(ip, "ipv6.src"), str_at(ip, "ipv6.dst")))
            })
            .expect("tshark JSON: an HTTP frame without IP");
        let tcp = &layers["tcp"];
        let flow = format!(
            "{}>{}",
            endpoint(ip.0, str_at(tcp, "tcp.srcport")),
            endpoint(ip.1, str_at(tcp, "tcp.dstport"))
        );
        let pdus: Vec<&Value> = match &layers["http"] {
            Value::Array(a) => a.iter().collect(),
            v @ Value::Object(_) => vec![v],
            v => panic!("tshark JSON: unexpected `http` layer {v}"),
        };
        for h in pdus {
            let msg = if let Some(method) = find(h, "http.request.method") {
                let uri = find(h, "http.request.uri")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let start = format!("{} {uri}", method.as_str().unwrap_or_default());
                Msg::new(
                    "request",
                    start,
                    lines_without_crlf(h.get("http.request.line")),
                )
            } else if let Some(code) = find(h, "http.response.code") {
                let start = code.as_str().unwrap_or_default().to_string();
                Msg::new(
                    "response",
                    start,
                    lines_without_crlf(h.get("http.response.line")),
                )
            } else {
                panic!("tshark JSON: an HTTP PDU that is neither request nor response: {h}");
            };
            let chunked = header_value(&msg.headers, "transfer-encoding")
                .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
            let body_len = if chunked {
                let mut sizes = Vec::new();
                find_all(h, "http.chunk_size", &mut sizes);
                sizes.iter().map(|s| s.parse::<u64>().unwrap()).sum()
            } else {
                msg.content_length
                    .as_deref()
                    .map_or(0, |cl| cl.parse().expect("numeric Content-Length"))
            };
            let mut trailers = Vec::new();
            find_all(h, "http.chunked_trailer_part", &mut trailers);
            let trailers = trailers
                .iter()
                .map(|s| s.strip_suffix("\r\n").unwrap_or(s).to_string())
                .collect();
            flows.entry(flow.clone()).or_default().push(Msg {
                body_len,
                trailers,
                ..msg
            });
        }
    }
    head_responses_without_body(&mut flows);
    flows
}

/// The response to a HEAD has no body, whatever its Content-Length says:
/// pairs each final response with the request of the other direction, in
/// order, and sets its body length to 0 when that request is a HEAD.
fn head_responses_without_body(flows: &mut Flows) {
    let heads: Vec<(String, Vec<bool>)> = flows
        .iter()
        .filter(|(_, msgs)| msgs.first().is_some_and(|m| m.kind == "request"))
        .map(|(flow, msgs)| {
            let (client, server) = flow.split_once('>').expect("flow is SRC>DST");
            let is_head = msgs.iter().map(|m| m.start.starts_with("HEAD ")).collect();
            (format!("{server}>{client}"), is_head)
        })
        .collect();
    for (reverse, is_head) in heads {
        let Some(responses) = flows.get_mut(&reverse) else {
            continue;
        };
        let finals = responses
            .iter_mut()
            .filter(|m| !m.start.starts_with('1') || m.start == "101");
        for (m, head) in finals.zip(is_head) {
            if head {
                m.body_len = 0;
            }
        }
    }
}

// -------------------------------------------------------------------- aa side

struct Inspect {
    /// Records and events, one JSON object per stdout line.
    lines: Vec<Value>,
    stderr: String,
}

fn aa_inspect(args: &[&str]) -> Inspect {
    let out = Command::new(env!("CARGO_BIN_EXE_aa"))
        .arg("inspect")
        .args(args)
        .current_dir(root())
        .output()
        .expect("run aa inspect");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "aa inspect {} failed ({}): {stderr}",
        args.join(" "),
        out.status
    );
    let stdout = String::from_utf8(out.stdout).expect("aa inspect: UTF-8 output");
    let lines = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("aa inspect: not a JSON line ({e}): {l}"))
        })
        .collect();
    Inspect { lines, stderr }
}

/// `text` of a field object.
fn text(field: &Value) -> String {
    field
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("aa inspect: a field without `text`: {field}"))
        .to_string()
}

/// Texts of a repeated field (an array; absent when it has no element).
fn texts(fields: &Value, name: &str) -> Vec<String> {
    match fields.get(name) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().map(text).collect(),
        Some(v) => panic!("aa inspect: repeated field `{name}` is not an array: {v}"),
    }
}

/// HTTP messages per flow from `aa inspect` output, and every problem seen on
/// the way: events (gaps, errors), records out of stream order, vars that
/// disagree with the header they come from.
fn aa_http(lines: &[Value]) -> (Flows, Vec<String>) {
    let mut flows = Flows::new();
    let mut problems = Vec::new();
    let mut last_offset: BTreeMap<String, u64> = BTreeMap::new();
    for v in lines {
        if v.get("event").is_some() {
            problems.push(format!("event: {v}"));
            continue;
        }
        let flow = v["flow"]
            .as_str()
            .unwrap_or_else(|| panic!("aa inspect: a record without `flow`: {v}"))
            .to_string();
        let record = v["record"].as_str().unwrap_or_default();
        let offset = v["offset"]
            .as_u64()
            .unwrap_or_else(|| panic!("aa inspect: a record without `offset`: {v}"));
        match last_offset.get(&flow) {
            Some(&last) if offset <= last => problems.push(format!(
                "{flow}: record at offset {offset} after one at offset {last}: {v}"
            )),
            None if offset != 0 => problems.push(format!(
                "{flow}: first record at offset {offset}, not 0 (the captures start with the SYN): {v}"
            )),
            _ => {}
        }
        last_offset.insert(flow.clone(), offset);
        let fields = &v["fields"];
        let vars = &v["vars"];
        match record {
            "request" | "response" => {
                let headers = texts(fields, "headers");
                let msg = if record == "request" {
                    let start = format!("{} {}", text(&fields["method"]), text(&fields["target"]));
                    Msg::new("request", start, headers)
                } else {
                    let status = text(&fields["status"]);
                    let code = status.parse::<u64>().ok();
                    if vars.get("code").and_then(Value::as_u64) != code {
                        problems.push(format!(
                            "{flow} at {offset}: vars.code {:?} but status {status:?}",
                            vars.get("code")
                        ));
                    }
                    Msg::new("response", status, headers)
                };
                if let Some(cl) = &msg.content_length {
                    let var = vars.get("content_length").and_then(Value::as_u64);
                    if var != cl.parse().ok() {
                        problems.push(format!(
                            "{flow} at {offset}: vars.content_length {var:?} but Content-Length: {cl}"
                        ));
                    }
                }
                flows.entry(flow).or_default().push(msg);
            }
            "body" | "trailers" => {
                let Some(msg) = flows.get_mut(&flow).and_then(|m| m.last_mut()) else {
                    problems.push(format!("{flow}: a {record} record before any message: {v}"));
                    continue;
                };
                if record == "body" {
                    let len = fields["data"]["len"].as_u64();
                    let Some(len) = len else {
                        problems.push(format!("{flow}: a body record without data.len: {v}"));
                        continue;
                    };
                    msg.body_len += len;
                } else {
                    msg.trailers.extend(texts(fields, "fields"));
                }
            }
            _ => {}
        }
    }
    (flows, problems)
}

/// Differences between what tshark and aa saw, one line each.
fn diff(tshark: &Flows, aa: &Flows) -> Vec<String> {
    let mut out = Vec::new();
    for (flow, t) in tshark {
        let empty = Vec::new();
        let a = aa.get(flow).unwrap_or(&empty);
        if t.len() != a.len() {
            out.push(format!(
                "{flow}: tshark sees {} messages, aa {}",
                t.len(),
                a.len()
            ));
        }
        for (i, (t, a)) in t.iter().zip(a).enumerate() {
            if t != a {
                out.push(format!(
                    "{flow}: message {i} differs\n    tshark: {t:?}\n    aa:     {a:?}"
                ));
            }
        }
        for (i, extra) in t.iter().enumerate().skip(a.len()) {
            out.push(format!("{flow}: message {i} only in tshark: {extra:?}"));
        }
        for (i, extra) in a.iter().enumerate().skip(t.len()) {
            out.push(format!("{flow}: message {i} only in aa: {extra:?}"));
        }
    }
    for flow in aa.keys().filter(|f| !tshark.contains_key(*f)) {
        out.push(format!(
            "{flow}: aa sees {} messages, tshark none",
            aa[flow].len()
        ));
    }
    out
}

fn real_http_captures() -> Vec<PathBuf> {
    let dir = root().join("data/real");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("real_http_") && name.ends_with(".pcap")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn inspect_agrees_with_tshark_on_real_http() {
    if !tshark_available() {
        let required = std::env::var("AA_REQUIRE_TSHARK").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "AA_REQUIRE_TSHARK=1 but tshark is not installed (.ci/deps installs it)"
        );
        eprintln!("skipped: tshark not installed");
        return;
    }
    let files = real_http_captures();
    assert!(
        files.len() >= 2,
        "expected data/real/real_http_*.pcap, found {files:?}"
    );
    let mut report = String::new();
    for file in &files {
        let rel = file.strip_prefix(root()).unwrap();
        let t = tshark_http(file);
        let total: usize = t.values().map(Vec::len).sum();
        assert!(
            total >= 4 && t.len() >= 2,
            "{}: tshark found only {total} HTTP messages in {} flows",
            tshark_command_line(rel),
            t.len()
        );
        // Default options: checksums `auto` keeps the segments that checksum
        // offload left unfilled (all of them here, taken on a veth).
        let out = aa_inspect(&[rel.to_str().unwrap()]);
        let (a, mut problems) = aa_http(&out.lines);
        problems.extend(diff(&t, &a));
        eprintln!(
            "{}: tshark {total} messages in {} flows; aa {} messages; {} problems",
            rel.display(),
            t.len(),
            a.values().map(Vec::len).sum::<usize>(),
            problems.len()
        );
        if !problems.is_empty() {
            let _ = writeln!(
                report,
                "== {} (tshark: {}; aa inspect {})",
                rel.display(),
                tshark_command_line(rel),
                rel.display()
            );
            for p in &problems {
                let _ = writeln!(report, "  {p}");
            }
            let _ = writeln!(report, "  aa inspect stderr: {}", out.stderr.trim());
        }
    }
    assert!(
        report.is_empty(),
        "aa inspect and tshark disagree:\n{report}"
    );
}

// ------------------------------------------------------------------------ CSV

/// RFC 4180 as csv-core reads it by default: `\r\n`, `\n` or `\r` ends a
/// record, blank lines are skipped, a field starting with a quote is quoted and
/// `""` inside it is one quote.
fn parse_csv(s: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut in_quotes = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !quoted => {
                quoted = true;
                in_quotes = true;
            }
            ',' => {
                row.push(std::mem::take(&mut field));
                quoted = false;
            }
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                if !row.is_empty() || !field.is_empty() || quoted {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                quoted = false;
            }
            c => field.push(c),
        }
    }
    if !row.is_empty() || !field.is_empty() || quoted {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[test]
fn inspect_reads_the_csv_nc_sent() {
    let csv = std::fs::read_to_string(root().join("data/real/real_csv_nc.csv")).unwrap();
    let expected = parse_csv(&csv);
    assert!(expected.len() > 50, "{} rows", expected.len());
    assert!(expected
        .iter()
        .flatten()
        .any(|f| f.contains('"') && f.contains(' ')));
    assert!(expected.iter().flatten().any(|f| f.contains('\n')));

    let out = aa_inspect(&["--port", "9000=csv", "data/real/real_csv_nc.pcap"]);
    let mut problems = Vec::new();
    let mut rows: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for v in &out.lines {
        if v.get("event").is_some() {
            problems.push(format!("event: {v}"));
        } else if v["record"] == "row" {
            let flow = v["flow"].as_str().unwrap_or_default().to_string();
            rows.entry(flow)
                .or_default()
                .push(texts(&v["fields"], "field"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}\n{}", out.stderr);
    assert_eq!(
        rows.len(),
        1,
        "expected rows in one flow (nc client > 198.51.100.2:9000): {:?}",
        rows.keys().collect::<Vec<_>>()
    );
    let (flow, got) = rows.into_iter().next().unwrap();
    assert!(
        flow.starts_with("198.51.100.1:") && flow.ends_with(">198.51.100.2:9000"),
        "{flow}"
    );
    let mut mismatches = Vec::new();
    if got.len() != expected.len() {
        mismatches.push(format!("{} rows, expected {}", got.len(), expected.len()));
    }
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        // Quoted fields come unquoted: `"a ""b"""` is `a "b"`.
        if g != e {
            mismatches.push(format!("row {i}: aa {g:?}, expected {e:?}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "aa inspect --port 9000=csv data/real/real_csv_nc.pcap ({flow}):\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn csv_reference_parser() {
    assert_eq!(
        parse_csv("a,\"b,c\",\"d \"\"e\"\"\"\r\n\r\n,\"\"\n\"x\ny\",z"),
        vec![vec!["a", "b,c", "d \"e\""], vec!["", ""], vec!["x\ny", "z"],]
    );
}

// ------------------------------------------------------------------------ TLS

/// What one direction of a TLS connection showed in the clear: handshake
/// message types in order, server names, ALPN protocols, the version a
/// ServerHello chose (`supported_versions`).
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsDir {
    types: Vec<u64>,
    names: Vec<String>,
    alpn: Vec<String>,
    versions: Vec<u64>,
}

/// tshark's view, by `SRCPORT>DSTPORT`.
fn tshark_tls(file: &Path) -> BTreeMap<String, TlsDir> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args([
            "-n",
            "-o",
            "tcp.check_checksum:FALSE",
            "-Y",
            "tls.handshake",
        ])
        .args(["-T", "fields", "-E", "separator=|", "-E", "occurrence=a"])
        .args(["-E", "aggregator=,"])
        .args([
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
            "-e",
            "tls.handshake.type",
        ])
        .args(["-e", "tls.handshake.extensions_server_name"])
        .args(["-e", "tls.handshake.extensions_alpn_str"])
        .args(["-e", "tls.handshake.extensions.supported_version"])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut dirs: BTreeMap<String, TlsDir> = BTreeMap::new();
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    };
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let cols: Vec<&str> = line.split('|').collect();
        assert_eq!(cols.len(), 6, "tshark line: {line}");
        let d = dirs.entry(format!("{}>{}", cols[0], cols[1])).or_default();
        let types: Vec<u64> = list(cols[2]).iter().map(|t| t.parse().unwrap()).collect();
        d.names.extend(list(cols[3]));
        d.alpn.extend(list(cols[4]));
        // A ServerHello's `supported_versions` is the version chosen (a
        // ClientHello's is the list offered, which aa does not break out).
        if types.contains(&2) {
            d.versions.extend(
                list(cols[5])
                    .iter()
                    .map(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap()),
            );
        }
        d.types.extend(types);
    }
    dirs
}

/// aa's view, from `aa inspect`'s records.
fn aa_tls(lines: &[Value]) -> BTreeMap<String, TlsDir> {
    let mut dirs: BTreeMap<String, TlsDir> = BTreeMap::new();
    let port = |ep: &str| ep.rsplit(':').next().unwrap().to_string();
    for v in lines {
        let (Some(flow), Some(record)) = (v["flow"].as_str(), v["record"].as_str()) else {
            continue;
        };
        let (src, dst) = flow.split_once('>').unwrap();
        let d = dirs
            .entry(format!("{}>{}", port(src), port(dst)))
            .or_default();
        let f = &v["fields"];
        match record {
            "handshake" => d.types.push(f["msg_type"]["value"].as_u64().unwrap()),
            "server_name" => d.names.push(text(&f["host_name"])),
            "alpn" => d.alpn.push(text(&f["name"])),
            "selected_version" => d.versions.push(f["version"]["value"].as_u64().unwrap()),
            _ => {}
        }
    }
    dirs.retain(|_, d| *d != TlsDir::default());
    dirs
}

#[test]
fn inspect_agrees_with_tshark_on_real_tls() {
    if !tshark_available() {
        let required = std::env::var("AA_REQUIRE_TSHARK").is_ok_and(|v| v == "1");
        assert!(!required, "AA_REQUIRE_TSHARK=1 but tshark is not installed");
        eprintln!("skipped: tshark not installed");
        return;
    }
    let rel = Path::new("data/real/real_tls.pcap");
    let t = tshark_tls(&root().join(rel));
    // Three connections, both directions, with names and protocols to compare.
    assert_eq!(t.len(), 6, "{t:?}");
    assert!(t.values().any(|d| d.names == ["test.example"]));
    let out = aa_inspect(&[rel.to_str().unwrap()]);
    assert!(
        !out.lines.iter().any(|l| l.get("event").is_some()),
        "{}",
        out.stderr
    );
    assert_eq!(aa_tls(&out.lines), t);
}
