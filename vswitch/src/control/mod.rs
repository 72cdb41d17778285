//! The control protocol and both its ends: one JSON request per line,
//! one JSON response per line, over a unix socket.
//!
//! - `protocol`: the vocabulary shared by both ends, [`Request`] and
//!   [`Response`], and the lines that carry them;
//! - `error`: [`ControlError`], what can go wrong on either end;
//! - `server`: the socket (guarded file, limits) and the serve loop;
//!   [`respond`] answers one line;
//! - `commands`: carrying out each request ([`handle`]), by topic;
//! - `client`: [`call`], one request and its reply, for vswitchctl.
//!
//! The server side calls `daemon::Shared`; the client side calls nothing
//! of the daemon.

mod client;
mod commands;
mod error;
pub mod protocol;
mod server;

pub use client::call;
pub use commands::handle;
pub use error::ControlError;
pub use protocol::{Request, Response, MAX_CLIENTS, MAX_REQUEST, PROTOCOL_VERSION};
pub use server::{respond, ControlServer, SocketError};
