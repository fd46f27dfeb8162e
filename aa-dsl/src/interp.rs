//! The interpreter: runs a checked [`ir::Protocol`] as a zero-copy parser of the
//! runtime ([`aa_runtime::Parser`]). It loads grammars at run time and is the
//! oracle generated parsers are tested against.
//!
//! How it works. [`Grammar`] prepares a protocol once: names for the runtime's
//! schema, an Aho–Corasick automaton per delimited field (so a delimiter split
//! across packets is matched byte by byte from a small state, never by looking
//! back), and byte tables for `skip`. [`Interp`] is a parser of one stream:
//! the shared grammar and the per-stream state (a private `State` whose methods
//! borrow the grammar, so the hot path never touches the `Arc`): the record
//! type and item in progress, where the current field began, the automaton
//! state, counters, and the variables. It never holds stream bytes; actions
//! read fields in place: in the packet being parsed as slices of it, the
//! usual case, else through [`Emitter::view`].
//!
//! What must change together: the semantics written in [`crate::ir`]; the code
//! generator must produce the same records for every input and segmentation.

use crate::ir::{self, BinOp, Bytes, Ending, Expr, ItemDef, Stmt, Stop, Test, Var};
use aa_runtime::field::FLAG_ESCAPED;
use aa_runtime::parser::RecordSchema;
use aa_runtime::{
    Chunk, Emitter, ErrorKind, Field, Limits, Packet, ParseError, Parser, Schema, Step,
};
use std::sync::Arc;

/// A delimiter automaton: `trans[state * 256 + byte]`; `out[state]` is the
/// delimiter (index, length) completed on entering `state`, the longest one.
#[derive(Debug)]
pub(crate) struct Dfa {
    pub(crate) trans: Vec<u16>,
    pub(crate) out: Vec<Option<(u16, u16)>>,
    /// Depth (bytes matched) of each state, for length checks.
    pub(crate) depth: Vec<u16>,
    /// Bytes that leave the start state.
    first: [bool; 256],
    /// The distinct first bytes of the delimiters, in order (memchr when at
    /// most three).
    pub(crate) firsts: Vec<u8>,
}

impl Dfa {
    pub(crate) fn new(delims: &[Vec<u8>]) -> Dfa {
        // Trie.
        let mut goto: Vec<[u16; 256]> = vec![[u16::MAX; 256]];
        let mut depth = vec![0u16];
        let mut out: Vec<Option<(u16, u16)>> = vec![None];
        for (k, d) in delims.iter().enumerate() {
            let mut s = 0usize;
            for &b in d {
                if goto[s][b as usize] == u16::MAX {
                    goto.push([u16::MAX; 256]);
                    depth.push(depth[s] + 1);
                    out.push(None);
                    goto[s][b as usize] = (goto.len() - 1) as u16;
                }
                s = goto[s][b as usize] as usize;
            }
            if out[s].is_none() {
                out[s] = Some((k as u16, d.len() as u16));
            }
        }
        // Failure links in breadth-first order, then the full transition table.
        let n = goto.len();
        let mut fail = vec![0usize; n];
        let mut trans = vec![0u16; n * 256];
        let mut queue = std::collections::VecDeque::new();
        for b in 0..256 {
            let t = goto[0][b];
            if t != u16::MAX {
                trans[b] = t;
                fail[t as usize] = 0;
                queue.push_back(t as usize);
            }
        }
        while let Some(s) = queue.pop_front() {
            if out[s].is_none() {
                out[s] = out[fail[s]];
            }
            for b in 0..256 {
                let t = goto[s][b];
                if t != u16::MAX {
                    fail[t as usize] = trans[fail[s] * 256 + b] as usize;
                    trans[s * 256 + b] = t;
                    queue.push_back(t as usize);
                } else {
                    trans[s * 256 + b] = trans[fail[s] * 256 + b];
                }
            }
        }
        let mut first = [false; 256];
        let mut firsts = Vec::new();
        for d in delims {
            if !first[d[0] as usize] {
                first[d[0] as usize] = true;
                firsts.push(d[0]);
            }
        }
        Dfa {
            trans,
            out,
            depth,
            first,
            firsts,
        }
    }

    /// Index of the first byte in `d` that leaves the start state.
    #[inline]
    fn skip_to_candidate(&self, d: &[u8]) -> Option<usize> {
        match self.firsts.as_slice() {
            [a] => memchr::memchr(*a, d),
            [a, b] => memchr::memchr2(*a, *b, d),
            [a, b, c] => memchr::memchr3(*a, *b, *c, d),
            _ => d.iter().position(|&x| self.first[x as usize]),
        }
    }
}

/// Precomputed per field.
#[derive(Debug)]
struct FieldPlan {
    dfa: Option<Dfa>,
    /// `stop after` as a bitmask over delimiter indices (the checker allows at
    /// most 64 delimiters, so each has its own bit).
    stop_mask: u64,
    /// `stop after` lists `eof`.
    stop_eof: bool,
}

/// A protocol ready to parse streams; cheap to share between streams.
#[derive(Debug)]
pub struct Grammar {
    p: ir::Protocol,
    schema: &'static Schema,
    plans: Vec<Vec<FieldPlan>>,
    skips: Vec<[bool; 256]>,
    /// Messages of `fail`, leaked once per grammar.
    fail_msgs: Vec<&'static str>,
    /// Per record, per item: what the error of an `expect` item says was
    /// expected (leaked once per grammar); `""` for other items.
    expect_msgs: Vec<Vec<&'static str>>,
    /// Every sync pattern, in declaration order; empty without one.
    sync: Vec<SyncPat>,
    limits: Limits,
    max_fields: usize,
    max_vars: usize,
}

/// One sync pattern: its bytes, whether its record starts after it, the
/// record, and the bit of `sync_partial` that means "its first byte matched"
/// (bit `bit - 1 + k` means its first `k` bytes matched).
#[derive(Debug)]
struct SyncPat {
    pat: Vec<u8>,
    after: bool,
    rec: usize,
    bit: usize,
}

