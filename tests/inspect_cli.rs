//! `aa inspect` as a user runs it: JSON lines on stdout, a summary on stderr,
//! exit statuses, and clear errors for files it cannot read.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn aa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aa"))
        .args(args)
        .output()
        .unwrap()
}

fn inspect(args: &[&str]) -> (i32, Vec<serde_json::Value>, String) {
    let mut all = vec!["inspect"];
    all.extend_from_slice(args);
    let out = aa(&all);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    (
        out.status.code().unwrap(),
        lines,
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A scratch file for this test process.
fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let p = std::env::temp_dir().join(format!("aa-inspect-{}-{name}", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    p
}

fn text(v: &serde_json::Value) -> &str {
    v["text"].as_str().unwrap()
}

#[test]
fn http_records_as_json_lines_with_a_summary() {
    let path = repo("data/captures/http_keepalive.pcap");
    let (code, lines, stderr) = inspect(&[path.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let responses: Vec<_> = lines.iter().filter(|l| l["record"] == "response").collect();
    let requests: Vec<_> = lines.iter().filter(|l| l["record"] == "request").collect();
    // Three connections: 5 + 4 + 3 messages.
    assert_eq!((requests.len(), responses.len()), (12, 12));
    for r in &responses {
        assert!(r["flow"]
            .as_str()
            .unwrap()
            .starts_with("198.51.100.2:80>198.51.100.1:"));
        assert_eq!(text(&r["fields"]["version"]), "HTTP/1.1");
        let headers = r["fields"]["headers"].as_array().unwrap();
        assert!(headers.len() >= 5, "{r}");
        let code = r["vars"]["code"].as_u64().unwrap();
        assert_eq!(text(&r["fields"]["status"]), code.to_string());
    }
    for r in &requests {
        assert!(r["flow"].as_str().unwrap().ends_with(">198.51.100.2:80"));
        assert!(text(&r["fields"]["target"]).starts_with('/'));
    }
    // Body bytes add up to the Content-Length of each response.
    let announced: u64 = responses
        .iter()
        .map(|r| r["vars"]["content_length"].as_u64().unwrap())
        .sum();
    let bodies: u64 = lines
        .iter()
        .filter(|l| {
            l["record"] == "body" && l["flow"].as_str().unwrap().starts_with("198.51.100.2:80")
        })
        .map(|l| l["fields"]["data"]["len"].as_u64().unwrap())
        .sum();
    assert_eq!(bodies, announced);
    assert!(stderr.contains("flows: 3 (3 with handshake"), "{stderr}");
    assert!(stderr.contains("errors: 0"), "{stderr}");
    assert!(stderr.contains("Gbit/s"), "{stderr}");
}

#[test]
fn max_text_cuts_text_not_len() {
    let path = repo("data/captures/http_keepalive.pcap");
    let (_, lines, _) = inspect(&["--max-text", "4", path.to_str().unwrap()]);
    let body = lines
        .iter()
        .find(|l| l["record"] == "body" && l["fields"]["data"]["len"].as_u64().unwrap() > 4)
        .unwrap();
    assert_eq!(text(&body["fields"]["data"]).len(), 4);
}

#[test]
fn a_lost_segment_is_a_gap_event_and_the_parser_goes_on() {
    let path = repo("data/captures/csv_impaired.pcap");
    let (code, lines, stderr) = inspect(&["--port", "9000=csv", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    let gaps: Vec<_> = lines.iter().filter(|l| l["event"] == "gap").collect();
    assert_eq!(gaps.len(), 1, "{stderr}");
    assert_eq!(gaps[0]["len"], 1448);
    let gap_at = gaps[0]["offset"].as_u64().unwrap();
    let rows: Vec<_> = lines.iter().filter(|l| l["record"] == "row").collect();
    assert!(rows.iter().any(|r| r["offset"].as_u64().unwrap() > gap_at));
    assert!(stderr.contains("gaps: 1 (1448 bytes)"), "{stderr}");
}

#[test]
fn a_grammar_loaded_at_run_time_gives_the_compiled_records() {
    let path = repo("data/captures/csv.pcap");
    let grammar = repo("grammars/csv.aag");
    let compiled = aa(&["inspect", "--port", "9000=csv", path.to_str().unwrap()]);
    let interpreted = aa(&[
        "inspect",
        "--grammar",
        grammar.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    assert!(compiled.status.success() && interpreted.status.success());
    assert!(compiled.stdout.len() > 1000);
    assert!(compiled.stdout == interpreted.stdout);
}

#[test]
fn stats_prints_only_the_summary_with_the_same_counts() {
    let path = repo("data/captures/http_chunked.pcap");
    let (_, lines, _) = inspect(&[path.to_str().unwrap()]);
    let out = aa(&["inspect", "--stats", path.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let records = lines.iter().filter(|l| l.get("record").is_some()).count();
    assert!(
        stderr.contains(&format!("records: {records};")),
        "{records}: {stderr}"
    );
    assert!(stderr.contains("1 by RST"), "{stderr}");
}

#[test]
fn a_truncated_capture_reports_what_was_read_and_exits_3() {
    let whole = std::fs::read(repo("data/captures/http_keepalive.pcap")).unwrap();
    let cut = scratch("cut.pcap", &whole[..whole.len() - 100]);
    let (code, lines, stderr) = inspect(&[cut.to_str().unwrap()]);
    std::fs::remove_file(&cut).unwrap();
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("truncated"), "{stderr}");
    assert!(lines.iter().filter(|l| l["record"] == "response").count() >= 10);
}

#[test]
fn files_it_cannot_read_are_clear_errors() {
    let (code, _, stderr) = inspect(&["no/such/file.pcap"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no/such/file.pcap") && stderr.contains("No such file"),
        "{stderr}"
    );

    let (code, _, stderr) = inspect(&[repo("README.md").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("not a pcap or pcapng file"), "{stderr}");

    // A pcap header with link type 147 (LINKTYPE_USER0).
    let mut header = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    header.extend_from_slice(&65535u32.to_le_bytes());
    header.extend_from_slice(&147u32.to_le_bytes());
    let user0 = scratch("user0.pcap", &header);
    let (code, _, stderr) = inspect(&[user0.to_str().unwrap()]);
    std::fs::remove_file(&user0).unwrap();
    assert_eq!(code, 1);
    assert!(stderr.contains("unsupported link type 147"), "{stderr}");
}

#[test]
fn bad_options_are_named() {
    let path = repo("data/captures/csv.pcap");
    let (code, _, stderr) = inspect(&["--protocol", "smtp", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("unknown protocol `smtp`"), "{stderr}");
    let (code, _, stderr) = inspect(&["--port", "nine=csv", path.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not a port number"), "{stderr}");
    let bad = scratch(
        "bad.aag",
        b"protocol x;\nstart record r { f: until \"\\n\"; }\n",
    );
    let (code, _, stderr) = inspect(&["--grammar", bad.to_str().unwrap(), path.to_str().unwrap()]);
    std::fs::remove_file(&bad).unwrap();
    assert_eq!(code, 1);
    assert!(stderr.contains("bad.aag:2:"), "{stderr}");
}

/// Writes `frames` (Ethernet) as a pcap scratch file.
fn pcap_file(name: &str, frames: &[(aa::stack::Timestamp, Vec<u8>)]) -> PathBuf {
    let capture = aa::stack::synth::Capture {
        frames: frames.to_vec(),
        flows: Vec::new(),
    };
    scratch(name, &capture.write_pcap(Vec::new()).unwrap())
}

/// The JSON lines of one direction, by its flow string.
fn of_flow<'a>(lines: &'a [serde_json::Value], flow: &str) -> Vec<&'a serde_json::Value> {
    lines.iter().filter(|l| l["flow"] == flow).collect()
}

#[test]
fn bad_input_is_counted_and_skipped_and_every_good_record_comes_out() {
    use aa::stack::frame::TcpFrame;
    use aa::stack::synth::{self, Capture, Conversation, Dialogue, Side};
    use aa::stack::wire::TcpFlags;
    let t0 = aa::stack::Timestamp::new(1_700_000_000, 0);
    let client: std::net::SocketAddr = "198.51.100.1:41000".parse().unwrap();
    let server: std::net::SocketAddr = "198.51.100.2:80".parse().unwrap();
    let good = Conversation::new(client, server, synth::http_keepalive(4, 0..=3000, 5), 5);
    // A second connection whose request has a header line over the grammar's
    // maximum (8192 bytes).
    let mut long = Dialogue::new();
    long.push(
        Side::Client,
        format!("GET / HTTP/1.1\r\nX-Long: {}\r\n\r\n", "a".repeat(9000)),
    );
    long.push(Side::Server, "HTTP/1.1 204 No Content\r\n\r\n");
    let other = Conversation::new("198.51.100.1:41001".parse().unwrap(), server, long, 6);
    let clean = Capture::interleave(t0, &[good, other]);
    let truth = &clean.flows[0];

    let mut frames = clean.frames.clone();
    let at = |i: usize| frames[i].0;
    let data = frames
        .iter()
        .position(|(_, f)| f.len() > 200)
        .expect("a data segment");
    let pure_ack = frames
        .iter()
        .position(|(_, f)| f.len() == 66)
        .expect("a pure ACK (timestamps option)");
    let mut bad = Vec::new();
    // A frame cut inside the TCP header.
    bad.push((at(data), frames[data].1[..40].to_vec()));
    // IP header length of 60 bytes in a 52-byte IP packet.
    let mut ihl = frames[pure_ack].1.clone();
    ihl[14] = 0x4f;
    bad.push((at(pure_ack), ihl));
    // TCP data offset of 60 bytes in a 32-byte segment.
    let mut doff = frames[pure_ack].1.clone();
    doff[14 + 20 + 12] = 0xf0;
    bad.push((at(pure_ack), doff));
    // The first data segment again, one payload byte changed, checksum left
    // as it was: if it were taken, its bytes would win over the real ones.
    let mut corrupt = frames[data].1.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x20;
    // A segment 100 MB beyond the window.
    let (c, s) = ((client.ip(), client.port()), (server.ip(), server.port()));
    let far = TcpFrame::new(c, s)
        .flags(TcpFlags::ACK | TcpFlags::PSH)
        .seq(truth.client_isn.wrapping_add(100_000_000))
        .ack(truth.server_isn.wrapping_add(1))
        .build(b"GET /far HTTP/1.1\r\n\r\n")
        .unwrap();
    bad.push((at(data), far));
    // A SYN flood from other ports.
    let flood: Vec<_> = (0..30u16)
        .map(|i| {
            let src = (client.ip(), 50000 + i);
            let syn = TcpFrame::new(src, s)
                .flags(TcpFlags::SYN)
                .seq(u32::from(i))
                .build(b"");
            (at(4), syn.unwrap())
        })
        .collect();
    frames.insert(data, (at(data), corrupt));
    for (i, f) in bad.into_iter().enumerate() {
        frames.insert(data + 2 + 2 * i, f);
    }
    // After both connections' SYNs.
    frames.splice(4..4, flood);

    let clean_file = pcap_file("clean.pcap", &clean.frames);
    let bad_file = pcap_file("bad.pcap", &frames);
    let (code, want, _) = inspect(&[clean_file.to_str().unwrap()]);
    assert_eq!(code, 0);
    let (code, got, stderr) = inspect(&["--max-flows", "5", bad_file.to_str().unwrap()]);
    std::fs::remove_file(&clean_file).unwrap();
    std::fs::remove_file(&bad_file).unwrap();
    assert_eq!(code, 0, "{stderr}");

    // Every record of the good connection, in both directions, as in the
    // clean capture.
    for flow in [
        "198.51.100.1:41000>198.51.100.2:80",
        "198.51.100.2:80>198.51.100.1:41000",
    ] {
        let (w, g) = (of_flow(&want, flow), of_flow(&got, flow));
        assert!(w.len() >= 4, "{flow}: {}", w.len());
        assert_eq!(g, w, "{flow}");
    }
    // The over-long header line: an error naming record, field and offset,
    // for that direction only; its response is still parsed.
    let errors: Vec<_> = got.iter().filter(|l| l["event"] == "error").collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["flow"], "198.51.100.1:41001>198.51.100.2:80");
    assert_eq!(errors[0]["record"], "request");
    assert_eq!(errors[0]["field"], "headers");
    assert!(errors[0]["message"]
        .as_str()
        .unwrap()
        .contains("longer than 8192"));
    let replies = of_flow(&got, "198.51.100.2:80>198.51.100.1:41001");
    assert_eq!(replies[0]["fields"]["status"]["text"], "204");
    // And everything counted.
    for counted in [
        "1 truncated",
        "2 malformed",
        "1 bad checksum",
        "27 refused (table full)",
        "1 beyond the window",
        "errors: 1",
    ] {
        assert!(stderr.contains(counted), "{counted}: {stderr}");
    }
}

#[test]
fn an_exhausted_packet_pool_ends_connections_and_says_so() {
    use aa::stack::synth::{Conversation, Dialogue, Side};
    // A 30 kB field pins every packet it spans until its row ends: more than
    // a pool of 16 buffers holds.
    let text = format!("a,{}\nb,c\n", "x".repeat(30_000));
    let conv = Conversation::new(
        "198.51.100.1:42000".parse().unwrap(),
        "198.51.100.2:9000".parse().unwrap(),
        Dialogue::one_way(Side::Client, text),
        7,
    );
    let file = pcap_file(
        "pool.pcap",
        &conv.capture(aa::stack::Timestamp::new(1, 0)).frames,
    );
    let (code, lines, stderr) =
        inspect(&["--pool", "16", "--port", "9000=csv", file.to_str().unwrap()]);
    let (_, whole, _) = inspect(&["--port", "9000=csv", file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("packet pool exhausted"), "{stderr}");
    // With room, both rows; without, the connection was ended and picked up
    // again: fewer rows, and the run went on to the end of the file.
    let rows = |ls: &[serde_json::Value]| ls.iter().filter(|l| l["record"] == "row").count();
    assert_eq!(rows(&whole), 2);
    assert!(
        lines.iter().any(|l| l["fields"]["field"][0]["text"] == "b"),
        "{lines:?}"
    );
}

/// Without the `dpdk` feature, asking for a DPDK port says how to get one.
#[cfg(not(feature = "dpdk"))]
#[test]
fn eal_without_the_dpdk_feature_says_to_rebuild() {
    let out = aa(&["inspect", "--eal", "--no-huge --vdev=net_null0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("built without DPDK") && err.contains("--features dpdk"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

/// `aa inspect`, default options, on one synthesized connection from
/// 198.51.100.1:`client` to 198.51.100.2:`server` carrying `d`: checks that
/// it exits 0 with no gap or error line, and returns its JSON lines.
fn inspect_dialogue(
    client: u16,
    server: u16,
    d: aa::stack::synth::Dialogue,
) -> Vec<serde_json::Value> {
    inspect_dialogue_with(client, server, d, &[])
}

/// [`inspect_dialogue`] with more arguments before the capture's path.
fn inspect_dialogue_with(
    client: u16,
    server: u16,
    d: aa::stack::synth::Dialogue,
    args: &[&str],
) -> Vec<serde_json::Value> {
    let (code, lines, stderr) = inspect_dialogue_raw(client, server, d, args);
    assert_eq!(code, 0, "{stderr}");
    assert!(!lines.iter().any(|l| l.get("event").is_some()), "{lines:?}");
    lines
}

/// `aa inspect ARGS` on a capture of one connection carrying `d`: the exit
/// status, the lines and stderr.
fn inspect_dialogue_raw(
    client: u16,
    server: u16,
    d: aa::stack::synth::Dialogue,
    args: &[&str],
) -> (i32, Vec<serde_json::Value>, String) {
    use aa::stack::synth::{Capture, Conversation};
    let conv = Conversation::new(
        format!("198.51.100.1:{client}").parse().unwrap(),
        format!("198.51.100.2:{server}").parse().unwrap(),
        d,
        u64::from(server),
    );
    let capture = Capture::interleave(aa::stack::Timestamp::new(1_700_000_000, 0), &[conv]);
    let name = format!("dialogue-{server}.pcap");
    let path = scratch(&name, &capture.write_pcap(Vec::new()).unwrap());
    let mut all = args.to_vec();
    all.push(path.to_str().unwrap());
    let out = inspect(&all);
    std::fs::remove_file(&path).unwrap();
    out
}

#[test]
fn errors_in_one_segment_each_come_where_they_are() {
    use aa::stack::synth::{Dialogue, Side};
    let mut d = Dialogue::new();
    d.push(Side::Client, "GET /a HTTP/1.1\r\n\r\n");
    // One segment: a good response, a bad status, a good one, a bad
    // Content-Length, a good one.
    d.push(
        Side::Server,
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n\
         HTTP/1.1 2x0 OK\r\n\r\n\
         HTTP/1.1 204 No Content\r\n\r\n\
         HTTP/1.1 200 OK\r\nContent-Length: 1y\r\n\r\n\
         HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    );
    let (code, lines, stderr) = inspect_dialogue_raw(46100, 80, d, &[]);
    assert_eq!(code, 0, "{stderr}");
    let down = of_flow(&lines, "198.51.100.2:80>198.51.100.1:46100");
    let seen: Vec<String> = down
        .iter()
        .map(|l| match l["event"].as_str() {
            Some(e) => format!("{e} {}", l["field"].as_str().unwrap()),
            None => l["vars"]["code"].to_string(),
        })
        .collect();
    assert_eq!(seen, ["200", "error status", "204", "error headers", "404"]);
    assert!(stderr.contains("errors: 2"), "{stderr}");
}

/// An MQTT control packet: type and flags, Remaining Length, the rest.
fn mqtt_packet(first: u8, rest: &[u8]) -> Vec<u8> {
    let mut v = vec![first];
    let mut n = rest.len();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        v.push(if n > 0 { b | 0x80 } else { b });
        if n == 0 {
            break;
        }
    }
    v.extend_from_slice(rest);
    v
}

#[test]
fn mqtt_on_port_1883_by_default() {
    use aa::stack::synth::{Dialogue, Side};
    let mut d = Dialogue::new();
    // CONNECT with client id "probe".
    d.push(
        Side::Client,
        mqtt_packet(0x10, b"\x00\x04MQTT\x04\x02\x00\x3c\x00\x05probe"),
    );
    d.push(Side::Server, mqtt_packet(0x20, b"\x00\x00"));
    // PUBLISH QoS 1 to "sensors/t1", id 9, a 5000-byte payload (4 segments).
    let payload: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    d.push(
        Side::Client,
        mqtt_packet(
            0x32,
            &[b"\x00\x0asensors/t1\x00\x09".as_slice(), &payload].concat(),
        ),
    );
    d.push(Side::Server, mqtt_packet(0x40, b"\x00\x09"));
    // SUBSCRIBE id 10 to "a/#" at QoS 0; SUBACK.
    d.push(Side::Client, mqtt_packet(0x82, b"\x00\x0a\x00\x03a/#\x00"));
    d.push(Side::Server, mqtt_packet(0x90, b"\x00\x0a\x00"));
    d.push(Side::Client, mqtt_packet(0xe0, b""));
    let lines = inspect_dialogue(42000, 1883, d);
    let kinds = |flow: &str| -> Vec<u64> {
        of_flow(&lines, flow)
            .iter()
            .filter(|l| l["record"] == "packet")
            .map(|l| l["vars"]["kind"].as_u64().unwrap())
            .collect()
    };
    let up = "198.51.100.1:42000>198.51.100.2:1883";
    let down = "198.51.100.2:1883>198.51.100.1:42000";
    assert_eq!(kinds(up), [1, 3, 8, 14]);
    assert_eq!(kinds(down), [2, 4, 9]);
    let publish = of_flow(&lines, up)
        .into_iter()
        .find(|l| l["vars"]["kind"] == 3)
        .unwrap();
    assert_eq!(text(&publish["fields"]["topic"]), "sensors/t1");
    assert_eq!(publish["vars"]["id"], 9);
    assert_eq!(publish["vars"]["qos"], 1);
    assert_eq!(publish["vars"]["length"], 5014);
    // The payload comes as pieces, at most one per segment, that add up.
    let pieces: Vec<u64> = of_flow(&lines, up)
        .iter()
        .filter(|l| l["record"] == "payload")
        .map(|l| l["fields"]["data"]["len"].as_u64().unwrap())
        .collect();
    assert!(pieces.len() >= 5, "{pieces:?}");
    // CONNECT's 17 bytes after its header, the publish, SUBSCRIBE's filter.
    assert_eq!(pieces.iter().sum::<u64>(), 17 + 5000 + 6);
}

#[test]
fn tls_handshakes_on_port_443_by_default() {
    use aa::stack::synth::{Dialogue, Side};
    let b16 = |v: usize| (v as u16).to_be_bytes();
    let ext = |t: u16, d: &[u8]| [&t.to_be_bytes()[..], &b16(d.len()), d].concat();
    let msg =
        |t: u8, body: &[u8]| [&[t][..], &(body.len() as u32).to_be_bytes()[1..], body].concat();
    let rec = |ct: u8, p: &[u8]| [&[ct, 3, 3][..], &b16(p.len()), p].concat();
    let host = b"shop.example";
    let sni = [&b16(host.len() + 3)[..], &[0], &b16(host.len()), host].concat();
    let alpn = [&b16(3)[..], &[2], b"h2"].concat();
    let exts = [ext(0, &sni), ext(16, &alpn)].concat();
    let hello = [
        &[3u8, 3][..],
        &[1; 32],
        &[0],
        &b16(2),
        &[0x13, 1],
        &[1, 0],
        &b16(exts.len()),
        &exts,
    ]
    .concat();
    let sexts = ext(43, &[3, 4]);
    let shello = [
        &[3u8, 3][..],
        &[2; 32],
        &[0],
        &[0x13, 1, 0],
        &b16(sexts.len()),
        &sexts,
    ]
    .concat();
    let mut d = Dialogue::new();
    d.push(Side::Client, rec(22, &msg(1, &hello)));
    d.push(
        Side::Server,
        [
            rec(22, &msg(2, &shello)),
            rec(20, &[1]),
            rec(23, &[9; 3000]),
        ]
        .concat(),
    );
    d.push(Side::Client, [rec(20, &[1]), rec(23, &[8; 200])].concat());
    let lines = inspect_dialogue(43000, 443, d);
    let one = |name: &str| -> &serde_json::Value {
        let found: Vec<_> = lines.iter().filter(|l| l["record"] == name).collect();
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        found[0]
    };
    assert_eq!(
        text(&one("server_name")["fields"]["host_name"]),
        "shop.example"
    );
    assert_eq!(text(&one("alpn")["fields"]["name"]), "h2");
    assert_eq!(
        one("selected_version")["fields"]["version"]["value"],
        0x0304
    );
    // The encrypted 3000 bytes come as fragments, one a segment.
    let down: u64 = of_flow(&lines, "198.51.100.2:443>198.51.100.1:43000")
        .iter()
        .filter(|l| l["record"] == "fragment")
        .map(|l| l["fields"]["data"]["len"].as_u64().unwrap())
        .sum();
    assert_eq!(down, 1 + 3000);
}

#[test]
fn redis_on_port_6379_by_default() {
    use aa::stack::synth::{Dialogue, Side};
    let mut d = Dialogue::new();
    d.push(Side::Client, "*2\r\n$3\r\nGET\r\n$5\r\nuser1\r\n");
    d.push(Side::Server, "$5\r\nalice\r\n");
    d.push(Side::Client, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv2\r\n");
    d.push(Side::Server, "+OK\r\n");
    let lines = inspect_dialogue(44000, 6379, d);
    let texts: Vec<String> = lines
        .iter()
        .flat_map(|l| {
            l["fields"]
                .as_object()
                .into_iter()
                .flat_map(|f| f.values())
                .filter_map(|v| v.get("text").and_then(|t| t.as_str()).map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect();
    for word in ["GET", "user1", "alice", "SET", "v2", "OK"] {
        assert!(texts.iter().any(|t| t == word), "{word} in {texts:?}");
    }
}

#[test]
fn websocket_frames_after_an_upgrade_on_port_80() {
    use aa::stack::synth::{Dialogue, Side};
    let mut d = Dialogue::new();
    d.push(
        Side::Client,
        "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    );
    d.push(
        Side::Server,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    );
    // The server's text frame of 200 bytes (a 16-bit length) and a close
    // with code 1000.
    d.push(
        Side::Server,
        [&b"\x81\x7e\x00\xc8"[..], &[b'y'; 200], b"\x88\x02\x03\xe8"].concat(),
    );
    // The client's masked text frame "hi" with key 1 2 3 4, a ping, and a
    // masked binary frame of 3,000 bytes: its payload in three packets (the
    // first with 1,426 of its bytes, so the later pieces start half-way into
    // the key), each printed as its first 256 bytes.
    let long: Vec<u8> = b"0123456789abcdefghijklmnopqrstuvwxyz"
        .iter()
        .cycle()
        .take(3000)
        .copied()
        .collect();
    let key = [0x5a, 0x0f, 0xf0, 0x33];
    let mut sent = b"\x81\x82\x01\x02\x03\x04\x69\x6b\x89\x80\x00\x00\x00\x00".to_vec();
    sent.extend_from_slice(b"\x82\xfe\x0b\xb8");
    sent.extend_from_slice(&key);
    sent.extend(long.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    d.push(Side::Client, sent);
    let lines = inspect_dialogue(45000, 80, d);
    let frames = |flow: &str| -> Vec<(u64, bool, bool, u64)> {
        of_flow(&lines, flow)
            .iter()
            .filter(|l| l["record"] == "ws_frame")
            .map(|l| {
                let v = &l["vars"];
                (
                    v["opcode"].as_u64().unwrap(),
                    v["fin"].as_bool().unwrap(),
                    v["masked"].as_bool().unwrap(),
                    v["length"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let up = "198.51.100.1:45000>198.51.100.2:80";
    let down = "198.51.100.2:80>198.51.100.1:45000";
    assert_eq!(
        frames(up),
        [
            (1, true, true, 2),
            (9, true, true, 0),
            (2, true, true, 3000)
        ]
    );
    assert_eq!(frames(down), [(1, true, false, 200), (8, true, false, 2)]);
    let masked = of_flow(&lines, up)
        .into_iter()
        .find(|l| l["record"] == "ws_payload")
        .unwrap();
    // As sent: masked ("hi" is 0x68 0x69); and unmasked beside.
    assert_eq!(text(&masked["fields"]["data"]), "ik");
    assert_eq!(masked["unmasked"]["len"], 2);
    assert_eq!(text(&masked["unmasked"]), "hi");
    // The server's frames are not masked: nothing to add.
    let plain = of_flow(&lines, down)
        .into_iter()
        .find(|l| l["record"] == "ws_payload")
        .unwrap();
    assert_eq!(plain["fields"]["data"]["len"], 200);
    assert!(plain.get("unmasked").is_none(), "{plain}");
    // The long frame's pieces: each unmasked from where it starts in the
    // payload, though only its first bytes are printed.
    let up_lines = of_flow(&lines, up);
    let long_frame = up_lines
        .iter()
        .filter(|l| l["record"] == "ws_frame")
        .nth(2)
        .unwrap();
    let payload_at = long_frame["offset"].as_u64().unwrap() + 8;
    let pieces: Vec<_> = up_lines
        .iter()
        .filter(|l| l["record"] == "ws_payload" && l["offset"].as_u64().unwrap() >= payload_at)
        .collect();
    assert_eq!(pieces.len(), 3, "{pieces:?}");
    let mut total = 0;
    for p in pieces {
        let at = (p["offset"].as_u64().unwrap() - payload_at) as usize;
        let len = p["unmasked"]["len"].as_u64().unwrap() as usize;
        let shown = text(&p["unmasked"]);
        assert_eq!(shown.len(), len.min(256));
        assert_eq!(
            shown.as_bytes(),
            &long[at..at + shown.len()],
            "piece at {at}"
        );
        total += len;
    }
    assert_eq!(total, 3000);
    let key = of_flow(&lines, up)
        .into_iter()
        .find(|l| l["record"] == "ws_frame")
        .unwrap();
    assert_eq!(key["fields"]["mask"]["len"], 4);
}

/// A user's protocol whose two directions differ: memcached's text protocol,
/// a client's grammar and a server's.
const MC_REQUEST: &str = r#"protocol mc_request;
var remaining: u64 = 0;
start record command sync after "\r\n" {
    line: until "\r\n" max 2048 {
        if prefix(line, "set ") {
            remaining = dec(before(after(after(after(after(line, " "), " "), " "), " "), " "));
            next data;
        }
    }
}
record data {
    block: chunk remaining { remaining = remaining - len(block); }
    then { if remaining > 0 { next data; } else { next data_end; } }
}
record data_end { expect "\r\n"; }
"#;

const MC_RESPONSE: &str = r#"protocol mc_response;
var remaining: u64 = 0;
start record reply sync after "\r\n" {
    line: until "\r\n" max 2048 {
        if prefix(line, "VALUE ") {
            remaining = dec(before(after(after(after(line, " "), " "), " "), " "));
            next value;
        }
    }
}
record value {
    data: chunk remaining { remaining = remaining - len(data); }
    then { if remaining > 0 { next value; } else { next value_end; } }
}
record value_end { expect "\r\n"; }
"#;

#[test]
fn a_client_grammar_and_a_server_grammar_on_one_port() {
    use aa::stack::synth::{Dialogue, Side};
    let req = scratch("mc_request.aag", MC_REQUEST.as_bytes());
    let resp = scratch("mc_response.aag", MC_RESPONSE.as_bytes());
    let (req, resp) = (req.to_str().unwrap(), resp.to_str().unwrap());
    let mut d = Dialogue::new();
    d.push(Side::Client, "set k 0 0 5\r\nhello\r\n");
    d.push(Side::Server, "STORED\r\n");
    d.push(Side::Client, "get k\r\n");
    d.push(Side::Server, "VALUE k 0 5\r\nhello\r\nEND\r\n");
    let args = ["--grammar", req, "--grammar", resp, "--port"];
    let lines = inspect_dialogue_with(
        46000,
        11211,
        d,
        &[&args[..], &["11211=mc_request/mc_response"]].concat(),
    );
    let names = |flow: &str| -> Vec<String> {
        of_flow(&lines, flow)
            .iter()
            .map(|l| l["record"].as_str().unwrap().to_string())
            .collect()
    };
    let up = "198.51.100.1:46000>198.51.100.2:11211";
    let down = "198.51.100.2:11211>198.51.100.1:46000";
    assert_eq!(names(up), ["command", "data", "data_end", "command"]);
    assert_eq!(
        names(down),
        ["reply", "reply", "value", "value_end", "reply"]
    );
    let value = of_flow(&lines, down)
        .into_iter()
        .find(|l| l["record"] == "value")
        .unwrap();
    assert_eq!(text(&value["fields"]["data"]), "hello");

    // Two grammars and no --port: which is which is not known.
    let cap = repo("data/captures/http_keepalive.pcap");
    let cap = cap.to_str().unwrap();
    let (code, _, stderr) = inspect(&["--grammar", req, "--grammar", resp, cap]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("--port P=CLIENT/SERVER"), "{stderr}");
    // A half of a pair that names nothing.
    let (code, _, stderr) = inspect(&[&args[..], &["11211=mc_request/nope", cap]].concat());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("unknown protocol `nope`"), "{stderr}");
    assert!(stderr.contains("mc_response (--grammar)"), "{stderr}");
    // The same protocol twice.
    let (code, _, stderr) = inspect(&["--grammar", req, "--grammar", req, cap]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("already given"), "{stderr}");
}
