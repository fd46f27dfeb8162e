//! Compiles the shipped grammars to Rust parsers in `$OUT_DIR`, and the test
//! grammars `tests/kitchen.aag` (every construct of the language) and
//! `tests/names.aag` (awkward names) for the differential tests, and
//! `tests/actions.aag`, `tests/bits.aag` and `tests/varint.aag` (what actions
//! and `stop when` compute, at the edges).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    aa_dsl::compile(&[
        "csv.aag",
        "http_request.aag",
        "http_response.aag",
        "tls.aag",
        "resp.aag",
        "mqtt.aag",
        "tls_handshake.aag",
    ])?;
    aa_dsl::compile(&[
        "tests/kitchen.aag",
        "tests/names.aag",
        "tests/actions.aag",
        "tests/bits.aag",
        "tests/varint.aag",
    ])
}
