//! Connection tracking: connections by zone and 5-tuple, both directions
//! found by one lookup, Linux-like TCP states, UDP/ICMP pseudo-states, NAT
//! bindings with bounded port search, timeouts expired incrementally.
//!
//! Design: the table is split into `SHARDS` shards, each behind its own
//! mutex (no global lock on the packet path). A connection lives in the
//! shard of its original-direction tuple; the shard of its reply tuple
//! holds an index entry pointing back. A lookup locks one shard (original
//! direction) or two shards one after the other (reply direction, never
//! both at once). Creating a connection locks both shards in index order,
//! so two workers racing on the two directions of one new flow end up with
//! one connection. Each shard keeps a deadline queue; `expire` pops a
//! bounded number of entries per call (workers call it once per burst), so
//! there is never a stop-the-world sweep.
//!
//! Shards have owners: with several workers (`ConnTable::with_owners`),
//! each owns `SHARDS / workers` shards, and a tuple's shard is one of the
//! worker's that its packets reach: the owner is the receive queue the
//! NIC's RSS hash (`crate::rss`, the key the daemon programs) picks for
//! the tuple. A packet in the original direction therefore locks only
//! shards of the worker it arrived on, which no other worker touches: the
//! lock is uncontended and its line stays in that core's cache. For the
//! reply direction, a source NAT port is chosen so that the reply tuple
//! hashes to the same owner (about one port in `workers` does; Neutron
//! appends `--random-fully` to its SNAT rules, so any free port is the
//! behaviour it asks for), and the symmetric default key puts both
//! directions of a connection without NAT on one worker. What cannot be
//! steered (a destination NAT's reply, an ICMP echo, a NAT range with no
//! free steered port) still works: the reply's worker finds the
//! connection through the index in its own shard and takes the owner's
//! shard lock; those connections and packets are counted
//! (`cross_worker`, `cross_worker_packets`). With one worker nothing is
//! steered and Linux's port choice (keep the port when free) applies.
//!
//! `defrag` holds IPv4 fragments until their datagram is whole, so that a
//! fragment is tracked (and NATed) as its datagram, as Linux's
//! `nf_defrag_ipv4` does in front of conntrack; the table owns it.
//! `table` holds the connections (`ConnTable`); `tcp` is the TCP state
//! machine; `stage` is the one ct stage: what a packet's conntrack step
//! does to it (ct_state, NAT, where it resumes), run by the datapath
//! (`CtMode::Commit`) and by `trace` (`CtMode::Peek`, which changes
//! nothing) alike, so a trace's states and NAT ports are the datapath's.
//! `track` and `peek` share one classification of a packet against the
//! table; they differ only in whether the result is stored. A router's
//! step for a connection no NAT rule selects is lazy (`CtStep::lazy`,
//! `track_lazy`): such connections are looked up, not stored, so the table
//! holds what NAT needs; translation compiles the step as a guard in front
//! of the walk it resumes (`CtGuard`).
//!
//! Ownership: one `ConnTable` per switch (per host), shared by all workers
//! and kept across snapshot rebuilds; each shard is written by its owning
//! worker on the packet path (others only for cross-worker replies), and
//! by control (dump, flush) under the same lock.
//!
//! May call: `rss`, `key`, `packet` (ICMP errors' quoted headers, NAT rewrites),
//! `drop`, `ids`. Nothing above it: translation and the datapath call it.

mod conn;
pub mod defrag;
mod limits;
mod slab;
pub mod stage;
mod table;
pub mod tcp;
mod tuple;

pub use conn::{Conn, Nat, Repeat, Verdict};
pub use limits::{CtStats, Limits, Timeouts, DEFAULT_MAX_CONNS, NAT_MAX_ATTEMPTS};
pub use stage::{CtGuard, CtMode, CtResult, CtStep, GuardPorts, Resume};
pub use table::{ConnTable, CtCounters};
pub use tuple::{tuple_of, Dir, PacketInfo, Tuple, SHARDS};

#[cfg(test)]
mod size_tests {
    use super::*;
    use std::cmp::Reverse;

    /// Memory per connection stays within the 256-byte budget: the entry
    /// (key + value) in its shard, the reply index entry, one deadline.
    #[test]
    fn memory_per_connection_is_bounded() {
        let per_conn = std::mem::size_of::<(Tuple, Conn)>()
            + std::mem::size_of::<(Tuple, table::ReplyOf)>()
            + std::mem::size_of::<Reverse<(u64, Tuple)>>()
            + 2; // hashbrown control bytes
                 // hashbrown keeps tables at most 7/8 full.
        let with_slack = per_conn * 8 / 7;
        assert!(with_slack <= 256, "{with_slack} bytes per connection");
        println!("conntrack: {per_conn} bytes per connection ({with_slack} with table slack)");
    }
}
