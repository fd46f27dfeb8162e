//! HTTP on port 80 for the passive benches: `http_request` from the client,
//! `http_response` from the server, one parser type for both directions.

use aa_grammars::http_request::HttpRequestParser;
use aa_grammars::http_response::HttpResponseParser;
use aa_runtime::Either;
use aa_stack::flow::Endpoint;
use aa_stack::passive::{Parsers, Side};

/// The parser of one HTTP direction.
pub type Http = Either<HttpRequestParser, HttpResponseParser>;

/// The parser of `side`'s direction.
pub fn http(side: Side) -> Http {
    match side {
        Side::Client => Either::Left(HttpRequestParser::new()),
        Side::Server => Either::Right(HttpResponseParser::new()),
    }
}

/// HTTP on port 80: requests one way, responses the other.
pub struct HttpOn80;

impl Parsers for HttpOn80 {
    type Parser = Http;
    fn is_server_port(&self, port: u16) -> bool {
        port == 80
    }
    fn parser(&mut self, server: Endpoint, side: Side) -> Option<Http> {
        (server.1 == 80).then(|| http(side))
    }
}
