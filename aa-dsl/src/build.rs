//! The `build.rs` API: compiles grammars to Rust in `$OUT_DIR`, in the style of
//! `prost-build`.

use std::error::Error;
use std::fmt;
use std::path::{Path, PathBuf};

/// Grammars that failed to load or check; displays their rendered diagnostics.
#[derive(Debug)]
struct GrammarError(String);

impl fmt::Display for GrammarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.trim_end())
    }
}

impl Error for GrammarError {}

/// Compiles `.aag` grammars for a build script: for each, tells Cargo to rerun
/// when it changes (`cargo:rerun-if-changed`), loads and checks it, and writes
/// the generated parser to `$OUT_DIR/<protocol>.rs`, to be included with
/// `include!(concat!(env!("OUT_DIR"), "/<protocol>.rs"))` inside a module.
///
/// On errors in a grammar, every grammar is still checked; the error returned
/// displays the rustc-style diagnostics of all of them (also printed to stderr,
/// so that `cargo build` shows them), and nothing is written for the grammars
/// that failed.
///
/// ```no_run
/// // build.rs
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     aa_dsl::compile(&["csv.aag", "http_response.aag"])
/// }
/// ```
pub fn compile(paths: &[impl AsRef<Path>]) -> Result<(), Box<dyn Error>> {
    let out_dir = PathBuf::from(
        std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set: call aa_dsl::compile from a build script")?,
    );
    let mut errors = String::new();
    for path in paths {
        let path = path.as_ref();
        println!("cargo:rerun-if-changed={}", path.display());
        match crate::load(path) {
            Ok(p) => {
                let code = crate::codegen::generate(&p);
                let dest = out_dir.join(format!("{}.rs", p.name));
                // Leave the file alone when unchanged, so that Cargo and editors
                // do not see a new file on every build.
                if std::fs::read_to_string(&dest).ok().as_deref() != Some(code.as_str()) {
                    std::fs::write(&dest, code)
                        .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
                }
            }
            Err(rendered) => {
                eprint!("{rendered}");
                errors.push_str(&rendered);
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Box::new(GrammarError(errors)))
    }
}
