//! What users see for grammar errors: every check of the parser and the checker
//! on a small bad grammar, rendered rustc-style (message, `--> file:line:col`,
//! source line, caret, label, help) and pinned with insta snapshots. Also: the
//! shipped grammars compile cleanly, and line/column computation.
//!
//! Regenerate with `INSTA_UPDATE=always cargo test -p aa-dsl --test diagnostics`,
//! then read every changed `.snap` file.

use aa_dsl::Diagnostic;

/// Compiles `src`, which must fail, and renders every diagnostic as
/// `bad/NAME.aag`.
fn render(name: &str, src: &str) -> String {
    match aa_dsl::compile_str(src) {
        Ok(_) => panic!("bad/{name}.aag compiled, but it has an error:\n{src}"),
        Err(diags) => {
            assert!(!diags.is_empty(), "an error without diagnostics");
            let starts: Vec<_> = diags.iter().map(|d| d.span.start).collect();
            let mut sorted = starts.clone();
            sorted.sort();
            assert_eq!(starts, sorted, "diagnostics are not sorted by position");
            aa_dsl::diag::render_all(&diags, &format!("bad/{name}.aag"), src)
        }
    }
}

/// Snapshots the rendering of the bad grammar `$src` as `snapshots/$name.snap`,
/// with the grammar in the snapshot's description.
macro_rules! bad {
    ($name:ident, $src:expr) => {
        #[test]
        fn $name() {
            let src: &str = $src;
            let out = render(stringify!($name), src);
            insta::with_settings!({
                description => src,
                omit_expression => true,
                prepend_module_to_snapshot => false,
            }, {
                insta::assert_snapshot!(stringify!($name), out);
            });
        }
    };
}

// ---------------------------------------------------------------- syntax

bad!(
    syntax_missing_semicolon_after_field,
    r#"protocol p;

start record r {
    a: until "\n" max 10
    b: u8;
}
"#
);

bad!(
    syntax_assignment_for_a_comparison,
    r#"protocol p;

start record r {
    kind: u8 {
        if kind = 3 {
            end;
        }
    }
}
"#
);

bad!(
    syntax_missing_semicolon_after_protocol,
    r#"protocol p

start record r {
    a: u8;
}
"#
);

bad!(
    syntax_missing_semicolon_after_statement,
    r#"protocol p;

var n: u64 = 0;

start record r {
    a: u8 {
        n = a
    }
}
"#
);

bad!(
    syntax_unknown_ending,
    r#"protocol p;

start record r {
    a: line max 10;
}
"#
);

bad!(
    syntax_keyword_as_field_name,
    r#"protocol p;

start record r {
    end: u8;
}
"#
);

bad!(
    syntax_unclosed_record,
    r#"protocol p;

start record r {
    a: u8;
"#
);

bad!(
    syntax_missing_protocol,
    r#"start record r {
    a: u8;
}
"#
);

bad!(
    syntax_unterminated_string,
    r#"protocol p;

start record r {
    a: until "\n max 4;
}
"#
);

bad!(
    syntax_then_not_last,
    r#"protocol p;

start record r {
    a: u8;
    then { end; }
    b: u8;
}
"#
);

bad!(
    syntax_repeat_without_stop,
    r#"protocol p;

start record r {
    repeat a: until "," max 4 count 3;
}
"#
);

bad!(
    syntax_unknown_variable_type,
    r#"protocol p;

var n: int = 0;

start record r {
    a: u8;
}
"#
);

bad!(
    syntax_misspelled_keyword_inside_a_word,
    r#"protocol p;

start record r {
    a: untill "," max 10;
}
"#
);

bad!(
    syntax_misspelled_integer_type,
    r#"protocol p;

start record r {
    a: u16bee;
}
"#
);

bad!(
    syntax_misspelled_record_keyword,
    r#"protocol p;

start recrod r {
    a: u8;
}
"#
);

bad!(
    syntax_stray_closing_brace,
    r#"protocol p;

start record r {
    a: u8;
}
}
"#
);

bad!(
    syntax_hex_without_digits,
    r#"protocol p;

start record r {
    a: bytes 0x max 4;
}
"#
);

bad!(
    syntax_non_ascii_name,
    r#"protocol p;

start record r {
    größe: u8;
}
"#
);

// ---------------------------------------------------------------- names

bad!(
    unknown_record_in_next,
    r#"protocol p;

start record request {
    a: u8;
    then {
        next reponse;
    }
}

record response {
    b: u8;
}
"#
);

