//! Checks a syntax tree and lowers it to the IR, collecting every error.
//!
//! Names are looked up innermost first: record variables, then fields of the
//! record (only those before the item being checked, or the item itself), then
//! globals. The checks: unknown or duplicate names, a missing or second `start`,
//! missing maximum lengths and counts, more than 64 delimiters in one `until`,
//! an item after an unbounded field, type errors, records no `next` reaches,
//! and records that can loop without consuming input. The last two run
//! beside the others unless the record graph itself is in doubt (see
//! `Checker::graph_ok`); an unknown name's help guesses the name meant.

use crate::ast::{self, Span};
use crate::diag::{did_you_mean, Diagnostic};
use crate::ir;
use std::collections::HashMap;

/// Bytes of all sync patterns of a protocol together, at most.
const MAX_SYNC_BYTES: usize = 64;

/// Checks `file`; returns the IR or every error found.
pub fn check(file: &ast::File) -> Result<ir::Protocol, Vec<Diagnostic>> {
    let mut cx = Checker {
        errors: Vec::new(),
        record_ix: HashMap::new(),
        globals: Vec::new(),
        graph_ok: true,
        suspect: Vec::new(),
        in_begin: false,
    };
    let p = cx.protocol(file);
    if cx.errors.is_empty() {
        Ok(p)
    } else {
        cx.errors.sort_by_key(|d| d.span.start);
        Err(cx.errors)
    }
}

/// The functions actions may call, with their number of arguments.
const BUILTINS: &[(&str, usize)] = &[
    ("len", 1),
    ("dec", 1),
    ("hex", 1),
    ("be", 1),
    ("le", 1),
    ("trim", 1),
    ("empty", 1),
    ("eq", 2),
    ("ieq", 2),
    ("prefix", 2),
    ("iprefix", 2),
    ("contains", 2),
    ("icontains", 2),
    ("before", 2),
    ("after", 2),
    ("min", 2),
    ("heard", 0),
];

/// Most delimiters of one `until` field.
const MAX_DELIMS: usize = 64;

struct Checker {
    errors: Vec<Diagnostic>,
    record_ix: HashMap<String, usize>,
    globals: Vec<(ir::VarDef, Span)>,
    /// Whether the records and their `next` edges are as written: no record
    /// declared twice, a start record, every `next` to a known record. The
    /// checks of the record graph (reachability, loops without input) run
    /// only then, so that they report with the other errors but never
    /// because of them.
    graph_ok: bool,
    /// Per record: whether its items had errors. Such a record is not said
    /// to loop without input: what it consumes may be the errors' doing.
    suspect: Vec<bool>,
    /// Statements being checked are a `begin` block's (`wait` may be
    /// there).
    in_begin: bool,
}

/// What an expression evaluates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Bool,
    Bytes,
    Str,
    Error,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Int => "an integer",
            Kind::Bool => "a boolean",
            Kind::Bytes => "bytes",
            Kind::Str => "a string",
            Kind::Error => "an error",
        }
    }
}

/// Names visible inside one record while checking item `upto`.
struct Scope<'a> {
    vars: &'a [(ir::VarDef, Span)],
    /// Fields that may be referred to (those before the item, and the item).
    fields: &'a [(ir::FieldDef, Span)],
    /// Fields of the record that come later.
    later: &'a [String],
}

enum Value {
    Expr(ir::Expr),
    Bytes(ir::Bytes),
    Str,
}

impl Checker {
    fn err(&mut self, d: Diagnostic) {
        self.errors.push(d);
    }

    fn protocol(&mut self, file: &ast::File) -> ir::Protocol {
        for v in &file.vars {
            if let Some((_, first)) = self.globals.iter().find(|(g, _)| g.name == v.name.name) {
                let first = *first;
                self.err(
                    Diagnostic::new(
                        format!("variable `{}` is declared twice", v.name.name),
                        v.name.span,
                        "second declaration",
                    )
                    .first_declared(first),
                );
                continue;
            }
            let def = self.var_def(v, true);
            self.globals.push((def, v.name.span));
        }
        for (i, r) in file.records.iter().enumerate() {
            if let Some(j) = self.record_ix.get(&r.name.name) {
                let first = file.records[*j].name.span;
                self.err(
                    Diagnostic::new(
                        format!("record `{}` is declared twice", r.name.name),
                        r.name.span,
                        "second declaration",
                    )
                    .first_declared(first),
                );
                self.graph_ok = false;
            } else {
                self.record_ix.insert(r.name.name.clone(), i);
            }
        }
        let starts: Vec<_> = file.records.iter().filter(|r| r.start).collect();
        let start = match starts.as_slice() {
            [] => {
                self.graph_ok = false;
                if let Some(r) = file.records.first() {
                    self.err(
                        Diagnostic::new(
                            "no start record",
                            r.name.span,
                            "mark the record a stream begins with",
                        )
                        .help(format!("write `start record {}`", r.name.name)),
                    );
                } else {
                    self.err(Diagnostic::new(
                        "a protocol needs at least one record",
                        file.protocol.span,
                        "this protocol has none",
                    ));
                }
                0
            }
            [one] => self.record_ix[&one.name.name],
            [_, second, ..] => {
                self.graph_ok = false;
                self.err(Diagnostic::new(
                    "more than one start record",
                    second.name.span,
                    "second `start`",
                ));
                self.record_ix[&starts[0].name.name]
            }
        };
        let records: Vec<_> = file.records.iter().map(|r| self.record(r)).collect();
        // After a gap the parser follows partial matches of every pattern at
        // once, one bit per pattern byte: 64 bytes in all.
        let mut total = 0;
        for l in file
            .records
            .iter()
            .filter_map(|r| r.sync.as_ref())
            .flat_map(|s| &s.0)
        {
            total += l.bytes.len();
            if total > MAX_SYNC_BYTES && l.bytes.len() <= MAX_SYNC_BYTES {
                self.err(
                    Diagnostic::new(
                        "sync patterns longer than 64 bytes in all",
                        l.span,
                        format!("{total} bytes with this one"),
                    )
                    .help("after a gap the parser follows every pattern at once; use fewer or shorter ones"),
                );
                break;
            }
        }
        let p = ir::Protocol {
            name: file.protocol.name.clone(),
            globals: self.globals.iter().map(|(g, _)| g.clone()).collect(),
            records,
            start,
        };
        if self.graph_ok {
            self.flow_checks(file, &p);
        }
        p
    }

