//! The seed article's scenarios on the spec's example topology (§0.3,
//! walks §8.1–8.8): who sends what to whom, what must come back, and the
//! first packet to trace across the hosts it crosses. The same list runs
//! on real kernels in namespaces and on the in-process simulation.
//!
//! Owns the list and the article-style summary of a trace (`brief`). May
//! call: `spec` and `error`; it runs nothing itself (the caller's `trace`
//! asks a daemon or the simulation).
#![deny(unsafe_code)]

use super::error::{ScenarioError, TraceError};
use crate::spec::{EXTERNAL_HOST, UPSTREAM_MAC};
use pipeline::key::Mac;
use std::net::{Ipv4Addr, SocketAddrV4};
use topology::model::{Cidr, Port};
use topology::Topology;

/// The external host's HTTP port, and the one vm1 listens on.
pub const EXTERNAL_HTTP_PORT: u16 = 80;
pub const VM_HTTP_PORT: u16 = 8080;
/// Source port of the traced first TCP segment.
const TRACE_SPORT: u16 = 40000;

/// Who sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sender {
    /// A VM (topology port name).
    Vm(String),
    /// The external host behind the upstream router.
    External,
}

/// The address a server must see its client as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeenAs {
    Addr(Ipv4Addr),
    /// Whatever address the external sender has (the kernel lab's
    /// external host; the simulation's upstream station).
    ExternalSender,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// ICMP echo; every request must be answered by `dst`.
    Ping { dst: Ipv4Addr },
    /// An HTTP fetch (kernel TCP); the server must see the client as `seen_as`.
    Http {
        server: Sender,
        to: SocketAddrV4,
        seen_as: SeenAs,
    },
}

/// The first packet of a scenario, for `trace`: where it enters, in
/// ovs-ofctl match syntax, and the hosts it crosses in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirstPacket {
    pub packet: String,
    pub hosts: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct LabScenario {
    pub id: &'static str,
    pub title: String,
    /// The spec's walk, and what the article says happens.
    pub walk: &'static str,
    pub from: Sender,
    pub probe: Probe,
    pub first: FirstPacket,
}

/// Who plays which part in the article's scenarios, and the addresses
/// their first packets carry, found in the topology.
struct Cast<'a> {
    /// The VM with a floating IP: most scenarios start (or end) at it.
    a: &'a Port,
    fip: Ipv4Addr,
    /// Its neighbour on its network and host.
    same_host: &'a Port,
    /// A VM on its network on another host.
    other_host: &'a Port,
    /// VMs on another network, on its host and on another host.
    routed_same: &'a Port,
    routed_other: &'a Port,
    /// A VM without a floating IP on another host: it goes out through
    /// the router's SNAT host, as `snat_ip`.
    snat_vm: &'a Port,
    snat_host: String,
    snat_ip: Ipv4Addr,
    /// The gateway of `a`'s subnet, and the gateway MACs `a` and
    /// `snat_vm` send routed packets to.
    gw: Ipv4Addr,
    gw_mac: Mac,
    snat_gw_mac: Mac,
    /// The fg- port on `a`'s host (where its floating IP arrives), and
    /// that host's external NIC.
    fg_mac: Mac,
    ext_nic: String,
}