bad!(
    unknown_variable_in_assignment,
    r#"protocol p;

start record r {
    a: u8 {
        total = a;
    }
}
"#
);

bad!(
    assign_to_field,
    r#"protocol p;

start record r {
    a: u8;
    b: u8 {
        a = b;
    }
}
"#
);

bad!(
    unknown_name_in_expression,
    r#"protocol p;

var n: u64 = 0;

start record r {
    a: u8 {
        n = a + lenght;
    }
}
"#
);

bad!(
    misspelled_field_is_suggested,
    r#"protocol p;

var n: u64 = 0;

start record r {
    length: u8;
    data: bytes(lenght) max 255 {
        n = len(data);
    }
}
"#
);

bad!(
    misspelled_variable_is_suggested,
    r#"protocol p;

var total: u64 = 0;

start record r {
    a: u8 {
        totl = total + a;
    }
}
"#
);

bad!(
    misspelled_function_is_suggested,
    r#"protocol p;

var n: u64 = 0;

start record r {
    a: until "\n" max 10 {
        n = hexx(a);
    }
}
"#
);

bad!(
    short_unknown_name_gets_no_guess,
    r#"protocol p;

var n: u64 = 0;

start record r {
    a: u8 {
        n = a + x;
    }
}
"#
);

bad!(
    type_error_and_unreachable_record_reported_together,
    r#"protocol p;

start record r {
    a: until "\n" max 10 {
        if a == 3 {
            end;
        }
    }
}

record orphan {
    b: u8;
}
"#
);

bad!(
    field_used_before_it_is_parsed,
    r#"protocol p;

start record r {
    body: bytes size max 100;
    size: u16be;
}
"#
);

bad!(
    field_used_in_earlier_field_actions,
    r#"protocol p;

var n: u64 = 0;

start record r {
    a: u8 {
        n = b;
    }
    b: u8;
}
"#
);

bad!(
    duplicate_record,
    r#"protocol p;

start record r {
    a: u8;
}

record r {
    b: u8;
}
"#
);

bad!(
    duplicate_global_variable,
    r#"protocol p;

var n: u64 = 0;
var n: bool = false;

start record r {
    a: u8;
}
"#
);

bad!(
    duplicate_record_variable,
    r#"protocol p;

start record r {
    var n: u64;
    a: u8;
    var n: u64;
}
"#
);

bad!(
    duplicate_field,
    r#"protocol p;

start record r {
    a: u8;
    a: u16be;
}
"#
);

bad!(
    field_named_like_record_variable,
    r#"protocol p;

start record r {
    a: u8;
    var a: u64;
}
"#
);

// ---------------------------------------------------------------- start, sync

bad!(
    no_start_record,
    r#"protocol p;

record first {
    a: u8;
}
"#
);

bad!(no_records, "protocol p;\n");

bad!(
    two_start_records,
    r#"protocol p;

start record a {
    x: u8;
}

start record b {
    y: u8;
}
"#
);

bad!(
    sync_patterns_over_64_bytes_in_all,
    r#"protocol p;

start record a sync "0123456789012345678901234567890123456789" {
    x: u8;
    then { next b; }
}

record b sync "B" | "0123456789012345678901234567890" {
    y: u8;
}
"#
);

bad!(
    sync_pattern_empty,
    r#"protocol p;

start record a sync "" {
    x: u8;
}
"#
);

bad!(
    sync_pattern_too_long,
    r#"protocol p;

start record a sync "0123456789012345678901234567890123456789012345678901234567890123456789" {
    x: u8;
}
"#
);

// ---------------------------------------------------------------- field bounds

bad!(
    until_without_max,
    r#"protocol p;

start record r {
    line: until "\r\n";
}
"#
);

bad!(
    bytes_computed_length_without_max,
    r#"protocol p;

start record r {
    len: u16be;
    data: bytes len;
}
"#
);

bad!(
    repeat_without_count,
    r#"protocol p;

start record r {
    repeat headers: until "\r\n" max 8192 stop on empty;
}
"#
);

bad!(
    count_on_non_repeat,
    r#"protocol p;

start record r {
    line: until "\n" max 100 count 5;
}
"#
);

bad!(
    count_zero,
    r#"protocol p;

start record r {
    repeat item: until "," max 10 count 0 stop after ",";
}
"#
);

bad!(
    max_on_integer_field,
    r#"protocol p;

start record r {
    n: u32be max 4;
}
"#
);

bad!(
    stop_after_unknown_delimiter,
    r#"protocol p;

start record r {
    repeat field: until "," | "\n" max 100 count 16 stop after "\r\n";
}
"#
);

