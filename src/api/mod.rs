//! The local socket API: wire types (`protocol`), the accept loop and its limits (`server`),
//! and the glue from one request line to the engine (`handler`).

pub mod handler;
pub mod protocol;
pub mod server;
