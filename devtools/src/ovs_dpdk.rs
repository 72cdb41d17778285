//! The replay benchmark's side-by-side run: Open vSwitch with DPDK
//! (`datapath_type=netdev`, one PMD on the core our worker uses, `net_pcap`
//! with `infinite_rx=1` in, `net_null` out, no hugepages) forwarding the
//! same capture through the same Neutron flows.
//!
//! The model is built from our own switch after the scenario's warm-up:
//! - every bridge, port (OpenFlow number, VLAN tag, patch peer) and flow
//!   of the host as our switch compiled them (`dump-flows`, loaded with
//!   `ovs-ofctl add-flows`);
//! - the MAC tables NORMAL learned during the warm-up (`fdb/add`), so both
//!   switches start from the same steady state;
//! - the router namespaces, which Open vSwitch does not have, as OpenFlow
//!   bridges joined by patch ports in place of their internal ports: the
//!   qrouter (`br-qr`: match the interface MAC, `dec_ttl`, per neighbour a
//!   /32 that rewrites both MACs and outputs on the right interface; DVR's
//!   neighbours are permanent) and, on the SNAT host, the snat namespace
//!   (`br-snat`: `dec_ttl`, `ct(commit,nat(src=gateway))` in one pass, the
//!   upstream router's MAC, out of the `qg-` port); and, where a floating
//!   IP's VM lives, the FIP namespace folded into `br-qr` behind a patch in
//!   place of its `fg-` port: from the VM to anywhere but its tenant
//!   subnets, `ct(commit,nat(src=floating IP))`, the second `dec_ttl`, the
//!   upstream router's MAC, out of `fg-`; to the floating IP from `fg-`,
//!   `ct(commit,nat(dst=fixed IP))`, two `dec_ttl`s, the VM's MACs, out of
//!   its subnet's interface (one pass each). The model does less than the
//!   namespaces (no conntrack for east-west routing, no ip rules, no
//!   re-lookup after NAT), so the ratio errs in Open vSwitch's favour.
//!
//! Every other port is a `net_null` device with `no-rx=1` (without it
//! `net_null` generates frames on receive and the PMD spends its time on
//! them), as our run discards on every port but the input.
//!
//! Before a measurement the model is checked: the capture's first frame,
//! traced by `ofproto/trace`, must leave by the same ports with the same
//! MACs, VLAN, addresses and TTL as our own trace of it (`Session::check`;
//! the datapath actions are replayed on the traced flow, `ct(nat)`
//! included). A model that forwards differently is an error, not a
//! figure. Counters are one `dpctl/show -s` snapshot of every port at
//! each end of the interval, and `pmd-stats-show` for cycles per packet.
//!
//! ovs-vswitchd runs in a network namespace of its own (`unshare --net`),
//! so the bridges' tap devices never appear on the machine; ovsdb-server
//! and vswitchd are stopped by pid file and their directory removed when
//! the `Session` is dropped, on error and panic too.
//!
//! May call: `traffic` (the warm-up, `warm_switch`), `spec` (the upstream
//! router's MAC), vswitch's daemon and `render::dump_flows`, pipeline's
//! trace (`ours_egress`); Open vSwitch's programs as processes.
#![deny(unsafe_code)]

use crate::traffic::TrafficError;
use pipeline::key::Mac;
use pipeline::switch::{PortKind, Switch, VlanMode};
use pipeline::xlate::trace::TraceInputError;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use topology::Topology;
use vswitch::daemon::DaemonError;
use vswitch::render::ViewError;