    fn var_def(&mut self, v: &ast::VarDecl, global: bool) -> ir::VarDef {
        let ty = match v.ty {
            ast::Ty::U64 => ir::Ty::U64,
            ast::Ty::Bool => ir::Ty::Bool,
        };
        let init = match &v.init {
            None => 0,
            Some(e) if !global => {
                self.err(
                    Diagnostic::new(
                        "a record variable cannot have an initial value",
                        e.span,
                        "remove it",
                    )
                    .help("record variables start at 0 or false in each record; declare the variable at the top to keep a value across records"),
                );
                0
            }
            Some(e) => match (&e.kind, ty) {
                (ast::ExprKind::Int(n), ir::Ty::U64) => *n,
                (ast::ExprKind::Bool(b), ir::Ty::Bool) => *b as u64,
                _ => {
                    self.err(Diagnostic::new(
                        "initial value must be a constant of the variable's type",
                        e.span,
                        match ty {
                            ir::Ty::U64 => "expected an integer literal",
                            ir::Ty::Bool => "expected `true` or `false`",
                        },
                    ));
                    0
                }
            },
        };
        ir::VarDef {
            name: v.name.name.clone(),
            ty,
            init,
        }
    }

    fn record(&mut self, r: &ast::RecordDecl) -> ir::RecordDef {
        let errors_before = self.errors.len();
        let mut vars: Vec<(ir::VarDef, Span)> = Vec::new();
        let mut fields: Vec<(ir::FieldDef, Span)> = Vec::new();
        let mut items = Vec::new();
        let mut unbounded: Option<&str> = None;
        let names: Vec<String> = r
            .items
            .iter()
            .filter_map(|it| match it {
                ast::Item::Field(f) => Some(f.name.name.clone()),
                _ => None,
            })
            .collect();
        // Declare names first so a later item's actions can assign record vars.
        for it in &r.items {
            if let ast::Item::Var(v) = it {
                if let Some((_, first)) = vars.iter().find(|(x, _)| x.name == v.name.name) {
                    let first = *first;
                    self.err(
                        Diagnostic::new(
                            format!(
                                "variable `{}` is declared twice in record `{}`",
                                v.name.name, r.name.name
                            ),
                            v.name.span,
                            "second declaration",
                        )
                        .first_declared(first),
                    );
                    continue;
                }
                let def = self.var_def(v, false);
                vars.push((def, v.name.span));
            }
        }
        let begin = match &r.begin {
            Some((stmts, _)) => {
                // Nothing is parsed yet: no field can be read.
                let scope = Scope {
                    vars: &vars,
                    fields: &[],
                    later: &names,
                };
                self.in_begin = true;
                let begin = self.stmts(stmts, &scope);
                self.in_begin = false;
                for at in misplaced_waits(stmts, true) {
                    self.err(
                        Diagnostic::new(
                            "`wait` after other statements",
                            at,
                            "`begin` runs again from its start after the wait",
                        )
                        .help(
                            "put `wait;` first in `begin`, or first in an `if` \
                             that comes first (conditions only read)",
                        ),
                    );
                }
                if let Some(at) = end_span(stmts) {
                    self.err(
                        Diagnostic::new(
                            "`end` in `begin`",
                            at,
                            "the record has no item to end after yet",
                        )
                        .help("choose another record with `next`, or `fail`"),
                    );
                }
                begin
            }
            None => Vec::new(),
        };
        for it in &r.items {
            let (span, what) = match it {
                ast::Item::Var(_) => continue,
                ast::Item::Expect(l) => (l.span, "this `expect`".to_string()),
                ast::Item::Field(f) => (f.name.span, format!("`{}`", f.name.name)),
            };
            if let Some(u) = unbounded {
                self.err(
                    Diagnostic::new(
                        format!("{what} comes after `{u}`, which reads to the end of the stream"),
                        span,
                        "never reached",
                    )
                    .help(format!("write `chunk N` to limit `{u}` (`max` does not end a chunk), or make it the last item")),
                );
            }
            match it {
                ast::Item::Var(_) => {}
                ast::Item::Expect(l) => {
                    if l.bytes.is_empty() {
                        self.err(Diagnostic::new("empty `expect`", l.span, "expects nothing"));
                    }
                    items.push(ir::ItemDef::Expect(l.bytes.clone()));
                }
                ast::Item::Field(f) => {
                    let earlier = fields
                        .iter()
                        .map(|(x, sp)| (x.name.as_str(), *sp))
                        .chain(vars.iter().map(|(v, sp)| (v.name.as_str(), *sp)))
                        .find(|(n, _)| *n == f.name.name);
                    if let Some((_, other)) = earlier {
                        // Report at whichever of the two comes later in the text.
                        let (at, first) = if other.start > f.name.span.start {
                            (other, f.name.span)
                        } else {
                            (f.name.span, other)
                        };
                        self.err(
                            Diagnostic::new(
                                format!(
                                    "`{}` is declared twice in record `{}`",
                                    f.name.name, r.name.name
                                ),
                                at,
                                "second declaration",
                            )
                            .first_declared(first),
                        );
                    }
                    if let Some((_, g)) = self.globals.iter().find(|(g, _)| g.name == f.name.name) {
                        let g = *g;
                        self.err(
                            Diagnostic::new(
                                format!(
                                    "field `{}` has the name of a global variable",
                                    f.name.name
                                ),
                                f.name.span,
                                "a field and a global of one name would be ambiguous in actions",
                            )
                            .first_declared(g)
                            .help("rename the field or the variable"),
                        );
                    }
                    if matches!(f.ending, ast::Ending::Chunk(None)) {
                        unbounded = Some(&f.name.name);
                    }
                    let later = &names[fields.len() + 1..];
                    let def = self.field(f, &vars, &fields, later);
                    items.push(ir::ItemDef::Field(fields.len()));
                    fields.push((def, f.name.span));
                }
            }
        }
        self.suspect.push(self.errors.len() > errors_before);
        let scope = Scope {
            vars: &vars,
            fields: &fields,
            later: &[],
        };
        let then = self.stmts(&r.then, &scope);
        let skip = r.skip.as_ref().map_or_else(Vec::new, |l| l.bytes.clone());
        let sync = r.sync.as_ref().map(|(lits, after)| {
            for l in lits {
                if l.bytes.is_empty() || l.bytes.len() > MAX_SYNC_BYTES {
                    self.err(Diagnostic::new(
                        "a sync pattern has 1 to 64 bytes",
                        l.span,
                        format!("{} bytes", l.bytes.len()),
                    ));
                }
            }
            (lits.iter().map(|l| l.bytes.clone()).collect(), *after)
        });
        ir::RecordDef {
            name: r.name.name.clone(),
            skip,
            sync,
            vars: vars.into_iter().map(|(v, _)| v).collect(),
            fields: fields.into_iter().map(|(f, _)| f).collect(),
            items,
            begin,
            then,
        }
    }

