//! The `aa` command line.
//!
//! `aa check FILE.aag...` checks grammars and prints rustc-style diagnostics;
//! `aa gen FILE.aag` prints the Rust code generated from a grammar.

use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "aa", version, about = "Application-aware, zero-copy TCP")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check `.aag` grammars; print every error, exit 1 if there is one.
    Check {
        /// Grammar files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the Rust parser generated from a `.aag` grammar.
    Gen {
        /// Grammar file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().cmd {
        Cmd::Gen { file } => match aa::dsl::load(&file) {
            Ok(p) => {
                // A closed pipe (`aa gen x.aag | head`) is not an error.
                let _ = std::io::stdout().write_all(aa::dsl::codegen::generate(&p).as_bytes());
                ExitCode::SUCCESS
            }
            Err(rendered) => {
                eprint!("{rendered}");
                ExitCode::FAILURE
            }
        },
        Cmd::Check { files } => {
            let mut ok = true;
            for f in &files {
                match aa::dsl::load(f) {
                    Ok(p) => {
                        let names: Vec<&str> = p.records.iter().map(|r| r.name.as_str()).collect();
                        let _ = writeln!(
                            std::io::stdout(),
                            "{}: ok: protocol `{}`, {} record type{} ({})",
                            f.display(),
                            p.name,
                            names.len(),
                            if names.len() == 1 { "" } else { "s" },
                            names.join(", ")
                        );
                    }
                    Err(rendered) => {
                        eprint!("{rendered}");
                        ok = false;
                    }
                }
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
