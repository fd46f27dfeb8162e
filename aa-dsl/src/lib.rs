//! The `.aag` language of aa: a protocol's records described once, checked with
//! rustc-style diagnostics, lowered to one IR ([`ir`]) that an interpreter
//! ([`interp`]) runs as a zero-copy parser of the runtime.
//!
//! Status: the language, the checks, the IR and the interpreter work; the Rust
//! code generator and the `build.rs` API are not written yet.
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