impl<'a> Cast<'a> {
    /// The cast in `t`; the error names the part nobody plays.
    fn find(t: &'a Topology) -> Result<Cast<'a>, ScenarioError> {
        let need = ScenarioError::Missing;
        let fip = t
            .floating_ips
            .iter()
            .find(|f| f.port.is_some())
            .ok_or(ScenarioError::NoFloatingIp)?;
        let a = t
            .ports
            .iter()
            .find(|p| Some(&p.name) == fip.port.as_ref())
            .ok_or(ScenarioError::FloatingIpPort)?;
        let port = |f: &dyn Fn(&Port) -> bool| t.ports.iter().find(|p| f(p));
        let same_host = port(&|p| p.network == a.network && p.host == a.host && p.name != a.name)
            .ok_or(need("second VM on the first VM's network and host"))?;
        let other_host = port(&|p| p.network == a.network && p.host != a.host)
            .ok_or(need("VM on the first VM's network on another host"))?;
        let routed_same = port(&|p| p.network != a.network && p.host == a.host)
            .ok_or(need("VM on another network on the first VM's host"))?;
        let routed_other = port(&|p| p.network != a.network && p.host != a.host)
            .ok_or(need("VM on another network on another host"))?;
        let snat_vm = port(&|p| p.host != a.host && !has_fip(t, p))
            .ok_or(need("VM without a floating IP on another host"))?;
        let router = t
            .routers
            .iter()
            .find(|r| r.gateway.is_some() && r.snat_host.is_some())
            .ok_or(need("router with an external gateway"))?;
        Ok(Cast {
            a,
            fip: fip.address,
            same_host,
            other_host,
            routed_same,
            routed_other,
            snat_vm,
            snat_host: router.snat_host.clone().unwrap_or_default(),
            snat_ip: router.gateway.as_ref().map(|g| g.ip).unwrap_or(fip.address),
            gw: subnet_gateway(t, a).ok_or(need("subnet for the first VM"))?,
            gw_mac: gateway_mac(t, a).ok_or(need("gateway MAC"))?,
            snat_gw_mac: gateway_mac(t, snat_vm).ok_or(need("gateway MAC"))?,
            fg_mac: t
                .fip_gateways
                .iter()
                .find(|g| g.host == a.host)
                .map(|g| g.mac)
                .ok_or(need("fg- port on the floating IP's host"))?,
            ext_nic: nic(t, &a.host, true).ok_or(need("external NIC"))?,
        })
    }

    /// The first packet from the external host to the floating IP, `l4`
    /// its protocol fields: it enters `a`'s host on its external NIC.
    fn first_from_outside(&self, l4: &str) -> FirstPacket {
        FirstPacket {
            packet: format!(
                "in_port={},{l4},dl_src={UPSTREAM_MAC},dl_dst={},nw_src={EXTERNAL_HOST},nw_dst={},nw_ttl=63",
                self.ext_nic, self.fg_mac, self.fip
            ),
            hosts: hosts(&[&self.a.host]),
        }
    }
}

/// The gateway address of `p`'s subnet.
fn subnet_gateway(t: &Topology, p: &Port) -> Option<Ipv4Addr> {
    t.subnets.iter().find_map(|s| {
        let c = Cidr::parse(&s.cidr)?;
        (s.network == p.network && c.contains(u32::from(p.ip))).then_some(s.gateway_ip)
    })
}

/// The gateway MAC of `p`'s subnet (the qr- port's).
fn gateway_mac(t: &Topology, p: &Port) -> Option<Mac> {
    let subnet = t.subnets.iter().find(|s| {
        s.network == p.network && Cidr::parse(&s.cidr).is_some_and(|c| c.contains(u32::from(p.ip)))
    })?;
    t.routers
        .iter()
        .flat_map(|r| &r.interfaces)
        .find(|i| i.subnet == subnet.name)
        .map(|i| i.mac)
}

fn has_fip(t: &Topology, p: &Port) -> bool {
    t.floating_ips
        .iter()
        .any(|f| f.port.as_deref() == Some(&p.name))
}

/// `host`'s NIC on the external network (`external`) or on the trunk.
fn nic(t: &Topology, host: &str, external: bool) -> Option<String> {
    let h = t.hosts.iter().find(|h| h.name == host)?;
    h.mappings().into_iter().find_map(|(physnet, bridge)| {
        let ext = t
            .networks
            .iter()
            .any(|n| n.physnet == physnet && n.external);
        (ext == external).then(|| h.nics.get(bridge).cloned())?
    })
}

/// The hosts a packet crosses, a host it stays on named once.
fn hosts(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for h in list {
        if v.last().map(|l| l.as_str()) != Some(*h) {
            v.push(h.to_string());
        }
    }
    v
}

fn vm(p: &Port) -> Sender {
    Sender::Vm(p.name.clone())
}

fn icmp_echo(src: &Port, dmac: Mac, dst: Ipv4Addr) -> String {
    format!(
        "in_port={},icmp,dl_src={},dl_dst={dmac},nw_src={},nw_dst={dst},nw_ttl=64,icmp_type=8,icmp_code=0",
        src.device, src.mac, src.ip
    )
}

fn tcp_syn(src: &Port, dmac: Mac, dst: SocketAddrV4) -> String {
    format!(
        "in_port={},tcp,dl_src={},dl_dst={dmac},nw_src={},nw_dst={},nw_ttl=64,tp_src={TRACE_SPORT},tp_dst={},tcp_flags=0x002",
        src.device,
        src.mac,
        src.ip,
        dst.ip(),
        dst.port()
    )
}

/// The scenarios of the article on topology `t` (the spec's example, or
/// one with the same cast: a VM with a floating IP, a neighbour on its
/// network and host, one on its network elsewhere, one on another network
/// on its host and elsewhere, a router with a gateway), in the article's
/// order: east-west, central SNAT, floating IP.
pub fn scenarios(t: &Topology) -> Result<Vec<LabScenario>, ScenarioError> {
    let c = Cast::find(t)?;
    let mut list = east_west(&c);
    list.extend(central_snat(&c));
    list.extend(floating_ip(&c));
    Ok(list)
}

/// §8.1–8.5: the gateway, then switched and routed traffic between VMs,
/// on one host and across the trunk.
fn east_west(c: &Cast) -> Vec<LabScenario> {
    let a = c.a;
    let gw = c.gw;
    vec![
        LabScenario {
            id: "gateway",
            title: format!("{} pings its gateway {gw}", a.name),
            walk: "§8.1: the ARP request for the gateway never leaves the host: br-int \
                   tables 0/24/25/60 let it through, NORMAL hands it to the local \
                   qrouter's qr- port, which answers it (and the echo)",
            from: vm(a),
            probe: Probe::Ping { dst: gw },
            first: FirstPacket {
                packet: format!(
                    "in_port={},arp,dl_src={},dl_dst=ff:ff:ff:ff:ff:ff,arp_op=1,arp_spa={},arp_tpa={gw},arp_sha={}",
                    a.device, a.mac, a.ip, a.mac
                ),
                hosts: hosts(&[&a.host]),
            },
        },
        LabScenario {
            id: "l2-same-host",
            title: format!("{} -> {}: same network, same host", a.name, c.same_host.name),
            walk: "§8.2: br-int switches it in the network's local VLAN, port to port",
            from: vm(a),
            probe: Probe::Ping {
                dst: c.same_host.ip,
            },
            first: FirstPacket {
                packet: icmp_echo(a, c.same_host.mac, c.same_host.ip),
                hosts: hosts(&[&a.host]),
            },
        },
        LabScenario {
            id: "l2-other-host",
            title: format!(
                "{} -> {}: same network, other host",
                a.name, c.other_host.name
            ),
            walk: "§8.3: br-vlan swaps the local VLAN for the segmentation id onto the \
                   trunk; the other host's br-int swaps it back",
            from: vm(a),
            probe: Probe::Ping {
                dst: c.other_host.ip,
            },
            first: FirstPacket {
                packet: icmp_echo(a, c.other_host.mac, c.other_host.ip),
                hosts: hosts(&[&a.host, &c.other_host.host]),
            },
        },
        LabScenario {
            id: "routed-same-host",
            title: format!(
                "{} -> {}: different networks, same host",
                a.name, c.routed_same.name
            ),
            walk: "§8.4: the local qrouter routes between its qr- ports (TTL 64 -> 63); \
                   nothing reaches the wire",
            from: vm(a),
            probe: Probe::Ping {
                dst: c.routed_same.ip,
            },
            first: FirstPacket {
                packet: icmp_echo(a, c.gw_mac, c.routed_same.ip),
                hosts: hosts(&[&a.host]),
            },
        },
        LabScenario {
            id: "routed-other-host",
            title: format!(
                "{} -> {}: different networks, different hosts",
                a.name, c.routed_other.name
            ),
            walk: "§8.5: routed on the sender's host; br-vlan replaces the gateway MAC \
                   with the host's DVR MAC on the trunk; the receiver's br-int table 2 \
                   restores the gateway MAC",
            from: vm(a),
            probe: Probe::Ping {
                dst: c.routed_other.ip,
            },
            first: FirstPacket {
                packet: icmp_echo(a, c.gw_mac, c.routed_other.ip),
                hosts: hosts(&[&a.host, &c.routed_other.host]),
            },
        },
    ]
}

/// §8.6: a VM without a floating IP reaches the outside through the
/// router's central SNAT, by ICMP and over TCP.
fn central_snat(c: &Cast) -> Vec<LabScenario> {
    let v = c.snat_vm;
    let ext_http = SocketAddrV4::new(EXTERNAL_HOST, EXTERNAL_HTTP_PORT);
    vec![
        LabScenario {
            id: "snat-ping",
            title: format!(
                "{} -> {EXTERNAL_HOST}: no floating IP, central SNAT on {}",
                v.name, c.snat_host
            ),
            walk: "§8.6: the qrouter's policy rule sends it to the sg- port on the SNAT \
                   host, whose snat namespace translates the source to the router's \
                   gateway address",
            from: vm(v),
            probe: Probe::Ping { dst: EXTERNAL_HOST },
            first: FirstPacket {
                packet: icmp_echo(v, c.snat_gw_mac, EXTERNAL_HOST),
                hosts: hosts(&[&v.host, &c.snat_host]),
            },
        },
        LabScenario {
            id: "snat-http",
            title: format!(
                "{} fetches http://{ext_http}/ through SNAT (seen as {})",
                v.name, c.snat_ip
            ),
            walk: "§8.6 over TCP: conntrack in the snat namespace keeps the connection \
                   and translates every segment of both directions",
            from: vm(v),
            probe: Probe::Http {
                server: Sender::External,
                to: ext_http,
                seen_as: SeenAs::Addr(c.snat_ip),
            },
            first: FirstPacket {
                packet: tcp_syn(v, c.snat_gw_mac, ext_http),
                hosts: hosts(&[&v.host, &c.snat_host]),
            },
        },
    ]
}

/// §8.7–8.8: the floating IP, reached from outside (ICMP, TCP) and used
/// by its VM to go out (ICMP, TCP).
fn floating_ip(c: &Cast) -> Vec<LabScenario> {
    let a = c.a;
    let ext_http = SocketAddrV4::new(EXTERNAL_HOST, EXTERNAL_HTTP_PORT);
    let vm_http = SocketAddrV4::new(c.fip, VM_HTTP_PORT);
    vec![
        LabScenario {
            id: "fip-in-ping",
            title: format!("external host {EXTERNAL_HOST} pings floating IP {}", c.fip),
            walk: "§8.8: the host's fg- port answers ARP for the floating IP (proxy ARP); \
                   the fip namespace routes it over fpr/rfp to the qrouter, which DNATs it \
                   to the VM",
            from: Sender::External,
            probe: Probe::Ping { dst: c.fip },
            first: c.first_from_outside("icmp,icmp_type=8,icmp_code=0"),
        },
        LabScenario {
            id: "fip-in-tcp",
            title: format!(
                "external host connects to http://{vm_http}/ ({} listens)",
                a.name
            ),
            walk: "§8.8 over TCP: DNAT to the VM's fixed address; the VM sees the \
                   external host's own address",
            from: Sender::External,
            probe: Probe::Http {
                server: vm(a),
                to: vm_http,
                seen_as: SeenAs::ExternalSender,
            },
            first: c.first_from_outside(&format!(
                "tcp,tp_src={TRACE_SPORT},tp_dst={VM_HTTP_PORT},tcp_flags=0x002"
            )),
        },
        LabScenario {
            id: "fip-out-ping",
            title: format!(
                "{} -> {EXTERNAL_HOST} from its floating IP {}",
                a.name, c.fip
            ),
            walk: "§8.7: the FIP's ip rule sends it to rfp-; the qrouter SNATs it to the \
                   floating IP; the fip namespace sends it out of fg- on this host",
            from: vm(a),
            probe: Probe::Ping { dst: EXTERNAL_HOST },
            first: FirstPacket {
                packet: icmp_echo(a, c.gw_mac, EXTERNAL_HOST),
                hosts: hosts(&[&a.host]),
            },
        },
        LabScenario {
            id: "fip-out-http",
            title: format!("{} fetches http://{ext_http}/ (seen as {})", a.name, c.fip),
            walk: "§8.7 over TCP: the external server sees the floating IP",
            from: vm(a),
            probe: Probe::Http {
                server: Sender::External,
                to: ext_http,
                seen_as: SeenAs::Addr(c.fip),
            },
            first: FirstPacket {
                packet: tcp_syn(a, c.gw_mac, ext_http),
                hosts: hosts(&[&a.host]),
            },
        },
    ]
}

/// What one scenario did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Outcome {
    pub id: String,
    pub title: String,
    pub walk: String,
    pub passed: bool,
    /// What was observed (replies, addresses), or why it failed.
    pub detail: String,
    /// The first packet's trace on each host it crossed, in order.
    pub traces: Vec<HostTrace>,
}

