//! `aa inspect --eal ARGS`: live traffic from a DPDK port takes the same
//! passive path as a capture file and gives the same JSON lines.
//!
//! The port is DPDK's `net_pcap` virtual device replaying a capture file
//! (`rx_pcap=FILE`): it delivers the file's frames as Ethernet frames in mbufs,
//! then nothing, so `--idle` ends each run. No NIC, hugepages or root needed.
//! Every run is its own `aa` process (EAL starts once per process); every
//! summary is checked for the line a packet left outside the mempool adds.
#![cfg(feature = "dpdk")]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const EAL: &str = "--no-huge --no-pci -m 256 --no-shconf --no-telemetry";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// EAL arguments for a `net_pcap` port named `net_pcap0` replaying `pcap`.
fn eal_replaying(pcap: &Path) -> String {
    format!("{EAL} --vdev=net_pcap0,rx_pcap={}", pcap.display())
}

fn parse(out: Output) -> (i32, Vec<Value>, String) {
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    (out.status.code().unwrap_or(-1), lines, stderr)
}

/// `aa inspect ARGS`.
fn inspect(args: &[&str]) -> (i32, Vec<Value>, String) {
    parse(
        Command::new(env!("CARGO_BIN_EXE_aa"))
            .arg("inspect")
            .args(args)
            .output()
            .unwrap(),
    )
}

/// `aa inspect ARGS FILE`, then `aa inspect --eal ... --idle 1 ARGS` with a
/// port replaying FILE.
fn file_and_live(file: &Path, args: &[&str]) -> [(i32, Vec<Value>, String); 2] {
    let mut from_file = args.to_vec();
    from_file.push(file.to_str().unwrap());
    let eal = eal_replaying(file);
    let mut live = vec!["--eal", &eal, "--idle", "1"];
    live.extend_from_slice(args);
    [inspect(&from_file), inspect(&live)]
}

/// The summary's line starting with `prefix` (after indentation).
fn summary_line<'a>(stderr: &'a str, prefix: &str) -> &'a str {
    stderr
        .lines()
        .find(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in: {stderr}"))
}

/// The packet count of the summary's first line (`SOURCE: N packets, ...`).
fn packets(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains(" packets, "))
        .unwrap_or_else(|| panic!("no summary in: {stderr}"));
    let before = line.split(" packets, ").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

fn assert_clean_live_summary(stderr: &str) {
    assert_clean_summary_of("net_pcap0", stderr);
}

