//! `KnownFields`: a parser of the `http_doc` stream that is told in advance
//! where every field of every response lies, so that it finds nothing and
//! checks nothing. It emits the records `http_response.aag`'s parser emits (the
//! same kinds, tags, variables and spans, one `body` record per packet), so the
//! same reading code runs on them. What it costs is what aa's record path
//! costs on its own: taking packets, adding fields and variables, committing
//! and pinning records, reading and freeing them. The `http` bench runs it
//! beside the generated parser as a floor for the parser's share of the time,
//! as `lines_whole` is one for the head parser's. Included with `#[path]`.

use aa_grammars::http_response::{fields, kinds, values, HttpResponseParser};
use aa_runtime::{Chunk, Emitter, ErrorKind, Limits, Packet, ParseError, Parser, Schema, Step};
use std::sync::Arc;

/// A response head of the stream: its fields as `(tag, start, end)` in stream
/// offsets of the first pass, its end (after the empty line) and variables.
#[derive(Debug, Clone)]
pub struct Head {
    start: u64,
    fields: Vec<(u16, u64, u64)>,
    end: u64,
    code: u64,
    content_length: u64,
}

/// The heads of `doc`, a stream of responses with a Content-Length each, as
/// `http_doc::document` makes. Panics on anything else: the answers must be
/// right for the bench to measure anything.
pub fn heads(doc: &[u8]) -> Vec<Head> {
    let find = |from: usize, b: u8| from + memchr::memchr(b, &doc[from..]).expect("a delimiter");
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < doc.len() {
        let v = find(pos, b' ');
        let s = find(v + 1, b' ');
        let r = find(s + 1, b'\r');
        let mut f = vec![
            (fields::response::VERSION, pos, v),
            (fields::response::STATUS, v + 1, s),
            (fields::response::REASON, s + 1, r),
        ];
        let code = std::str::from_utf8(&doc[v + 1..s])
            .unwrap()
            .parse()
            .unwrap();
        let mut content_length = None;
        let mut i = r + 2;
        loop {
            let j = find(i, b'\r');
            if j == i {
                i += 2;
                break;
            }
            let line = &doc[i..j];
            if line[..15].eq_ignore_ascii_case(b"content-length:") {
                let n = std::str::from_utf8(&line[15..]).unwrap().trim();
                content_length = Some(n.parse::<u64>().unwrap());
            }
            f.push((fields::response::HEADERS, i, j));
            i = j + 2;
        }
        let content_length = content_length.expect("a Content-Length");
        let at = |o: usize| o as u64;
        out.push(Head {
            start: at(pos),
            fields: f.into_iter().map(|(t, s, e)| (t, at(s), at(e))).collect(),
            end: at(i),
            code,
            content_length,
        });
        pos = i + content_length as usize;
    }
    out
}

/// The parser. The stream may be the document again and again (`rt_count`
/// runs it in passes): head `k` of pass `p` lies `p` document lengths on.
pub struct KnownFields {
    heads: Arc<[Head]>,
    doc_len: u64,
    /// The next head, and where its pass starts.
    next: usize,
    lap: u64,
    /// Parsed up to here.
    pos: u64,
    /// In a body that ends here.
    body_end: Option<u64>,
}

impl KnownFields {
    pub fn new(heads: Arc<[Head]>, doc_len: usize) -> Self {
        KnownFields {
            heads,
            doc_len: doc_len as u64,
            next: 0,
            lap: 0,
            pos: 0,
            body_end: None,
        }
    }

    fn advance(&mut self) {
        self.next += 1;
        if self.next == self.heads.len() {
            self.next = 0;
            self.lap += self.doc_len;
        }
    }
}

impl Parser for KnownFields {
    fn schema(&self) -> &'static Schema {
        HttpResponseParser::new().schema()
    }

    fn limits(&self) -> Limits {
        HttpResponseParser::new().limits()
    }

    fn parse<P: Packet>(
        &mut self,
        chunk: Chunk<'_>,
        out: &mut Emitter<'_, P>,
    ) -> Result<Step, ParseError> {
        let end = chunk.offset + chunk.data.len() as u64;
        let consumed = |pos: u64| (pos - chunk.offset) as usize;
        loop {
            if let Some(body_end) = self.body_end {
                let e = body_end.min(end);
                if self.pos < e {
                    if out.is_full() {
                        return Ok(Step::Full {
                            consumed: consumed(self.pos),
                        });
                    }
                    assert!(out.field_here(fields::body::DATA, self.pos, e, 0));
                    out.commit(kinds::BODY, self.pos, e);
                    self.pos = e;
                }
                if self.pos < body_end {
                    return Ok(Step::Done);
                }
                self.body_end = None;
                self.advance();
            }
            let (h, lap) = (&self.heads[self.next], self.lap);
            if h.end + lap > end {
                // The head goes on in the next packet.
                return Ok(Step::Done);
            }
            if out.is_full() {
                return Ok(Step::Full {
                    consumed: consumed(self.pos),
                });
            }
            for &(tag, s, e) in &h.fields {
                let (s, e) = (s + lap, e + lap);
                let stored = if s >= chunk.offset {
                    out.field_here(tag, s, e, 0)
                } else {
                    out.field(tag, s, e, 0)
                };
                assert!(stored, "room for the fields of a head");
            }
            assert!(out.value(values::response::CODE, h.code));
            assert!(out.value(values::response::CONTENT_LENGTH, h.content_length));
            out.commit(kinds::RESPONSE, h.start + lap, h.end + lap);
            self.pos = h.end + lap;
            if h.content_length > 0 {
                self.body_end = Some(self.pos + h.content_length);
            } else {
                self.advance();
            }
        }
    }

    fn gap(&mut self, offset: u64, len: u64) -> Result<(), ParseError> {
        Err(ParseError {
            offset,
            record: "response",
            field: None,
            kind: ErrorKind::Gap { len },
        })
    }

    fn finish<P: Packet>(&mut self, offset: u64, _: &mut Emitter<'_, P>) -> Result<(), ParseError> {
        match self.body_end {
            None if offset == self.heads[self.next].start + self.lap => Ok(()),
            _ => Err(ParseError {
                offset,
                record: "response",
                field: None,
                kind: ErrorKind::Truncated,
            }),
        }
    }

    fn retain_from(&self) -> u64 {
        match self.body_end {
            // A head not yet whole: from its start.
            None => self.heads[self.next].start + self.lap,
            Some(_) => u64::MAX,
        }
    }
}