bad!(
    stop_after_on_non_until_field,
    r#"protocol p;

start record r {
    repeat pair: bytes 2 count 16 stop after "\n";
}
"#
);

bad!(
    stop_after_eof_without_eof,
    r#"protocol p;

start record r {
    repeat field: until "," | "\n" max 100 count 16 stop after "\n" | eof;
}
"#
);

bad!(
    until_with_more_than_64_delimiters,
    // `"d0" | "d1" | … | "d64"`, eight to a line.
    &{
        let ds: Vec<String> = (0..65).map(|k| format!("\"d{k}\"")).collect();
        let lines: Vec<String> = ds.chunks(8).map(|c| c.join(" | ")).collect();
        format!(
            "protocol p;\n\nstart record r {{\n    f: until {} max 10;\n}}\n",
            lines.join("\n        | ")
        )
    }
);

bad!(
    stop_on_empty_on_non_until_field,
    r#"protocol p;

start record r {
    repeat word: bytes 4 count 8 stop on empty;
}
"#
);

bad!(
    field_after_unbounded_chunk,
    r#"protocol p;

start record r {
    data: chunk;
    trailer: u8;
}
"#
);

bad!(
    items_after_unbounded_chunk_with_max,
    r#"protocol p;

start record r {
    data: chunk max 100;
    expect "\r\n";
    trailer: u8;
}
"#
);

bad!(
    empty_delimiter,
    r#"protocol p;

start record r {
    a: until "" | "\n" max 10;
}
"#
);

bad!(
    quote_longer_than_one_byte,
    r#"protocol p;

start record r {
    a: until "," quoted "''" max 10;
}
"#
);

bad!(
    empty_expect,
    r#"protocol p;

start record r {
    expect "";
    a: u8;
}
"#
);

// ---------------------------------------------------------------- variables

bad!(
    record_variable_with_initializer,
    r#"protocol p;

start record r {
    var n: u64 = 1;
    a: u8;
}
"#
);

bad!(
    global_variable_with_non_constant_initializer,
    r#"protocol p;

var a: u64 = 1;
var b: u64 = a + 1;

start record r {
    x: u8;
}
"#
);

bad!(
    global_variable_initializer_of_wrong_type,
    r#"protocol p;

var done: bool = 0;

start record r {
    x: u8;
}
"#
);

// ---------------------------------------------------------------- types

bad!(
    bool_assigned_to_u64,
    r#"protocol p;

var n: u64 = 0;

start record r {
    a: u8 {
        n = a > 3;
    }
}
"#
);

bad!(
    integer_assigned_to_bool,
    r#"protocol p;

var done: bool = false;

start record r {
    a: u8 {
        done = a;
    }
}
"#
);

bad!(
    bytes_assigned_to_u64,
    r#"protocol p;

var n: u64 = 0;

start record r {
    line: until "\n" max 20 {
        n = line;
    }
}
"#
);

bad!(
    non_bool_condition,
    r#"protocol p;

start record r {
    a: u8 {
        if a {
            fail "nonzero";
        }
    }
}
"#
);

bad!(
    arithmetic_on_bool,
    r#"protocol p;

var n: u64 = 0;
var flag: bool = false;

start record r {
    a: u8 {
        n = flag + a;
    }
}
"#
);

bad!(
    not_on_integer,
    r#"protocol p;

start record r {
    a: u8 {
        if !a {
            fail "zero";
        }
    }
}
"#
);

bad!(
    field_compared_with_string,
    r#"protocol p;

start record r {
    method: until " " max 10 {
        if method == "GET" {
            end;
        }
    }
}
"#
);

bad!(
    bytes_function_on_integer_field,
    r#"protocol p;

var n: u64 = 0;

start record r {
    a: u16be {
        n = len(a);
    }
}
"#
);

bad!(
    eq_non_literal_second_argument,
    r#"protocol p;

start record r {
    a: until " " max 10;
    b: until "\n" max 10 {
        if eq(b, a) {
            end;
        }
    }
}
"#
);

bad!(
    times_with_bool,
    r#"protocol p;

var more: bool = false;

start record r {
    repeat a: u8 count 10 times more;
}
"#
);

bad!(
    unknown_function,
    r#"protocol p;

var n: u64 = 0;

start record r {
    a: until "\n" max 10 {
        n = length(a);
    }
}
"#
);

bad!(
    wrong_arity,
    r#"protocol p;

start record r {
    a: until "\n" max 10 {
        if prefix(a) {
            end;
        }
    }
}
"#
);