impl Outcome {
    /// What scenario `s` gave, its traces still to add.
    pub fn of(s: &LabScenario, passed: bool, detail: String) -> Outcome {
        Outcome {
            id: s.id.to_string(),
            title: s.title.clone(),
            walk: s.walk.to_string(),
            passed,
            detail,
            traces: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct HostTrace {
    pub host: String,
    pub input: String,
    /// The trace as `pipeline::trace::Trace` serialises it.
    pub trace: serde_json::Value,
    /// The trace as `vswitchctl trace` prints it.
    pub text: String,
}

/// Follows the first packet across hosts: traces it on the first host,
/// then the frame it sends out of an uplink NIC on the next host's NIC of
/// the same bridge, and so on. `trace(host, packet)` asks one host for the
/// trace as JSON and as text.
pub fn trace_across(
    t: &Topology,
    first: &FirstPacket,
    mut trace: impl FnMut(&str, &str) -> Result<(serde_json::Value, String), TraceError>,
) -> Result<Vec<HostTrace>, TraceError> {
    let mut out = Vec::new();
    let mut packet = first.packet.clone();
    for (i, host) in first.hosts.iter().enumerate() {
        let (v, text) = trace(host, &packet)?;
        out.push(HostTrace {
            host: host.clone(),
            input: packet.clone(),
            trace: v.clone(),
            text,
        });
        let Some(next) = first.hosts.get(i + 1) else {
            break;
        };
        let this = t.hosts.iter().find(|h| &h.name == host);
        let next_h = t.hosts.iter().find(|h| &h.name == next);
        let (Some(this), Some(next_h)) = (this, next_h) else {
            return Err(TraceError::UnknownHost {
                host: host.clone(),
                next: next.clone(),
            });
        };
        // The first output on one of this host's NICs, entering the next
        // host on its NIC of the same bridge.
        let events = v.get("events").and_then(|e| e.as_array());
        let hop = events.into_iter().flatten().find_map(|e| {
            if e.get("event")?.as_str()? != "output" {
                return None;
            }
            let port = e.get("port")?.as_str()?;
            let bridge = this.nics.iter().find(|(_, nic)| *nic == port)?.0;
            let nic = next_h.nics.get(bridge)?;
            Some(format!("in_port={nic},{}", e.get("packet")?.as_str()?))
        });
        match hop {
            Some(p) => packet = p,
            None => break,
        }
    }
    Ok(out)
}

/// The article-style summary of one host's trace: bridge, table hits and
/// their actions, NORMAL's decisions, router steps (rules, routes, NAT),
/// outputs and drops.
pub fn brief(h: &HostTrace) -> Vec<String> {
    let mut lines = vec![format!("{}: {}", h.host, h.input)];
    let events = h.trace.get("events").and_then(|e| e.as_array());
    for e in events.into_iter().flatten() {
        let s = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let line = match s("event") {
            "bridge" => format!("  {} (in {})", s("bridge"), s("in_port")),
            "table" => match e.get("flow").and_then(|f| f.as_str()) {
                Some(f) => format!("    {f}"),
                None => format!(
                    "    table={} miss",
                    e.get("table").and_then(|t| t.as_u64()).unwrap_or(0)
                ),
            },
            "normal" => format!("      NORMAL: {}", s("decision")),
            "router" => format!("    [{}] {}", s("instance"), s("step")),
            "output" => format!("    -> {}: {}", s("port"), s("packet")),
            "drop" => format!("    -> drop ({})", s("reason")),
            "note" => format!("    >> {}", s("text")),
            _ => continue,
        };
        lines.push(line);
    }
    lines
}
