//! What Neutron's server knows: hosts, networks, subnets, routers, ports,
//! floating IPs. Loaded from TOML; validated as a whole before use.
//!
//! Names stand in for Neutron's UUIDs (a port's `device` is its interface
//! name on the bridge, e.g. `qvo-vm1`, `qr-s1`). Host-local values the
//! agents persist (local VLANs, rfp/fpr link addresses, FIP rule
//! priorities) may be pinned so that a compiled host reproduces a recorded
//! one exactly; otherwise they are allocated the way the agents do.

use pipeline::key::Mac;
pub use pipeline::router::Cidr;

/// The link-local pool Neutron's L3 agent gives rfp/fpr pairs
/// (169.254.64.0/18).
pub const LINK_POOL: Cidr = Cidr {
    addr: 0xa9fe_4000,
    len: 18,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostRole {
    /// L3 agent `agent_mode=dvr`.
    Compute,
    /// L3 agent `agent_mode=dvr_snat`: may host SNAT.
    Network,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    pub name: String,
    pub role: HostRole,
    pub dvr_mac: Mac,
    /// `physnet:bridge` pairs, in the agent's `bridge_mappings` order,
    /// e.g. `["physnet1:br-vlan", "extnet:br-ex"]`.
    pub bridge_mappings: Vec<String>,
    /// bridge → physical NIC, e.g. `br-vlan = "eth1"`.
    #[serde(default)]
    pub nics: BTreeMap<String, String>,
    /// Pinned local VLANs (network → LVID), as the agent persisted them.
    #[serde(default)]
    pub local_vlans: BTreeMap<String, u16>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkType {
    Vlan,
    Flat,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Physnet {
    pub name: String,
    /// Allowed segmentation ids, inclusive ranges (VLAN physnets).
    #[serde(default)]
    pub vlan_ranges: Vec<(u16, u16)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub name: String,
    #[serde(rename = "type")]
    pub network_type: NetworkType,
    pub physnet: String,
    #[serde(default)]
    pub segmentation_id: Option<u16>,
    /// `router:external`.
    #[serde(default)]
    pub external: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subnet {
    pub name: String,
    pub network: String,
    /// e.g. `10.1.0.0/24`.
    pub cidr: String,
    pub gateway_ip: Ipv4Addr,
}

/// A router's port on one of its subnets (`qr-`), and its SNAT port (`sg-`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterInterface {
    pub subnet: String,
    /// The `qr-` device; its IP is the subnet's gateway IP.
    pub device: String,
    /// The subnet's gateway MAC.
    pub mac: Mac,
    /// The `sg-` port on the SNAT host (routers with a gateway).
    #[serde(default)]
    pub snat_device: Option<String>,
    #[serde(default)]
    pub snat_ip: Option<Ipv4Addr>,
    #[serde(default)]
    pub snat_mac: Option<Mac>,
}

/// A router's external gateway port (`qg-`), on the SNAT host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterGateway {
    pub network: String,
    pub device: String,
    pub ip: Ipv4Addr,
    pub mac: Mac,
    #[serde(default = "default_true")]
    pub enable_snat: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraRoute {
    pub destination: String,
    pub nexthop: Ipv4Addr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Router {
    pub name: String,
    /// Prefix of the rfp-/fpr- device names (`rfp-<this>`).
    #[serde(default)]
    pub device_suffix: Option<String>,
    pub interfaces: Vec<RouterInterface>,
    #[serde(default)]
    pub gateway: Option<RouterGateway>,
    /// The `dvr_snat` host chosen for SNAT.
    #[serde(default)]
    pub snat_host: Option<String>,
    #[serde(default)]
    pub routes: Vec<ExtraRoute>,
    /// Pinned rfp addresses (host → the even address of the /31).
    #[serde(default)]
    pub rfp_links: BTreeMap<String, Ipv4Addr>,
}

/// A host's FIP agent gateway port (`fg-`) on an external network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FipGateway {
    pub host: String,
    pub network: String,
    pub device: String,
    pub ip: Ipv4Addr,
    pub mac: Mac,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedAddressPair {
    /// An address or CIDR.
    pub ip: String,
    #[serde(default)]
    pub mac: Option<Mac>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortOwner {
    /// `compute:*`: a VM interface.
    Compute,
    /// `network:dhcp`.
    Dhcp,
}

/// A VM (or DHCP) port bound to a host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Port {
    pub name: String,
    /// Interface on br-int (`qvo…`/`tap…`).
    pub device: String,
    pub host: String,
    pub network: String,
    pub mac: Mac,
    pub ip: Ipv4Addr,
    #[serde(default = "default_owner")]
    pub owner: PortOwner,
    #[serde(default = "default_true")]
    pub port_security: bool,
    #[serde(default)]
    pub allowed_address_pairs: Vec<AllowedAddressPair>,
    /// Pinned OpenFlow port number on br-int.
    #[serde(default)]
    pub ofport: Option<u32>,
}

fn default_owner() -> PortOwner {
    PortOwner::Compute
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloatingIp {
    pub address: Ipv4Addr,
    /// The associated port (by name); `None` when disassociated.
    #[serde(default)]
    pub port: Option<String>,
    pub router: String,
    /// Pinned `ip rule` priority (32768..=72767).
    #[serde(default)]
    pub rule_priority: Option<u32>,
}

/// The whole Neutron view of a deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    #[serde(default, rename = "physnet")]
    pub physnets: Vec<Physnet>,
    #[serde(default, rename = "host")]
    pub hosts: Vec<Host>,
    #[serde(default, rename = "network")]
    pub networks: Vec<Network>,
    #[serde(default, rename = "subnet")]
    pub subnets: Vec<Subnet>,
    #[serde(default, rename = "router")]
    pub routers: Vec<Router>,
    #[serde(default, rename = "fip_gateway")]
    pub fip_gateways: Vec<FipGateway>,
    #[serde(default, rename = "port")]
    pub ports: Vec<Port>,
    #[serde(default, rename = "floating_ip")]
    pub floating_ips: Vec<FloatingIp>,
}

impl Host {
    /// (physnet, bridge) pairs in configuration order.
    pub fn mappings(&self) -> Vec<(&str, &str)> {
        self.bridge_mappings
            .iter()
            .filter_map(|m| m.split_once(':'))
            .collect()
    }

    /// The bridge a physnet maps to on this host.
    pub fn bridge_for(&self, physnet: &str) -> Option<&str> {
        self.mappings()
            .into_iter()
            .find(|(p, _)| *p == physnet)
            .map(|(_, b)| b)
    }
}

/// Lookups by name. Names are unique in a validated topology; before
/// validation the first of a name wins.
impl Topology {
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn network(&self, name: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.name == name)
    }

    pub fn subnet(&self, name: &str) -> Option<&Subnet> {
        self.subnets.iter().find(|s| s.name == name)
    }

    pub fn router(&self, name: &str) -> Option<&Router> {
        self.routers.iter().find(|r| r.name == name)
    }

    pub fn port(&self, name: &str) -> Option<&Port> {
        self.ports.iter().find(|p| p.name == name)
    }

    /// `host`'s FIP agent gateway port on external network `network`.
    pub fn fip_gateway(&self, host: &str, network: &str) -> Option<&FipGateway> {
        self.fip_gateways
            .iter()
            .find(|g| g.host == host && g.network == network)
    }
}

impl Subnet {
    /// `cidr` parsed (`None` if it is not an IPv4 CIDR).
    pub fn prefix(&self) -> Option<Cidr> {
        Cidr::parse(&self.cidr)
    }
}
