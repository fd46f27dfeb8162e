//! The `.aag` language of aa: a protocol's records described once, checked with
//! rustc-style diagnostics, lowered to one IR ([`ir`]). The IR is compiled to a
//! specialised Rust parser ([`codegen`], from `build.rs` with [`compile`], or
//! from a Rust enum with `#[aa_protocol]` through [`expand()`]) or run as it is by
//! the interpreter ([`interp`]), which loads grammars at run time and is the
//! oracle the generated parsers are tested against.
//!
//! ```text
//! // build.rs
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     aa_dsl::compile(&["proto/statsd.aag"])
//! }
//! // src/lib.rs
//! pub mod statsd { include!(concat!(env!("OUT_DIR"), "/statsd.rs")); }
//! ```
#![deny(missing_docs)]

pub mod ast;
mod build;
pub mod check;
pub mod codegen;
pub mod diag;
pub mod expand;
pub mod interp;
pub mod ir;
pub mod parse;

pub use build::compile;
pub use diag::Diagnostic;
pub use expand::expand;

/// Parses and checks a grammar. On error, returns every diagnostic.
pub fn compile_str(src: &str) -> Result<ir::Protocol, Vec<Diagnostic>> {
    let file = parse::parse(src)?;
    check::check(&file)
}

/// Parses and checks the grammar in `path`. On error, returns the diagnostics
/// rendered rustc-style (file, line, column, source line, caret, help).
pub fn load(path: impl AsRef<std::path::Path>) -> Result<ir::Protocol, String> {
    let path = path.as_ref();
    let src = std::fs::read_to_string(path)
        .map_err(|e| format!("error: cannot read {}: {e}\n", path.display()))?;
    compile_str(&src).map_err(|ds| diag::render_all(&ds, &path.display().to_string(), &src))
}
