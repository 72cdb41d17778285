//! What the flow writers read: one host's view of the topology.

use crate::model::{Host, Network, Router, RouterInterface, Subnet, Topology};
use std::collections::BTreeMap;

/// What the flow writers read: the topology, the host, the routers present
/// on it, and the numbers allocated there.
pub(super) struct HostView<'a> {
    pub(super) t: &'a Topology,
    pub(super) host: &'a Host,
    pub(super) routers: Vec<&'a Router>,
    /// br-int device → OpenFlow port number.
    pub(super) ofports: BTreeMap<String, u32>,
    /// network → local VLAN.
    pub(super) lvids: BTreeMap<String, u16>,
}

impl<'a> HostView<'a> {
    /// A br-int device's OpenFlow port number (0 if it has none).
    pub(super) fn ofport(&self, device: &str) -> u32 {
        self.ofports.get(device).copied().unwrap_or(0)
    }

    pub(super) fn is_snat_host(&self, r: &Router) -> bool {
        r.snat_host.as_deref() == Some(self.host.name.as_str())
    }

    /// Every host but this one, in topology order.
    pub(super) fn other_hosts(&self) -> impl Iterator<Item = &'a Host> + '_ {
        self.t.hosts.iter().filter(|h| h.name != self.host.name)
    }

    /// The networks with a local VLAN here that are on `physnet`, in
    /// network-name order.
    pub(super) fn local_networks_on(&self, physnet: &str) -> Vec<(&'a Network, u16)> {
        self.lvids
            .iter()
            .filter_map(|(net, &lvid)| {
                let n = self.t.network(net).filter(|n| n.physnet == physnet)?;
                Some((n, lvid))
            })
            .collect()
    }

    /// Every interface of the routers here with its (known) subnet.
    pub(super) fn router_subnets(&self) -> Vec<(&'a Router, &'a RouterInterface, &'a Subnet)> {
        let mut v = Vec::new();
        for &r in &self.routers {
            for ri in &r.interfaces {
                if let Some(sub) = self.t.subnet(&ri.subnet) {
                    v.push((r, ri, sub));
                }
            }
        }
        v
    }
}
