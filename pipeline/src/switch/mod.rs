//! The configured world (bridges, ports, flows) and its compiled snapshot.
//!
//! `config`: `SwitchConfig`, what the control plane edits. Every edit is
//! validated on a copy; `SwitchConfig::build` runs `compile`, which turns
//! it into a `Switch` (`snapshot`): an immutable snapshot with one
//! classifier per table, ports resolved to `PortId`s and patch peers and
//! router interfaces linked. An edit or build that fails leaves the config
//! untouched, so the running state never holds half of a change. `rules`:
//! a flow as installed, with its per-worker counters; `port`: a port as
//! configured.
//!
//! State ownership:
//! * `Switch` (snapshot): written once by the control plane, read by every
//!   worker through an `Arc`; replaced as a whole, never mutated.
//! * `Rule` (one flow plus its `RuleStats`): shared by consecutive snapshots
//!   as long as the flow is unchanged, so counters survive unrelated edits.
//!   Counter slots are per worker (each worker writes only its own slot).
//! * `MacTable`: live state per bridge, shared across snapshots and workers.
//!
//! May call: `flow`, `classifier`, `bridge::mac`, `router` (instances and
//! their run-time state), `conntrack` (the table a snapshot carries).

mod compile;
mod config;
mod port;
mod rules;
mod snapshot;
#[cfg(test)]
mod tests;

pub use crate::ids::{PortId, RouterIfaceRef};
pub use config::{
    ConfigError, ConfigPortNames, FlowSelector, PortCrossing, SwitchConfig, MAX_FLOWS_PER_BRIDGE,
    ROUTER_ZONE_BASE,
};
pub use port::{PortConfig, PortKind, VlanMode};
pub use rules::{Rule, RuleStats, StatSlot};
pub use snapshot::{Bridge, Port, RouterLinkTarget, Switch, Table, MAX_HOPS, MAX_RESUBMIT_DEPTH};
