//! The vswitch dataplane: everything a packet meets, as a pure library.
//!
//! No threads, sockets or clocks live here: time is passed in, I/O belongs to
//! the daemon. Modules are named for what a packet meets, in path order:
//! `packet` (parse to a `FlowKey`, rewrite), `flow` (match/action model and
//! ovs-ofctl syntax), `classifier` (a table's lookup), `bridge` (OpenFlow
//! tables, NORMAL, patch ports), `cache` (per-worker flow cache), `trace`.

pub mod drop;
pub mod flow;
pub mod key;
pub mod packet;
