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
