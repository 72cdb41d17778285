//! What the switch writes back into the database, as ovs-vswitchd does:
//! each interface's OpenFlow number (`ofport`, -1 with `error` when it
//! could not be added), each bridge's `datapath_id`, each controller's
//! `is_connected`, and in the root row
//! the datapath and interface types it supports, the Open vSwitch
//! version whose behaviour it implements, and `cur_cfg = next_cfg` once
//! it holds the configuration (what `ovs-vsctl` waits for). Only what
//! differs from the database is written.

use super::reconcile::Outcome;
use super::view::DatabaseView;
use crate::ofswitch::datapath_id;
use ovsdb::{Condition, Datum, Operation};

/// The Open vSwitch release whose database and OpenFlow behaviour this
/// switch implements (what agents read from `ovs_version`).
pub const OVS_VERSION: &str = "3.1.0";
pub const DATAPATH_TYPES: [&str; 2] = ["netdev", "system"];
/// The interface types this build takes (`afxdp` with the `af-xdp`
/// feature).
#[cfg(feature = "af-xdp")]
pub const IFACE_TYPES: &[&str] = &["afxdp", "dpdk", "internal", "patch", "system"];
#[cfg(not(feature = "af-xdp"))]
pub const IFACE_TYPES: &[&str] = &["dpdk", "internal", "patch", "system"];

/// The operations that bring the database to what the switch holds;
/// `connected(bridge, target)`: whether that controller connection is up.
pub fn operations(
    view: &DatabaseView,
    outcome: &Outcome,
    connected: &dyn Fn(&str, &str) -> bool,
) -> Vec<Operation> {
    let mut ops = Vec::new();
    for b in &view.bridges {
        for c in &b.controllers {
            let up = connected(&b.name, &c.target);
            if c.is_connected != Some(up) {
                ops.push(Operation::Update {
                    table: "Controller".into(),
                    conditions: vec![Condition::uuid(&c.uuid)],
                    row: vec![("is_connected".into(), Datum::one(ovsdb::Atom::Boolean(up)))],
                });
            }
        }
        let dpid = format!("{:016x}", datapath_id(&b.name, b.datapath_id_request));
        if b.datapath_id.as_deref() != Some(dpid.as_str()) {
            ops.push(Operation::Update {
                table: "Bridge".into(),
                conditions: vec![Condition::uuid(&b.uuid)],
                row: vec![("datapath_id".into(), Datum::one(dpid.as_str()))],
            });
        }
        for p in &b.ports {
            let Some(iface) = &p.interface else {
                continue;
            };
            let (ofport, error) = match outcome.interfaces.get(&iface.uuid) {
                Some(Ok(n)) => (*n, None),
                Some(Err(e)) => (-1, Some(e.clone())),
                None => continue,
            };
            if iface.ofport != Some(ofport) || iface.error != error {
                let error = match &error {
                    Some(e) => Datum::one(e.as_str()),
                    None => Datum::empty(),
                };
                ops.push(Operation::Update {
                    table: "Interface".into(),
                    conditions: vec![Condition::uuid(&iface.uuid)],
                    row: vec![
                        ("ofport".into(), Datum::one(ofport)),
                        ("error".into(), error),
                    ],
                });
            }
        }
    }
    if let Some(root) = &view.root {
        let mut row = Vec::new();
        if root.ovs_version.as_deref() != Some(OVS_VERSION) {
            row.push(("ovs_version".into(), Datum::one(OVS_VERSION)));
        }
        if root.datapath_types != DATAPATH_TYPES {
            row.push(("datapath_types".into(), Datum::strings(&DATAPATH_TYPES)));
        }
        if root.iface_types != IFACE_TYPES {
            row.push(("iface_types".into(), Datum::strings(IFACE_TYPES)));
        }
        if root.cur_cfg != root.next_cfg {
            row.push(("cur_cfg".into(), Datum::one(root.next_cfg)));
        }
        if !row.is_empty() {
            ops.push(Operation::Update {
                table: "Open_vSwitch".into(),
                conditions: vec![Condition::uuid(&root.uuid)],
                row,
            });
        }
    }
    ops
}
