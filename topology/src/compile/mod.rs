//! Per-host compilation of the bridges: the job Neutron's OVS agent does.
//!
//! A pure function from the topology to one host's bridges, ports and
//! flows (spec §1.2, §2–§4). Flows are produced as ovs-ofctl text, the way
//! the agent's ofctl driver programs them, and parsed with the same parser
//! that reads operator input; the text is what an operator would compare
//! against `dump-flows`.
//!
//! `ports` plugs and numbers br-int's ports and allocates local VLANs;
//! `br_int` writes br-int's flows and `br_phys` those of each physical
//! bridge (br-vlan, br-ex: the same flows, parameterised by physnet).
//!
//! Port numbering follows the agent's plug order, which reproduces the
//! spec's Appendix A: the int-/phy- patch pairs (in `bridge_mappings`
//! order), then router ports (`qr-` per interface, `fg-`, and on the SNAT
//! host `sg-`/`qg-`), then VM and DHCP ports in topology order. Local VLANs
//! are allocated lowest-free in the order networks first appear on the host
//! (pinned values win).

mod br_int;
mod br_phys;
mod flow_text;
mod host_view;
mod ports;

use super::model::Topology;
use super::validate::{err, TopologyError};
use flow_text::FlowText;
use host_view::HostView;
use pipeline::flow::Flow;
use pipeline::switch::PortConfig;
use std::collections::BTreeMap;

pub use super::placement::routers_on_host;

/// One bridge of a host: its ports and flows.
#[derive(Clone, Debug, PartialEq)]
pub struct BridgePlan {
    pub name: String,
    pub ports: Vec<PortConfig>,
    pub flows: Vec<Flow>,
}

/// Everything the agents program on one host's bridges.
#[derive(Clone, Debug, PartialEq)]
pub struct HostPlan {
    pub host: String,
    pub bridges: Vec<BridgePlan>,
    /// network → local VLAN.
    pub local_vlans: BTreeMap<String, u16>,
}

impl HostPlan {
    pub fn bridge(&self, name: &str) -> Option<&BridgePlan> {
        self.bridges.iter().find(|b| b.name == name)
    }

    /// The OpenFlow port number of a device on its bridge.
    pub fn ofport(&self, device: &str) -> Option<u32> {
        self.bridges
            .iter()
            .flat_map(|b| &b.ports)
            .find(|p| p.name == device)
            .and_then(|p| p.ofport)
    }
}

/// Compiles `host`'s bridges. The topology must have passed `validate`.
pub fn compile_host(t: &Topology, host_name: &str) -> Result<HostPlan, TopologyError> {
    let host = t
        .host(host_name)
        .ok_or_else(|| err(format!("host {host_name}"), "name", "no such host"))?;
    let routers = routers_on_host(t, host_name);
    let int_ports = ports::plug_order(t, host, &routers)?;
    let cx = HostView {
        t,
        host,
        ofports: ports::number(t, host_name, &int_ports),
        lvids: ports::local_vlans(host, &int_ports),
        routers,
    };

    let mut out = FlowText::default();
    br_int::add_flows(&cx, &mut out);
    for (physnet, bridge) in host.mappings() {
        br_phys::add_flows(&cx, physnet, bridge, &mut out);
    }

    let mut bridges = vec![BridgePlan {
        name: "br-int".into(),
        ports: ports::int_bridge_ports(&cx, &int_ports),
        flows: out.take("br-int")?,
    }];
    for (_, bridge) in host.mappings() {
        bridges.push(BridgePlan {
            name: bridge.to_string(),
            ports: ports::phys_bridge_ports(host, bridge),
            flows: out.take(bridge)?,
        });
    }
    Ok(HostPlan {
        host: host_name.to_string(),
        bridges,
        local_vlans: cx.lvids,
    })
}
