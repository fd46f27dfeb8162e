//! `aa parse`: a protocol's records in a file of plain bytes, run as a user
//! runs it.

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn aa(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aa"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run aa");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("aa ends")
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The texts of a record's field `name` (an array for a repeated field).
/// Each line's record name, or `error` (or `gap`) for an event.
fn kinds(lines: &[Value]) -> Vec<&str> {
    lines
        .iter()
        .map(|r| r["event"].as_str().or(r["record"].as_str()).unwrap())
        .collect()
}

fn texts(rec: &Value, name: &str) -> Vec<String> {
    match &rec["fields"][name] {
        Value::Array(items) => items
            .iter()
            .map(|f| f["text"].as_str().unwrap().to_string())
            .collect(),
        f => vec![f["text"].as_str().unwrap().to_string()],
    }
}

#[test]
fn csv_rows_are_the_same_whatever_the_packet_size() {
    let runs: Vec<Output> = ["1", "7", "1448"]
        .iter()
        .map(|seg| {
            aa(
                &[
                    "parse",
                    "data/trades.csv",
                    "--protocol",
                    "csv",
                    "--segment",
                    seg,
                ],
                b"",
            )
        })
        .collect();
    for out in &runs {
        assert!(out.status.success(), "{}", stderr(out));
    }
    let rows = lines(&runs[0]);
    // Python's `csv` module reads 401 rows: some quoted fields hold line
    // breaks.
    assert_eq!(rows.len(), 401, "a record per CSV row");
    assert_eq!(
        texts(&rows[1], "field"),
        [
            "1",
            "09:30:01.769",
            "HOOLI",
            "540.14",
            "1100",
            "BATS",
            "client said \"urgent\""
        ],
        "the quotes undone"
    );
    assert_eq!(lines(&runs[1]), rows);
    assert_eq!(lines(&runs[2]), rows);
    let size = std::fs::metadata(concat!(env!("CARGO_MANIFEST_DIR"), "/data/trades.csv"))
        .unwrap()
        .len();
    assert_eq!(
        stderr(&runs[0]).trim(),
        format!("{size} bytes in {size} packets: 401 records, 0 errors")
    );
}

