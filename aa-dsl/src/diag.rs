//! Diagnostics shown the way rustc shows them: message, `--> file:line:col`, the
//! source line, a caret under the span with a label, and an optional help line.

use crate::ast::Span;
use std::fmt::Write as _;

/// One error in a grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What is wrong.
    pub message: String,
    /// Where.
    pub span: Span,
    /// Said under the caret.
    pub label: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn new(message: impl Into<String>, span: Span, label: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            span,
            label: label.into(),
            help: None,
        }
    }

    /// Adds a help line.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Line and column (1-based, columns in characters) of `offset` in `src`.
    pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(src.len());
        let before = &src[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        (line, col)
    }

    /// Renders the diagnostic for `file` whose text is `src`.
    pub fn render(&self, file: &str, src: &str) -> String {
        let (line, col) = Self::line_col(src, self.span.start);
        let text = src.lines().nth(line - 1).unwrap_or("");
        let gutter = line.to_string().len();
        let pad = " ".repeat(gutter);
        let width = {
            let end = self.span.end.min(src.len()).max(self.span.start);
            let same_line = &src[self.span.start.min(src.len())..end];
            same_line
                .split('\n')
                .next()
                .unwrap_or("")
                .chars()
                .count()
                .max(1)
        };
        let mut out = String::new();
        let _ = writeln!(out, "error: {}", self.message);
        let _ = writeln!(out, "{pad}--> {file}:{line}:{col}");
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{line} | {text}");
        let _ = writeln!(
            out,
            "{pad} | {}{} {}",
            " ".repeat(col - 1),
            "^".repeat(width),
            self.label
        );
        if let Some(h) = &self.help {
            let _ = writeln!(out, "{pad} = help: {h}");
        }
        out
    }
}

/// Renders every diagnostic, then a count, as rustc ends its output.
pub fn render_all(diags: &[Diagnostic], file: &str, src: &str) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(&d.render(file, src));
        out.push('\n');
    }
    let n = diags.len();
    let _ = writeln!(
        out,
        "error: {file}: {n} error{} in grammar",
        if n == 1 { "" } else { "s" }
    );
    out
}
