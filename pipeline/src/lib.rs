//! The vswitch dataplane: everything a packet meets, as a pure library.
//!
//! No threads, sockets or clocks live here: time is passed in, I/O belongs to
//! the daemon. Modules are named for what a packet meets, in path order:
//! `packet` (parse to a `FlowKey`, rewrite), `cache` (the per-worker flow
//! cache), `xlate` (the slow path through the bridges' tables: `switch`
//! holds the compiled snapshot, `classifier` a table's lookup, `bridge` the
//! NORMAL action), `datapath` (a worker's burst loop tying them together),
//! `trace` (explain a walk). `flow` is the match/action model and its
//! ovs-ofctl syntax; `key` the flow key every stage shares.

pub mod bridge;
pub mod cache;
pub mod classifier;
pub mod conntrack;
pub mod datapath;
pub mod drop;
pub mod flow;
pub mod ids;
pub mod key;
pub mod packet;
pub mod program;
pub mod router;
pub mod switch;
pub mod trace;
pub mod wire;
pub mod xlate;