impl Grammar {
    /// The pattern and prefix length of a bit of `sync_partial`.
    fn sync_bit(&self, bit: usize) -> (usize, usize) {
        let p = self.sync.partition_point(|s| s.bit <= bit) - 1;
        (p, bit + 1 - self.sync[p].bit)
    }
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

impl Grammar {
    /// Prepares `p`. The names of its records and fields are leaked (once per
    /// grammar loaded) so records can name them for the life of the program.
    pub fn new(p: ir::Protocol) -> Arc<Grammar> {
        let records: Vec<RecordSchema> = p
            .records
            .iter()
            .map(|r| RecordSchema {
                name: leak(&r.name),
                fields: Box::leak(
                    r.fields
                        .iter()
                        .map(|f| leak(&f.name))
                        .collect::<Vec<_>>()
                        .into_boxed_slice(),
                ),
                values: Box::leak(
                    r.vars
                        .iter()
                        .map(|v| leak(&v.name))
                        .collect::<Vec<_>>()
                        .into_boxed_slice(),
                ),
            })
            .collect();
        let schema: &'static Schema = Box::leak(Box::new(Schema {
            protocol: leak(&p.name),
            records: Box::leak(records.into_boxed_slice()),
        }));
        let plans = p
            .records
            .iter()
            .map(|r| {
                r.fields
                    .iter()
                    .map(|f| {
                        let (stop_mask, stop_eof) = match &f.repeat {
                            Some(ir::Repeat {
                                stop: Stop::After { delims, eof },
                                ..
                            }) => (delims.iter().fold(0u64, |m, &k| m | 1 << k.min(63)), *eof),
                            _ => (0, false),
                        };
                        FieldPlan {
                            dfa: match &f.ending {
                                Ending::Until { delims, .. } => Some(Dfa::new(delims)),
                                _ => None,
                            },
                            stop_mask,
                            stop_eof,
                        }
                    })
                    .collect()
            })
            .collect();
        let skips = p
            .records
            .iter()
            .map(|r| {
                let mut t = [false; 256];
                r.skip.iter().for_each(|&b| t[b as usize] = true);
                t
            })
            .collect();
        let mut fail_msgs = Vec::new();
        let mut collect = |s: &[Stmt]| {
            crate::ir::each_stmt(s, &mut |st| {
                if let Stmt::Fail(m) = st {
                    fail_msgs.push(leak(m));
                }
            })
        };
        for r in &p.records {
            r.fields.iter().for_each(|f| collect(&f.actions));
            collect(&r.then);
            collect(&r.begin);
        }
        let expect_msgs = p
            .records
            .iter()
            .map(|r| {
                r.items
                    .iter()
                    .map(|it| match it {
                        ItemDef::Expect(lit) => leak(&ir::expect_message(lit)),
                        _ => "",
                    })
                    .collect()
            })
            .collect();
        let mut sync: Vec<SyncPat> = Vec::new();
        for (rec, r) in p.records.iter().enumerate() {
            for pat in r.sync.iter().flat_map(|(pats, _)| pats) {
                let bit = sync.last().map_or(0, |s| s.bit + s.pat.len());
                sync.push(SyncPat {
                    pat: pat.clone(),
                    after: r.sync.as_ref().is_some_and(|s| s.1),
                    rec,
                    bit,
                });
            }
        }
        let fields_per_record = p
            .records
            .iter()
            .map(|r| {
                r.fields
                    .iter()
                    .map(|f| f.repeat.as_ref().map_or(1, |rp| rp.max_count))
                    // Counts may be up to u32::MAX each.
                    .fold(0u32, u32::saturating_add)
            })
            .max()
            .unwrap_or(0);
        let max_vars = p.records.iter().map(|r| r.vars.len()).max().unwrap_or(0);
        let max_fields = p.records.iter().map(|r| r.fields.len()).max().unwrap_or(0);
        Arc::new(Grammar {
            schema,
            plans,
            skips,
            fail_msgs,
            expect_msgs,
            sync,
            limits: Limits {
                fields_per_record: fields_per_record.max(1),
                values_per_record: max_vars as u32,
            },
            max_fields,
            max_vars,
            p,
        })
    }

    /// The protocol.
    pub fn protocol(&self) -> &ir::Protocol {
        &self.p
    }

    /// The runtime schema (record and field names).
    pub fn schema(&self) -> &'static Schema {
        self.schema
    }

    /// A parser for one stream direction.
    pub fn parser(self: &Arc<Self>) -> Interp {
        Interp {
            st: State::new(self),
            g: Arc::clone(self),
        }
    }

    fn fail_msg(&self, m: &str) -> &'static str {
        self.fail_msgs
            .iter()
            .copied()
            .find(|x| *x == m)
            .unwrap_or("rejected by the grammar")
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between records: skipping the next record's `skip` bytes.
    Between,
    /// Inside an item of the record.
    Item,
    /// After a gap: looking for the sync pattern.
    Sync,
}

/// Quote state of a quoted `until` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    /// Not quoted (or not known yet at the element's first byte).
    None,
    /// Inside quotes.
    In,
    /// Just saw a quote inside quotes: closing, or the first of `QQ`.
    Pending,
    /// After the closing quote (at this offset).
    After(u64),
}

/// The interpreter's parser of one stream direction: the grammar and the
/// per-stream state. The grammar is held once here and lent to the state's
/// methods, so the hot path never touches the `Arc`'s count.
#[derive(Debug)]
pub struct Interp {
    g: Arc<Grammar>,
    st: State,
}

/// The per-stream state.
#[derive(Debug)]
struct State {
    phase: Phase,
    rec: usize,
    item: usize,
    rec_start: u64,
    /// Where parsing last got to (the end of the last packet, or of a gap), for
    /// `retain_from` while resynchronising.
    pos: u64,
    // The item in progress.
    started: bool,
    fstart: u64,
    flags: u8,
    dstate: u16,
    quote: Quote,
    /// Bytes left (`bytes`, `chunk`), or bytes matched (`expect`, integers).
    left: u64,
    acc: u64,
    count: u32,
    times: u64,
    end_after_item: bool,
    /// A `stop when` test held after the element's actions.
    stop_now: bool,
    next_rec: Option<usize>,
    /// `next R or eof` was chosen.
    next_eof_ok: bool,
    /// The stream may end cleanly before the record about to begin.
    eof_ok: bool,
    /// Parsing a sync pattern's bytes carried from an earlier packet.
    replaying: bool,
    /// A `wait` in `begin` found no signal: the parse pauses.
    waiting: bool,
    // Values.
    globals: Vec<u64>,
    locals: Vec<u64>,
    /// What expressions read of each field of the record in progress.
    seen: Vec<Seen>,
    // Sync search: bit k set = the last k bytes seen match the pattern's first k.
    sync_partial: u64,
}

/// What expressions read of a field of the record in progress: its span (the
/// last element, for a repeat) and, for an integer field, its value. Empty at
/// the record's start, and 0, until the field is parsed. (Kept together so that
/// resetting them when a record begins is a few stores, not a `memset` call.)
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    start: u64,
    end: u64,
    int: u64,
}

type R<T> = Result<T, ParseError>;

/// The error of actions, boxed: they return through several levels of
/// recursion, where a `ParseError` by value would be copied out at each.
type Boxed = Box<ParseError>;

