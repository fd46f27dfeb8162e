//! What users see when a `#[aa_protocol]` enum is wrong: pinned compiler output.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
