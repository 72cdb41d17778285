//! The Open_vSwitch database's rows as this switch reads them: the
//! bridges of the root row, their ports and each port's interface, in
//! the types the daemon configures (RFC 7047 data in, plain structs out).
//! Pure: a replica in, a view out; a row the switch cannot take (a bond,
//! an unknown interface type) is kept with why, so it can be written
//! into `Interface.error` as ovs-vswitchd does.

use ovsdb::{Datum, Replica, Row, Uuid};
use std::collections::BTreeMap;

/// The columns monitored, per table (what `view` reads and what the
/// write-back needs to find rows).
pub fn monitored() -> serde_json::Value {
    serde_json::json!({
        "Open_vSwitch": {"columns": ["bridges", "next_cfg", "cur_cfg", "ovs_version", "datapath_types", "iface_types"]},
        "Bridge": {"columns": ["name", "ports", "datapath_type", "fail_mode", "protocols", "controller", "other_config", "datapath_id"]},
        "Port": {"columns": ["name", "interfaces", "tag", "trunks", "vlan_mode"]},
        "Interface": {"columns": ["name", "type", "options", "external_ids", "ofport", "ofport_request", "error"]},
        "Controller": {"columns": ["target", "is_connected"]},
    })
}

/// An interface's type, as the switch binds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InterfaceType {
    /// `""` or `system`: a Linux network device (AF_PACKET on it).
    System,
    /// `internal`: the switch's own device (the bridge's local port, or a
    /// port the agent adds for a router).
    Internal,
    /// `patch` with `options:peer`.
    Patch { peer: String },
    /// `dpdk` with `options:dpdk-devargs`.
    Dpdk { devargs: String },
    /// `afxdp`: an AF_XDP socket on the device of the interface's name
    /// (the `af-xdp` feature; copy mode, queue 0).
    AfXdp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceView {
    pub uuid: Uuid,
    pub name: String,
    /// Why the switch cannot take it (None: it can).
    pub kind: Result<InterfaceType, String>,
    pub ofport_request: Option<u32>,
    /// What the database says now (the write-back changes only what differs).
    pub ofport: Option<i64>,
    pub error: Option<String>,
    pub external_ids: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VlanView {
    Access(u16),
    /// The listed VLANs (empty: all).
    Trunk(Vec<u16>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortView {
    pub uuid: Uuid,
    pub name: String,
    pub vlan: VlanView,
    /// The port's interface; a port with several (a bond) has none and
    /// says so in `problem`.
    pub interface: Option<InterfaceView>,
    pub problem: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerView {
    pub uuid: Uuid,
    pub target: String,
    pub is_connected: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeView {
    pub uuid: Uuid,
    pub name: String,
    pub datapath_type: String,
    pub fail_mode: Option<String>,
    pub protocols: Vec<String>,
    /// Its controllers (targets such as `tcp:127.0.0.1:6633`).
    pub controllers: Vec<ControllerView>,
    /// `other_config:mac-table-size` and `mac-aging-time` (seconds), when
    /// set to a positive number.
    pub mac_table_size: Option<usize>,
    pub mac_aging_time: Option<u64>,
    /// `other_config:datapath-id` (16 hex digits) if set.
    pub datapath_id_request: Option<u64>,
    pub datapath_id: Option<String>,
    pub ports: Vec<PortView>,
}

/// The root row's configuration generation and what the switch last
/// wrote (`cur_cfg`), and the write-back's view of the root row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootView {
    pub uuid: Uuid,
    pub next_cfg: i64,
    pub cur_cfg: i64,
    pub ovs_version: Option<String>,
    pub datapath_types: Vec<String>,
    pub iface_types: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseView {
    pub root: Option<RootView>,
    pub bridges: Vec<BridgeView>,
}

fn string(row: &Row, col: &str) -> Option<String> {
    row.get(col).and_then(Datum::as_str).map(String::from)
}

fn string_map(row: &Row, col: &str) -> BTreeMap<String, String> {
    match row.get(col) {
        Some(Datum::Map(pairs)) => pairs
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn interface(uuid: &Uuid, row: &Row) -> InterfaceView {
    let name = string(row, "name").unwrap_or_default();
    let options = string_map(row, "options");
    let kind = match string(row, "type").as_deref().unwrap_or("") {
        "" | "system" => Ok(InterfaceType::System),
        "internal" => Ok(InterfaceType::Internal),
        "patch" => match options.get("peer") {
            Some(peer) if !peer.is_empty() => Ok(InterfaceType::Patch { peer: peer.clone() }),
            _ => Err(format!("{name}: patch interface needs options:peer")),
        },
        "afxdp" => Ok(InterfaceType::AfXdp),
        "dpdk" => match options.get("dpdk-devargs") {
            Some(d) if !d.is_empty() => Ok(InterfaceType::Dpdk { devargs: d.clone() }),
            _ => Err(format!("{name}: dpdk interface needs options:dpdk-devargs")),
        },
        other => Err(format!(
            "{name}: interface type {other:?} is not supported by vswitch (system, internal, patch, afxdp, dpdk)"
        )),
    };
    InterfaceView {
        uuid: uuid.clone(),
        name,
        kind,
        ofport_request: row
            .get("ofport_request")
            .and_then(Datum::as_int)
            .and_then(|n| u32::try_from(n).ok()),
        ofport: row.get("ofport").and_then(Datum::as_int),
        error: string(row, "error"),
        external_ids: string_map(row, "external_ids"),
    }
}

fn vlan(row: &Row) -> VlanView {
    let tag = row
        .get("tag")
        .and_then(Datum::as_int)
        .and_then(|t| u16::try_from(t).ok());
    let trunks: Vec<u16> = row
        .get("trunks")
        .map(|d| d.ints().filter_map(|t| u16::try_from(t).ok()).collect())
        .unwrap_or_default();
    match (string(row, "vlan_mode").as_deref(), tag) {
        (Some("trunk"), _) | (_, None) => VlanView::Trunk(trunks),
        (_, Some(t)) => VlanView::Access(t),
    }
}

fn port(r: &Replica, uuid: &Uuid, row: &Row) -> PortView {
    let name = string(row, "name").unwrap_or_default();
    let ifaces: Vec<&Uuid> = row
        .get("interfaces")
        .map(|d| d.uuids().collect())
        .unwrap_or_default();
    let (interface, problem) = match ifaces.as_slice() {
        [one] => match r.row("Interface", one) {
            Some(i) => (Some(interface(one, i)), None),
            None => (None, Some(format!("{name}: its interface row is missing"))),
        },
        _ => (
            None,
            Some(format!(
                "{name}: {} interfaces (bonds are not supported by vswitch)",
                ifaces.len()
            )),
        ),
    };
    PortView {
        uuid: uuid.clone(),
        name,
        vlan: vlan(row),
        interface,
        problem,
    }
}

fn bridge(r: &Replica, uuid: &Uuid, row: &Row) -> BridgeView {
    let other = string_map(row, "other_config");
    let controllers: Vec<ControllerView> = row
        .get("controller")
        .map(|d| {
            d.uuids()
                .filter_map(|u| {
                    let c = r.row("Controller", u)?;
                    Some(ControllerView {
                        uuid: u.clone(),
                        target: string(c, "target")?,
                        is_connected: c.get("is_connected").and_then(Datum::as_bool),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let mut ports: Vec<PortView> = row
        .get("ports")
        .map(|d| {
            d.uuids()
                .filter_map(|u| r.row("Port", u).map(|p| port(r, u, p)))
                .collect()
        })
        .unwrap_or_default();
    ports.sort_by(|a, b| a.name.cmp(&b.name));
    BridgeView {
        uuid: uuid.clone(),
        name: string(row, "name").unwrap_or_default(),
        datapath_type: string(row, "datapath_type").unwrap_or_default(),
        fail_mode: string(row, "fail_mode"),
        protocols: row
            .get("protocols")
            .map(|d| d.strs().map(String::from).collect())
            .unwrap_or_default(),
        controllers,
        mac_table_size: other
            .get("mac-table-size")
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|n| *n > 0),
        mac_aging_time: other
            .get("mac-aging-time")
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|n| *n > 0),
        datapath_id_request: other
            .get("datapath-id")
            .and_then(|s| u64::from_str_radix(s, 16).ok()),
        datapath_id: string(row, "datapath_id"),
        ports,
    }
}

/// The switch's view of the database's rows.
pub fn view(r: &Replica) -> DatabaseView {
    let root = r.only_row("Open_vSwitch");
    let mut bridges: Vec<BridgeView> = root
        .and_then(|(_, row)| row.get("bridges"))
        .map(|d| {
            d.uuids()
                .filter_map(|u| r.row("Bridge", u).map(|b| bridge(r, u, b)))
                .collect()
        })
        .unwrap_or_default();
    bridges.sort_by(|a, b| a.name.cmp(&b.name));
    DatabaseView {
        root: root.map(|(uuid, row)| RootView {
            uuid: uuid.clone(),
            next_cfg: row.get("next_cfg").and_then(Datum::as_int).unwrap_or(0),
            cur_cfg: row.get("cur_cfg").and_then(Datum::as_int).unwrap_or(0),
            ovs_version: string(row, "ovs_version"),
            datapath_types: row
                .get("datapath_types")
                .map(|d| d.strs().map(String::from).collect())
                .unwrap_or_default(),
            iface_types: row
                .get("iface_types")
                .map(|d| d.strs().map(String::from).collect())
                .unwrap_or_default(),
        }),
        bridges,
    }
}