impl State {
    fn new(g: &Grammar) -> State {
        State {
            phase: Phase::Between,
            rec: g.p.start,
            item: 0,
            rec_start: 0,
            pos: 0,
            started: false,
            fstart: 0,
            flags: 0,
            dstate: 0,
            quote: Quote::None,
            left: 0,
            acc: 0,
            count: 0,
            times: 0,
            end_after_item: false,
            stop_now: false,
            next_rec: None,
            next_eof_ok: false,
            eof_ok: true,
            replaying: false,
            waiting: false,
            globals: g.p.globals.iter().map(|v| v.init).collect(),
            locals: vec![0; g.max_vars],
            seen: vec![Seen::default(); g.max_fields],
            sync_partial: 0,
        }
    }

    fn err(&self, g: &Grammar, offset: u64, field: Option<usize>, kind: ErrorKind) -> ParseError {
        let r = &g.schema.records[self.rec];
        ParseError {
            offset,
            record: r.name,
            field: field.and_then(|f| r.fields.get(f).copied()),
            kind,
        }
    }

    fn current_field(&self, g: &Grammar) -> Option<usize> {
        match g.p.records[self.rec].items.get(self.item) {
            Some(ItemDef::Field(f)) => Some(*f),
            _ => None,
        }
    }

    fn begin_record(&mut self, at: u64) {
        self.phase = Phase::Item;
        self.rec_start = at;
        self.item = 0;
        self.started = false;
        self.end_after_item = false;
        self.next_rec = None;
        self.next_eof_ok = false;
        // (Not `fill`: a `memset` call, even for no variables, costs more than
        // the rest of this function.)
        self.locals.iter_mut().for_each(|v| *v = 0);
        // Fields not parsed in this record read as empty, at its start, and 0.
        self.seen.fill(Seen {
            start: at,
            end: at,
            int: 0,
        });
    }

    /// Parses `d` (at stream offset `base`) from index `i`.
    fn run<P: Packet>(
        &mut self,
        g: &Grammar,
        d: &[u8],
        base: u64,
        out: &mut Emitter<'_, P>,
    ) -> R<Step> {
        let mut i = 0usize;
        while i < d.len() {
            match self.phase {
                Phase::Between => {
                    let skip = &g.skips[self.rec];
                    while i < d.len() && skip[d[i] as usize] {
                        i += 1;
                    }
                    if i == d.len() {
                        break;
                    }
                    if out.is_full() && !self.replaying {
                        return Ok(Step::Full { consumed: i });
                    }
                    let at = base + i as u64;
                    self.begin_record(at);
                    let begin = &g.p.records[self.rec].begin;
                    if !begin.is_empty() {
                        self.exec(g, begin, None, at, Here { d, base }, out)
                            .map_err(|e| *e)?;
                        if self.waiting {
                            // `wait`: before the record again, until a
                            // signal comes.
                            self.waiting = false;
                            self.phase = Phase::Between;
                            return Ok(Step::Wait { consumed: i });
                        }
                        // `next R` in `begin`: `R` begins here instead.
                        if let Some(r) = self.next_rec.take() {
                            self.rec = r;
                            self.next_eof_ok = false;
                            self.phase = Phase::Between;
                        }
                    }
                }
                Phase::Sync => {
                    if let Some(r) = self.sync_scan(g, d, base, &mut i, out)? {
                        return Ok(r);
                    }
                }
                Phase::Item => {
                    if self.item == g.p.records[self.rec].items.len() {
                        self.end_record(g, base + i as u64, Here { d, base }, out)?;
                        continue;
                    }
                    self.step_item(g, d, base, &mut i, out)?;
                }
            }
        }
        self.pos = base + d.len() as u64;
        // Items that need no more bytes (empty fields, records without items)
        // finish now rather than at the next packet.
        self.settle(g, d, base, out)?;
        self.check_len(g, base + d.len() as u64)?;
        Ok(Step::Done)
    }

    /// Completes items that are done without further input.
    fn settle<P: Packet>(
        &mut self,
        g: &Grammar,
        d: &[u8],
        base: u64,
        out: &mut Emitter<'_, P>,
    ) -> R<()> {
        let end = base + d.len() as u64;
        let mut i = d.len();
        while self.phase == Phase::Item {
            if self.item == g.p.records[self.rec].items.len() {
                self.end_record(g, end, Here { d, base }, out)?;
                continue;
            }
            let before = (self.item, self.count, self.started);
            self.step_item(g, d, base, &mut i, out)?;
            if (self.item, self.count, self.started) == before {
                break;
            }
        }
        Ok(())
    }

    fn check_len(&self, g: &Grammar, end: u64) -> R<()> {
        if self.phase != Phase::Item || !self.started {
            return Ok(());
        }
        let Some(f) = self.current_field(g) else {
            return Ok(());
        };
        let fd = &g.p.records[self.rec].fields[f];
        // Bytes that may still turn out not to be content: a partial delimiter,
        // or a quote that may be the closing one.
        let mut pending = match &g.plans[self.rec][f].dfa {
            Some(dfa) => dfa.depth[self.dstate as usize] as u64,
            None => 0,
        };
        if self.quote == Quote::Pending {
            pending += 1;
        }
        // A quoted field's content starts after its opening quote.
        let start = if self.quote == Quote::None {
            self.fstart
        } else {
            self.fstart + 1
        };
        if end.saturating_sub(start) > fd.max.saturating_add(pending) {
            return Err(self.err(g, start, Some(f), ErrorKind::FieldTooLong { max: fd.max }));
        }
        Ok(())
    }

    /// Advances the current item over `d[*i..]`.
    fn step_item<P: Packet>(
        &mut self,
        g: &Grammar,
        d: &[u8],
        base: u64,
        i: &mut usize,
        out: &mut Emitter<'_, P>,
    ) -> R<()> {
        match &g.p.records[self.rec].items[self.item] {
            ItemDef::Expect(lit) => {
                let n = lit.len();
                if !self.started {
                    self.started = true;
                    self.left = 0;
                    self.fstart = base + *i as u64;
                }
                while (self.left as usize) < n && *i < d.len() {
                    if d[*i] != lit[self.left as usize] {
                        return Err(self.err(
                            g,
                            base + *i as u64,
                            None,
                            ErrorKind::Invalid {
                                expected: g.expect_msgs[self.rec][self.item],
                            },
                        ));
                    }
                    self.left += 1;
                    *i += 1;
                }
                if self.left as usize == n {
                    self.started = false;
                    self.item_done(g);
                }
                Ok(())
            }
            ItemDef::Field(f) => self.step_field(g, *f, d, base, i, out),
        }
    }

    fn item_done(&mut self, g: &Grammar) {
        if self.end_after_item {
            self.item = g.p.records[self.rec].items.len();
        } else {
            self.item += 1;
        }
        self.count = 0;
        self.started = false;
    }