// A test of bits written as in C, and a shift by a boolean.
bad!(
    bits_tested_without_a_comparison,
    r#"protocol p;

start record frame {
    var flags: u64;
    head: u8 {
        flags = head & 0x0f;
        if flags & 1 {
            flags = flags >> true;
        }
    }
}
"#
);

// `stop when` with an integer, and with a field not parsed yet.
bad!(
    stop_when_not_a_boolean,
    r#"protocol p;

start record r {
    repeat len: u8 count 4 stop when len & 0x80 {
    }
    repeat more: u8 count 4 stop when tail == 0;
    tail: u8;
}
"#
);

// Signals: a constant out of range, `heard()` inside an expression, into a
// boolean, and with an argument.
bad!(
    signal_misused,
    r#"protocol p;

var ok: bool = false;

start record r {
    var got: u64;
    kind: u8 {
        signal 16;
        got = heard() + 1;
        ok = heard();
        got = heard(kind);
    }
}
"#
);

// `wait`: after a statement that has run, in an `else` after one, and in
// a field's actions.
bad!(
    wait_misused,
    r#"protocol p;

var asked: bool = false;
var got: u64 = 0;

start record r {
    begin {
        got = 1;
        wait;
        if asked {
            got = 2;
        } else {
            wait;
        }
    }
    kind: u8 {
        wait;
    }
}
"#
);

// `begin`: a field read before any is parsed, and `end` with no item.
bad!(
    begin_misused,
    r#"protocol p;

start record r {
    begin {
        if len(kind) > 0 {
            end;
        }
    }
    kind: u8;
}
"#
);

// ---------------------------------------------------------------- flow

// Two records whose `begin` blocks can start each other forever.
bad!(
    begin_loop,
    r#"protocol p;

var s: u64 = 0;

start record a {
    begin {
        s = heard();
        if s == 1 {
            next b;
        }
    }
    x: u8;
}

record b {
    begin {
        next a;
    }
    y: u8;
}
"#
);

bad!(
    unreachable_record,
    r#"protocol p;

start record a {
    x: u8;
}

record orphan {
    y: u8;
}
"#
);

bad!(
    loop_without_consuming_input,
    r#"protocol p;

var n: u64 = 0;

start record r {
    data: bytes n max 100;
    then {
        next r;
    }
}
"#
);

bad!(
    loop_through_two_records_without_consuming_input,
    r#"protocol p;

var n: u64 = 0;

start record head {
    x: u8;
    then { next a; }
}

record a {
    repeat items: u8 count 4 times n;
    then { next b; }
}

record b {
    data: bytes n max 100;
    then { next a; }
}
"#
);

bad!(
    empty_record,
    r#"protocol p;

start record r {
}
"#
);

// ---------------------------------------------------------------- literals

bad!(
    bad_string_escape,
    r#"protocol p;

start record r {
    a: until "\q" max 10;
}
"#
);

bad!(
    bad_hex_escape,
    r#"protocol p;

start record r {
    expect "\x4g";
}
"#
);

bad!(
    integer_too_large,
    r#"protocol p;

start record r {
    a: until "\n" max 18446744073709551616;
}
"#
);

// ---------------------------------------------------------------- several

bad!(
    several_errors,
    r#"protocol p;

var n: u64 = 0;
var n: u64 = 1;

record r {
    line: until "\n";
    repeat parts: until "," max 10 stop after ";";
    a: u8 {
        n = a == 1;
        total = 2;
        if a { next nowhere; }
    }
}

record r {
    x: u8;
}
"#
);

bad!(
    several_literal_errors,
    r#"protocol p;

start record r {
    a: until "\q" max 99999999999999999999;
}
"#
);

// A tab before the error: the caret is placed by characters, so a terminal that
// shows the tab wider than one column puts it too far left.
bad!(
    tab_before_error,
    "protocol p;\n\nstart record r {\n\tline: until \"\\n\";\n}\n"
);

// Non-ASCII text before the error on the same line: columns count characters.
bad!(
    non_ascii_before_error,
    "protocol p;\n\n// délimité\nstart record r { a: until \"é\" max 9; b: until \"\\n\"; }\n"
);

// ---------------------------------------------------------------- shipped

#[test]
fn shipped_grammars_compile_without_diagnostics() {
    let dir = format!("{}/../grammars", env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "aag"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 5, "shipped grammars not found in {dir}");
    for p in &paths {
        if let Err(e) = aa_dsl::load(p) {
            panic!("{} does not compile:\n{e}", p.display());
        }
        let src = std::fs::read_to_string(p).unwrap();
        assert!(aa_dsl::compile_str(&src).is_ok());
    }
}

