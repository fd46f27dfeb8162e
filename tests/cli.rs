//! The `aa` command line, run as a user runs it.

use std::process::Command;

fn aa(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_aa"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run aa")
}

#[test]
fn check_accepts_the_shipped_grammars() {
    let out = aa(&[
        "check",
        "grammars/csv.aag",
        "grammars/http_request.aag",
        "grammars/http_response.aag",
        "grammars/tls.aag",
        "grammars/resp.aag",
        "grammars/mqtt.aag",
        "grammars/tls_handshake.aag",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(
        "grammars/http_response.aag: ok: protocol `http_response`, 8 record types (response, body, chunk_size, chunk_end, trailers, tunnel, ws_frame, ws_payload)"
    ), "{stdout}");
    assert_eq!(stdout.lines().count(), 7);
}

#[test]
fn check_reports_every_error_with_file_and_line_and_fails() {
    let dir = std::env::temp_dir().join(format!("aa-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.aag");
    std::fs::write(
        &bad,
        "protocol x;\nstart record a {\n  f: until \",\";\n  then { next b; }\n}\n",
    )
    .unwrap();
    let out = aa(&["check", bad.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "error: field `f` has no maximum length\n --> {0}:3:6\n  |\n3 |   f: until \",\";\n  |      ^^^^^^^^^ a delimited field could grow without bound\n  = help: add `max N` after the ending\n\n\
         error: unknown record `b`\n --> {0}:4:15\n  |\n4 |   then {{ next b; }}\n  |               ^ no record of this name\n  = help: records are: a\n\n\
         error: {0}: 2 errors in grammar\n",
        bad.display()
    );
    assert_eq!(err, want);
}

#[test]
fn check_of_a_missing_file_says_so() {
    let out = aa(&["check", "no/such/file.aag"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: cannot read no/such/file.aag:"),
        "{err}"
    );
}

#[test]
fn gen_prints_the_generated_parser() {
    let out = aa(&["gen", "grammars/tls.aag"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8_lossy(&out.stdout);
    assert!(
        code.starts_with("// @generated"),
        "{}",
        &code[..code.len().min(200)]
    );
    assert!(
        code.contains("impl ::aa_runtime::Parser for TlsParser"),
        "no parser impl"
    );
    let bad = aa(&["gen", "no/such.aag"]);
    assert_eq!(bad.status.code(), Some(1));
}