    /// Entering field `f` (before its first element): evaluates `times`.
    /// Returns whether the field has no elements, and is done.
    fn enter_times<P: Packet>(
        &mut self,
        g: &Grammar,
        f: usize,
        here: Here<'_>,
        out: &mut Emitter<'_, P>,
    ) -> R<bool> {
        if let Some(ir::Repeat {
            stop: Stop::Times(e),
            ..
        }) = &g.p.records[self.rec].fields[f].repeat
        {
            self.times = self.eval(g, e, here, out).map_err(|e| *e)?;
            if self.times == 0 {
                self.item_done(g);
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn step_field<P: Packet>(
        &mut self,
        g: &Grammar,
        f: usize,
        d: &[u8],
        base: u64,
        i: &mut usize,
        out: &mut Emitter<'_, P>,
    ) -> R<()> {
        let rec = self.rec;
        let fd = &g.p.records[rec].fields[f];
        let at = base + *i as u64;
        let here = Here { d, base };
        // Entering the field: evaluate counts.
        if !self.started && self.count == 0 && self.enter_times(g, f, here, out)? {
            return Ok(());
        }
        if !self.started {
            self.start_element(at);
            self.left = match &fd.ending {
                Ending::Bytes(e) => {
                    let n = self.eval(g, e, here, out).map_err(|e| *e)?;
                    if n > fd.max {
                        return Err(self.err(
                            g,
                            at,
                            Some(f),
                            ErrorKind::FieldTooLong { max: fd.max },
                        ));
                    }
                    n
                }
                Ending::Chunk(Some(e)) => {
                    let n = self.eval(g, e, here, out).map_err(|e| *e)?;
                    if n == 0 {
                        return Err(self.err(
                            g,
                            at,
                            Some(f),
                            ErrorKind::Invalid {
                                expected: "a chunk limit above 0",
                            },
                        ));
                    }
                    n
                }
                Ending::Chunk(None) => u64::MAX,
                Ending::Int { bytes, .. } => *bytes as u64,
                Ending::Until { .. } => 0,
            };
        }
        match &fd.ending {
            Ending::Bytes(_) => {
                let take = (self.left.min((d.len() - *i) as u64)) as usize;
                *i += take;
                self.left -= take as u64;
                if self.left == 0 {
                    let end = base + *i as u64;
                    self.element_done(g, f, self.fstart..end, false, here, out)?;
                }
            }
            Ending::Chunk(_) => {
                if *i == d.len() {
                    return Ok(()); // wait for a packet with bytes
                }
                let take = (self.left.min((d.len() - *i) as u64)) as usize;
                *i += take;
                let end = base + *i as u64;
                self.element_done(g, f, self.fstart..end, false, here, out)?;
            }
            Ending::Int { bytes, big } => {
                while self.left > 0 && *i < d.len() {
                    let b = d[*i] as u64;
                    let k = *bytes as u64 - self.left;
                    self.acc = if *big {
                        self.acc << 8 | b
                    } else {
                        self.acc | b << (8 * k)
                    };
                    self.left -= 1;
                    *i += 1;
                }
                if self.left == 0 {
                    self.seen[f].int = self.acc;
                    let end = base + *i as u64;
                    self.element_done(g, f, self.fstart..end, false, here, out)?;
                }
            }
            Ending::Until { quote, .. } => {
                let dfa = g.plans[rec][f].dfa.as_ref().expect("until plan");
                self.scan_until(g, f, dfa, *quote, d, base, i, out)?;
            }
        }
        Ok(())
    }

    /// Scans a delimited field; on its end, finishes the element.
    #[allow(clippy::too_many_arguments)]
    fn scan_until<P: Packet>(
        &mut self,
        g: &Grammar,
        f: usize,
        dfa: &Dfa,
        quote: Option<u8>,
        d: &[u8],
        base: u64,
        i: &mut usize,
        out: &mut Emitter<'_, P>,
    ) -> R<()> {
        while *i < d.len() {
            let at = base + *i as u64;
            if let Some(q) = quote {
                if at == self.fstart && self.quote == Quote::None && d[*i] == q {
                    self.quote = Quote::In;
                    *i += 1;
                    continue;
                }
                match self.quote {
                    Quote::In => {
                        match memchr::memchr(q, &d[*i..]) {
                            Some(j) => {
                                *i += j + 1;
                                self.quote = Quote::Pending;
                            }
                            None => *i = d.len(),
                        }
                        continue;
                    }
                    Quote::Pending => {
                        if d[*i] == q {
                            self.flags |= FLAG_ESCAPED;
                            self.quote = Quote::In;
                            *i += 1;
                            continue;
                        }
                        self.quote = Quote::After(at - 1);
                    }
                    _ => {}
                }
            }
            if self.dstate == 0 {
                match dfa.skip_to_candidate(&d[*i..]) {
                    Some(j) => *i += j,
                    None => {
                        *i = d.len();
                        break;
                    }
                }
            }
            let b = d[*i];
            self.dstate = dfa.trans[self.dstate as usize * 256 + b as usize];
            *i += 1;
            if let Some((k, len)) = dfa.out[self.dstate as usize] {
                self.dstate = 0;
                let dstart = base + *i as u64 - len as u64;
                let (rec, item) = (self.rec, self.item);
                self.until_done(g, f, dstart, Some(k as usize), Here { d, base }, out)?;
                // The next element of the same repeat: on with it here, not
                // back through `run` and `step_field` (which would do just
                // this: the field's `times` counts only at its first element,
                // and `left` is 0 for a delimited one).
                if self.phase != Phase::Item
                    || (self.rec, self.item) != (rec, item)
                    || self.started
                    || *i == d.len()
                {
                    return Ok(());
                }
                self.start_element(base + *i as u64);
                self.left = 0;
            }
        }
        Ok(())
    }

    /// An element begins at stream offset `at`.
    #[inline(always)]
    fn start_element(&mut self, at: u64) {
        self.started = true;
        self.fstart = at;
        self.flags = 0;
        self.dstate = 0;
        self.quote = Quote::None;
        self.acc = 0;
    }

    /// A delimited element ends before `dstart` (the delimiter `k`, or the end
    /// of the stream if `None`).
    fn until_done<P: Packet>(
        &mut self,
        g: &Grammar,
        f: usize,
        dstart: u64,
        k: Option<usize>,
        here: Here<'_>,
        out: &mut Emitter<'_, P>,
    ) -> R<()> {
        let (start, mut end) = (self.fstart, dstart);
        match self.quote {
            Quote::None => {}
            Quote::In => self.flags |= FLAG_ESCAPED, // unterminated at the end
            Quote::Pending => end = dstart - 1,
            Quote::After(q) => {
                if q + 1 == dstart {
                    end = q;
                } else {
                    self.flags |= FLAG_ESCAPED;
                }
            }
        }
        let start = if self.quote == Quote::None {
            start
        } else {
            start + 1
        };
        let plan = &g.plans[self.rec][f];
        let stop = match k {
            Some(k) => plan.stop_mask & (1 << k.min(63)) != 0,
            None => plan.stop_eof,
        };
        self.element_done(g, f, start..end.max(start), stop, here, out)
    }

    /// One element (or the whole field), `span`, is parsed: emit it, run the actions,
    /// and decide whether the field goes on. `stop_after`: the element ended
    /// at a delimiter (or the end of the stream) that a `stop after` names.
    fn element_done<P: Packet>(
        &mut self,
        g: &Grammar,
        f: usize,
        span: std::ops::Range<u64>,
        stop_after: bool,
        here: Here<'_>,
        out: &mut Emitter<'_, P>,
    ) -> R<()> {
        let (start, end) = (span.start, span.end);
        let fd = &g.p.records[self.rec].fields[f];
        if end - start > fd.max {
            return Err(self.err(g, start, Some(f), ErrorKind::FieldTooLong { max: fd.max }));
        }
        self.started = false;
        if let Some(ir::Repeat {
            stop: Stop::OnEmpty,
            ..
        }) = fd.repeat
        {
            if start == end {
                self.item_done(g);
                return Ok(());
            }
        }
        if !out.field(f as u16, start, end, self.flags) {
            return Err(self.err(
                g,
                start,
                Some(f),
                ErrorKind::TooManyFields {
                    max: g.limits.fields_per_record,
                },
            ));
        }
        self.seen[f].start = start;
        self.seen[f].end = end;
        self.stop_now = false;
        if !fd.actions.is_empty() {
            self.exec(g, &fd.actions, Some(f), start, here, out)
                .map_err(|e| *e)?;
        }
        match &fd.repeat {
            None => self.item_done(g),
            Some(rp) => {
                self.count += 1;
                let done = match rp.stop {
                    Stop::OnEmpty => false,
                    Stop::After { .. } => stop_after,
                    Stop::Times(_) => self.count as u64 >= self.times,
                    Stop::When => std::mem::take(&mut self.stop_now),
                };
                if done || self.end_after_item {
                    self.item_done(g);
                } else if self.count >= rp.max_count {
                    return Err(self.err(
                        g,
                        start,
                        Some(f),
                        ErrorKind::TooManyFields { max: rp.max_count },
                    ));
                }
            }
        }
        Ok(())
    }

    fn end_record<P: Packet>(
        &mut self,
        g: &Grammar,
        at: u64,
        here: Here<'_>,
        out: &mut Emitter<'_, P>,
    ) -> R<()> {
        let r = &g.p.records[self.rec];
        self.exec(g, &r.then, None, at, here, out).map_err(|e| *e)?;
        for (tag, v) in self.locals.iter().take(r.vars.len()).enumerate() {
            if !out.value(tag as u16, *v) {
                return Err(self.err(g, at, None, ErrorKind::TooManyFields { max: 0 }));
            }
        }
        out.commit(self.rec as u16, self.rec_start, at);
        self.rec = self.next_rec.take().unwrap_or(g.p.start);
        self.eof_ok = self.rec == g.p.start || self.next_eof_ok;
        self.phase = Phase::Between;
        Ok(())
    }

    #[inline]
    fn set(&mut self, v: Var, x: u64) {
        match v {
            Var::Global(i) => self.globals[i] = x,
            Var::Local(i) => self.locals[i] = x,
        }
    }

    /// Runs statements: the actions of field `f` (a `fail` reports `at`, the
    /// element's start) or, with `f` `None`, a `then` block (`at`: the
    /// record's end).
    fn exec<P: Packet>(
        &mut self,
        g: &Grammar,
        stmts: &[Stmt],
        f: Option<usize>,
        at: u64,
        here: Here<'_>,
        out: &mut Emitter<'_, P>,
    ) -> Result<(), Boxed> {
        let mut stmts = stmts;
        'block: loop {
            for (k, s) in stmts.iter().enumerate() {
                match s {
                    Stmt::Set(v, e) => {
                        let x = self.operand(g, e, here, out)?;
                        self.set(*v, x);
                    }
                    Stmt::If(c, a, b) => {
                        let branch = if self.operand(g, c, here, out)? != 0 {
                            a
                        } else {
                            b
                        };
                        if k + 1 == stmts.len() {
                            // The last statement (as each `else if` of a
                            // chain is): its branch goes on here rather than
                            // in a call of its own.
                            stmts = branch;
                            continue 'block;
                        }
                        // An `if` without `else` that is false (the usual
                        // header line) calls nothing.
                        if !branch.is_empty() {
                            self.exec(g, branch, f, at, here, out)?;
                            if self.waiting {
                                return Ok(());
                            }
                        }
                    }
                    Stmt::Next(r, eof) => {
                        self.next_rec = Some(*r);
                        self.next_eof_ok = *eof;
                    }
                    Stmt::End => self.end_after_item = true,
                    Stmt::StopRepeat => self.stop_now = true,
                    Stmt::Signal(e) => {
                        let v = self.operand(g, e, here, out)?;
                        if !out.signal(v) {
                            return Err(Box::new(self.err(
                                g,
                                at,
                                f,
                                ErrorKind::Rejected {
                                    message: crate::ir::SIGNAL_RANGE,
                                },
                            )));
                        }
                    }
                    Stmt::Hear(v) => self.set(*v, out.heard()),
                    Stmt::Wait => {
                        // (Not while replaying a sync pattern's first
                        // bytes: nothing would parse the rest after.)
                        if out.may_wait() && !self.replaying {
                            self.waiting = true;
                            return Ok(());
                        }
                    }
                    Stmt::Fail(m) => {
                        let message = g.fail_msg(m);
                        return Err(Box::new(self.err(
                            g,
                            at,
                            f,
                            ErrorKind::Rejected { message },
                        )));
                    }
                }
            }
            return Ok(());
        }
    }

    /// The bytes `b` names: in place in the packet being parsed when they lie
    /// in it (the usual case), else through a field view.
    fn bytes<'o, P: Packet>(
        &self,
        b: &Bytes,
        here: Here<'o>,
        out: &'o Emitter<'_, P>,
    ) -> Val<'o, P> {
        match b {
            Bytes::Field(i) => {
                let x = self.seen[*i];
                match here.span(x.start, x.end) {
                    Some(v) => Val::Here(v, x.start),
                    None => Val::View(out.view(x.start, x.end)),
                }
            }
            Bytes::Before(x, lit) => {
                let v = self.bytes(x, here, out);
                match v.find(lit) {
                    Some(at) => v.slice(0, at),
                    None => v,
                }
            }
            Bytes::After(x, lit) => {
                let v = self.bytes(x, here, out);
                let n = v.len();
                match v.find(lit) {
                    Some(at) => v.slice(at + lit.len() as u64, n),
                    None => v.slice(n, n),
                }
            }
            Bytes::Trim(x) => self.bytes(x, here, out).trim_ascii(),
        }
    }

