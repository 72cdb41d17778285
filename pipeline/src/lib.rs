//! The vswitch dataplane: everything a packet meets, as a pure library.
//!
//! Owns: wire formats and packet buffers, the flow key, OpenFlow's match
//! and action model, the classifier, the compiled switch snapshot, the
//! translation of a packet through bridges and router instances, the
//! connection table and its one ct stage, the per-worker flow caches, a
//! worker's burst, and the trace that records a walk. No threads, sockets
//! or clocks live here: time is passed in, I/O belongs to the daemon
//! (`vswitch`), configuration to whoever builds a `SwitchConfig` (the
//! `topology` compiler, the control plane). It calls no other crate of the
//! workspace.
//!
//! Modules, from the bottom up; each may call only the ones before it (no
//! cycles between modules or files: `devtools/tests/module_graph.rs` checks):
//!
//! | module | what |
//! |---|---|
//! | `wire` | header views with getters and setters, one file per protocol; protocol numbers |
//! | `drop`, `ids` | named drop reasons and their counters; port and router-interface ids |
//! | `rss` | the NIC's receive-side scaling hash, and the queue (worker) it picks |
//! | `key` | the flow key every stage shares |
//! | `packet` | pooled buffers, the one-pass parser, in-place rewrites, packets a router builds |
//! | `flow` | match/action model, ovs-ofctl text syntax |
//! | `classifier` | a table's compiled lookup (tuple space search) |
//! | `bridge` | a bridge's live MAC table |
//! | `router` | router instance state: addresses, rules, LPM routes, NAT rules, neighbours |
//! | `conntrack` | connections and NAT bindings; `conntrack::stage`, the one ct stage |
//! | `trace` | the record of a walk, rendered for people and tools |
//! | `switch` | the configuration and its compiled, immutable snapshot |
//! | `program` | what translation emits and the datapath replays |
//! | `xlate` | the slow path: tables, actions, NORMAL, router steps, ct steps |
//! | `cache` | the per-worker megaflow caches |
//! | `datapath` | a worker's burst: parse, look up, run, one drop path |
//!
//! `unsafe` is confined to `packet`'s lent buffers (a backend's memory, such
//! as a DPDK mbuf, carried without a copy); every block says why it holds.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

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
pub mod rss;
pub mod switch;
pub mod trace;
pub mod wire;
pub mod xlate;