    fn field(
        &mut self,
        f: &ast::FieldDecl,
        vars: &[(ir::VarDef, Span)],
        fields: &[(ir::FieldDef, Span)],
        later: &[String],
    ) -> ir::FieldDef {
        let before = Scope {
            vars,
            fields,
            later,
        };
        let name = &f.name.name;
        let mut max = f.max.map(|(m, _)| m);
        let ending = match &f.ending {
            ast::Ending::Until { delims, eof, quote } => {
                for d in delims.iter().filter(|d| d.bytes.is_empty()) {
                    self.err(Diagnostic::new(
                        "empty delimiter",
                        d.span,
                        "would end the field at once",
                    ));
                }
                // `stop after` keeps the delimiters that stop a repeat as bits
                // of a u64: one each.
                if let Some(d) = delims.get(MAX_DELIMS) {
                    self.err(
                        Diagnostic::new(
                            format!(
                                "field `{name}` has {} delimiters, more than {MAX_DELIMS}",
                                delims.len()
                            ),
                            d.span,
                            format!("delimiter number {}", MAX_DELIMS + 1),
                        )
                        .help(format!(
                            "a delimited field has at most {MAX_DELIMS} delimiters"
                        )),
                    );
                }
                let quote = quote.as_ref().and_then(|q| match q.bytes.as_slice() {
                    [b] => Some(*b),
                    _ => {
                        self.err(Diagnostic::new(
                            "a quote is one byte",
                            q.span,
                            format!("{} bytes", q.bytes.len()),
                        ));
                        None
                    }
                });
                if f.max.is_none() {
                    self.err(
                        Diagnostic::new(
                            format!("field `{name}` has no maximum length"),
                            f.ending_span,
                            "a delimited field could grow without bound",
                        )
                        .help("add `max N` after the ending"),
                    );
                }
                ir::Ending::Until {
                    delims: delims.iter().map(|d| d.bytes.clone()).collect(),
                    eof: eof.is_some(),
                    quote,
                }
            }
            ast::Ending::Bytes(e) => {
                let x = self.int_expr(e, &before);
                match (&x, f.max) {
                    (ir::Expr::Const(n), Some((m, sp))) if *n > m => self.err(Diagnostic::new(
                        format!("field `{name}` is {n} bytes, more than its `max {m}`"),
                        sp,
                        "always exceeded",
                    )),
                    (ir::Expr::Const(n), None) => max = Some(*n),
                    (_, None) => self.err(
                        Diagnostic::new(
                            format!("field `{name}` has no maximum length"),
                            f.ending_span,
                            "its length is computed from the input",
                        )
                        .help("add `max N` after the ending"),
                    ),
                    _ => {}
                }
                ir::Ending::Bytes(x)
            }
            ast::Ending::Chunk(e) => {
                max.get_or_insert(u64::MAX);
                let x = e.as_ref().map(|e| self.int_expr(e, &before));
                if let (Some(ir::Expr::Const(0)), Some(e)) = (&x, e) {
                    self.err(Diagnostic::new(
                        "a chunk of at most 0 bytes",
                        e.span,
                        "a chunk has at least one byte",
                    ));
                }
                ir::Ending::Chunk(x)
            }
            ast::Ending::Int { bytes, big } => {
                if let Some((_, sp)) = f.max {
                    self.err(Diagnostic::new(
                        "an integer field has a fixed length",
                        sp,
                        "remove `max`",
                    ));
                }
                max = Some(*bytes as u64);
                ir::Ending::Int {
                    bytes: *bytes,
                    big: *big,
                }
            }
        };
        let repeat = f.repeat.as_ref().map(|stop| {
            let max_count = match f.count {
                Some((n, sp)) if n == 0 || n > u32::MAX as u64 => {
                    self.err(Diagnostic::new(
                        format!("`count {n}` is out of range"),
                        sp,
                        "must be 1 to 4294967295",
                    ));
                    1
                }
                Some((n, _)) => n as u32,
                None => {
                    self.err(
                        Diagnostic::new(
                            format!("repeated field `{name}` has no maximum count"),
                            f.name.span,
                            "could repeat without bound",
                        )
                        .help("add `count N`"),
                    );
                    1
                }
            };
            let stop = match stop {
                ast::Stop::OnEmpty(sp) => {
                    if !matches!(ending, ir::Ending::Until { .. }) {
                        self.err(Diagnostic::new(
                            "`stop on empty` needs a delimited field",
                            *sp,
                            "only `until` fields can be empty",
                        ));
                    }
                    ir::Stop::OnEmpty
                }
                ast::Stop::After(ds, eof) => {
                    match (eof, &ending) {
                        (Some(sp), ir::Ending::Until { eof: false, .. }) => {
                            self.err(Diagnostic::new(
                                "`stop after eof` on a field that does not end at `eof`",
                                *sp,
                                "add `eof` to the field's `until` list",
                            ))
                        }
                        (Some(sp), e) if !matches!(e, ir::Ending::Until { .. }) => {
                            self.err(Diagnostic::new(
                                "`stop after` needs a delimited field",
                                *sp,
                                "only `until` fields end at a delimiter or `eof`",
                            ))
                        }
                        _ => {}
                    }
                    let mut ix = Vec::new();
                    for d in ds {
                        match &ending {
                            ir::Ending::Until { delims, .. } => {
                                match delims.iter().position(|x| *x == d.bytes) {
                                    Some(i) => ix.push(i),
                                    None => self.err(Diagnostic::new(
                                        "`stop after` names a delimiter the field does not have",
                                        d.span,
                                        "not in the field's `until` list",
                                    )),
                                }
                            }
                            _ => self.err(Diagnostic::new(
                                "`stop after` needs a delimited field",
                                d.span,
                                "only `until` fields end at a delimiter",
                            )),
                        }
                    }
                    ir::Stop::After {
                        delims: ix,
                        eof: eof.is_some(),
                    }
                }
                ast::Stop::Times(e) => ir::Stop::Times(self.int_expr(e, &before)),
                // Lowered with the actions, below.
                ast::Stop::When(_) => ir::Stop::When,
            };
            ir::Repeat { max_count, stop }
        });
        if let (None, Some((_, sp))) = (&f.repeat, f.count) {
            self.err(Diagnostic::new(
                "`count` on a field that does not repeat",
                sp,
                "only `repeat` fields have a count",
            ));
        }
        // The field itself is visible in its own actions.
        let mut with_self: Vec<(ir::FieldDef, Span)> = fields.to_vec();
        let placeholder = ir::FieldDef {
            name: name.clone(),
            ending: ending.clone(),
            max: max.unwrap_or(0),
            repeat: None,
            actions: Vec::new(),
        };
        with_self.push((placeholder, f.name.span));
        let scope = Scope {
            vars,
            fields: &with_self,
            later,
        };
        let mut actions = self.stmts(&f.actions, &scope);
        if let Some(ast::Stop::When(e)) = &f.repeat {
            let cond = self.bool_expr(e, &scope);
            actions.push(ir::Stmt::If(cond, vec![ir::Stmt::StopRepeat], Vec::new()));
        }
        ir::FieldDef {
            name: name.clone(),
            ending,
            max: max.unwrap_or(0),
            repeat,
            actions,
        }
    }