    fn field_of(b: &Bytes) -> usize {
        match b {
            Bytes::Field(i) => *i,
            Bytes::Before(x, _) | Bytes::After(x, _) | Bytes::Trim(x) => Self::field_of(x),
        }
    }

    fn eval<P: Packet>(
        &self,
        g: &Grammar,
        e: &Expr,
        here: Here<'_>,
        out: &Emitter<'_, P>,
    ) -> Result<u64, Boxed> {
        Ok(match e {
            Expr::Const(n) => *n,
            Expr::Var(Var::Global(i)) => self.globals[*i],
            Expr::Var(Var::Local(i)) => self.locals[*i],
            Expr::FieldInt(i) => self.seen[*i].int,
            Expr::Len(b) => self.bytes(b, here, out).len(),
            Expr::Empty(b) => (self.bytes(b, here, out).len() == 0) as u64,
            Expr::Dec(b) | Expr::Hex(b) => {
                let v = self.bytes(b, here, out);
                let r = v.parse(if matches!(e, Expr::Dec(_)) { 10 } else { 16 });
                let f = Self::field_of(b);
                r.map_err(|err| {
                    let expected = match (err, matches!(e, Expr::Dec(_))) {
                        (aa_runtime::IntError::Overflow, _) => "a number that fits in 64 bits",
                        (_, true) => "a decimal number",
                        (_, false) => "a hexadecimal number",
                    };
                    Box::new(self.err(g, v.offset(), Some(f), ErrorKind::Invalid { expected }))
                })?
            }
            Expr::Be(b) | Expr::Le(b) => {
                let v = self.bytes(b, here, out);
                v.parse_endian(matches!(e, Expr::Be(_))).map_err(|_| {
                    let f = Self::field_of(b);
                    let expected = "a number that fits in 64 bits";
                    Box::new(self.err(g, v.offset(), Some(f), ErrorKind::Invalid { expected }))
                })?
            }
            Expr::Key {
                name,
                line,
                sep,
                key,
                words,
            } => match self.bytes(line, here, out) {
                // In the packet: the name compared where it starts, the
                // separator looked for only after a match.
                Val::Here(v, _) => ieq_key(v, *sep, key, words) as u64,
                Val::View(_) => self.bytes(name, here, out).test(Test::IEq, key) as u64,
            },
            Expr::Test(t, b, lit) => self.bytes(b, here, out).test(*t, lit) as u64,
            Expr::Not(x) => (self.operand(g, x, here, out)? == 0) as u64,
            Expr::Min(a, b) => self
                .operand(g, a, here, out)?
                .min(self.operand(g, b, here, out)?),
            Expr::Bin(op, a, b) => self.bin(g, *op, a, b, here, out)?,
        })
    }

