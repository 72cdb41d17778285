//! vswitchd and vswitchctl: the daemon and its control client.
//!
//! `config` reads `vswitchd --config host.toml`; `daemon` runs the workers
//! over the ports' I/O (`io`) and publishes changes; `control` is the
//! socket protocol `vswitchctl` speaks; `capture` writes a port's traffic
//! to pcap; `offline` holds the commands that work on a scenario directory
//! or a topology file without a running daemon.

pub mod capture;
pub mod config;
pub mod control;
pub mod daemon;
pub mod io;
pub mod offline;
pub mod os;
pub mod render;