    fn stmts(&mut self, stmts: &[ast::Stmt], scope: &Scope<'_>) -> Vec<ir::Stmt> {
        stmts.iter().filter_map(|s| self.stmt(s, scope)).collect()
    }

    fn stmt(&mut self, s: &ast::Stmt, scope: &Scope<'_>) -> Option<ir::Stmt> {
        Some(match s {
            ast::Stmt::Assign(name, e) => {
                let (var, ty) = match scope.vars.iter().position(|(v, _)| v.name == name.name) {
                    Some(i) => (ir::Var::Local(i), scope.vars[i].0.ty),
                    None => match self.globals.iter().position(|(v, _)| v.name == name.name) {
                        Some(i) => (ir::Var::Global(i), self.globals[i].0.ty),
                        None => {
                            let is_field = scope.fields.iter().any(|(f, _)| f.name == name.name)
                                || scope.later.contains(&name.name);
                            let d = if is_field {
                                Diagnostic::new(
                                    format!("cannot assign to field `{}`", name.name),
                                    name.span,
                                    "fields are read-only",
                                )
                                .help(format!(
                                    "assign a variable instead, e.g. `var {}_value: u64;`",
                                    name.name
                                ))
                            } else {
                                let vars = scope.vars.iter().map(|(v, _)| v.name.as_str());
                                let globals = self.globals.iter().map(|(v, _)| v.name.as_str());
                                let declare = format!(
                                    "declare it with `var {}: u64;` in the record or at the top",
                                    name.name
                                );
                                Diagnostic::new(
                                    format!("unknown variable `{}`", name.name),
                                    name.span,
                                    "not declared",
                                )
                                .help(
                                    match did_you_mean(&name.name, vars.chain(globals)) {
                                        Some(m) => format!("did you mean `{m}`? If not, {declare}"),
                                        None => declare,
                                    },
                                )
                            };
                            self.err(d);
                            if !is_heard(e) {
                                self.expr(e, scope);
                            }
                            return None;
                        }
                    },
                };
                if is_heard(e) {
                    if ty != ir::Ty::U64 {
                        self.err(Diagnostic::new(
                            "type mismatch",
                            e.span,
                            format!("`{}` is a boolean, a signal is an integer", name.name),
                        ));
                    }
                    return Some(ir::Stmt::Hear(var));
                }
                let (v, k) = self.expr(e, scope);
                let want = match ty {
                    ir::Ty::U64 => Kind::Int,
                    ir::Ty::Bool => Kind::Bool,
                };
                if k != want && k != Kind::Error {
                    self.err(Diagnostic::new(
                        "type mismatch",
                        e.span,
                        format!("`{}` is {}, this is {}", name.name, want.name(), k.name()),
                    ));
                }
                ir::Stmt::Set(var, as_expr(v))
            }
            ast::Stmt::If(c, t, e) => {
                let cond = self.bool_expr(c, scope);
                ir::Stmt::If(cond, self.stmts(t, scope), self.stmts(e, scope))
            }
            ast::Stmt::Next(r, eof) => match self.record_ix.get(&r.name) {
                Some(&i) => ir::Stmt::Next(i, *eof),
                None => {
                    let mut names: Vec<_> = self.record_ix.keys().map(String::as_str).collect();
                    names.sort_unstable();
                    let help = match did_you_mean(&r.name, names.iter().copied()) {
                        Some(m) => format!("did you mean `{m}`?"),
                        None => format!("records are: {}", names.join(", ")),
                    };
                    self.err(
                        Diagnostic::new(
                            format!("unknown record `{}`", r.name),
                            r.span,
                            "no record of this name",
                        )
                        .help(help),
                    );
                    self.graph_ok = false;
                    return None;
                }
            },
            ast::Stmt::End(_) => ir::Stmt::End,
            ast::Stmt::Wait(sp) => {
                if !self.in_begin {
                    self.err(
                        Diagnostic::new(
                            "`wait` outside `begin`",
                            *sp,
                            "bytes of the record were read already",
                        )
                        .help("wait in the `begin` block of the record that needs the signal"),
                    );
                    return None;
                }
                ir::Stmt::Wait
            }
            ast::Stmt::Fail(l) => ir::Stmt::Fail(String::from_utf8_lossy(&l.bytes).into_owned()),
            ast::Stmt::Signal(e) => {
                let v = self.int_expr(e, scope);
                if let ir::Expr::Const(c) = v {
                    if c > aa_runtime::Signals::MAX {
                        self.err(
                            Diagnostic::new(
                                "signal out of range",
                                e.span,
                                format!("{c} is more than 15"),
                            )
                            .help("a signal is a number from 0 to 15"),
                        );
                    }
                }
                ir::Stmt::Signal(v)
            }
        })
    }