/// The summary names `port`; no mbuf was left outside the mempool; nothing
/// panicked.
fn assert_clean_summary_of(port: &str, stderr: &str) {
    assert!(
        stderr.contains(&format!("{port} (DPDK port 0): ")),
        "the summary names the port: {stderr}"
    );
    assert!(!stderr.contains("not returned to the pool"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn live_records_equal_the_records_of_the_file() {
    let cases: &[(&str, &[&str])] = &[
        ("http_keepalive.pcap", &[]),
        ("http_pipelined.pcap", &[]),
        ("http_chunked.pcap", &[]),
        ("http_impaired.pcap", &[]),
        ("http_ipv6.pcapng", &[]),
        ("csv.pcap", &["--port", "9000=csv"]),
        ("csv_impaired.pcap", &["--port", "9000=csv"]),
    ];
    for (name, args) in cases {
        let file = repo(&format!("data/captures/{name}"));
        let [(fcode, want, fstderr), (lcode, got, lstderr)] = file_and_live(&file, args);
        assert_eq!(fcode, 0, "{name}: {fstderr}");
        assert_eq!(lcode, 0, "{name}: {lstderr}");
        assert!(
            want.iter().any(|l| l.get("record").is_some()),
            "{name}: no record"
        );
        // Every line: flow, record or event, offset, fields and variables.
        // No line carries a timestamp, so nothing is left out.
        assert_eq!(got, want, "{name}");
        assert_clean_live_summary(&lstderr);
        assert_eq!(packets(&lstderr), packets(&fstderr), "{name}: {lstderr}");
        // The same flows, segments and frames counted. Not compared: the
        // first line (source, time, throughput) and the checksum verdict
        // (the same here, but it names what it saw of the capture's timing).
        for prefix in ["flows:", "records:", "segments:", "frames:"] {
            assert_eq!(
                summary_line(&lstderr, prefix),
                summary_line(&fstderr, prefix),
                "{name}"
            );
        }
    }
}

#[test]
fn a_grammar_and_port_name_work_live_too() {
    let file = repo("data/captures/csv.pcap");
    let grammar = repo("grammars/csv.aag");
    let grammar = grammar.to_str().unwrap();
    let (_, want, _) = inspect(&["--grammar", grammar, file.to_str().unwrap()]);
    let eal = eal_replaying(&file);
    let (code, got, stderr) = inspect(&[
        "--eal",
        &eal,
        "--idle",
        "1",
        "--dpdk-port",
        "net_pcap0",
        "--grammar",
        grammar,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(want.iter().filter(|l| l["record"] == "row").count() > 2);
    assert_eq!(got, want);
    assert_clean_live_summary(&stderr);
}

/// Writes `frames` (Ethernet) as a pcap scratch file.
fn pcap_file(name: &str, frames: &[(aa::stack::Timestamp, Vec<u8>)]) -> PathBuf {
    let capture = aa::stack::synth::Capture {
        frames: frames.to_vec(),
        flows: Vec::new(),
    };
    let p = std::env::temp_dir().join(format!("aa-dpdk-inspect-{}-{name}", std::process::id()));
    std::fs::write(&p, capture.write_pcap(Vec::new()).unwrap()).unwrap();
    p
}

#[test]
fn packets_stops_after_that_many() {
    let file = repo("data/captures/http_keepalive.pcap");
    let eal = eal_replaying(&file);
    let (code, got, stderr) = inspect(&["--eal", &eal, "--packets", "20"]);
    assert_eq!(code, 0, "{stderr}");
    assert_clean_live_summary(&stderr);
    assert_eq!(packets(&stderr), 20, "{stderr}");

    // The records of the first 20 frames of the file, read as a file.
    let mut reader = aa::stack::io::pcap::PcapReader::open(
        &file,
        aa::runtime::PacketPool::new(64, aa::inspect::FRAME_BUF),
    )
    .unwrap();
    let mut frames = Vec::new();
    let mut burst = aa::stack::Burst::with_capacity(32);
    use aa::stack::PacketIo;
    while frames.len() < 20 {
        assert!(reader.recv_burst(&mut burst).unwrap() > 0);
        for rx in burst.drain(..) {
            if frames.len() < 20 {
                frames.push((rx.meta.ts, aa::Packet::data(&rx.packet).to_vec()));
            }
        }
    }
    let first = pcap_file("first20.pcap", &frames);
    let (_, want, _) = inspect(&[first.to_str().unwrap()]);
    std::fs::remove_file(&first).unwrap();
    assert!(want.iter().any(|l| l["record"] == "response"), "{want:?}");
    assert_eq!(got, want);
}

#[test]
fn ctrl_c_ends_a_live_run_with_its_summary() {
    ctrl_c_ends_a_run(&[]);
}

#[test]
fn ctrl_c_ends_a_run_on_workers_with_their_summary() {
    // Each worker writes out its lines while it waits for more.
    ctrl_c_ends_a_run(&["--workers", "2"]);
}

fn ctrl_c_ends_a_run(args: &[&str]) {
    // No --idle and no --packets: only the signal ends it.
    let file = repo("data/captures/http_keepalive.pcap");
    let eal = eal_replaying(&file);
    let (_, want, _) = inspect(&[file.to_str().unwrap()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_aa"))
        .args(["inspect", "--eal", &eal])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Should a line never come, the read below would wait forever: end the
    // run after a minute, and the comparison fails.
    let (done, watchdog) = std::sync::mpsc::channel::<()>();
    let pid = child.id().to_string();
    let watchdog = std::thread::spawn(move || {
        if watchdog
            .recv_timeout(std::time::Duration::from_secs(60))
            .is_err()
        {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    });
    // Lines come out while the run waits for more packets: read them all,
    // then interrupt it.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut got = Vec::new();
    while got.len() < want.len() {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        got.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let _ = done.send(());
    watchdog.join().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Nothing more once the file is replayed: the connections ended with FIN.
    assert!(
        out.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    if args.is_empty() {
        assert_eq!(got, want);
    } else {
        // Several workers: each connection's lines in order.
        assert_eq!(by_connection(&got), by_connection(&want));
        assert!(stderr.contains("  workers: 2, "), "{stderr}");
    }
    assert_clean_live_summary(&stderr);
    assert!(
        stderr.contains(&format!("  records: {};", want.len())),
        "{stderr}"
    );
}

#[test]
fn frames_longer_than_an_mbuf_are_dropped_counted_and_become_gaps() {
    use aa::stack::synth::{Capture, Conversation, Dialogue, Side};
    let mut d = Dialogue::new();
    let mut big_bodies = Vec::new();
    for i in 0..4 {
        d.push(
            Side::Client,
            format!("GET /{i} HTTP/1.1\r\nHost: example\r\n\r\n"),
        );
        // Responses 1 and 3: a 3934-byte body in one write, one 4000-byte
        // frame (66 bytes of headers), more than one mbuf's 2048 bytes.
        let body = if i % 2 == 1 { 3934 } else { 10 };
        d.push(
            Side::Server,
            format!("HTTP/1.1 200 OK\r\nContent-Length: {body}\r\n\r\n"),
        );
        let offset = d.to_client().len() as u64;
        d.push(Side::Server, vec![b'x'; body]);
        if body > 2048 {
            big_bodies.push((offset, body as u64));
        }
    }
    let conv = Conversation::new(
        "198.51.100.1:41000".parse().unwrap(),
        "198.51.100.2:80".parse().unwrap(),
        d,
        11,
    )
    .mss(4000);
    let capture: Capture = conv.capture(aa::stack::Timestamp::new(1_700_000_000, 0));
    let big: Vec<usize> = (0..capture.frames.len())
        .filter(|&i| capture.frames[i].1.len() > 2048)
        .collect();
    assert_eq!(big.len(), 2);
    assert!(big.iter().all(|&i| capture.frames[i].1.len() == 4000));
    let with_big = pcap_file("big.pcap", &capture.frames);
    let without: Vec<_> = (0..capture.frames.len())
        .filter(|i| !big.contains(i))
        .map(|i| capture.frames[i].clone())
        .collect();
    let without_big = pcap_file("without-big.pcap", &without);

    let eal = eal_replaying(&with_big);
    let (code, got, stderr) = inspect(&["--eal", &eal, "--idle", "1"]);
    let (_, want, _) = inspect(&[without_big.to_str().unwrap()]);
    let (_, whole, _) = inspect(&[with_big.to_str().unwrap()]);
    std::fs::remove_file(&with_big).unwrap();
    std::fs::remove_file(&without_big).unwrap();

    assert_eq!(code, 0, "{stderr}");
    assert_clean_live_summary(&stderr);
    assert!(
        stderr.contains("  2 multi-segment frames dropped"),
        "{stderr}"
    );
    assert_eq!(
        packets(&stderr),
        capture.frames.len() as u64 - 2,
        "{stderr}"
    );
    // What the port delivered is the capture without its two long frames:
    // the same lines as that capture read from a file.
    assert_eq!(got, want);
    // A gap where each dropped body was; every request and response still
    // parsed.
    let server = "198.51.100.2:80>198.51.100.1:41000";
    let gaps: Vec<(u64, u64)> = got
        .iter()
        .filter(|l| l["event"] == "gap" && l["flow"] == server)
        .map(|l| (l["offset"].as_u64().unwrap(), l["len"].as_u64().unwrap()))
        .collect();
    assert_eq!(gaps, big_bodies);
    let count = |ls: &[Value], kind: &str| ls.iter().filter(|l| l["record"] == kind).count();
    assert_eq!((count(&got, "request"), count(&got, "response")), (4, 4));
    // From the file, with the long frames, no gap at all.
    assert!(!whole.iter().any(|l| l["event"] == "gap"), "{whole:?}");
    assert_eq!(count(&whole, "response"), 4);
}

#[test]
fn eal_and_capture_are_exclusive_and_bad_ports_are_named() {
    let file = repo("data/captures/csv.pcap");
    let eal = eal_replaying(&file);
    let (code, _, stderr) = inspect(&["--eal", &eal, file.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    for limit in [
        &["--packets", "3"][..],
        &["--idle", "1"],
        &["--dpdk-port", "x"],
        &["--workers", "2"],
    ] {
        let mut args = limit.to_vec();
        args.push(file.to_str().unwrap());
        let (code, _, stderr) = inspect(&args);
        assert_eq!(code, 2, "{limit:?} without --eal: {stderr}");
    }
    for bad in ["0", "x"] {
        let (code, _, stderr) = inspect(&["--eal", &eal, "--workers", bad]);
        assert_eq!(code, 2, "--workers {bad}: {stderr}");
        assert!(stderr.contains("--workers"), "{stderr}");
    }
    let (code, lines, stderr) = inspect(&["--eal", &eal, "--dpdk-port", "net_ring7"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(lines.is_empty());
    assert!(
        stderr.contains("no port named \"net_ring7\"; ports: net_pcap0"),
        "{stderr}"
    );
    // EAL prints its usage on stdout: not JSON lines, so not parsed.
    let out = Command::new(env!("CARGO_BIN_EXE_aa"))
        .args(["inspect", "--eal", "--no-such-eal-option"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("aa inspect: DPDK: rte_eal_init failed"),
        "{stderr}"
    );
}

#[test]
fn an_exhausted_mempool_ends_connections_and_the_run_goes_on() {
    use aa::stack::synth::{Conversation, Dialogue, Side};
    // A 100 kB field pins every packet it spans (about 70) until its row
    // ends: more than a pool of 64 mbufs holds.
    let text = format!("a,{}\nb,c\n", "x".repeat(100_000));
    let conv = Conversation::new(
        "198.51.100.1:42000".parse().unwrap(),
        "198.51.100.2:9000".parse().unwrap(),
        Dialogue::one_way(Side::Client, text),
        7,
    );
    let frames = conv.capture(aa::stack::Timestamp::new(1, 0)).frames;
    let file = pcap_file("pool.pcap", &frames);
    let eal = eal_replaying(&file);
    let args = ["--port", "9000=csv"];
    let (code, got, stderr) =
        inspect(&[&["--eal", &eal, "--idle", "1", "--pool", "64"], &args[..]].concat());
    let (_, whole, _) = inspect(&[&args[..], &[file.to_str().unwrap()]].concat());
    std::fs::remove_file(&file).unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert_clean_live_summary(&stderr);
    assert!(stderr.contains("packet pool exhausted"), "{stderr}");
    // Every frame was received (none lost for want of an mbuf), the
    // connection was ended and picked up again: the last row still comes
    // out.
    assert_eq!(packets(&stderr), frames.len() as u64, "{stderr}");
    let rows = |ls: &[Value]| ls.iter().filter(|l| l["record"] == "row").count();
    assert_eq!(rows(&whole), 2);
    assert!(
        got.iter().any(|l| l["fields"]["field"][0]["text"] == "b"),
        "{got:?}"
    );
}

/// A line's connection: its flow's two endpoints, in a canonical order (both
/// directions of a connection give the same).
fn connection(line: &Value) -> (String, String) {
    let flow = line["flow"].as_str().expect("every line has a flow");
    let (a, b) = flow.split_once('>').expect("SRC>DST");
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

/// The lines of each connection, both directions, in order.
fn by_connection(lines: &[Value]) -> BTreeMap<(String, String), Vec<String>> {
    let mut out: BTreeMap<_, Vec<String>> = BTreeMap::new();
    for l in lines {
        out.entry(connection(l)).or_default().push(l.to_string());
    }
    out
}

/// Frames per worker, from the summary's `workers:` line.
fn frames_per_worker(stderr: &str) -> Vec<u64> {
    let line = summary_line(stderr, "workers:");
    let list = line
        .split("frames per worker: ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no frames per worker: {line}"));
    list.split(' ').map(|n| n.parse().unwrap()).collect()
}

/// `conns` HTTP keep-alive connections to port 80, interleaved: fewer
/// frames than a worker's queue holds, so none can be dropped however
/// slowly a worker goes.
fn many_connections(conns: u16) -> PathBuf {
    use aa::stack::synth::{http_keepalive, Capture, Conversation};
    let convs: Vec<Conversation> = (0..conns)
        .map(|i| {
            Conversation::new(
                format!("198.51.100.{}:{}", 1 + i % 5, 41000 + i)
                    .parse()
                    .unwrap(),
                "198.51.100.200:80".parse().unwrap(),
                http_keepalive(3, 0..=1200, u64::from(i)),
                u64::from(i),
            )
        })
        .collect();
    let capture = Capture::interleave(aa::stack::Timestamp::new(1_700_000_000, 0), &convs);
    assert!(
        capture.frames.len() < aa::inspect::WORKER_QUEUE,
        "{} frames",
        capture.frames.len()
    );
    pcap_file(&format!("conns{conns}.pcap"), &capture.frames)
}

#[test]
fn workers_fed_by_software_spreading_print_the_same_lines() {
    let many = many_connections(24);
    let cases: Vec<(PathBuf, &[&str])> = vec![
        (repo("data/captures/http_keepalive.pcap"), &[]),
        (repo("data/captures/http_impaired.pcap"), &[]),
        (
            repo("data/captures/csv_impaired.pcap"),
            &["--port", "9000=csv"],
        ),
        (many.clone(), &[]),
    ];
    for (file, args) in &cases {
        let mut from_file = args.to_vec();
        from_file.push(file.to_str().unwrap());
        let (fcode, want, fstderr) = inspect(&from_file);
        assert_eq!(fcode, 0, "{fstderr}");
        assert!(want.iter().any(|l| l.get("record").is_some()));
        let eal = eal_replaying(file);
        for workers in ["2", "3"] {
            let what = format!("{} on {workers} workers", file.display());
            let mut live = vec!["--eal", &eal, "--idle", "1", "--workers", workers];
            live.extend_from_slice(args);
            let (code, got, stderr) = inspect(&live);
            assert_eq!(code, 0, "{what}: {stderr}");
            assert_clean_live_summary(&stderr);
            // net_pcap has one receive queue and no RSS: the frames are
            // spread in software, and no queue overflowed.
            let spreading = summary_line(&stderr, "workers:").trim_start();
            assert!(
                spreading.starts_with(&format!(
                    "workers: {workers}, fed from one receive queue by a software flow hash"
                )),
                "{what}: {spreading}"
            );
            assert!(!stderr.contains("a worker's queue was full"), "{stderr}");
            // Every line whole (each parsed as JSON), the same lines, and
            // each connection's lines in the same order; only lines of
            // different connections may come in another order.
            let mut sorted_got: Vec<String> = got.iter().map(Value::to_string).collect();
            let mut sorted_want: Vec<String> = want.iter().map(Value::to_string).collect();
            sorted_got.sort();
            sorted_want.sort();
            assert_eq!(sorted_got, sorted_want, "{what}");
            assert_eq!(by_connection(&got), by_connection(&want), "{what}");
            // Every worker's counters in the totals.
            assert_eq!(packets(&stderr), packets(&fstderr), "{what}");
            for prefix in ["flows:", "records:", "segments:", "frames:"] {
                assert_eq!(
                    summary_line(&stderr, prefix),
                    summary_line(&fstderr, prefix),
                    "{what}"
                );
            }
            let per_worker = frames_per_worker(&stderr);
            assert_eq!(per_worker.len(), workers.parse::<usize>().unwrap());
            assert_eq!(per_worker.iter().sum::<u64>(), packets(&stderr), "{what}");
            if *file == many {
                // 24 connections: every worker has some.
                assert!(per_worker.iter().all(|&n| n > 0), "{what}: {per_worker:?}");
            }
        }
    }
    std::fs::remove_file(&many).unwrap();
}

#[test]
fn an_rss_device_gets_a_queue_per_worker() {
    // net_null reports RSS hash types and takes the symmetric key; its
    // frames are zeroed 64-byte buffers: counted, not IP.
    let eal = format!("{EAL} --vdev=net_null0");
    for workers in ["2", "3"] {
        let (code, lines, stderr) =
            inspect(&["--eal", &eal, "--workers", workers, "--packets", "20000"]);
        assert_eq!(code, 0, "{stderr}");
        assert_clean_summary_of("net_null0", &stderr);
        assert!(lines.is_empty(), "{lines:?}");
        let spreading = summary_line(&stderr, "workers:").trim_start();
        assert!(
            spreading.starts_with(&format!(
                "workers: {workers}, one per receive queue, spread by the device's symmetric RSS"
            )),
            "{spreading}"
        );
        // --packets holds for the run, whatever queue the packets came on.
        assert_eq!(packets(&stderr), 20000, "{stderr}");
        let per_worker = frames_per_worker(&stderr);
        assert_eq!(per_worker.len(), workers.parse::<usize>().unwrap());
        assert_eq!(per_worker.iter().sum::<u64>(), 20000, "{stderr}");
        assert_eq!(
            summary_line(&stderr, "frames:").trim_start(),
            "frames: 20000 frames: 0 TCP segments, 0 truncated, 20000 not IP, 0 not TCP, \
             0 fragments, 0 malformed, 0 bad checksum"
        );
        assert!(!stderr.contains("a worker's queue was full"), "{stderr}");
    }
}

/// The summary's count of frames dropped for a full worker queue (0 when
/// the line is absent).
fn queue_full(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| {
            l.trim_start()
                .strip_suffix(" frames dropped: a worker's queue was full")
        })
        .map_or(0, |n| n.parse().unwrap())
}

#[test]
fn every_frame_received_is_decoded_or_counted_as_dropped() {
    use aa::stack::synth::{csv_fixed_fields, Conversation, Dialogue, Side};
    // One connection in 64-byte segments: more frames than a worker's queue
    // holds, all for one worker. Whether the receiving thread outruns it
    // depends on the machine; either way nothing is lost uncounted, nothing
    // blocks, and every mbuf comes back.
    let conv = Conversation::new(
        "198.51.100.1:43000".parse().unwrap(),
        "198.51.100.2:9000".parse().unwrap(),
        Dialogue::one_way(Side::Client, csv_fixed_fields(6000, 4, 8, 3)),
        5,
    )
    .mss(64);
    let frames = conv.capture(aa::stack::Timestamp::new(1, 0)).frames;
    assert!(
        frames.len() > 3 * aa::inspect::WORKER_QUEUE,
        "{}",
        frames.len()
    );
    let file = pcap_file("one-conn.pcap", &frames);
    let eal = eal_replaying(&file);
    let (code, lines, stderr) = inspect(&[
        "--eal",
        &eal,
        "--idle",
        "1",
        "--workers",
        "2",
        "--port",
        "9000=csv",
        "--stats",
    ]);
    std::fs::remove_file(&file).unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert_clean_live_summary(&stderr);
    assert!(lines.is_empty(), "--stats prints no line");
    let dropped = queue_full(&stderr);
    assert_eq!(packets(&stderr) + dropped, frames.len() as u64, "{stderr}");
    let per_worker = frames_per_worker(&stderr);
    assert_eq!(per_worker.iter().sum::<u64>(), packets(&stderr));
    assert_eq!(
        per_worker.iter().filter(|&&n| n > 0).count(),
        1,
        "one connection, one worker: {per_worker:?}"
    );
    if dropped == 0 {
        assert!(stderr.contains("  records: 6000;"), "{stderr}");
    }
}
