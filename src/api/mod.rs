//! The local socket API: wire types (`protocol`), the accept loop and its limits (`server`),
//! the glue from one request line to the engine (`handler`), and who may connect (`access`).

pub mod access;
pub mod handler;
mod lines;
pub mod protocol;
pub mod server;