    fn int_expr(&mut self, e: &ast::Expr, scope: &Scope<'_>) -> ir::Expr {
        let (v, k) = self.expr(e, scope);
        if k != Kind::Int && k != Kind::Error {
            self.err(Diagnostic::new(
                "type mismatch",
                e.span,
                format!("expected an integer, found {}", k.name()),
            ));
        }
        as_expr(v)
    }

    fn bool_expr(&mut self, e: &ast::Expr, scope: &Scope<'_>) -> ir::Expr {
        let (v, k) = self.expr(e, scope);
        if k != Kind::Bool && k != Kind::Error {
            let d = Diagnostic::new(
                "type mismatch",
                e.span,
                format!("expected a boolean, found {}", k.name()),
            );
            // `flags & 4` for a test of bits, as in C.
            let bits = matches!(
                e.kind,
                ast::ExprKind::Bin(
                    ast::BinOp::BitAnd | ast::BinOp::BitOr | ast::BinOp::BitXor,
                    ..
                )
            );
            self.err(if bits {
                d.help("test the bits with a comparison: `(...) != 0`")
            } else {
                d
            });
        }
        as_expr(v)
    }

    fn bytes_arg(&mut self, e: &ast::Expr, scope: &Scope<'_>) -> Option<ir::Bytes> {
        match self.expr(e, scope) {
            (Value::Bytes(b), _) => Some(b),
            (_, Kind::Error) => None,
            (_, k) => {
                let d = Diagnostic::new(
                    "type mismatch",
                    e.span,
                    format!(
                        "expected bytes (an `until`, `bytes` or `chunk` field), found {}",
                        k.name()
                    ),
                );
                self.err(if k == Kind::Int {
                    d.help("an integer field's value is its name: use it directly")
                } else {
                    d
                });
                None
            }
        }
    }