#[test]
fn load_reports_a_missing_file() {
    let e = aa_dsl::load("/nonexistent/x.aag").unwrap_err();
    assert!(
        e.starts_with("error: cannot read /nonexistent/x.aag: "),
        "{e}"
    );
}

#[test]
fn load_renders_with_the_path() {
    let dir = std::env::temp_dir().join(format!("aa-dsl-diag-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.aag");
    std::fs::write(&path, "protocol p;\nrecord r { a: u8; }\n").unwrap();
    let e = aa_dsl::load(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    let want = format!(
        "error: no start record\n --> {p}:2:8\n  |\n2 | record r {{ a: u8; }}\n  |        ^ mark the record a stream begins with\n  = help: write `start record r`\n\nerror: {p}: 1 error in grammar\n",
        p = path.display()
    );
    assert_eq!(e, want);
}

// ---------------------------------------------------------------- line/col

#[test]
fn line_col_ascii() {
    let src = "ab\ncd\n\nef";
    assert_eq!(Diagnostic::line_col(src, 0), (1, 1));
    assert_eq!(Diagnostic::line_col(src, 1), (1, 2));
    assert_eq!(Diagnostic::line_col(src, 2), (1, 3)); // the newline itself
    assert_eq!(Diagnostic::line_col(src, 3), (2, 1));
    assert_eq!(Diagnostic::line_col(src, 6), (3, 1)); // empty line
    assert_eq!(Diagnostic::line_col(src, 7), (4, 1));
    assert_eq!(Diagnostic::line_col(src, 9), (4, 3)); // end of input
    assert_eq!(Diagnostic::line_col(src, 100), (4, 3)); // clamped
}

#[test]
fn line_col_tabs_and_non_ascii() {
    // Line 1: a tab, then `x`. Line 2: `é` (2 bytes), `中` (3 bytes), `y`.
    // Line 3: CRLF-terminated, then line 4: a tab, `😀` (4 bytes), `z`.
    let src = "\tx\né中y\r\n\t😀z";
    let at = |needle: &str| src.find(needle).unwrap();
    assert_eq!(Diagnostic::line_col(src, 0), (1, 1));
    assert_eq!(Diagnostic::line_col(src, at("x")), (1, 2)); // a tab is one column
    assert_eq!(Diagnostic::line_col(src, at("é")), (2, 1));
    assert_eq!(Diagnostic::line_col(src, at("中")), (2, 2));
    assert_eq!(Diagnostic::line_col(src, at("y")), (2, 3));
    assert_eq!(Diagnostic::line_col(src, at("\r")), (2, 4));
    assert_eq!(Diagnostic::line_col(src, at("😀")), (3, 2));
    assert_eq!(Diagnostic::line_col(src, at("z")), (3, 3));
    assert_eq!(Diagnostic::line_col(src, src.len()), (3, 4));
}

#[test]
fn render_points_at_the_span_after_non_ascii() {
    // The caret goes under `bad`, counted in characters, not bytes.
    let src = "// ünïcödé\nx = «bad»;\n";
    let start = src.find("bad").unwrap();
    let d = Diagnostic::new(
        "unknown name `bad`",
        aa_dsl::ast::Span {
            start,
            end: start + 3,
        },
        "here",
    )
    .help("a help line");
    assert_eq!(
        d.render("f.aag", src),
        "error: unknown name `bad`\n --> f.aag:2:6\n  |\n2 | x = «bad»;\n  |      ^^^ here\n  = help: a help line\n"
    );
}

#[test]
fn render_clips_a_multi_line_span_to_its_first_line() {
    let src = "line one\nline two\nline three\n";
    let start = src.find("one").unwrap();
    let end = src.find("three").unwrap();
    let d = Diagnostic::new("spans lines", aa_dsl::ast::Span { start, end }, "from here");
    assert_eq!(
        d.render("f.aag", src),
        "error: spans lines\n --> f.aag:1:6\n  |\n1 | line one\n  |      ^^^ from here\n"
    );
}

#[test]
fn render_widens_the_gutter_past_line_nine() {
    let src = "\n".repeat(11) + "oops";
    let start = src.find("oops").unwrap();
    let d = Diagnostic::new("m", aa_dsl::ast::Span { start, end: start }, "l");
    assert_eq!(
        d.render("f.aag", &src),
        "error: m\n  --> f.aag:12:1\n   |\n12 | oops\n   | ^ l\n"
    );
}
