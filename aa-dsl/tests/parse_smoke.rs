#[test]
fn shipped_grammars_parse() {
    for f in ["csv", "http_response", "http_request", "tls", "resp"] {
        let path = format!("{}/../grammars/{f}.aag", env!("CARGO_MANIFEST_DIR"));
        let src = std::fs::read_to_string(&path).unwrap();
        match aa_dsl::parse::parse(&src) {
            Ok(file) => assert_eq!(file.protocol.name, f),
            Err(ds) => panic!("{}", aa_dsl::diag::render_all(&ds, &path, &src)),
        }
    }
}