    /// `a op b`, the logical operators short-circuited. Apart from
    /// [`State::eval`] (whose frame, for the errors of `dec` and the like,
    /// costs at every call): comparisons of variables and constants, as
    /// most conditions are, cost a call to this alone.
    #[inline(never)]
    fn bin<P: Packet>(
        &self,
        g: &Grammar,
        op: BinOp,
        a: &Expr,
        b: &Expr,
        here: Here<'_>,
        out: &Emitter<'_, P>,
    ) -> Result<u64, Boxed> {
        let x = self.operand(g, a, here, out)?;
        match op {
            BinOp::And if x == 0 => return Ok(0),
            BinOp::Or if x != 0 => return Ok(1),
            _ => {}
        }
        let y = self.operand(g, b, here, out)?;
        Ok(apply(op, x, y))
    }

    /// A constant's or a variable's value, without a call; `None` for
    /// anything else.
    #[inline(always)]
    fn leaf(&self, e: &Expr) -> Option<u64> {
        match e {
            Expr::Const(n) => Some(*n),
            Expr::Var(Var::Global(i)) => Some(self.globals[*i]),
            Expr::Var(Var::Local(i)) => Some(self.locals[*i]),
            _ => None,
        }
    }

    /// [`State::eval`] of an operand: constants, variables and a header
    /// name's test of a field in the packet, the usual ones, without a call;
    /// `a op b` through [`State::bin`].
    #[inline(always)]
    fn operand<P: Packet>(
        &self,
        g: &Grammar,
        e: &Expr,
        here: Here<'_>,
        out: &Emitter<'_, P>,
    ) -> Result<u64, Boxed> {
        match e {
            Expr::Const(n) => Ok(*n),
            Expr::Var(Var::Global(i)) => Ok(self.globals[*i]),
            Expr::Var(Var::Local(i)) => Ok(self.locals[*i]),
            // `flag && ...` with the flag false, as a test made on every
            // header line only for some responses: no call.
            Expr::Bin(BinOp::And, a, b) => match **a {
                Expr::Var(Var::Global(i)) if self.globals[i] == 0 => Ok(0),
                Expr::Var(Var::Local(i)) if self.locals[i] == 0 => Ok(0),
                _ => self.bin(g, BinOp::And, a, b, here, out),
            },
            // Comparisons of variables and constants, as most conditions
            // are: no call.
            Expr::Bin(op, a, b) => match (self.leaf(a), self.leaf(b)) {
                (Some(x), Some(y)) => Ok(apply(*op, x, y)),
                _ => self.bin(g, *op, a, b, here, out),
            },
            // A header name's test of a field in the packet being parsed.
            Expr::Key {
                line: Bytes::Field(f),
                sep,
                key,
                words,
                ..
            } => {
                let x = self.seen[*f];
                match here.span(x.start, x.end) {
                    Some(v) => Ok(ieq_key(v, *sep, key, words) as u64),
                    None => self.eval(g, e, here, out),
                }
            }
            _ => self.eval(g, e, here, out),
        }
    }

    /// Looks for the sync patterns; at the earliest match, starts its record
    /// (replaying the pattern's bytes from an earlier packet, when it
    /// straddles one).
    fn sync_scan<P: Packet>(
        &mut self,
        g: &Grammar,
        d: &[u8],
        base: u64,
        i: &mut usize,
        out: &mut Emitter<'_, P>,
    ) -> R<Option<Step>> {
        // Partial matches carried from the previous packet: the one that
        // completes with the longest carried prefix starts earliest.
        let mut ks = self.sync_partial;
        self.sync_partial = 0;
        let mut best: Option<(usize, usize)> = None;
        while ks != 0 {
            let bit = ks.trailing_zeros() as usize;
            ks &= ks - 1;
            let (p, k) = g.sync_bit(bit);
            let pat = &g.sync[p].pat;
            let need = pat.len() - k;
            let have = d.len() - *i;
            let m = need.min(have);
            if d[*i..*i + m] == pat[k..k + m] {
                if have >= need {
                    if best.is_none_or(|(_, bk)| k > bk) {
                        best = Some((p, k));
                    }
                } else {
                    // Still partial at the end of this packet.
                    self.sync_partial |= 1u64 << (g.sync[p].bit + k + have - 1);
                }
            }
        }
        if let Some((p, k)) = best {
            let start = base + *i as u64 - k as u64;
            return self.synced(g, p, start, k, base, i, out);
        }
        let hay = &d[*i..];
        let mut found: Option<(usize, usize)> = None;
        for (p, s) in g.sync.iter().enumerate() {
            let end = found.map_or(hay.len(), |(j, _)| (j + s.pat.len()).min(hay.len()));
            if let Some(j) = memchr::memmem::find(&hay[..end], &s.pat) {
                if found.is_none_or(|(fj, _)| j < fj) {
                    found = Some((j, p));
                }
            }
        }
        if let Some((j, p)) = found {
            let start = base + (*i + j) as u64;
            *i += j;
            return self.synced(g, p, start, 0, base, i, out);
        }
        // Remember every suffix that is a prefix of a pattern (besides the
        // carried matches still going on).
        for s in &g.sync {
            for k in 1..s.pat.len().min(hay.len() + 1) {
                if hay[hay.len() - k..] == s.pat[..k] {
                    self.sync_partial |= 1u64 << (s.bit + k - 1);
                }
            }
        }
        *i = d.len();
        Ok(None)
    }

