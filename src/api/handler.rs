//! One request line in, one response line out.
//!
//! Parses with `protocol`, hands valid requests to the engine, and turns everything else into
//! an `invalid_request` answer. Never talks to a provider or the journal directly.

use std::sync::Arc;

use super::protocol::{self, Response};
use crate::engine::Engine;

pub async fn answer(engine: &Arc<Engine>, line: &[u8]) -> String {
    match protocol::parse_request(line) {
        Ok(req) => engine.handle(req).await,
        Err(rejection) => {
            log::debug!("refused a request: {}", rejection.message);
            rejection.into_response().to_line()
        }
    }
}

/// The answer to a line longer than [`protocol::MAX_LINE`]; the connection then closes.
pub fn too_long() -> String {
    Response::error(
        None,
        Default::default(),
        protocol::ErrorType::DefaultError,
        "invalid_request",
        format!(
            "the request line is longer than {} bytes; this connection will be closed",
            protocol::MAX_LINE
        ),
    )
    .to_line()
}

/// The answer to a connection beyond `api.max_connections`; it then closes.
pub fn busy(limit: usize) -> String {
    Response::error(
        None,
        Default::default(),
        protocol::ErrorType::DefaultError,
        "busy",
        format!("posbridge is serving its limit of {limit} connections; try again shortly"),
    )
    .to_line()
}
