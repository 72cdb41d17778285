//! vswitchd and vswitchctl: what ships on a compute node.
//!
//! - `config`: `vswitchd --config host.toml` (host, topology, ports' I/O,
//!   workers, limits, socket).
//! - `daemon`: the workers over the ports' I/O, the published snapshot
//!   and the operations that change it.
//! - `io`: the port backends (AF_PACKET, AF_XDP, DPDK, pcap, rings).
//! - `control`: the socket protocol vswitchctl speaks, both ends.
//! - `database`: the Open_vSwitch database (ovsdb-server) as the switch's
//!   configuration, as ovs-vswitchd takes it.
//! - `ofswitch`: the bridges' OpenFlow 1.3 side (controllers, and
//!   `ovs-ofctl` on each bridge's management socket).
//! - `render`: what a switch looks like (dump-flows, show, router show),
//!   the same for the daemon and offline.
//! - `offline`: a switch built from a scenario directory or a topology
//!   file, without a daemon.
//! - `l3agent`: the routers Neutron's L3 agent hands the switch, kept
//!   across restarts.
//! - `capture`: a port's traffic into a pcap file.
//! - `logging`: the log filter, checked, and changed at runtime.
//! - `os`: the few libc calls outside the backends.
//!
//! May call: `pipeline` (the dataplane), `topology` (compiling this
//! host's part of a topology) `ovsdb` (the database client) and `openflow` (the OpenFlow codec); nothing
//! of devtools.
//!
//! Dependencies run one way: `control` → `daemon` → `io`; `render` and
//! `offline` only read pipeline snapshots. `unsafe` lives in `io` (the
//! kernel and DPDK boundaries), `os` and the worker's cycle counter, each
//! block with a `// SAFETY:` comment.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod capture;
pub mod config;
pub mod control;
pub mod daemon;
pub mod database;
pub mod io;
pub mod l3agent;
pub mod logging;
pub mod offline;
pub mod ofswitch;
pub mod os;
pub mod render;