    /// Sync pattern `p` matched at `start`, its first `carried` bytes in the
    /// previous packet.
    #[allow(clippy::too_many_arguments)]
    fn synced<P: Packet>(
        &mut self,
        g: &Grammar,
        p: usize,
        start: u64,
        carried: usize,
        base: u64,
        i: &mut usize,
        out: &mut Emitter<'_, P>,
    ) -> R<Option<Step>> {
        let s = &g.sync[p];
        self.sync_partial = 0;
        self.rec = s.rec;
        self.eof_ok = s.rec == g.p.start;
        if s.after {
            *i = (start + s.pat.len() as u64 - base) as usize;
            self.phase = Phase::Between;
            return Ok(None);
        }
        if g.p.records[s.rec].begin.is_empty() {
            self.begin_record(start);
        } else {
            // The record's `begin` runs in the loop, from before its first
            // byte, at the pattern.
            self.phase = Phase::Between;
        }
        if carried > 0 {
            // The pattern's first bytes came in the previous packet; parse them
            // from the pattern itself (the bytes are equal), at their offsets,
            // as any other bytes (records may end and begin inside them).
            self.replaying = true;
            let r = self.run(g, &s.pat[..carried], start, out);
            self.replaying = false;
            r?;
        }
        Ok(None)
    }

    fn gap(&mut self, g: &Grammar, offset: u64, len: u64) -> R<()> {
        if g.sync.is_empty() {
            let field = if self.phase == Phase::Item {
                self.current_field(g)
            } else {
                None
            };
            return Err(self.err(g, offset, field, ErrorKind::Gap { len }));
        }
        self.resync(offset + len);
        Ok(())
    }

    /// Looks for the sync patterns from stream offset `at` on.
    fn resync(&mut self, at: u64) {
        self.phase = Phase::Sync;
        self.sync_partial = 0;
        self.started = false;
        self.count = 0;
        self.pos = at;
    }

    fn finish<P: Packet>(&mut self, g: &Grammar, offset: u64, out: &mut Emitter<'_, P>) -> R<()> {
        match self.phase {
            Phase::Sync => return Ok(()),
            Phase::Between if self.eof_ok => return Ok(()),
            Phase::Between => {
                // A record that must follow never began.
                let field = match g.p.records[self.rec].items.first() {
                    Some(ItemDef::Field(f)) => Some(*f),
                    _ => None,
                };
                return Err(self.err(g, offset, field, ErrorKind::Truncated));
            }
            Phase::Item => {}
        }
        // Fields of no elements (`times` 0) and delimited fields that may end
        // at `eof` end here; anything else left in the record truncates it.
        loop {
            let r = &g.p.records[self.rec];
            if self.item == r.items.len() {
                return self.end_record(g, offset, Here::NONE, out);
            }
            let Some(ItemDef::Field(f)) = r.items.get(self.item) else {
                break;
            };
            let f = *f;
            // Entering a field here evaluates `times` as anywhere else.
            if !self.started && self.count == 0 && self.enter_times(g, f, Here::NONE, out)? {
                continue;
            }
            match &r.fields[f].ending {
                Ending::Until { eof: true, .. } => {
                    if !self.started {
                        self.started = true;
                        self.fstart = offset;
                        self.flags = 0;
                        self.quote = Quote::None;
                    }
                    let before = self.item;
                    self.until_done(g, f, offset, None, Here::NONE, out)?;
                    if self.item == before {
                        // A repeat that did not stop at eof.
                        break;
                    }
                }
                _ => break,
            }
        }
        if self.rec_start == offset && !self.started && self.item == 0 {
            return Ok(());
        }
        let field = self.current_field(g);
        Err(self.err(g, offset, field, ErrorKind::Truncated))
    }

    fn retain_from(&self, g: &Grammar) -> u64 {
        match self.phase {
            Phase::Item => self.rec_start,
            Phase::Between => u64::MAX,
            Phase::Sync => {
                // The longest prefix carried decides what must stay.
                let mut ks = self.sync_partial;
                let mut longest = 0;
                while ks != 0 {
                    let bit = ks.trailing_zeros() as usize;
                    ks &= ks - 1;
                    longest = longest.max(g.sync_bit(bit).1);
                }
                if longest == 0 {
                    u64::MAX
                } else {
                    self.pos.saturating_sub(longest as u64)
                }
            }
        }
    }
}

/// The packet being parsed, `d`, at stream offset `base` (none at the end of
/// the stream): where actions read the fields that lie in it.
#[derive(Clone, Copy)]
struct Here<'d> {
    d: &'d [u8],
    base: u64,
}

impl<'d> Here<'d> {
    /// No packet: every field is read through a view.
    const NONE: Here<'static> = Here {
        d: &[],
        base: u64::MAX,
    };

    /// The bytes `start..end` (stream offsets), if they lie in the packet.
    #[inline]
    fn span(self, start: u64, end: u64) -> Option<&'d [u8]> {
        let from = start.checked_sub(self.base)?;
        let to = end.checked_sub(self.base)?;
        if to > self.d.len() as u64 {
            return None;
        }
        self.d.get(from as usize..to as usize)
    }
}