    fn str_arg(&mut self, e: &ast::Expr) -> Option<Vec<u8>> {
        match &e.kind {
            ast::ExprKind::Str(s) => Some(s.clone()),
            _ => {
                self.err(Diagnostic::new(
                    "expected a string literal",
                    e.span,
                    "the second argument is a constant string",
                ));
                None
            }
        }
    }

    fn expr(&mut self, e: &ast::Expr, scope: &Scope<'_>) -> (Value, Kind) {
        let bad = (Value::Expr(ir::Expr::Const(0)), Kind::Error);
        match &e.kind {
            ast::ExprKind::Int(n) => (Value::Expr(ir::Expr::Const(*n)), Kind::Int),
            ast::ExprKind::Bool(b) => (Value::Expr(ir::Expr::Const(*b as u64)), Kind::Bool),
            ast::ExprKind::Str(_) => (Value::Str, Kind::Str),
            ast::ExprKind::Name(n) => {
                if let Some(i) = scope.vars.iter().position(|(v, _)| v.name == *n) {
                    let k = ty_kind(scope.vars[i].0.ty);
                    return (Value::Expr(ir::Expr::Var(ir::Var::Local(i))), k);
                }
                if let Some(i) = scope.fields.iter().position(|(f, _)| f.name == *n) {
                    return match scope.fields[i].0.ending {
                        ir::Ending::Int { .. } => (Value::Expr(ir::Expr::FieldInt(i)), Kind::Int),
                        _ => (Value::Bytes(ir::Bytes::Field(i)), Kind::Bytes),
                    };
                }
                if scope.later.contains(n) {
                    self.err(
                        Diagnostic::new(
                            format!("field `{n}` is not parsed yet here"),
                            e.span,
                            "it comes later in the record",
                        )
                        .help(format!("move `{n}` before the item that uses it")),
                    );
                    return bad;
                }
                if let Some(i) = self.globals.iter().position(|(v, _)| v.name == *n) {
                    let k = ty_kind(self.globals[i].0.ty);
                    return (Value::Expr(ir::Expr::Var(ir::Var::Global(i))), k);
                }
                let known = scope
                    .vars
                    .iter()
                    .map(|(v, _)| v.name.as_str())
                    .chain(scope.fields.iter().map(|(f, _)| f.name.as_str()))
                    .chain(self.globals.iter().map(|(v, _)| v.name.as_str()));
                let mut d = Diagnostic::new(
                    format!("unknown name `{n}`"),
                    e.span,
                    "not a variable or a field of this record",
                );
                if let Some(m) = did_you_mean(n, known) {
                    d = d.help(format!("did you mean `{m}`?"));
                }
                self.err(d);
                bad
            }
            ast::ExprKind::Not(x) => {
                let c = self.bool_expr(x, scope);
                (Value::Expr(ir::Expr::Not(Box::new(c))), Kind::Bool)
            }
            ast::ExprKind::Bin(op, l, r) => {
                use ast::BinOp::*;
                let (lv, lk) = self.expr(l, scope);
                let (rv, rk) = self.expr(r, scope);
                let (want, out) = match op {
                    Or | And => (Kind::Bool, Kind::Bool),
                    Lt | Le | Gt | Ge => (Kind::Int, Kind::Bool),
                    Eq | Ne => (
                        if lk == Kind::Bool {
                            Kind::Bool
                        } else {
                            Kind::Int
                        },
                        Kind::Bool,
                    ),
                    Add | Sub | Mul | Div | Rem | BitAnd | BitOr | BitXor | Shl | Shr => {
                        (Kind::Int, Kind::Int)
                    }
                };
                for (k, x) in [(lk, l), (rk, r)] {
                    if k != want && k != Kind::Error {
                        self.err(Diagnostic::new(
                            "type mismatch",
                            x.span,
                            format!("expected {}, found {}", want.name(), k.name()),
                        ));
                    }
                }
                (
                    Value::Expr(ir::Expr::Bin(
                        *op,
                        Box::new(as_expr(lv)),
                        Box::new(as_expr(rv)),
                    )),
                    out,
                )
            }
            ast::ExprKind::Call(f, args) => self.call(f, args, e.span, scope),
        }
    }

