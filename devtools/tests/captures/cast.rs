//! The addresses of the spec's example (§0.3) the roles put frames in, read
//! from its topology (and from `spec` for the world outside it).

use devtools::spec::{self, EXTERNAL_HOST, UPSTREAM_MAC};
use pipeline::key::Mac;
use std::net::Ipv4Addr;
use topology::Topology;

/// A station: its MAC and IPv4 address.
pub type Station = (Mac, Ipv4Addr);

pub struct Cast {
    pub vm1: Station,
    pub vm2: Station,
    pub vm3: Station,
    pub vm4: Station,
    pub vm5: Station,
    /// subnet1's gateway (the qr-s1 port, GW_MAC1).
    pub gw1: Station,
    /// compute2's DVR MAC: the source of what its qrouter sends on the trunk.
    pub dvr_c2: Mac,
    /// net1's segmentation id (its VLAN on the trunk).
    pub net1_vlan: u16,
    /// network1's SNAT port on subnet1 (sg-s1).
    pub sg1: Station,
    /// The router's gateway port on the external network (qg-, the SNAT address).
    pub qg: Station,
    /// compute1's FIP agent gateway port (fg-c1).
    pub fg_c1: Station,
    /// vm1's floating IP.
    pub fip: Ipv4Addr,
    /// The upstream router (the external subnet's gateway).
    pub upstream: Station,
    pub external_host: Ipv4Addr,
}

impl Cast {
    pub fn of(t: &Topology) -> Cast {
        let port = |name: &str| {
            t.ports
                .iter()
                .find(|p| p.name == name)
                .map(|p| (p.mac, p.ip))
                .unwrap_or_else(|| panic!("the spec's topology has {name}"))
        };
        let router = t
            .routers
            .iter()
            .find(|r| r.gateway.is_some())
            .expect("a router with a gateway");
        let gateway = router.gateway.as_ref().expect("gateway");
        let iface = |subnet: &str| {
            let i = router
                .interfaces
                .iter()
                .find(|i| i.subnet == subnet)
                .unwrap_or_else(|| panic!("{} has an interface on {subnet}", router.name));
            let s = t
                .subnets
                .iter()
                .find(|s| s.name == subnet)
                .unwrap_or_else(|| panic!("subnet {subnet}"));
            (i, s.gateway_ip)
        };
        let (s1, gw1_ip) = iface("subnet1");
        let fg = t
            .fip_gateways
            .iter()
            .find(|g| g.host == "compute1")
            .expect("compute1's fg- port");
        let host = |name: &str| {
            t.hosts
                .iter()
                .find(|h| h.name == name)
                .unwrap_or_else(|| panic!("host {name}"))
        };
        let net1 = t.networks.iter().find(|n| n.name == "net1").expect("net1");
        let fip = t
            .floating_ips
            .iter()
            .find(|f| f.port.as_deref() == Some("vm1"))
            .expect("vm1's floating IP");
        let ext = spec::external_subnet(t).expect("external subnet");
        Cast {
            vm1: port("vm1"),
            vm2: port("vm2"),
            vm3: port("vm3"),
            vm4: port("vm4"),
            vm5: port("vm5"),
            gw1: (s1.mac, gw1_ip),
            dvr_c2: host("compute2").dvr_mac,
            net1_vlan: net1.segmentation_id.expect("net1 is a VLAN network"),
            sg1: (
                s1.snat_mac.expect("sg-s1's MAC"),
                s1.snat_ip.expect("sg-s1's address"),
            ),
            qg: (gateway.mac, gateway.ip),
            fg_c1: (fg.mac, fg.ip),
            fip: fip.address,
            upstream: (UPSTREAM_MAC, ext.gateway_ip),
            external_host: EXTERNAL_HOST,
        }
    }
}

/// Whether `a` is a tenant address: anything in 10.0.0.0/8, the range the
/// cloud's tenant networks are numbered from.
pub fn is_tenant(a: Ipv4Addr) -> bool {
    a.octets()[0] == 10
}

/// The address an external party stands for: a captured address in the
/// tenant range (10.0.0.0/8) moved to the external host's 198.51.100.0/24,
/// keeping its last octet, so that nothing from outside carries a tenant
/// address; any other address as captured (martians included).
pub fn outside(a: Ipv4Addr) -> Ipv4Addr {
    if is_tenant(a) {
        let [x, y, z, _] = EXTERNAL_HOST.octets();
        Ipv4Addr::new(x, y, z, a.octets()[3])
    } else {
        a
    }
}
