//! vswitchd and vswitchctl: the daemon and its control client.
//!
//! `offline` holds the commands that work on a scenario directory
//! without a running daemon (offline trace, dump-flows, show); the daemon's
//! socket protocol arrives with the daemon.

pub mod config;
pub mod control;
pub mod daemon;
pub mod io;
pub mod offline;