/// Bytes an action reads: a slice of the packet being parsed and its stream
/// offset, or a view of a field elsewhere in the stream (in an earlier packet,
/// or across packets). The two give the same results.
enum Val<'o, P: Packet> {
    Here(&'o [u8], u64),
    View(Field<'o, P>),
}

impl<'o, P: Packet> Val<'o, P> {
    fn len(&self) -> u64 {
        match self {
            Val::Here(v, _) => v.len() as u64,
            Val::View(v) => v.len(),
        }
    }

    fn find(&self, lit: &[u8]) -> Option<u64> {
        match self {
            Val::Here(v, _) => match lit {
                [] => Some(0),
                [c] => memchr::memchr(*c, v),
                _ => memchr::memmem::find(v, lit),
            }
            .map(|i| i as u64),
            Val::View(v) => v.find(lit),
        }
    }

    fn slice(self, from: u64, to: u64) -> Self {
        match self {
            Val::Here(v, at) => Val::Here(&v[from as usize..to as usize], at + from),
            Val::View(v) => Val::View(v.slice(from, to)),
        }
    }

    fn trim_ascii(self) -> Self {
        match self {
            Val::Here(v, at) => {
                let ws = |b: &u8| matches!(*b, b' ' | b'\t' | b'\r' | b'\n');
                match v.iter().position(|b| !ws(b)) {
                    Some(first) => {
                        let last = v.iter().rposition(|b| !ws(b)).map_or(first, |i| i + 1);
                        Val::Here(&v[first..last], at + first as u64)
                    }
                    None => Val::Here(&v[..0], at),
                }
            }
            Val::View(v) => Val::View(v.trim_ascii()),
        }
    }

    /// Stream offset of the first byte.
    fn offset(&self) -> u64 {
        match self {
            Val::Here(_, at) => *at,
            Val::View(v) => v.offset(),
        }
    }

    fn parse(&self, radix: u32) -> Result<u64, aa_runtime::IntError> {
        match self {
            Val::Here(v, _) => aa_runtime::field::parse_uint(v, radix),
            Val::View(v) if radix == 10 => v.parse_dec(),
            Val::View(v) => v.parse_hex(),
        }
    }

    /// The bytes as a big-endian (`be`) or little-endian integer.
    fn parse_endian(&self, be: bool) -> Result<u64, aa_runtime::IntError> {
        match (self, be) {
            (Val::Here(v, _), true) => aa_runtime::field::parse_be(v),
            (Val::Here(v, _), false) => aa_runtime::field::parse_le(v),
            (Val::View(v), true) => v.parse_be(),
            (Val::View(v), false) => v.parse_le(),
        }
    }

    fn test(&self, t: Test, lit: &[u8]) -> bool {
        match self {
            Val::Here(v, _) => match t {
                Test::Eq => *v == lit,
                Test::IEq => v.eq_ignore_ascii_case(lit),
                Test::Prefix => v.starts_with(lit),
                Test::IPrefix => v.len() >= lit.len() && v[..lit.len()].eq_ignore_ascii_case(lit),
                Test::Contains => self.find(lit).is_some(),
                Test::IContains => {
                    lit.is_empty() || v.windows(lit.len()).any(|w| w.eq_ignore_ascii_case(lit))
                }
            },
            Val::View(v) => match t {
                Test::Eq => v.eq_bytes(lit),
                Test::IEq => v.eq_ignore_ascii_case(lit),
                Test::Prefix => v.starts_with(lit),
                Test::IPrefix => v.starts_with_ignore_ascii_case(lit),
                Test::Contains => v.find(lit).is_some(),
                Test::IContains => find_ignore_case(v, lit),
            },
        }
    }
}

/// `x op y` of two values.
#[inline(always)]
fn apply(op: BinOp, x: u64, y: u64) -> u64 {
    match op {
        BinOp::Or => (x != 0 || y != 0) as u64,
        BinOp::And => (x != 0 && y != 0) as u64,
        BinOp::Eq => (x == y) as u64,
        BinOp::Ne => (x != y) as u64,
        BinOp::Lt => (x < y) as u64,
        BinOp::Le => (x <= y) as u64,
        BinOp::Gt => (x > y) as u64,
        BinOp::Ge => (x >= y) as u64,
        BinOp::Add => x.wrapping_add(y),
        BinOp::Sub => x.saturating_sub(y),
        BinOp::Mul => x.wrapping_mul(y),
        BinOp::Div => x.checked_div(y).unwrap_or(0),
        BinOp::Rem => x.checked_rem(y).unwrap_or(0),
        BinOp::BitAnd => x & y,
        BinOp::BitOr => x | y,
        BinOp::BitXor => x ^ y,
        BinOp::Shl => shift(x, y, u64::checked_shl),
        BinOp::Shr => shift(x, y, u64::checked_shr),
    }
}

/// `x << y` or `x >> y` (`op`), 0 when `y` is 64 or more.
#[inline]
fn shift(x: u64, y: u64, op: fn(u64, u32) -> Option<u64>) -> u64 {
    u32::try_from(y).ok().and_then(|y| op(x, y)).unwrap_or(0)
}

/// [`Expr::Key`] on `v`: `v`, past its leading spaces, starts with `key`
/// (ignoring case: by its `words` when it has them, see [`ir::ieq_words`]),
/// and only spaces follow up to `sep` or the end of `v`.
fn ieq_key(v: &[u8], sep: u8, key: &[u8], words: &[(usize, u64, u64)]) -> bool {
    let ws = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let s = v.iter().position(|&b| !ws(b)).unwrap_or(v.len());
    let Some(k) = v.get(s..s + key.len()) else {
        return false;
    };
    let same = if words.is_empty() {
        k.eq_ignore_ascii_case(key)
    } else {
        words.iter().all(|&(at, fold, want)| {
            let w: [u8; 8] = k[at..at + 8].try_into().expect("8 bytes");
            (u64::from_le_bytes(w) | fold) == want
        })
    };
    if !same {
        return false;
    }
    for &b in &v[s + key.len()..] {
        if b == sep {
            return true;
        }
        if !ws(b) {
            return false;
        }
    }
    true
}

fn find_ignore_case<P: Packet>(v: &Field<'_, P>, lit: &[u8]) -> bool {
    let n = lit.len() as u64;
    if n == 0 {
        return true;
    }
    let len = v.len();
    (0..=len.saturating_sub(n))
        .take_while(|_| len >= n)
        .any(|s| v.slice(s, s + n).eq_ignore_ascii_case(lit))
}

impl Parser for Interp {
    fn schema(&self) -> &'static Schema {
        self.g.schema
    }

    fn limits(&self) -> Limits {
        self.g.limits
    }

    fn parse<P: Packet>(&mut self, chunk: Chunk<'_>, out: &mut Emitter<'_, P>) -> R<Step> {
        self.st.run(&self.g, chunk.data, chunk.offset, out)
    }

    fn gap(&mut self, offset: u64, len: u64) -> R<()> {
        self.st.gap(&self.g, offset, len)
    }

    fn recover(&mut self, at: u64) -> bool {
        if self.g.sync.is_empty() {
            return false;
        }
        self.st.resync(at);
        true
    }

    fn finish<P: Packet>(&mut self, offset: u64, out: &mut Emitter<'_, P>) -> R<()> {
        self.st.finish(&self.g, offset, out)
    }

    fn retain_from(&self) -> u64 {
        self.st.retain_from(&self.g)
    }
}
