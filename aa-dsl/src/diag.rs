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
    /// Where the first of two conflicting declarations is.
    pub first: Option<Span>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn new(message: impl Into<String>, span: Span, label: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            span,
            label: label.into(),
            help: None,
            first: None,
        }
    }

    /// Notes where the first declaration of a duplicate name is.
    pub fn first_declared(mut self, at: Span) -> Self {
        self.first = Some(at);
        self
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
        // Tabs are shown as four spaces, as rustc does, so the caret lines up.
        let shown = |s: &str| s.replace('\t', "    ");
        let width = |s: &str| {
            s.chars()
                .map(|c| if c == '\t' { 4 } else { 1 })
                .sum::<usize>()
        };
        let line_start = src[..self.span.start.min(src.len())]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let lead = width(&src[line_start..self.span.start.min(src.len())]);
        let carets = {
            let end = self.span.end.min(src.len()).max(self.span.start);
            let same_line = &src[self.span.start.min(src.len())..end];
            width(same_line.split('\n').next().unwrap_or("")).max(1)
        };
        let mut out = String::new();
        let _ = writeln!(out, "error: {}", self.message);
        let _ = writeln!(out, "{pad}--> {file}:{line}:{col}");
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{line} | {}", shown(text));
        let _ = writeln!(
            out,
            "{pad} | {}{} {}",
            " ".repeat(lead),
            "^".repeat(carets),
            self.label
        );
        if let Some(first) = self.first {
            let (l, c) = Self::line_col(src, first.start);
            let _ = writeln!(out, "{pad} = note: first declared at {file}:{l}:{c}");
        }
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

/// The name among `known` that `name` is most likely a misspelling of: one
/// that differs only in case, else the nearest by edit distance (a swap of two
/// neighbours is one edit; the first of equals) if at most a third of its
/// length away, so none for names of one or two characters, which any short
/// name would be that near.
pub(crate) fn did_you_mean<'a>(
    name: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = name.chars().count() / 3;
    known
        .into_iter()
        .filter(|k| *k != name)
        .map(|k| {
            let d = if k.eq_ignore_ascii_case(name) {
                0
            } else {
                strsim::osa_distance(name, k)
            };
            (d, k)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn guesses_near_names_only() {
        let known = ["length", "total", "len", "Type"];
        assert_eq!(
            did_you_mean("lenght", known),
            Some("length"),
            "a swap is one edit"
        );
        assert_eq!(did_you_mean("totl", known), Some("total"));
        assert_eq!(did_you_mean("type", known), Some("Type"), "case only");
        assert_eq!(
            did_you_mean("TYPE", known),
            Some("Type"),
            "case only, however short"
        );
        assert_eq!(
            did_you_mean("x", known),
            None,
            "one character: any name is near"
        );
        assert_eq!(did_you_mean("le", ["len", "ln"]), None, "two characters");
        assert_eq!(did_you_mean("size", known), None, "nothing near");
        assert_eq!(
            did_you_mean("length", known),
            None,
            "the name itself is no guess"
        );
        assert_eq!(
            did_you_mean("lenx", ["lena", "lenb"]),
            Some("lena"),
            "the first of equals"
        );
    }
}