    fn call(
        &mut self,
        f: &ast::Ident,
        args: &[ast::Expr],
        span: Span,
        scope: &Scope<'_>,
    ) -> (Value, Kind) {
        let bad = (Value::Expr(ir::Expr::Const(0)), Kind::Error);
        let arity = match BUILTINS.iter().find(|(n, _)| *n == f.name) {
            Some(&(_, arity)) => arity,
            None => {
                let names = BUILTINS.iter().map(|(n, _)| *n);
                let help = match did_you_mean(&f.name, names.clone()) {
                    Some(m) => format!("did you mean `{m}`?"),
                    None => format!("functions are: {}", names.collect::<Vec<_>>().join(" ")),
                };
                self.err(
                    Diagnostic::new(
                        format!("unknown function `{}`", f.name),
                        f.span,
                        "not a built-in",
                    )
                    .help(help),
                );
                return bad;
            }
        };
        if args.len() != arity {
            self.err(Diagnostic::new(
                format!(
                    "`{}` takes {arity} argument{}",
                    f.name,
                    if arity == 1 { "" } else { "s" }
                ),
                span,
                format!("{} given", args.len()),
            ));
            return bad;
        }
        let name = f.name.as_str();
        if name == "heard" {
            self.err(
                Diagnostic::new(
                    "`heard()` inside an expression",
                    span,
                    "takes the oldest signal: it must run once, by itself",
                )
                .help("assign it to a variable and use that: `h = heard();`"),
            );
            return bad;
        }
        if name == "min" {
            let a = self.int_expr(&args[0], scope);
            let b = self.int_expr(&args[1], scope);
            return (
                Value::Expr(ir::Expr::Min(Box::new(a), Box::new(b))),
                Kind::Int,
            );
        }
        let Some(b) = self.bytes_arg(&args[0], scope) else {
            if arity == 2 {
                self.expr(&args[1], scope);
            }
            return bad;
        };
        let test = |t| Some(t);
        let t = match name {
            "eq" => test(ir::Test::Eq),
            "ieq" => test(ir::Test::IEq),
            "prefix" => test(ir::Test::Prefix),
            "iprefix" => test(ir::Test::IPrefix),
            "contains" => test(ir::Test::Contains),
            "icontains" => test(ir::Test::IContains),
            _ => None,
        };
        if let Some(t) = t {
            let Some(s) = self.str_arg(&args[1]) else {
                return bad;
            };
            let e = match t {
                ir::Test::IEq => ir::Expr::ieq(b, s),
                t => ir::Expr::Test(t, b, s),
            };
            return (Value::Expr(e), Kind::Bool);
        }
        match name {
            "len" => (Value::Expr(ir::Expr::Len(b)), Kind::Int),
            "dec" => (Value::Expr(ir::Expr::Dec(b)), Kind::Int),
            "hex" => (Value::Expr(ir::Expr::Hex(b)), Kind::Int),
            "be" => (Value::Expr(ir::Expr::Be(b)), Kind::Int),
            "le" => (Value::Expr(ir::Expr::Le(b)), Kind::Int),
            "empty" => (Value::Expr(ir::Expr::Empty(b)), Kind::Bool),
            "trim" => (Value::Bytes(ir::Bytes::Trim(Box::new(b))), Kind::Bytes),
            _ => {
                let Some(s) = self.str_arg(&args[1]) else {
                    return bad;
                };
                let v = if name == "before" {
                    ir::Bytes::Before(Box::new(b), s)
                } else {
                    ir::Bytes::After(Box::new(b), s)
                };
                (Value::Bytes(v), Kind::Bytes)
            }
        }
    }

    /// Reachability and records that can loop without consuming input.
    fn flow_checks(&mut self, file: &ast::File, p: &ir::Protocol) {
        let n = p.records.len();
        let succ: Vec<Vec<usize>> = p.records.iter().map(|r| successors(r, p.start)).collect();
        let begin_succ: Vec<Vec<usize>> = p.records.iter().map(begin_successors).collect();
        let mut seen = vec![false; n];
        let mut stack = vec![p.start];
        while let Some(r) = stack.pop() {
            if !std::mem::replace(&mut seen[r], true) {
                stack.extend(&succ[r]);
                stack.extend(&begin_succ[r]);
            }
        }
        for (i, r) in file.records.iter().enumerate() {
            if !seen[i] {
                self.err(
                    Diagnostic::new(
                        format!("record `{}` is unreachable", r.name.name),
                        r.name.span,
                        "no `next` leads here from the start record",
                    )
                    .help("add `next` to it from a reachable record, or remove it"),
                );
            }
        }
        // A cycle of steps that consume nothing never ends: from a record that
        // may consume nothing to the records after it, and from a record's
        // `begin` to the records it may start instead.
        let empty: Vec<bool> = (p.records.iter().zip(&self.suspect))
            .map(|(r, suspect)| !suspect && may_consume_nothing(r))
            .collect();
        let free: Vec<Vec<usize>> = (0..n)
            .map(|r| {
                let mut v = begin_succ[r].clone();
                if empty[r] {
                    v.extend(&succ[r]);
                }
                v
            })
            .collect();
        let mut state = vec![0u8; n]; // 0 new, 1 on stack, 2 done
        fn dfs(r: usize, free: &[Vec<usize>], st: &mut [u8]) -> Option<usize> {
            st[r] = 1;
            for &s in &free[r] {
                if st[s] == 1 {
                    return Some(s);
                }
                if st[s] == 0 {
                    if let Some(x) = dfs(s, free, st) {
                        return Some(x);
                    }
                }
            }
            st[r] = 2;
            None
        }
        for r in 0..n {
            if !free[r].is_empty() && state[r] == 0 {
                if let Some(x) = dfs(r, &free, &mut state) {
                    let rec = &file.records[x];
                    let label = if !begin_succ[x].is_empty() {
                        "its `begin` can start a record that comes back to it without consuming input"
                    } else if p.records[x].items.is_empty() {
                        "it has no item, and the stream can come back to it"
                    } else {
                        "every item of this record may be empty, and the stream can come back to it"
                    };
                    self.err(
                        Diagnostic::new(
                            format!("record `{}` can loop without consuming input", rec.name.name),
                            rec.name.span,
                            label,
                        )
                        .help(if begin_succ[x].is_empty() {
                            "give the record an item that always consumes bytes (`until`, `expect`, an integer, `chunk`)"
                        } else {
                            "a record that `begin` starts must not lead back without consuming a byte"
                        }),
                    );
                    break;
                }
            }
        }
    }
}