#[test]
fn a_bad_message_is_reported_where_it_is_and_the_next_ones_still_parse() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc\
                  HTTP/1.1 2x0 OK\r\n\r\n\
                  HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    // From standard input, through the interpreter, seven bytes a packet.
    let out = aa(
        &[
            "parse",
            "-",
            "--grammar",
            "grammars/http_response.aag",
            "--segment",
            "7",
        ],
        input,
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let recs = lines(&out);
    assert_eq!(kinds(&recs), ["response", "body", "error", "response"]);
    assert_eq!(texts(&recs[1], "data"), ["abc"]);
    let err = &recs[2];
    assert_eq!(err["offset"], 50, "the bad status's offset in the stream");
    assert_eq!(err["record"], "response");
    assert_eq!(err["field"], "status");
    assert_eq!(recs[3]["vars"]["code"], 404);
    assert_eq!(recs[3]["offset"], 60);
    assert!(
        stderr(&out).contains("3 records, 1 error"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn errors_in_one_packet_each_come_where_they_are() {
    // Two bad messages and three good ones in a single packet: every error
    // is printed, between the records it came between.
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc\
                  HTTP/1.1 2x0 OK\r\n\r\n\
                  HTTP/1.1 204 No Content\r\n\r\n\
                  HTTP/1.1 200 OK\r\nContent-Length: 1y\r\n\r\n\
                  HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    for source in [
        &["--protocol", "http_response"][..],
        &["--grammar", "grammars/http_response.aag"],
    ] {
        let out = aa(&[&["parse", "-"][..], source].concat(), input);
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        let recs = lines(&out);
        assert_eq!(
            kinds(&recs),
            ["response", "body", "error", "response", "error", "response"],
            "{source:?}"
        );
        assert_eq!(recs[2]["field"], "status");
        assert_eq!(recs[3]["vars"]["code"], 204);
        assert_eq!(recs[4]["field"], "headers");
        assert_eq!(recs[5]["vars"]["code"], 404);
        assert!(
            stderr(&out).contains("4 records, 2 errors"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn a_stream_that_ends_inside_a_record_says_so() {
    let out = aa(
        &["parse", "-", "--protocol", "http_response"],
        b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\nabc",
    );
    assert_eq!(out.status.code(), Some(3));
    let recs = lines(&out);
    assert_eq!(recs.len(), 3, "{recs:?}");
    assert_eq!(texts(&recs[1], "data"), ["abc"], "what came is delivered");
    assert_eq!(recs[2]["event"], "error");
    assert_eq!(recs[2]["offset"], 42);
    assert!(
        recs[2]["message"]
            .as_str()
            .unwrap()
            .contains("ended inside the record"),
        "{}",
        recs[2]
    );
}

#[test]
fn a_grammar_of_ones_own_is_tried_on_a_file() {
    let dir = std::env::temp_dir().join(format!("aa-parse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let grammar = dir.join("kv.aag");
    std::fs::write(
        &grammar,
        "protocol kv;\nstart record pair skip \"\\n\" sync after \"\\n\" {\n  \
         key: until \"=\" max 32;\n  value: until \"\\n\" max 64;\n}\n",
    )
    .unwrap();
    let data = dir.join("kv.txt");
    std::fs::write(
        &data,
        "a=1\nbb=22\nthis line has no equals sign at all, far too long for a key\nc=3\n",
    )
    .unwrap();
    let out = aa(
        &[
            "parse",
            data.to_str().unwrap(),
            "--grammar",
            grammar.to_str().unwrap(),
            "--segment",
            "2",
        ],
        b"",
    );
    // A grammar with an error: rustc-style, with the file and line.
    std::fs::write(
        &grammar,
        "protocol kv;\nstart record pair {\n  key: until \"=\";\n}\n",
    )
    .unwrap();
    let bad = aa(
        &[
            "parse",
            data.to_str().unwrap(),
            "--grammar",
            grammar.to_str().unwrap(),
        ],
        b"",
    );
    std::fs::remove_dir_all(&dir).unwrap();

    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let recs = lines(&out);
    let pairs: Vec<(String, String)> = recs
        .iter()
        .filter(|r| r["event"].is_null())
        .map(|r| (texts(r, "key")[0].clone(), texts(r, "value")[0].clone()))
        .collect();
    assert_eq!(
        pairs,
        [("a", "1"), ("bb", "22"), ("c", "3")].map(|(k, v)| (k.to_string(), v.to_string()))
    );
    let errors: Vec<&Value> = recs.iter().filter(|r| r["event"] == "error").collect();
    assert_eq!(errors.len(), 1, "{recs:?}");
    assert_eq!(errors[0]["field"], "key");
    assert_eq!(errors[0]["offset"], 10, "where the bad line starts");

    assert_eq!(bad.status.code(), Some(1));
    let err = stderr(&bad);
    assert!(err.contains("kv.aag:3:"), "{err}");
    assert!(err.contains("has no maximum length"), "{err}");
    assert!(bad.stdout.is_empty());
}

#[test]
fn a_record_larger_than_the_buffer_stops_the_parse_and_is_named() {
    let out = aa(
        &[
            "parse",
            "-",
            "--protocol",
            "csv",
            "--buffer",
            "1000",
            "--segment",
            "100",
        ],
        &[b'x'; 5000],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("4000 bytes not parsed; stopped at offset 1000: a record needs more than the buffer holds"),
        "{err}"
    );
}

#[test]
fn an_unknown_protocol_or_a_missing_file_fails_clearly() {
    let out = aa(&["parse", "data/trades.csv", "--protocol", "nope"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown protocol `nope`; known: csv, http_request, http_response"),
        "{}",
        stderr(&out)
    );
    // A pair of protocols, as aa inspect takes: one direction is read here.
    for pair in ["http", "http_request/http_response"] {
        let out = aa(&["parse", "data/trades.csv", "--protocol", pair], b"");
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("reads one direction: give one protocol"),
            "{}",
            stderr(&out)
        );
    }
    let out = aa(&["parse", "data/no-such-file", "--protocol", "csv"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("aa parse: data/no-such-file: "),
        "{}",
        stderr(&out)
    );
}