/// Why the side-by-side run could not be made or measured. Each error
/// names the command, file, port or frame; the benchmark prints it as the
/// point's failure.
#[derive(Debug, thiserror::Error)]
pub enum OvsDpdkError {
    // Our switch, the model's source.
    #[error(transparent)]
    Traffic(#[from] TrafficError),
    #[error("warm-up config: {0}")]
    WarmUpConfig(#[source] toml::de::Error),
    #[error("{0}")]
    Daemon(#[from] DaemonError),
    #[error("{0}")]
    DumpFlows(#[from] ViewError),
    #[error("{0}")]
    OurTrace(#[from] TraceInputError),

    // Running Open vSwitch.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A bridge's flows could not be written for `ovs-ofctl add-flows`.
    #[error("{source}")]
    FlowsFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// `program` failed; `args` are its arguments (the first 300
    /// characters), `stderr` what it said.
    #[error("{program} {args}: {stderr}")]
    Command {
        program: String,
        args: String,
        stderr: String,
    },
    #[error("ovs-vswitchd is not running")]
    NotRunning,
    /// An OpenFlow exchange with a bridge (`packet-out`s) failed.
    #[error("OpenFlow to {}: {source}", path.display())]
    OpenFlow {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bridge answered a `packet-out` with an OpenFlow error.
    #[error("OpenFlow error from {bridge}: type {kind}, code {code}")]
    OpenFlowError {
        bridge: String,
        kind: u16,
        code: u16,
    },
    #[error("ovs-vswitchd did not come up; see {}/ovs-vswitchd.log", dir.display())]
    NotUp { dir: PathBuf },
    #[error("the capture's first pass ({frames} frames) did not come through; {got} did")]
    FirstPass { frames: u64, got: u64 },

    // What it says.
    #[error("model: no port {0}")]
    NoModelPort(String),
    /// `ofproto/trace` printed no line starting with `line`.
    #[error("ofproto/trace: no `{line}` line in\n{output}")]
    TraceLine { line: &'static str, output: String },
    #[error(transparent)]
    Flow(#[from] ActionsError),
    /// The datapath actions of `trace` could not be followed.
    #[error("{source}\nofproto/trace:\n{trace}")]
    DatapathActions {
        #[source]
        source: ActionsError,
        trace: String,
    },
    /// The model is not our switch: the first frame leaves differently.
    #[error(
        "the OVS model forwards a frame from {in_port} differently from vswitch\nvswitch:\n{}OVS (ofproto/trace):\n{}",
        egress_lines(ours),
        egress_lines(theirs)
    )]
    ForwardsDifferently {
        in_port: String,
        ours: Vec<Egress>,
        theirs: Vec<Egress>,
    },
}

/// What could not be followed in an `ofproto/trace` flow or datapath
/// action list.
#[derive(Debug, thiserror::Error)]
pub enum ActionsError {
    #[error("Flow: vlan_tci={0}")]
    VlanTci(String),
    #[error("`{key}={value}`")]
    Field { key: String, value: String },
    #[error("datapath port {0} is not in dpctl/show")]
    UnknownPort(u32),
    #[error("`{0}`")]
    Action(String),
    #[error("`{action}`: source {ip}")]
    NatSource { action: String, ip: String },
    /// A recirculation or an upcall: the trace stops there.
    #[error("datapath action `{0}`: not one pass")]
    NotOnePass(String),
}

/// Copies of a frame, a line each (`(dropped)` for none).
fn egress_lines(v: &[Egress]) -> String {
    if v.is_empty() {
        "  (dropped)\n".to_string()
    } else {
        v.iter().map(|e| format!("  {e}\n")).collect()
    }
}

/// Debian's `openvswitch-switch-dpdk` binary.
pub const DEFAULT_BINARY: &str = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk";

/// util-linux `unshare`, to give ovs-vswitchd a network namespace.
const UNSHARE: &str = "/usr/bin/unshare";

/// The scenarios the model covers (snat-reply's connections are made by
/// its warm-up's egress frames, sent into the bridges first:
/// `Model::preload`).
pub const SCENARIOS: [&str; 9] = [
    "l2-egress",
    "l2-ingress",
    "dvr-egress",
    "dvr-ingress",
    "routed-same-host",
    "snat-egress",
    "snat-reply",
    "fip-egress",
    "fip-ingress",
];

/// The OVS-DPDK binary to run (`VSWITCH_BENCH_OVS` overrides), if it is
/// installed and we are root (DPDK needs it).
pub fn binary() -> Option<PathBuf> {
    crate::shipped::installed("VSWITCH_BENCH_OVS", DEFAULT_BINARY)
}

/// One port of the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OvsPort {
    pub name: String,
    pub ofport: u32,
    pub tag: Option<u16>,
    /// `type=...` and options, as `ovs-vsctl set Interface` arguments.
    pub interface: Vec<String>,
}

/// One bridge of the model.
#[derive(Clone, Debug, Default)]
pub struct OvsBridge {
    pub name: String,
    pub ports: Vec<OvsPort>,
    /// `ovs-ofctl add-flows` text.
    pub flows: String,
}

/// What Open vSwitch is given.
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub bridges: Vec<OvsBridge>,
    /// (bridge, port, VLAN, MAC) for `ovs-appctl fdb/add`.
    pub fdb: Vec<(String, String, u16, Mac)>,
    /// The port frames come in by, and the DPDK devices by port name.
    pub in_port: String,
    pub devices: Vec<(String, String)>,
    /// Frames sent into the bridges (OpenFlow packet-outs, as arriving on
    /// the named port) before traffic is measured: what makes the
    /// connections replies belong to.
    pub preload: Vec<(String, Vec<Vec<u8>>)>,
    /// Poll-mode threads (one per receive queue of the input), on the
    /// measured core and the ones below it.
    pub pmds: usize,
    /// The input port is added last, once the flows are in: its capture's
    /// first pass is measured (every packet a new connection), so none of
    /// it may meet a bridge without flows.
    pub in_port_last: bool,
}

/// The devargs of a `net_pcap` device replaying `pcaps` forever, one
/// receive queue each.
pub fn pcap_devargs(device: &str, pcaps: &[PathBuf]) -> String {
    let mut d = device.to_string();
    for p in pcaps {
        d.push_str(&format!(",rx_pcap={}", p.display()));
    }
    d.push_str(",infinite_rx=1");
    d
}

impl Model {
    pub fn n_flows(&self) -> usize {
        self.bridges
            .iter()
            .map(|b| b.flows.lines().filter(|l| !l.trim().is_empty()).count())
            .sum()
    }
}

/// A flow line of `dump-flows` without its statistics.
fn strip_stats(line: &str) -> String {
    line.split(", ")
        .flat_map(|part| part.split(','))
        .filter(|f| {
            let f = f.trim();
            !(f.starts_with("duration=")
                || f.starts_with("n_packets=")
                || f.starts_with("n_bytes=")
                || f.starts_with("idle_age=")
                || f.starts_with("hard_age="))
        })
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(",")
        // the match and the actions are separated by a space
        .replacen(",actions=", " actions=", 1)
}

/// Builds the model of `host` from our switch `sw` (after warm-up) and
/// the topology, with `in_port` reading `pcap`.
pub fn model(
    sw: &Switch,
    t: &Topology,
    host: &str,
    in_port: &str,
    pcaps: &[PathBuf],
    now_ns: u64,
) -> Result<Model, OvsDpdkError> {
    let mut m = Model {
        in_port: in_port.to_string(),
        pmds: pcaps.len().max(1),
        ..Model::default()
    };
    let routers = RouterPorts::of(sw, t, host);
    let mut nulls = 0;
    for b in &sw.bridges {
        let mut ob = OvsBridge {
            name: b.name.clone(),
            ..OvsBridge::default()
        };
        for id in &b.ports {
            let Some(p) = sw.port(*id) else { continue };
            // The bridge's own (LOCAL) port: Open vSwitch makes its own.
            if p.name == b.name {
                continue;
            }
            let tag = match p.vlan {
                VlanMode::Access { tag } => Some(tag),
                VlanMode::Trunk { .. } => None,
            };
            let interface = match &p.kind {
                PortKind::Patch { peer } => {
                    vec!["type=patch".into(), format!("options:peer={peer}")]
                }
                PortKind::Internal if routers.modelled(&p.name) => {
                    vec!["type=patch".into(), format!("options:peer=r-{}", p.name)]
                }
                _ => {
                    let dev = if p.name == in_port {
                        pcap_devargs("net_pcap0", pcaps)
                    } else {
                        let dev = format!("net_null{nulls},no-rx=1");
                        nulls += 1;
                        dev
                    };
                    m.devices.push((p.name.clone(), dev.clone()));
                    let mut interface = vec![
                        "type=dpdk".into(),
                        format!("options:dpdk-devargs=\"{dev}\""),
                    ];
                    if p.name == in_port && pcaps.len() > 1 {
                        interface.push(format!("options:n_rxq={}", pcaps.len()));
                    }
                    interface
                }
            };
            ob.ports.push(OvsPort {
                name: p.name.clone(),
                ofport: p.ofport,
                tag,
                interface,
            });
        }
        let dump = vswitch::render::dump_flows(sw, &b.name, now_ns)?;
        for l in dump.lines().filter(|l| !l.trim().is_empty()) {
            let _ = writeln!(ob.flows, "{}", strip_stats(l));
        }
        for r in b.macs.rows(now_ns) {
            if let Some(p) = sw.port(r.port) {
                m.fdb.push((b.name.clone(), p.name.clone(), r.vlan, r.mac));
            }
        }
        m.bridges.push(ob);
    }
    if !routers.qr.is_empty() {
        m.bridges
            .push(qrouter_bridge(t, host, &routers.qr, &routers.fg));
    }
    if let Some(gw) = routers.snat_gw {
        m.bridges.push(snat_bridge(t, gw, &routers.snat));
    }
    Ok(m)
}

/// The router ports of a host that the model replaces with patch ports
/// to its router bridges: qrouter interfaces (every host), and on the
/// SNAT host the snat namespace's sg- and qg- ports.
struct RouterPorts<'a> {
    /// qr- ports: device, MAC, subnet.
    qr: Vec<(&'a str, Mac, String)>,
    /// sg- ports: device, MAC, subnet.
    snat: Vec<(&'a str, Mac, String)>,
    /// The qg- port: device, MAC, the router's gateway address.
    snat_gw: Option<(&'a str, Mac, Ipv4Addr)>,
    /// fg- ports (the FIP namespace's): device, MAC.
    fg: Vec<(&'a str, Mac)>,
}

impl<'a> RouterPorts<'a> {
    /// The router ports of `t`'s routers that `host`'s switch `sw` has.
    fn of(sw: &Switch, t: &'a Topology, host: &str) -> RouterPorts<'a> {
        let mut ports = RouterPorts {
            qr: Vec::new(),
            snat: Vec::new(),
            snat_gw: None,
            fg: Vec::new(),
        };
        let on_host = |dev: &str| sw.port_by_name(dev).is_some();
        for r in &t.routers {
            let snat_here = r.snat_host.as_deref() == Some(host);
            for i in &r.interfaces {
                if on_host(&i.device) {
                    ports.qr.push((&i.device, i.mac, i.subnet.clone()));
                }
                if snat_here {
                    if let (Some(d), Some(mac)) = (&i.snat_device, i.snat_mac) {
                        if on_host(d) {
                            ports.snat.push((d, mac, i.subnet.clone()));
                        }
                    }
                }
            }
            if let Some(g) = &r.gateway {
                if snat_here && on_host(&g.device) {
                    ports.snat_gw = Some((&g.device, g.mac, g.ip));
                }
            }
        }
        for f in t.fip_gateways.iter().filter(|f| f.host == host) {
            if on_host(&f.device) {
                ports.fg.push((&f.device, f.mac));
            }
        }
        ports
    }

    /// Whether port `name` is one of them.
    fn modelled(&self, name: &str) -> bool {
        self.fg.iter().any(|(d, _)| *d == name)
            || self.qr.iter().any(|(d, _, _)| *d == name)
            || self.snat.iter().any(|(d, _, _)| *d == name)
            || self.snat_gw.is_some_and(|(d, _, _)| d == name)
    }
}

/// The router bridge's end (`r-DEV`, OpenFlow port `ofport`) of the patch
/// that replaces router port `dev`.
fn router_patch(dev: &str, ofport: u32) -> OvsPort {
    OvsPort {
        name: format!("r-{dev}"),
        ofport,
        tag: None,
        interface: vec!["type=patch".into(), format!("options:peer={dev}")],
    }
}

/// `br-qr`, the qrouter as flows: a packet to an interface's MAC has its
/// TTL decremented and is sent, per destination VM (DVR's permanent
/// neighbours: every VM port of the subnet's network), out of that
/// subnet's interface with both MACs rewritten. With the host's fg- ports
/// (`fg`), the FIP namespace too: a floating IP's VM on `host` reaches
/// anything else from its floating IP, and the floating IP reaches it.
fn qrouter_bridge(
    t: &Topology,
    host: &str,
    qr: &[(&str, Mac, String)],
    fg: &[(&str, Mac)],
) -> OvsBridge {
    let mut b = OvsBridge {
        name: "br-qr".into(),
        ..OvsBridge::default()
    };
    let mut f = String::from("table=0,priority=0 actions=drop\ntable=1,priority=0 actions=drop\n");
    for (i, (dev, mac, subnet)) in qr.iter().enumerate() {
        b.ports.push(router_patch(dev, 1 + i as u32));
        let _ = writeln!(
            f,
            "table=0,priority=10,ip,in_port=r-{dev},dl_dst={mac} actions=dec_ttl,goto_table:1"
        );
        for vm in vms_on(t, subnet) {
            let _ = writeln!(
                f,
                "table=1,priority=10,ip,nw_dst={} actions=mod_dl_src:{mac},mod_dl_dst:{},output:r-{dev}",
                vm.ip, vm.mac
            );
        }
    }
    let upstream = crate::spec::UPSTREAM_MAC;
    for (j, (fg_dev, fg_mac)) in fg.iter().enumerate() {
        b.ports
            .push(router_patch(fg_dev, 1 + (qr.len() + j) as u32));
        for fip in &t.floating_ips {
            let Some(vm) = fip.port.as_deref().and_then(|p| t.port(p)) else {
                continue;
            };
            if vm.host != host {
                continue;
            }
            let Some((qr_dev, qr_mac, _)) = qr.iter().find(|(_, _, sub)| {
                t.subnets
                    .iter()
                    .any(|s| s.name == *sub && s.network == vm.network)
            }) else {
                continue;
            };
            let _ = writeln!(
                f,
                "table=1,priority=5,ip,nw_src={} actions=ct(commit,zone=2,nat(src={})),dec_ttl,mod_dl_src:{fg_mac},mod_dl_dst:{upstream},output:r-{fg_dev}",
                vm.ip, fip.address
            );
            let _ = writeln!(
                f,
                "table=0,priority=10,ip,in_port=r-{fg_dev},dl_dst={fg_mac},nw_dst={} actions=dec_ttl,ct(commit,zone=2,nat(dst={})),dec_ttl,mod_dl_src:{qr_mac},mod_dl_dst:{},output:r-{qr_dev}",
                fip.address, vm.ip, vm.mac
            );
        }
    }
    b.flows = f;
    b
}

/// The VM ports of `subnet`'s network.
fn vms_on<'a>(t: &'a Topology, subnet: &str) -> impl Iterator<Item = &'a topology::model::Port> {
    let net = t
        .subnets
        .iter()
        .find(|s| s.name == subnet)
        .map_or("", |s| s.network.as_str());
    t.ports.iter().filter(move |p| p.network == net)
}

/// `br-snat`, the snat namespace as flows: a packet to an sg- port's MAC
/// has its TTL decremented, its source translated to the router's
/// gateway address (conntrack, one pass) and leaves by the qg- port
/// (`gw`) to the upstream router; a reply to the gateway address is
/// translated back (conntrack, then the table after it) and routed to
/// the VM it is for, out of the sg- port of the VM's subnet.
fn snat_bridge(t: &Topology, gw: (&str, Mac, Ipv4Addr), snat: &[(&str, Mac, String)]) -> OvsBridge {
    let (gw_dev, gw_mac, gw_ip) = gw;
    let mut b = OvsBridge {
        name: "br-snat".into(),
        ..OvsBridge::default()
    };
    b.ports.push(router_patch(gw_dev, 1));
    let upstream = crate::spec::UPSTREAM_MAC;
    let mut f = String::from("table=0,priority=0 actions=drop\ntable=1,priority=0 actions=drop\n");
    let _ = writeln!(
        f,
        "table=0,priority=10,ip,in_port=r-{gw_dev},dl_dst={gw_mac},nw_dst={gw_ip} actions=ct(zone=1,nat,table=1)"
    );
    for (i, (dev, mac, subnet)) in snat.iter().enumerate() {
        b.ports.push(router_patch(dev, 2 + i as u32));
        let _ = writeln!(
            f,
            "table=0,priority=10,ip,in_port=r-{dev},dl_dst={mac} actions=dec_ttl,ct(commit,zone=1,nat(src={gw_ip})),mod_dl_src:{gw_mac},mod_dl_dst:{upstream},output:r-{gw_dev}"
        );
        for vm in vms_on(t, subnet) {
            let _ = writeln!(
                f,
                "table=1,priority=10,ct_state=+trk+est,ip,nw_dst={} actions=dec_ttl,mod_dl_src:{mac},mod_dl_dst:{},output:r-{dev}",
                vm.ip, vm.mac
            );
        }
    }
    b.flows = f;
    b
}

/// Our switch for scenario `s` after its warm-up, brought there as
/// `replay::run_point` does (the warm-up frames through
/// `Daemon::process_local`), and the scenario's traffic (`count` 64-byte
/// frames over `flows` flows).
pub fn warm_switch(
    t: &Topology,
    s: crate::traffic::TrafficScenario,
    flows: usize,
    count: usize,
) -> Result<(std::sync::Arc<Switch>, crate::traffic::Traffic), OvsDpdkError> {
    let tr = crate::traffic::generate(t, s, flows, crate::traffic::FrameSize::Fixed(64), count)?;
    let text = format!(
        "host = \"{}\"\ntopology = \"unused\"\nsocket = \"{}\"\nlog_level = \"warn\"\n",
        s.host(),
        std::env::temp_dir()
            .join("vswitch-ovs-unused.sock")
            .display()
    );
    let cfg: vswitch::config::DaemonConfig =
        toml::from_str(&text).map_err(OvsDpdkError::WarmUpConfig)?;
    let d = vswitch::daemon::Daemon::start_with(&cfg, t.clone())?;
    for (port, frames) in &tr.warmup {
        d.process_local(port, frames)?;
    }
    let sw = d.shared.switch();
    d.stop();
    Ok((sw, tr))
}

/// A private Open vSwitch: ovsdb-server and ovs-vswitchd under `dir`,
/// stopped (by pid file) and removed when dropped.
struct Ovs {
    dir: PathBuf,
    ctl: Option<PathBuf>,
}

impl Ovs {
    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        let d = &self.dir;
        c.env("OVS_RUNDIR", d)
            .env("OVS_DBDIR", d)
            .env("OVS_LOGDIR", d)
            .env("OVS_SYSCONFDIR", d);
        c
    }

    fn run(&self, prog: &str, args: &[String]) -> Result<String, OvsDpdkError> {
        let out = self
            .cmd(prog)
            .args(args)
            .output()
            .map_err(|source| OvsDpdkError::Spawn {
                program: prog.to_string(),
                source,
            })?;
        if !out.status.success() {
            return Err(OvsDpdkError::Command {
                program: prog.to_string(),
                args: args.join(" ").chars().take(300).collect(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn vsctl(&self, args: &[String]) -> Result<String, OvsDpdkError> {
        let mut a = vec![format!("--db=unix:{}/db.sock", self.dir.display())];
        a.extend_from_slice(args);
        self.run("ovs-vsctl", &a)
    }

    fn appctl(&self, args: &[&str]) -> Result<String, OvsDpdkError> {
        let ctl = self.ctl.as_ref().ok_or(OvsDpdkError::NotRunning)?;
        let mut a = vec!["-t".to_string(), ctl.display().to_string()];
        a.extend(args.iter().map(|s| s.to_string()));
        self.run("ovs-appctl", &a)
    }

    fn start(bin: &Path, dir: &Path, pmd_mask: u64, other: usize) -> Result<Ovs, OvsDpdkError> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).map_err(|source| OvsDpdkError::File {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut o = Ovs {
            dir: dir.to_path_buf(),
            ctl: None,
        };
        let d = dir.display().to_string();
        o.run(
            "ovsdb-tool",
            &[
                "create".into(),
                format!("{d}/conf.db"),
                "/usr/share/openvswitch/vswitch.ovsschema".into(),
            ],
        )?;
        o.run(
            "ovsdb-server",
            &[
                format!("{d}/conf.db"),
                format!("--remote=punix:{d}/db.sock"),
                format!("--pidfile={d}/ovsdb-server.pid"),
                "--detach".into(),
                format!("--log-file={d}/ovsdb-server.log"),
            ],
        )?;
        o.vsctl(&["--no-wait".into(), "init".into()])?;
        o.vsctl(&[
            "--no-wait".into(),
            "set".into(),
            "Open_vSwitch".into(),
            ".".into(),
            "other_config:dpdk-init=true".into(),
            // --legacy-mem: otherwise OVS adds --in-memory, which EAL
            // refuses with --no-huge.
            "other_config:dpdk-extra=\"--no-huge -m 1024 --no-pci --no-telemetry --legacy-mem\""
                .into(),
            format!("other_config:dpdk-lcore-mask=0x{:x}", 1u64 << other),
            format!("other_config:pmd-cpu-mask=0x{pmd_mask:x}"),
        ])?;
        // In a network namespace of its own when `unshare` is there: the
        // bridges' internal ports are tap devices, which would otherwise
        // appear (br-int, br-ex, ...) in the machine's namespace.
        let (prog, mut args) = if Path::new(UNSHARE).exists() {
            (
                UNSHARE.to_string(),
                vec!["--net".into(), "--".into(), bin.display().to_string()],
            )
        } else {
            (bin.display().to_string(), Vec::new())
        };
        args.extend([
            format!("unix:{d}/db.sock"),
            format!("--pidfile={d}/ovs-vswitchd.pid"),
            "--detach".into(),
            format!("--log-file={d}/ovs-vswitchd.log"),
        ]);
        o.run(&prog, &args)?;
        let prog = bin
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(pid) = std::fs::read_to_string(dir.join("ovs-vswitchd.pid"))
                .ok()
                .map(|s| s.trim().to_string())
            {
                let ctl = dir.join(format!("{prog}.{pid}.ctl"));
                if ctl.exists() {
                    o.ctl = Some(ctl);
                    if o.appctl(&["version"]).is_ok() {
                        return Ok(o);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(OvsDpdkError::NotUp {
            dir: dir.to_path_buf(),
        })
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        for f in ["ovs-vswitchd.pid", "ovsdb-server.pid"] {
            let Some(pid) = std::fs::read_to_string(self.dir.join(f))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
            else {
                continue;
            };
            vswitch::os::terminate(pid, Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What Open vSwitch did.
#[derive(Clone, Debug, Default)]
pub struct OvsMeasured {
    pub mpps: f64,
    pub cycles_per_packet: f64,
    pub rx_packets: u64,
    /// Frames out of `out_port` and out of every port, per frame in.
    pub delivered: f64,
    pub outputs_per_packet: f64,
    pub flows: usize,
    /// Packets the ports dropped over the interval, by `rx_dropped:PORT`
    /// / `tx_dropped:PORT` (only those that dropped).
    pub drops: BTreeMap<String, u64>,
}

/// Live counters of every datapath port, by name (`dpctl/show -s`: one
/// snapshot, read from the devices; the database's copy is refreshed only
/// every few seconds).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct PortCounters {
    rx_packets: u64,
    rx_dropped: u64,
    tx_packets: u64,
    tx_dropped: u64,
}

fn port_counters(show: &str) -> BTreeMap<String, PortCounters> {
    let mut out: BTreeMap<String, PortCounters> = BTreeMap::new();
    let mut port: Option<String> = None;
    let num = |l: &str, k: &str| {
        l.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    for l in show.lines() {
        let t = l.trim();
        if let Some(rest) = t.strip_prefix("port ") {
            port = rest
                .split_once(": ")
                .and_then(|(_, n)| n.split_whitespace().next())
                .map(str::to_string);
        } else if let Some(p) = &port {
            let c = out.entry(p.clone()).or_default();
            if t.starts_with("RX packets:") {
                c.rx_packets = num(t, "packets:");
                c.rx_dropped = num(t, "dropped:");
            } else if t.starts_with("TX packets:") {
                c.tx_packets = num(t, "packets:");
                c.tx_dropped = num(t, "dropped:");
            }
        }
    }
    out
}

/// A private Open vSwitch running a model: bridges, ports and flows
/// installed, the MAC tables filled. Stopped and removed when dropped.
pub struct Session {
    ovs: Ovs,
    model: Model,
}

impl Session {
    /// Starts OVS-DPDK (`bin`) under `dir` with its PMD on `core` and
    /// installs `m`.
    pub fn start(bin: &Path, m: &Model, dir: &Path, core: usize) -> Result<Session, OvsDpdkError> {
        let cores = core_affinity::get_core_ids().map_or(1, |c| c.len()).max(1);
        let other = if cores > 1 { (core + 1) % cores } else { core };
        // PMDs on `core` and the cores below it, as our workers are; the
        // input's receive queue i on the i-th of them (pinned: left to
        // itself OVS may give both queues to one PMD for a while).
        let pmd_cores: Vec<usize> = (0..m.pmds.max(1))
            .map(|i| (core + cores - i % cores) % cores)
            .collect();
        let pmd_mask = pmd_cores.iter().fold(0u64, |a, c| a | 1u64 << c);
        let ovs = Ovs::start(bin, dir, pmd_mask, other)?;
        // One transaction: bridges and ports (the input's after the flows
        // when its first pass is measured).
        let in_later = |p: &OvsPort| m.in_port_last && p.name == m.in_port;
        let mut a: Vec<String> = Vec::new();
        for b in &m.bridges {
            a.extend(
                [
                    "--",
                    "add-br",
                    &b.name,
                    "--",
                    "set",
                    "bridge",
                    &b.name,
                    "datapath_type=netdev",
                    "fail_mode=secure",
                ]
                .map(String::from),
            );
            for p in b.ports.iter().filter(|p| !in_later(p)) {
                a.extend(port_args(m, &b.name, p, &pmd_cores));
            }
        }
        ovs.vsctl(&a)?;
        for b in &m.bridges {
            let f = dir.join(format!("{}.flows", b.name));
            std::fs::write(&f, &b.flows).map_err(|source| OvsDpdkError::FlowsFile {
                path: f.clone(),
                source,
            })?;
            ovs.run(
                "ovs-ofctl",
                &[
                    "-O".into(),
                    "OpenFlow13".into(),
                    "del-flows".into(),
                    b.name.clone(),
                ],
            )?;
            ovs.run(
                "ovs-ofctl",
                &[
                    "-O".into(),
                    "OpenFlow13".into(),
                    "add-flows".into(),
                    b.name.clone(),
                    f.display().to_string(),
                ],
            )?;
        }
        let fdb_later = |port: &str| m.in_port_last && port == m.in_port;
        for (b, p, vlan, mac) in m.fdb.iter().filter(|f| !fdb_later(&f.1)) {
            let vlan = vlan.to_string();
            let mac = mac.to_string();
            ovs.appctl(&["fdb/add", b, p, &vlan, &mac])?;
        }
        let s = Session {
            ovs,
            model: m.clone(),
        };
        for (port, frames) in &m.preload {
            s.packet_out(port, frames)?;
        }
        if m.in_port_last {
            let mut a = Vec::new();
            for b in &m.bridges {
                for p in b.ports.iter().filter(|p| in_later(p)) {
                    a.extend(port_args(m, &b.name, p, &pmd_cores));
                }
            }
            s.ovs.vsctl(&a)?;
            for (b, p, vlan, mac) in m.fdb.iter().filter(|f| fdb_later(&f.1)) {
                let vlan = vlan.to_string();
                let mac = mac.to_string();
                s.ovs.appctl(&["fdb/add", b, p, &vlan, &mac])?;
            }
        }
        Ok(s)
    }

    /// The capture's first pass: samples the input's received packets
    /// from the moment the session is up until `frames` came in (at most
    /// `timeout`), and the rate through the middle of it
    /// (`traffic::first_pass_rate`), with what left by `out_port` then.
    pub fn measure_first_pass(
        &self,
        out_port: &str,
        frames: u64,
        timeout: Duration,
    ) -> Result<OvsMeasured, OvsDpdkError> {
        let m = &self.model;
        let t0 = Instant::now();
        let mut samples = Vec::new();
        let mut outs = Vec::new();
        while t0.elapsed() < timeout {
            let c = port_counters(&self.ovs.appctl(&["dpctl/show", "-s"])?);
            let t = t0.elapsed().as_secs_f64();
            let rx = c.get(&m.in_port).map_or(0, |c| c.rx_packets);
            samples.push((t, rx));
            outs.push(c.get(out_port).map_or(0, |c| c.tx_packets));
            if rx >= frames {
                break;
            }
        }
        let Some(w) = crate::traffic::first_pass_rate(&samples, frames) else {
            return Err(OvsDpdkError::FirstPass {
                frames,
                got: samples.last().map_or(0, |s| s.1),
            });
        };
        let out = outs[w.last].saturating_sub(outs[w.first]);
        Ok(OvsMeasured {
            mpps: w.mpps,
            cycles_per_packet: 0.0,
            rx_packets: w.packets,
            delivered: out as f64 / w.packets.max(1) as f64,
            outputs_per_packet: out as f64 / w.packets.max(1) as f64,
            flows: m.n_flows(),
            drops: BTreeMap::new(),
        })
    }

    /// Sends `frames` into the bridge of `port` as if they arrived on it
    /// (OpenFlow 1.3 packet-outs to the tables, over the bridge's
    /// management socket), a barrier after every thousand: returns when
    /// Open vSwitch has processed them all.
    pub fn packet_out(&self, port: &str, frames: &[Vec<u8>]) -> Result<(), OvsDpdkError> {
        use std::io::{Read, Write};
        let no_port = || OvsDpdkError::NoModelPort(port.to_string());
        let bridge = self.bridge_of(port).ok_or_else(no_port)?;
        let ofport = self
            .model
            .bridges
            .iter()
            .flat_map(|b| &b.ports)
            .find(|p| p.name == port)
            .map(|p| p.ofport)
            .ok_or_else(no_port)?;
        let path = self.ovs.dir.join(format!("{bridge}.mgmt"));
        let io = |source| OvsDpdkError::OpenFlow {
            path: path.clone(),
            source,
        };
        let mut sock = std::os::unix::net::UnixStream::connect(&path).map_err(io)?;
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(io)?;
        let mut out = openflow::hello();
        for chunk in frames.chunks(1000) {
            for f in chunk {
                openflow::packet_out(&mut out, ofport, f);
            }
            openflow::barrier(&mut out);
            sock.write_all(&out).map_err(io)?;
            out.clear();
            // Until the barrier's reply; an error message is the answer
            // to a packet-out.
            loop {
                let mut h = [0u8; 8];
                sock.read_exact(&mut h).map_err(io)?;
                let len = (u16::from_be_bytes([h[2], h[3]]) as usize).max(8);
                let mut body = vec![0u8; len - 8];
                sock.read_exact(&mut body).map_err(io)?;
                match h[1] {
                    openflow::ERROR if body.len() >= 4 => {
                        return Err(OvsDpdkError::OpenFlowError {
                            bridge: bridge.to_string(),
                            kind: u16::from_be_bytes([body[0], body[1]]),
                            code: u16::from_be_bytes([body[2], body[3]]),
                        })
                    }
                    openflow::BARRIER_REPLY => break,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn bridge_of(&self, port: &str) -> Option<&str> {
        self.model
            .bridges
            .iter()
            .find(|b| b.ports.iter().any(|p| p.name == port))
            .map(|b| b.name.as_str())
    }

    /// Where `frame`, arriving on `in_port`, leaves and how it looks then,
    /// by `ofproto/trace` (the datapath actions it would install).
    pub fn trace(&self, in_port: &str, frame: &[u8]) -> Result<Vec<Egress>, OvsDpdkError> {
        let bridge = self
            .bridge_of(in_port)
            .ok_or_else(|| OvsDpdkError::NoModelPort(in_port.to_string()))?;
        let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
        let flow = format!("in_port={in_port}");
        let out = self.ovs.appctl(&["ofproto/trace", bridge, &flow, &hex])?;
        let start = out
            .lines()
            .find_map(|l| l.strip_prefix("Flow: "))
            .ok_or_else(|| OvsDpdkError::TraceLine {
                line: "Flow:",
                output: out.clone(),
            })?;
        let actions = out
            .lines()
            .find_map(|l| l.strip_prefix("Datapath actions: "))
            .ok_or_else(|| OvsDpdkError::TraceLine {
                line: "Datapath actions:",
                output: out.clone(),
            })?;
        let ports = datapath_ports(&self.ovs.appctl(&["dpctl/show"])?);
        datapath_egress(actions, &flow_fields(start)?, &ports).map_err(|source| {
            OvsDpdkError::DatapathActions {
                source,
                trace: out.clone(),
            }
        })
    }

    /// Checks that `frame` on `in_port` leaves OVS exactly as it leaves
    /// our switch (`ours`, from [`ours_egress`]).
    pub fn check(&self, in_port: &str, frame: &[u8], ours: &[Egress]) -> Result<(), OvsDpdkError> {
        let mut theirs = self.trace(in_port, frame)?;
        let mut want = ours.to_vec();
        theirs.sort();
        want.sort();
        if theirs == want {
            return Ok(());
        }
        Err(OvsDpdkError::ForwardsDifferently {
            in_port: in_port.to_string(),
            ours: want,
            theirs,
        })
    }

    /// Lets traffic run `seconds` after a settling time and reads the
    /// counters.
    pub fn measure(&self, out_port: &str, seconds: f64) -> Result<OvsMeasured, OvsDpdkError> {
        let m = &self.model;
        // Settle (megaflows and EMC filled), then measure.
        std::thread::sleep(Duration::from_millis(1_500));
        let ovs = &self.ovs;
        let sample = || -> Result<BTreeMap<String, PortCounters>, OvsDpdkError> {
            Ok(port_counters(&ovs.appctl(&["dpctl/show", "-s"])?))
        };
        ovs.appctl(&["dpif-netdev/pmd-stats-clear"])?;
        let c0 = sample()?;
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(seconds));
        let c1 = sample()?;
        let elapsed = t0.elapsed().as_secs_f64();
        let delta = |port: &str, f: fn(&PortCounters) -> u64| {
            let a = c0.get(port).map_or(0, f);
            c1.get(port).map_or(0, f).saturating_sub(a)
        };
        let rx = delta(&m.in_port, |c| c.rx_packets);
        let mut all = 0;
        let mut drops = BTreeMap::new();
        for (p, _) in &m.devices {
            if *p != m.in_port {
                all += delta(p, |c| c.tx_packets);
            }
            for (what, n) in [
                ("rx_dropped", delta(p, |c| c.rx_dropped)),
                ("tx_dropped", delta(p, |c| c.tx_dropped)),
            ] {
                if n > 0 {
                    drops.insert(format!("{what}:{p}"), n);
                }
            }
        }
        let out = delta(out_port, |c| c.tx_packets);
        let stats = ovs.appctl(&["dpif-netdev/pmd-stats-show"])?;
        let cycles = stats
            .lines()
            .find(|l| l.contains("avg processing cycles per packet"))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        let n = rx.max(1) as f64;
        Ok(OvsMeasured {
            mpps: rx as f64 / elapsed / 1e6,
            cycles_per_packet: cycles,
            rx_packets: rx,
            delivered: out as f64 / n,
            outputs_per_packet: all as f64 / n,
            flows: m.n_flows(),
            drops,
        })
    }
}

/// The OpenFlow 1.3 messages `Session::packet_out` sends (OpenFlow 1.3.5
/// §7.1, §7.3.7, §7.3.8).
mod openflow {
    const VERSION: u8 = 0x04;
    const HELLO: u8 = 0;
    pub const ERROR: u8 = 1;
    const PACKET_OUT: u8 = 13;
    const BARRIER_REQUEST: u8 = 20;
    pub const BARRIER_REPLY: u8 = 21;
    /// `OFPP_TABLE`: submit the packet to the first table.
    const PORT_TABLE: u32 = 0xffff_fff9;
    const NO_BUFFER: u32 = 0xffff_ffff;

    fn header(out: &mut Vec<u8>, kind: u8, len: usize) {
        out.extend([VERSION, kind]);
        out.extend((len as u16).to_be_bytes());
        out.extend(0u32.to_be_bytes());
    }

    pub fn hello() -> Vec<u8> {
        let mut out = Vec::new();
        header(&mut out, HELLO, 8);
        out
    }

    /// A packet-out of `frame` as if it came in on `in_port`, to the tables.
    pub fn packet_out(out: &mut Vec<u8>, in_port: u32, frame: &[u8]) {
        const ACTION_LEN: usize = 16;
        header(out, PACKET_OUT, 8 + 16 + ACTION_LEN + frame.len());
        out.extend(NO_BUFFER.to_be_bytes());
        out.extend(in_port.to_be_bytes());
        out.extend((ACTION_LEN as u16).to_be_bytes());
        out.extend([0u8; 6]);
        // OFPAT_OUTPUT to OFPP_TABLE, whole packet.
        out.extend(0u16.to_be_bytes());
        out.extend((ACTION_LEN as u16).to_be_bytes());
        out.extend(PORT_TABLE.to_be_bytes());
        out.extend(0xffffu16.to_be_bytes());
        out.extend([0u8; 6]);
        out.extend_from_slice(frame);
    }

    pub fn barrier(out: &mut Vec<u8>) {
        header(out, BARRIER_REQUEST, 8);
    }
}

/// Runs `m` in a private OVS-DPDK with its PMD on `core` for `seconds`.
/// With `check` (a frame of the capture and where it leaves our switch),
/// the model is first verified to forward that frame the same way
/// (`Session::check`); a difference is an error, not a figure.
pub fn measure(
    bin: &Path,
    m: &Model,
    out_port: &str,
    dir: &Path,
    core: usize,
    seconds: f64,
    check: Option<(&[u8], &[Egress])>,
) -> Result<OvsMeasured, OvsDpdkError> {
    let s = Session::start(bin, m, dir, core)?;
    if let Some((frame, ours)) = check {
        s.check(&m.in_port, frame, ours)?;
    }
    s.measure(out_port, seconds)
}

/// The arguments of an `ovs-vsctl` transaction that add port `p` to
/// bridge `bridge` (its interface, OpenFlow port number and, for a
/// several-queue input, each queue pinned to its PMD).
fn port_args(m: &Model, bridge: &str, p: &OvsPort, pmd_cores: &[usize]) -> Vec<String> {
    let mut a: Vec<String> = ["--", "add-port", bridge, &p.name].map(String::from).into();
    if let Some(t) = p.tag {
        a.push(format!("tag={t}"));
    }
    a.extend(["--", "set", "Interface", &p.name].map(String::from));
    a.extend(p.interface.iter().cloned());
    a.push(format!("ofport_request={}", p.ofport));
    if p.name == m.in_port && pmd_cores.len() > 1 {
        let affinity: Vec<String> = pmd_cores
            .iter()
            .enumerate()
            .map(|(q, c)| format!("{q}:{c}"))
            .collect();
        a.push(format!(
            "other_config:pmd-rxq-affinity=\"{}\"",
            affinity.join(",")
        ));
    }
    a
}

/// A copy of a frame as it leaves a switch: the port and the headers the
/// scenarios change.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Egress {
    pub port: String,
    pub dl_src: Mac,
    pub dl_dst: Mac,
    pub vlan: Option<u16>,
    pub nw_src: Ipv4Addr,
    pub nw_dst: Ipv4Addr,
    pub nw_ttl: u8,
}

impl std::fmt::Display for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: dl_src={} dl_dst={} vlan={} nw_src={} nw_dst={} ttl={}",
            self.port,
            self.dl_src,
            self.dl_dst,
            self.vlan.map_or("none".to_string(), |v| v.to_string()),
            self.nw_src,
            self.nw_dst,
            self.nw_ttl
        )
    }
}

/// Where `frame`, arriving on `in_port`, leaves our switch `sw` (our
/// trace: the same code as the datapath).
pub fn ours_egress(sw: &Switch, in_port: &str, frame: &[u8]) -> Result<Vec<Egress>, OvsDpdkError> {
    let t = pipeline::xlate::trace::trace_frame(sw, in_port, frame, 0)?;
    Ok(t.output_keys()
        .into_iter()
        .map(|(port, k)| Egress {
            port: port.to_string(),
            dl_src: k.dl_src(),
            dl_dst: k.dl_dst(),
            vlan: k.vlan_vid(),
            nw_src: Ipv4Addr::from(k.nw_src()),
            nw_dst: Ipv4Addr::from(k.nw_dst()),
            nw_ttl: k.nw_ttl(),
        })
        .collect())
}

/// The fields of an `ofproto/trace` `Flow:` line (`udp,in_port=6,
/// vlan_tci=0x0000,dl_src=...,nw_ttl=64,...`).
fn flow_fields(line: &str) -> Result<Egress, ActionsError> {
    let mut e = Egress {
        port: String::new(),
        dl_src: Mac::from_u64(0),
        dl_dst: Mac::from_u64(0),
        vlan: None,
        nw_src: Ipv4Addr::UNSPECIFIED,
        nw_dst: Ipv4Addr::UNSPECIFIED,
        nw_ttl: 0,
    };
    for kv in line.split(',') {
        let Some((k, v)) = kv.trim().split_once('=') else {
            continue;
        };
        set_field(&mut e, k, v)?;
        if k == "vlan_tci" {
            let tci = u16::from_str_radix(v.trim_start_matches("0x"), 16)
                .map_err(|_| ActionsError::VlanTci(v.to_string()))?;
            e.vlan = (tci & 0x1000 != 0).then_some(tci & 0x0fff);
        }
    }
    Ok(e)
}

/// Applies one `key=value` of a flow or a datapath `set()` to `e`.
fn set_field(e: &mut Egress, k: &str, v: &str) -> Result<(), ActionsError> {
    // Masked sets print `value/mask`; ours are whole fields.
    let v = v.split('/').next().unwrap_or(v);
    let bad = || ActionsError::Field {
        key: k.to_string(),
        value: v.to_string(),
    };
    match k {
        "dl_src" | "src" if v.contains(':') => e.dl_src = v.parse().map_err(|_| bad())?,
        "dl_dst" | "dst" if v.contains(':') => e.dl_dst = v.parse().map_err(|_| bad())?,
        "nw_src" | "src" => e.nw_src = v.parse().map_err(|_| bad())?,
        "nw_dst" | "dst" => e.nw_dst = v.parse().map_err(|_| bad())?,
        "nw_ttl" | "ttl" => e.nw_ttl = v.parse().map_err(|_| bad())?,
        "dl_vlan" => e.vlan = Some(v.parse().map_err(|_| bad())?),
        _ => {}
    }
    Ok(())
}

/// Datapath port numbers to names, from `dpctl/show` (`  port 3: eth1 (dpdk: ...)`).
fn datapath_ports(show: &str) -> BTreeMap<u32, String> {
    show.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("port ")?;
            let (n, name) = rest.split_once(": ")?;
            let name = name.split_whitespace().next()?;
            Some((n.parse().ok()?, name.to_string()))
        })
        .collect()
}

/// Splits a datapath action list at its top-level commas.
fn split_top(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut from) = (Vec::new(), 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s[from..i].trim());
                from = i + 1;
            }
            _ => {}
        }
    }
    if from < s.len() {
        out.push(s[from..].trim());
    }
    out.retain(|a| !a.is_empty());
    out
}

/// The copies a datapath action list (`ofproto/trace`'s `Datapath
/// actions:`) sends out, starting from the packet `start`: MAC, VLAN and
/// IPv4 rewrites, `ct(...nat(src=...))` (conntrack rewrites the source in
/// the datapath, after the trace) and `clone()` followed; a recirculation
/// or a packet sent to userspace is an error (the trace stops there, so
/// the model would not be one pass).
fn datapath_egress(
    actions: &str,
    start: &Egress,
    ports: &BTreeMap<u32, String>,
) -> Result<Vec<Egress>, ActionsError> {
    let mut out = Vec::new();
    let mut e = start.clone();
    apply_actions(actions.trim(), &mut e, ports, &mut out)?;
    Ok(out)
}

fn apply_actions(
    actions: &str,
    e: &mut Egress,
    ports: &BTreeMap<u32, String>,
    out: &mut Vec<Egress>,
) -> Result<(), ActionsError> {
    let inner = |a: &str, name: &str| {
        a.strip_prefix(name)
            .and_then(|r| r.strip_prefix('('))
            .and_then(|r| r.strip_suffix(')'))
            .map(str::to_string)
    };
    for a in split_top(actions) {
        if a == "drop" {
            continue;
        } else if let Ok(n) = a.parse::<u32>() {
            let port = ports.get(&n).cloned().ok_or(ActionsError::UnknownPort(n))?;
            out.push(Egress { port, ..e.clone() });
        } else if a == "pop_vlan" {
            e.vlan = None;
        } else if let Some(x) = inner(a, "push_vlan") {
            for kv in x.split(',') {
                if let Some(v) = kv.trim().strip_prefix("vid=") {
                    e.vlan = Some(v.parse().map_err(|_| ActionsError::Action(a.to_string()))?);
                }
            }
        } else if let Some(x) = inner(a, "set").or_else(|| inner(a, "masked_set")) {
            // eth(src=..,dst=..), ipv4(src=..,ttl=..); others ignored.
            let (what, fields) = x.split_once('(').unwrap_or((&x, ""));
            if what == "eth" || what == "ipv4" {
                for kv in fields.trim_end_matches(')').split(',') {
                    if let Some((k, v)) = kv.trim().split_once('=') {
                        set_field(e, k, v)?;
                    }
                }
            }
        } else if let Some(x) = inner(a, "ct") {
            for (what, field) in [("nat(src=", &mut e.nw_src), ("nat(dst=", &mut e.nw_dst)] {
                if let Some(i) = x.find(what) {
                    let v = &x[i + what.len()..];
                    let ip = v.split([')', '-', ':', ',']).next().unwrap_or("");
                    *field = ip.parse().map_err(|_| ActionsError::NatSource {
                        action: a.to_string(),
                        ip: ip.to_string(),
                    })?;
                }
            }
        } else if let Some(x) = inner(a, "clone") {
            let mut copy = e.clone();
            apply_actions(&x, &mut copy, ports, out)?;
        } else if a.starts_with("recirc") || a.starts_with("userspace") {
            return Err(ActionsError::NotOnePass(a.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_of(host: &str, in_port: &str) -> Model {
        let t = crate::spec::topology().expect("topology");
        let mut cfg = topology::build_host(&t, host, 1).expect("host");
        let sw = cfg.build().expect("switch");
        model(&sw, &t, host, in_port, &[PathBuf::from("/tmp/x.pcap")], 0).expect("model")
    }

    fn bridge<'a>(m: &'a Model, name: &str) -> &'a OvsBridge {
        m.bridges.iter().find(|b| b.name == name).expect(name)
    }

    #[test]
    fn compute1_routes_through_a_qrouter_bridge() {
        let m = model_of("compute1", "qvo-vm1");
        let int = bridge(&m, "br-int");
        let qr = int.ports.iter().find(|p| p.name == "qr-s1").expect("qr-s1");
        assert_eq!(qr.tag, Some(1));
        assert_eq!(qr.interface, ["type=patch", "options:peer=r-qr-s1"]);
        let vm1 = int.ports.iter().find(|p| p.name == "qvo-vm1").expect("vm1");
        assert!(vm1.interface[1].contains("net_pcap0,rx_pcap=/tmp/x.pcap,infinite_rx=1"));
        let vm2 = int.ports.iter().find(|p| p.name == "qvo-vm2").expect("vm2");
        assert!(vm2.interface[1].contains("no-rx=1"), "{:?}", vm2.interface);
        // The bridges' own ports are Open vSwitch's to make.
        for b in &m.bridges {
            assert!(b.ports.iter().all(|p| p.name != b.name), "{}", b.name);
        }
        // Our flows, as compiled, without statistics.
        assert!(int
            .flows
            .lines()
            .any(|l| l == "cookie=0x0,table=0,priority=9,in_port=qvo-vm1 actions=goto_table:25"));
        assert!(!int.flows.contains("n_packets"));
        // vm5 (10.2.0.15, on compute2) is routed out of qr-s2 with both MACs rewritten.
        let r = bridge(&m, "br-qr");
        assert!(r.flows.contains(
            "table=0,priority=10,ip,in_port=r-qr-s1,dl_dst=fa:16:3e:aa:01:01 actions=dec_ttl,goto_table:1"
        ));
        assert!(r.flows.contains("table=1,priority=10,ip,nw_dst=10.2.0.15 actions=mod_dl_src:fa:16:3e:aa:02:01,mod_dl_dst:fa:16:3e:02:00:15,output:r-qr-s2"), "{}", r.flows);
        // compute1 is not the SNAT host.
        assert!(m.bridges.iter().all(|b| b.name != "br-snat"));
        // The FIP namespace, folded into br-qr behind fg-c1: vm1 leaves
        // from its floating IP, and the floating IP reaches vm1.
        let fg = int.ports.iter().find(|p| p.name == "fg-c1").expect("fg-c1");
        assert_eq!(fg.interface, ["type=patch", "options:peer=r-fg-c1"]);
        assert!(r.flows.contains("table=1,priority=5,ip,nw_src=10.1.0.11 actions=ct(commit,zone=2,nat(src=203.0.113.101)),dec_ttl,mod_dl_src:fa:16:3e:dd:00:21,mod_dl_dst:00:00:5e:00:53:01,output:r-fg-c1"), "{}", r.flows);
        assert!(r.flows.contains("table=0,priority=10,ip,in_port=r-fg-c1,dl_dst=fa:16:3e:dd:00:21,nw_dst=203.0.113.101 actions=dec_ttl,ct(commit,zone=2,nat(dst=10.1.0.11)),dec_ttl,mod_dl_src:fa:16:3e:aa:01:01,mod_dl_dst:fa:16:3e:01:00:11,output:r-qr-s1"), "{}", r.flows);
    }

    #[test]
    fn the_snat_host_translates_in_one_pass() {
        let m = model_of("network1", "eth1");
        let s = bridge(&m, "br-snat");
        assert!(s.flows.contains("in_port=r-sg-s1,dl_dst=fa:16:3e:bb:01:03 actions=dec_ttl,ct(commit,zone=1,nat(src=203.0.113.10)),mod_dl_src:fa:16:3e:cc:00:10,mod_dl_dst:00:00:5e:00:53:01,output:r-qg-r1"), "{}", s.flows);
        let int = bridge(&m, "br-int");
        let qg = int.ports.iter().find(|p| p.name == "qg-r1").expect("qg-r1");
        assert_eq!(qg.interface, ["type=patch", "options:peer=r-qg-r1"]);
        // Replies to the gateway address: translated back, then routed to
        // vm3 (10.1.0.13) out of the sg- port of its subnet.
        assert!(s.flows.contains("table=0,priority=10,ip,in_port=r-qg-r1,dl_dst=fa:16:3e:cc:00:10,nw_dst=203.0.113.10 actions=ct(zone=1,nat,table=1)"), "{}", s.flows);
        assert!(s.flows.contains("table=1,priority=10,ct_state=+trk+est,ip,nw_dst=10.1.0.13 actions=dec_ttl,mod_dl_src:fa:16:3e:bb:01:03,mod_dl_dst:fa:16:3e:01:00:13,output:r-sg-s1"), "{}", s.flows);
    }

    #[test]
    fn a_packet_out_is_the_frame_from_its_port_to_the_tables() {
        let mut out = openflow::hello();
        assert_eq!(out, [4, 0, 0, 8, 0, 0, 0, 0]);
        out.clear();
        openflow::packet_out(&mut out, 3, &[0xaa; 14]);
        assert_eq!(out.len(), 8 + 16 + 16 + 14);
        assert_eq!(
            &out[..4],
            [4, 13, 0, 54],
            "OpenFlow 1.3 PACKET_OUT, its length"
        );
        assert_eq!(&out[8..12], [0xff; 4], "no buffer");
        assert_eq!(&out[12..16], [0, 0, 0, 3], "in_port");
        assert_eq!(&out[16..18], [0, 16], "one action");
        assert_eq!(&out[24..28], [0, 0, 0, 16], "OUTPUT, 16 bytes");
        assert_eq!(&out[28..32], [0xff, 0xff, 0xff, 0xf9], "to OFPP_TABLE");
        assert_eq!(&out[40..], [0xaa; 14]);
    }

    #[test]
    fn the_warm_up_fills_the_mac_tables_ovs_is_given() {
        let t = crate::spec::topology().expect("topology");
        let s = crate::traffic::TrafficScenario::L2Egress;
        let (sw, tr) = warm_switch(&t, s, 1, 1).expect("warm");
        let m = model(
            &sw,
            &t,
            s.host(),
            s.in_port(),
            &[PathBuf::from("/tmp/x.pcap")],
            0,
        )
        .expect("m");
        // vm3 spoke from compute2: learned behind br-int's trunk to br-vlan
        // (local VLAN 1) and on br-vlan's eth1 (VLAN 101).
        let vm3: Mac = "fa:16:3e:01:00:13".parse().expect("mac");
        assert!(
            m.fdb
                .contains(&("br-int".into(), "int-br-vlan".into(), 1, vm3)),
            "{:?}",
            m.fdb
        );
        assert!(
            m.fdb.contains(&("br-vlan".into(), "eth1".into(), 101, vm3)),
            "{:?}",
            m.fdb
        );
        // Our own walk of the first frame: out of eth1, tagged 101.
        let ours = ours_egress(&sw, s.in_port(), &tr.frames[0]).expect("trace");
        assert_eq!(ours.len(), 1, "{ours:?}");
        assert_eq!(ours[0].port, "eth1");
        assert_eq!(ours[0].vlan, Some(101));
        assert_eq!(ours[0].dl_dst, vm3);
    }

    fn ports() -> BTreeMap<u32, String> {
        datapath_ports(
            "netdev@ovs-netdev:\n  lookups: hit:0 missed:0 lost:0\n  flows: 0\n  port 0: ovs-netdev (tap)\n  port 1: eth1 (dpdk: configured_rx_queues=1, mtu=1500)\n  port 2: qvo-vm1 (dpdk: configured_rx_queues=1)\n  port 3: br-int (tap)\n  port 4: eth2 (dpdk: configured_rx_queues=1)\n",
        )
    }

    fn start() -> Egress {
        flow_fields("udp,in_port=6,vlan_tci=0x0000,dl_src=fa:16:3e:01:00:11,dl_dst=fa:16:3e:aa:01:01,nw_src=10.1.0.11,nw_dst=10.2.0.15,nw_tos=0,nw_ecn=0,nw_ttl=64,nw_frag=no,tp_src=1024,tp_dst=53").expect("flow")
    }

    #[test]
    fn datapath_actions_give_the_copies_and_their_headers() {
        let p = ports();
        assert_eq!(p.get(&1).map(String::as_str), Some("eth1"));
        assert_eq!(p.get(&3).map(String::as_str), Some("br-int"));
        let s = start();
        assert_eq!(s.vlan, None);
        assert_eq!(s.nw_ttl, 64);
        // DVR egress: both MACs, the TTL, then compute1's DVR MAC and the tag.
        let e = datapath_egress(
            "set(eth(src=fa:16:3f:00:00:c1,dst=fa:16:3e:02:00:15)),set(ipv4(ttl=63)),push_vlan(vid=102,pcp=0),1",
            &s,
            &p,
        )
        .expect("dvr");
        assert_eq!(
            e.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            ["eth1: dl_src=fa:16:3f:00:00:c1 dl_dst=fa:16:3e:02:00:15 vlan=102 nw_src=10.1.0.11 nw_dst=10.2.0.15 ttl=63"]
        );
        // SNAT in one pass: conntrack rewrites the source.
        let e = datapath_egress(
            "ct(commit,zone=1,nat(src=203.0.113.10)),set(eth(src=fa:16:3e:cc:00:10,dst=00:00:5e:00:53:01)),set(ipv4(ttl=62/0xff)),4",
            &s,
            &p,
        )
        .expect("snat");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].port, "eth2");
        assert_eq!(e[0].nw_src, Ipv4Addr::new(203, 0, 113, 10));
        assert_eq!(e[0].nw_ttl, 62);
        // Flooding: a clone's rewrites stay in the clone.
        let e = datapath_egress("clone(push_vlan(vid=101,pcp=0),1),3,pop_vlan,2", &s, &p)
            .expect("flood");
        let got: Vec<(&str, Option<u16>)> = e.iter().map(|e| (e.port.as_str(), e.vlan)).collect();
        assert_eq!(
            got,
            [("eth1", Some(101)), ("br-int", None), ("qvo-vm1", None)]
        );
        assert!(datapath_egress("drop", &s, &p).expect("drop").is_empty());
        // What the trace cannot follow is an error, not a silent pass.
        assert!(datapath_egress("ct(zone=1,nat),recirc(0x1)", &s, &p).is_err());
        assert!(datapath_egress("9", &s, &p).is_err());
        // A tagged input.
        let t = flow_fields("udp,in_port=1,dl_vlan=101,dl_vlan_pcp=0,vlan_tci1=0x0000,dl_src=fa:16:3f:00:00:c2,dl_dst=fa:16:3e:bb:01:03,nw_src=10.1.0.13,nw_dst=198.51.100.7,nw_ttl=63").expect("tagged");
        assert_eq!(t.vlan, Some(101));
        let t = flow_fields("udp,in_port=1,vlan_tci=0x1065,dl_src=fa:16:3f:00:00:c2,dl_dst=fa:16:3e:bb:01:03,nw_src=10.1.0.13,nw_dst=198.51.100.7,nw_ttl=63").expect("tci");
        assert_eq!(t.vlan, Some(101));
    }

    #[test]
    fn port_counters_come_from_one_dpctl_snapshot() {
        let c = port_counters(
            "netdev@ovs-netdev:\n  lookups: hit:0 missed:0 lost:0\n  flows: 2\n  port 0: ovs-netdev (tap)\n    RX packets:0 errors:0 dropped:0 overruns:0 frame:0\n    TX packets:0 errors:0 dropped:0 aborted:0 carrier:0\n    collisions:0\n    RX bytes:0  TX bytes:0\n  port 1: eth1 (dpdk: configured_rx_queues=1, mtu=1500)\n    RX packets:0 errors:0 dropped:0 overruns:0 frame:0\n    TX packets:2840096 errors:0 dropped:12 aborted:0 carrier:0\n    collisions:0\n    RX bytes:0  TX bytes:181766144 (173.3 MiB)\n  port 2: qvo-vm1 (dpdk: configured_rx_queues=1)\n    RX packets:2840128 errors:0 dropped:0 overruns:0 frame:0\n    TX packets:0 errors:0 dropped:0 aborted:0 carrier:0\n",
        );
        assert_eq!(c["eth1"].tx_packets, 2_840_096);
        assert_eq!(c["eth1"].tx_dropped, 12);
        assert_eq!(c["qvo-vm1"].rx_packets, 2_840_128);
        assert_eq!(c["ovs-netdev"], PortCounters::default());
    }

    #[test]
    fn stats_are_stripped_and_the_match_kept() {
        let l = " cookie=0x0, duration=1.5s, table=60, n_packets=3, n_bytes=180, idle_age=0, priority=4,dl_vlan=101,dl_dst=fa:16:3e:01:00:11 actions=strip_vlan,output:qvo-vm1";
        assert_eq!(
            strip_stats(l),
            "cookie=0x0,table=60,priority=4,dl_vlan=101,dl_dst=fa:16:3e:01:00:11 actions=strip_vlan,output:qvo-vm1"
        );
    }
}
