//! A port as configured: what is behind it, how NORMAL treats its VLANs,
//! and the checks on its sending addresses.

use crate::key::Mac;

/// What is behind a port.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortKind {
    /// A VM interface or NIC: packets come from and go to I/O.
    System,
    /// An internal port: a router instance attaches here.
    Internal,
    /// A patch port: output here is input on `peer` (on another bridge).
    Patch { peer: String },
}

/// How NORMAL treats VLANs on a port.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VlanMode {
    /// Carries the listed VLANs tagged (all when the list is empty); VLAN 0
    /// is the untagged native VLAN.
    Trunk { trunks: Vec<u16> },
    /// Member of one VLAN; frames enter and leave untagged.
    Access { tag: u16 },
}

impl VlanMode {
    pub fn carries(&self, vlan: u16) -> bool {
        match self {
            VlanMode::Access { tag } => *tag == vlan,
            VlanMode::Trunk { trunks } => trunks.is_empty() || trunks.contains(&vlan),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortConfig {
    pub name: String,
    /// Requested OpenFlow port number; the lowest free one when `None`.
    pub ofport: Option<u32>,
    pub kind: PortKind,
    pub vlan: VlanMode,
    /// NORMAL does not flood to this port.
    #[serde(default)]
    pub no_flood: bool,
    #[serde(default)]
    pub mac: Option<Mac>,
    /// Port security: the IPv4 sources (address, prefix length) the port
    /// may send from, its fixed IP and allowed address pairs; `None`: any.
    /// What Neutron's firewall enforces on the VM's bridge (iptables on
    /// `qbr`, or the OVS firewall's tables), outside the flows the spec
    /// lists; here the port does it on entry.
    #[serde(default)]
    pub ip_sources: Option<Vec<(u32, u8)>>,
}

impl PortConfig {
    pub fn new(name: &str, kind: PortKind, vlan: VlanMode) -> PortConfig {
        PortConfig {
            name: name.to_string(),
            ofport: None,
            kind,
            vlan,
            no_flood: false,
            mac: None,
            ip_sources: None,
        }
    }
}