fn ty_kind(t: ir::Ty) -> Kind {
    match t {
        ir::Ty::U64 => Kind::Int,
        ir::Ty::Bool => Kind::Bool,
    }
}

fn as_expr(v: Value) -> ir::Expr {
    match v {
        Value::Expr(e) => e,
        // Already reported as a type error.
        Value::Bytes(_) | Value::Str => ir::Expr::Const(0),
    }
}

/// Whether `e` is `heard()`, which only an assignment may take.
fn is_heard(e: &ast::Expr) -> bool {
    matches!(&e.kind, ast::ExprKind::Call(f, args) if f.name == "heard" && args.is_empty())
}

/// The `wait`s of a `begin` block that some statement runs before: one
/// is in place only first in the block, or first in a branch of an `if`
/// itself in place (`first`: `stmts` begin such a place).
fn misplaced_waits(stmts: &[ast::Stmt], first: bool) -> Vec<Span> {
    let mut out = Vec::new();
    for (k, st) in stmts.iter().enumerate() {
        let here = first && k == 0;
        match st {
            ast::Stmt::Wait(sp) if !here => out.push(*sp),
            ast::Stmt::If(_, a, b) => {
                out.extend(misplaced_waits(a, here));
                out.extend(misplaced_waits(b, here));
            }
            _ => {}
        }
    }
    out
}

/// Where the statements' first `end` is.
fn end_span(s: &[ast::Stmt]) -> Option<Span> {
    s.iter().find_map(|st| match st {
        ast::Stmt::End(sp) => Some(*sp),
        ast::Stmt::If(_, a, b) => end_span(a).or_else(|| end_span(b)),
        _ => None,
    })
}

/// Records a `begin` block may start instead of its own (its `next`s).
fn begin_successors(r: &ir::RecordDef) -> Vec<usize> {
    let mut out = Vec::new();
    ir::each_stmt(&r.begin, &mut |s| {
        if let ir::Stmt::Next(i, _) = s {
            out.push(*i);
        }
    });
    out
}

/// Records that may follow `r`: every `next`, and the start record when the
/// `then` statements may finish without one.
fn successors(r: &ir::RecordDef, start: usize) -> Vec<usize> {
    fn walk(s: &[ir::Stmt], out: &mut Vec<usize>) -> bool {
        // Returns whether every path sets `next`.
        let mut sets = false;
        for st in s {
            match st {
                ir::Stmt::Next(i, _) => {
                    out.push(*i);
                    sets = true;
                }
                ir::Stmt::If(_, a, b) => {
                    let x = walk(a, out);
                    let y = walk(b, out);
                    sets |= x && y;
                }
                ir::Stmt::Fail(_) => sets = true,
                _ => {}
            }
        }
        sets
    }
    let mut out = Vec::new();
    for f in &r.fields {
        walk(&f.actions, &mut out);
    }
    if !walk(&r.then, &mut out) {
        out.push(start);
    }
    out.sort();
    out.dedup();
    out
}

/// Whether a record of this type might consume no bytes at all.
fn may_consume_nothing(r: &ir::RecordDef) -> bool {
    !r.items.iter().any(|it| match it {
        ir::ItemDef::Expect(b) => !b.is_empty(),
        ir::ItemDef::Field(i) => {
            let f = &r.fields[*i];
            let once = match &f.ending {
                ir::Ending::Until { .. } | ir::Ending::Int { .. } | ir::Ending::Chunk(_) => true,
                ir::Ending::Bytes(ir::Expr::Const(n)) => *n > 0,
                ir::Ending::Bytes(_) => false,
            };
            once && !matches!(
                f.repeat,
                Some(ir::Repeat {
                    stop: ir::Stop::Times(_),
                    ..
                })
            )
        }
    })
}
