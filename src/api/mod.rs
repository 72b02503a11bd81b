//! The local socket API: reading request lines (`protocol`), writing answers in the shape
//! each asked for (`render`, the one place an answer's shape on the wire is decided), the
//! accept loop and its limits (`server`), the glue from one request line to the engine
//! (`handler`), and who may connect (`access`). It speaks the exchange's types with the
//! engine; it never talks to a provider or the journal.

pub mod access;
pub mod handler;
mod lines;
pub mod protocol;
pub mod render;
pub mod server;
